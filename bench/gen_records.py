#!/usr/bin/env python3
"""Generates one record set for every server in the benchmark.

Writes, into OUT_DIR:
  disco.internal.zone  the records as an RFC 1035 zone, in disco's naming
                       (service A/AAAA/SRV, instance A, TXT), served as is by
                       Knot, NSD, hickory-dns and disco's static-zone path;
  registrations.jsonl  the same instances as native disco registrations
                       ({"service", "instance", "value"}), for the etcd path;
  queries.txt          the dnsperf query file: A and SRV for existing
                       services and instances, 10% names that do not exist,
                       10% NODATA (an existing name, a type it lacks).

Usage: gen_records.py SERVICES INSTANCES_PER_SERVICE OUT_DIR [QUERIES] [realistic]

With `realistic` (bench/scale.sh), every instance also has named ports
(`http` 8080, `metrics` 9100), three tags (a version of three, `primary` for
the first instance of a service and `replica` for the others, a zone of
three) and three metadata pairs, and the zone carries what disco answers for
them: each tag's A and SRV, `_http._tcp` and `_metrics._tcp` SRV, the RFC
2782 `_svc._tcp` SRV and a TXT of the three pairs. The registrations and
queries are otherwise the same (names svcN and svcN-I, the same mix).
"""
import json
import random
import sys


def address(n):
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def main():
    services, per_service, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    query_count = int(sys.argv[4]) if len(sys.argv) > 4 else 100_000
    realistic = len(sys.argv) > 5 and sys.argv[5] == "realistic"
    rng = random.Random(42)
    zone = [
        "$ORIGIN disco.internal.",
        "$TTL 30",
        "@ IN SOA ns.disco.internal. hostmaster.disco.internal. 1 3600 600 86400 5",
        "@ IN NS ns.disco.internal.",
        "ns IN A 127.0.0.1",
    ]
    registrations = []
    n = 0
    for s in range(services):
        service = f"svc{s}"
        for i in range(per_service):
            n += 1
            instance = f"{service}-{i}"
            ip = address(n)
            target = f"{instance}.{service}.disco.internal."
            zone.append(f"{service} IN A {ip}")
            zone.append(f"{service} IN SRV 0 100 8080 {target}")
            zone.append(f"{instance}.{service} IN A {ip}")
            value = {"address": ip, "port": 8080, "meta": {"version": "1.0"}}
            if realistic:
                tags = [f"v{n % 3 + 1}", "primary" if i == 0 else "replica", f"az-{'abc'[(n // 3) % 3]}"]
                meta = {"version": f"1.{n % 7}.{n % 13}", "commit": f"{(n * 2654435761) % (1 << 28):07x}", "team": f"team{s % 50}"}
                value = {"address": ip, "port": 8080, "ports": {"http": 8080, "metrics": 9100},
                         "tags": tags, "meta": meta}
                for tag in tags:
                    zone.append(f"{tag}.{service} IN A {ip}")
                    zone.append(f"{tag}.{service} IN SRV 0 100 8080 {target}")
                zone.append(f"_http._tcp.{service} IN SRV 0 100 8080 {target}")
                zone.append(f"_metrics._tcp.{service} IN SRV 0 100 9100 {target}")
                zone.append(f"_{service}._tcp IN SRV 0 100 8080 {target}")
                pairs = " ".join(f'"{k}={v}"' for k, v in sorted(meta.items()))
                zone.append(f"{instance}.{service} IN TXT {pairs}")
            else:
                zone.append(f'{instance}.{service} IN TXT "version=1.0"')
            registrations.append({"service": service, "instance": instance, "value": value})
    with open(f"{out}/disco.internal.zone", "w") as f:
        f.write("\n".join(zone) + "\n")
    with open(f"{out}/registrations.jsonl", "w") as f:
        for r in registrations:
            f.write(json.dumps(r) + "\n")
    with open(f"{out}/queries.txt", "w") as f:
        for q in range(query_count):
            kind = rng.random()
            s = rng.randrange(services)
            if kind < 0.1:
                f.write(f"missing{q}.svc{s}.disco.internal. A\n")  # NXDOMAIN
            elif kind < 0.2:
                f.write(f"svc{s}.disco.internal. TXT\n")  # NODATA
            elif kind < 0.5:
                f.write(f"svc{s}.disco.internal. SRV\n")
            elif kind < 0.8:
                f.write(f"svc{s}.disco.internal. A\n")
            else:
                i = rng.randrange(per_service)
                f.write(f"svc{s}-{i}.svc{s}.disco.internal. A\n")


if __name__ == "__main__":
    main()
