#!/usr/bin/env python3
"""Timings of `disco registrar --docker` against the real Docker engine, a
real etcd and a real `disco serve` (started by docker.sh). Containers are
labelled disco-bench.scope=docker (docker.sh removes them); every loop is
bounded in count and time. One line per figure, with its reference from
the same run where there is one.
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from registrar_bench import answered, gone, percentile, poll  # noqa: E402

IMAGE = "disco-test/busybox:1"
SCOPE = "disco-bench.scope=docker"
# PID 1 drains for one second after SIGTERM, as a service would.
SERVE = ["sh", "-c", "trap 'sleep 1; exit 0' TERM; httpd -p 8080 -h /www; "
         "while :; do sleep 0.1; done"]
TICK = os.sysconf("SC_CLK_TCK")


def docker(*args, check=True):
    out = subprocess.run(["docker", *args], capture_output=True, text=True)
    if check and out.returncode != 0:
        raise SystemExit(f"docker {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout.strip()


def run(name, *args):
    return docker("run", "--detach", "--name", name, "--label", SCOPE, *args, IMAGE, *SERVE)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registrar:
    def __init__(self, opts, extra, log):
        self.http = free_port()
        self.log = open(log, "w")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DISCO_")}
        self.process = subprocess.Popen(
            [opts.disco, "registrar", "--docker", "--registry", f"etcd://{opts.etcd}/disco",
             "--address", "127.0.0.1", "--http-listen", f"127.0.0.1:{self.http}", *extra],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, env=env)

    def get(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http}{path}", timeout=2) as r:
                return r.read().decode()
        except OSError as e:
            return getattr(e, "read", lambda: b"")().decode() if hasattr(e, "read") else ""

    def ready(self):
        try:
            return json.loads(self.get("/ready") or "{}")
        except json.JSONDecodeError:
            return {}

    def metric(self, name):
        for line in self.get("/metrics").splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def ticks(self):
        with open(f"/proc/{self.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def rss_kib(self):
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def summary(samples):
    return (f"n={len(samples)} median={statistics.median(samples):.1f} ms "
            f"p99={percentile(samples, 99):.1f} ms max={max(samples):.1f} ms")


def published(registrar, count, limit):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if registrar.ready().get("registrations", {}).get("published") == count:
            return True
        time.sleep(0.05)
    return False


def healthy_to_answered(opts, registrar):
    """Docker's health_status: healthy event → disco answers (wall clocks)."""
    name = "disco-bench-healthy"
    run(name, "-p", "127.0.0.1::8080", "--label", "disco.service=bench-healthy",
        "--health-cmd", "test -f /tmp/ok", "--health-interval", "100ms",
        "--health-retries", "1")
    fqdn = "bench-healthy.disco.internal."
    samples = []
    for _ in range(opts.rounds):
        since = time.time()
        docker("exec", name, "touch", "/tmp/ok")
        if poll(lambda: answered(opts.dns, fqdn), 20) is None:
            print("healthy → answered: never answered")
            break
        at = time.time()
        until = time.time() + 0.5
        events = docker("events", "--since", f"{since:.3f}", "--until", f"{until:.3f}",
                        "--filter", f"container={name}", "--filter", "event=health_status",
                        "--format", "{{.TimeNano}} {{.Action}}")
        healthy = [int(l.split()[0]) for l in events.splitlines() if l.endswith(": healthy")]
        if healthy:
            samples.append((at - healthy[0] / 1e9) * 1000)
        docker("exec", name, "rm", "/tmp/ok")
        poll(lambda: gone(opts.dns, fqdn), 20)
    docker("rm", "--force", name)
    if samples:
        print(f"HEALTHCHECK healthy → answered: {summary(samples)}  (target p99 ≤ 100 ms)")


def stop_to_nxdomain(opts, registrar):
    """`docker stop` → NXDOMAIN, and → the container's exit (the reference:
    the withdrawal should come first, by the container's drain)."""
    name = "disco-bench-stopped"
    run(name, "-p", "127.0.0.1::8080", "--label", "disco.service=bench-stopped")
    fqdn = "bench-stopped.disco.internal."
    to_nx, to_exit = [], []
    for _ in range(max(5, opts.rounds // 3)):
        if poll(lambda: answered(opts.dns, fqdn), 20) is None:
            print("stop: never answered")
            break
        started = time.monotonic()
        stop = subprocess.Popen(["docker", "stop", "--time", "10", name],
                                stdout=subprocess.DEVNULL)
        nx = poll(lambda: gone(opts.dns, fqdn), 20, every=0.001)
        stop.wait(30)
        exited = time.monotonic()
        if nx is not None:
            to_nx.append((nx - started) * 1000)
            to_exit.append((exited - started) * 1000)
        docker("start", name)
    docker("rm", "--force", name)
    if to_nx:
        print(f"docker stop → NXDOMAIN: {summary(to_nx)}")
        print(f"docker stop → exit (reference; 1 s drain): {summary(to_exit)}; "
              f"NXDOMAIN came {statistics.median(to_exit) - statistics.median(to_nx):.0f} ms "
              f"before the exit (median)")


def many(opts, scratch):
    """N labelled containers: registered through events by a running
    registrar, then by a fresh registrar's first reconcile (time, CPU); RSS
    with N beside 0, and CPU at rest."""
    n = opts.containers
    first = Registrar(opts, ["--resync", "10s"], f"{scratch}/registrar-events.log")
    time.sleep(2)
    rss_empty = first.rss_kib()
    t0 = first.ticks()
    time.sleep(opts.rest)
    rest_empty = (first.ticks() - t0) / TICK / opts.rest * 100
    print(f"with 0 containers: RSS {rss_empty / 1024:.1f} MiB, CPU at rest "
          f"{rest_empty:.2f}% of a core over {opts.rest} s")
    started = time.monotonic()
    names = [f"disco-bench-many-{i}" for i in range(n)]
    procs = []
    for name in names:
        procs.append(subprocess.Popen(
            ["docker", "run", "--detach", "--name", name, "--label", SCOPE, "-p",
             "127.0.0.1::8080", "--label", "disco.service=bench-many", IMAGE, *SERVE],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        if len(procs) >= 4:
            procs.pop(0).wait()
    for p in procs:
        p.wait()
    made = time.monotonic() - started
    ok = published(first, n, 120)
    print(f"{n} containers started in {made:.1f} s; the running registrar published "
          f"{'all' if ok else 'NOT all'} from their events "
          f"{time.monotonic() - started - made:.2f} s after the last docker run returned")
    first.process.send_signal(signal.SIGKILL)
    first.process.wait()
    first.log.close()

    second = Registrar(opts, ["--resync", "10s"], f"{scratch}/registrar-reconcile.log")
    t_start = time.monotonic()
    while second.metric("disco_registrar_docker_reconciles_total") in (None, 0.0):
        if time.monotonic() - t_start > 60:
            print("the first reconcile never finished")
            return
        time.sleep(0.01)
    reconcile = second.metric("disco_registrar_docker_reconcile_seconds")
    ok = published(second, n, 120)
    all_published = time.monotonic() - t_start
    cpu = second.ticks() / TICK
    print(f"first reconcile of {n} labelled containers: {reconcile * 1000:.0f} ms "
          f"(list, inspect each, start each); all published {all_published:.2f} s after "
          f"start{'' if ok else ' (NOT all)'}; CPU {cpu:.2f} s")
    # A resync of N known containers (one listing, nothing to change).
    t_reconciles = second.metric("disco_registrar_docker_reconciles_total")
    deadline = time.monotonic() + 30
    while second.metric("disco_registrar_docker_reconciles_total") == t_reconciles \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    resync = second.metric("disco_registrar_docker_reconcile_seconds")
    print(f"a resync of {n} known containers: {resync * 1000:.1f} ms")
    time.sleep(2)
    rss = second.rss_kib()
    t0 = second.ticks()
    time.sleep(opts.rest)
    rest = (second.ticks() - t0) / TICK / opts.rest * 100
    print(f"with {n} containers: RSS {rss / 1024:.1f} MiB ({rss / max(rss_empty, 1):.1f}× the "
          f"empty registrar's; target ≤ 50 MB), CPU at rest {rest:.2f}% of a core over "
          f"{opts.rest} s, a resync every 10 s and etcd keep-alives included (target ≤ 1%)")
    second.stop()
    subprocess.run(["docker", "rm", "--force", *names], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--disco", required=True)
    parser.add_argument("--etcd", required=True)
    parser.add_argument("--dns", type=int, required=True)
    parser.add_argument("--scratch", required=True)
    parser.add_argument("--containers", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--rest", type=int, default=20)
    opts = parser.parse_args()
    registrar = Registrar(opts, [], f"{opts.scratch}/registrar.log")
    try:
        healthy_to_answered(opts, registrar)
        stop_to_nxdomain(opts, registrar)
    finally:
        registrar.stop()
    many(opts, opts.scratch)


if __name__ == "__main__":
    main()
