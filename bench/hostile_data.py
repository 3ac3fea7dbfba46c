#!/usr/bin/env python3
"""Generates the records and query files of bench/hostile.sh.

Writes, into OUT_DIR:
  registrations.jsonl  SERVICES x INSTANCES native registrations, each with
                       two or three tags (v1/v2, primary/replica, sometimes
                       canary), for etcd under /disco;
  skydns.jsonl         SKYDNS_SERVICES x INSTANCES SkyDNS entries, loaded
                       under /skydns/internal/disco, so they answer as
                       <instance>.<service>.services.disco.internal.;
  q-<kind>.txt         one dnsperf file per kind of question (below);
  normal.txt           the usual mix (A and SRV of services and instances,
                       10% NXDOMAIN, 10% NODATA), as throughput.sh asks;
  hostile.txt          half normal.txt, half the hostile kinds, interleaved.

Usage: hostile_data.py SERVICES INSTANCES SKYDNS_SERVICES OUT_DIR
"""
import json
import random
import sys

QUERIES = 100_000


def address(n):
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def main():
    services, per_service, sky_services, out = (
        int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    rng = random.Random(16)
    n = 0
    with open(f"{out}/registrations.jsonl", "w") as f:
        for s in range(services):
            for i in range(per_service):
                n += 1
                tags = ["v2" if i % 2 else "v1", "primary" if i == 0 else "replica"]
                if i % 5 == 0:
                    tags.append("canary")
                value = {"address": address(n), "port": 8080, "ports": {"http": 8080},
                         "tags": tags, "meta": {"version": "1.0"}}
                f.write(json.dumps({"service": f"svc{s}", "instance": f"svc{s}-{i}",
                                    "value": value}) + "\n")
    with open(f"{out}/skydns.jsonl", "w") as f:
        for s in range(sky_services):
            for i in range(per_service):
                n += 1
                f.write(json.dumps({"service": f"sky{s}", "instance": f"x{i}",
                                    "value": {"host": address(n), "port": 8080}}) + "\n")

    svc = lambda: f"svc{rng.randrange(services)}.disco.internal."
    sky = lambda: f"sky{rng.randrange(sky_services)}.services.disco.internal."
    kinds = {
        # The cheapest answers: one record.
        "instance-a": lambda: f"svc{(s := rng.randrange(services))}-{rng.randrange(per_service)}"
                              f".svc{s}.disco.internal. A",
        "nxdomain": lambda: f"missing{rng.randrange(10**9)}.{svc()} A",
        "service-a": lambda: f"{svc()} A",
        "service-srv": lambda: f"{svc()} SRV",
        "tag-srv": lambda: f"primary.{svc()} SRV",
        "two-tags-srv": lambda: f"{rng.choice(['v2.canary', 'canary.v2', 'v1.replica'])}.{svc()} SRV",
        # Hostile: repeated and too many tags, in any order.
        "repeated-tags": lambda: f"{'.'.join(rng.choice(['v2', 'v1', 'primary', 'canary']) for _ in range(rng.randrange(3, 9)))}.{svc()} A",
        # Hostile: SkyDNS wildcards over a service's subtree, and deep names.
        "skydns-wildcard": lambda: f"{rng.choice(['*', 'any', 'ANY'])}.{sky()} A",
        "skydns-deep": lambda: f"{'.'.join('*' for _ in range(rng.randrange(2, 6)))}.{sky()} SRV",
    }
    hostile_kinds = ["repeated-tags", "two-tags-srv", "skydns-wildcard", "skydns-deep"]
    lines = {kind: [make() for _ in range(QUERIES)] for kind, make in kinds.items()}
    for kind, qs in lines.items():
        with open(f"{out}/q-{kind}.txt", "w") as f:
            f.write("\n".join(qs) + "\n")

    def normal():
        kind = rng.random()
        if kind < 0.1:
            return f"missing{rng.randrange(10**9)}.{svc()} A"
        if kind < 0.2:
            return f"{svc()} TXT"
        if kind < 0.5:
            return f"{svc()} SRV"
        if kind < 0.8:
            return f"{svc()} A"
        return kinds["instance-a"]()

    with open(f"{out}/normal.txt", "w") as f:
        f.write("\n".join(normal() for _ in range(QUERIES)) + "\n")
    with open(f"{out}/hostile.txt", "w") as f:
        for q in range(QUERIES):
            f.write((normal() if q % 2 == 0 else kinds[rng.choice(hostile_kinds)]()) + "\n")


if __name__ == "__main__":
    main()
