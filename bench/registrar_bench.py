#!/usr/bin/env python3
"""Timings of `disco registrar` against a real etcd and a real `disco serve`,
both already started by registrar.sh. Everything here runs on 127.0.0.1:
the checked services are sockets of this process (so their timestamps and
the DNS poller's share one clock), the registrars are child processes, and
every loop is bounded in count and time.

Prints one line per figure: samples, median, p99 (or max), and the target.
"""

import argparse
import os
import random
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

NOW = time.monotonic


def query(port, name, timeout=0.2):
    """One A query over UDP: (rcode, answer count), or None without answer."""
    ident = random.randrange(65536)
    packet = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        packet += bytes([len(label)]) + label.encode()
    packet += b"\x00" + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, ("127.0.0.1", port))
        try:
            reply = s.recv(4096)
        except socket.timeout:
            return None
    rid, flags, _, ancount = struct.unpack(">HHHH", reply[:8])
    if rid != ident:
        return None
    return flags & 0xF, ancount


def answered(port, name):
    got = query(port, name)
    return got is not None and got[0] == 0 and got[1] > 0


def gone(port, name):
    got = query(port, name)
    return got is not None and got[0] == 3


def poll(predicate, limit, every=0.002):
    """Polls until predicate() holds; the time it first held, or None."""
    deadline = NOW() + limit
    while NOW() < deadline:
        if predicate():
            return NOW()
        time.sleep(every)
    return None


class Service:
    """A TCP service that records when each check connected."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepts = []
        self.listening = False

    def up(self):
        if self.listening:
            return
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(128)
        self.listening = True
        self.accepts = []
        threading.Thread(target=self._accept, args=(self.sock,), daemon=True).start()

    def _accept(self, sock):
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            self.accepts.append(NOW())
            conn.close()

    def down(self):
        if self.listening:
            self.listening = False
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()


class Registrar:
    def __init__(self, disco, args, log):
        self.log = open(log, "w")
        self.process = subprocess.Popen(
            [disco, "registrar", *args],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            env={k: v for k, v in os.environ.items() if not k.startswith("DISCO_")},
        )

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def report(name, samples_ms, target):
    if not samples_ms:
        print(f"{name}: no samples")
        return
    print(
        f"{name}: n={len(samples_ms)} median={statistics.median(samples_ms):.1f} ms "
        f"p99={percentile(samples_ms, 99):.1f} ms max={max(samples_ms):.1f} ms  (target {target})"
    )
    sys.stdout.flush()


def registrar_args(etcd, service, extra):
    return [
        "--registry", f"etcd://{etcd}/disco", "--service", "bench", "--instance", "b1",
        "--port", str(service.port), "--address", "127.0.0.1", "--check", "tcp", *extra,
    ]


def failure_to_withdrawal(opts, scratch):
    name = "b1.bench.disco.internal"
    service = Service()
    service.up()
    interval, fall = 1.0, 3
    reg = Registrar(opts.disco, registrar_args(opts.etcd, service, [
        "--interval", "1s", "--timeout", "500ms", "--rise", "1", "--fall", str(fall)]),
        f"{scratch}/failure.log")
    samples = []
    try:
        for _ in range(opts.failures):
            if poll(lambda: answered(opts.dns, name), 15) is None:
                break
            # Stop at a random point of the check cycle.
            time.sleep(random.uniform(0.5, 1.5))
            stopped = NOW()
            service.down()
            withdrawn = poll(lambda: gone(opts.dns, name), 15)
            if withdrawn is None:
                break
            samples.append((withdrawn - stopped) * 1000)
            service.up()
    finally:
        reg.stop()
        service.down()
    report("failure to withdrawal (interval 1s, fall 3)", samples,
           f"<= fall x interval + 100 ms = {fall * interval * 1000 + 100:.0f} ms")


def healthy_at(log_path, after):
    """The wall-clock time of the registrar's last "healthy" log line after
    `after` (the line is written as the rise-th passing check completes)."""
    import datetime
    found = None
    with open(log_path) as f:
        for line in f:
            if "healthy: every check passed" not in line:
                continue
            stamp = line.split()[0].rstrip("Z")
            at = datetime.datetime.fromisoformat(stamp).replace(tzinfo=datetime.timezone.utc).timestamp()
            if at > after:
                found = at
    return found


def healthy_to_answered(opts, scratch):
    """From the rise-th passing check (the registrar's own log line, which it
    writes as that check completes, in wall-clock time) to disco's first
    answer. The checked socket's accept times cannot say it: the kernel
    completes the check's handshake before this process accepts."""
    name = "b1.bench.disco.internal"
    service = Service()
    rise = 2
    log = f"{scratch}/healthy.log"
    reg = Registrar(opts.disco, registrar_args(opts.etcd, service, [
        "--interval", "200ms", "--timeout", "150ms", "--rise", str(rise), "--fall", "1"]), log)
    samples = []
    try:
        for _ in range(opts.healthy):
            started = time.time()
            service.up()
            first = poll(lambda: answered(opts.dns, name), 10, every=0.0005)
            if first is None:
                print(f"healthy: stopped after {len(samples)} samples: not answered", file=sys.stderr)
                break
            answered_at = time.time() - (NOW() - first)
            healthy = healthy_at(log, started)
            if healthy is not None:
                samples.append((answered_at - healthy) * 1000)
            service.down()
            if poll(lambda: gone(opts.dns, name), 10) is None:
                print(f"healthy: stopped after {len(samples)} samples: not withdrawn", file=sys.stderr)
                break
    finally:
        reg.stop()
        service.down()
    report("healthy to answered (rise-th passing check to first answer)", samples, "p99 <= 50 ms")


def sigkill_to_withdrawal(opts, scratch):
    name = "b1.bench.disco.internal"
    service = Service()
    service.up()
    ttl = 5
    samples = []
    for round_ in range(opts.kills):
        reg = Registrar(opts.disco, registrar_args(opts.etcd, service, [
            "--interval", "200ms", "--timeout", "150ms", "--rise", "1", "--ttl", f"{ttl}s"]),
            f"{scratch}/kill{round_}.log")
        try:
            if poll(lambda: answered(opts.dns, name), 15) is None:
                break
            # Past one keep-alive, so the lease's clock restarted somewhere.
            time.sleep(random.uniform(0, ttl / 3) + 0.5)
            killed = NOW()
            reg.process.kill()
            reg.process.wait()
            withdrawn = poll(lambda: gone(opts.dns, name), ttl + 10, every=0.01)
            if withdrawn is None:
                break
            samples.append((withdrawn - killed) * 1000)
        finally:
            reg.stop()
    service.down()
    report(f"SIGKILL to withdrawal (etcd, --ttl {ttl}s)", samples, f"<= TTL + 1 s = {ttl * 1000 + 1000} ms")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def many_services(opts, scratch, count):
    """One registrar, `count` services checked every second (half tcp, half
    http against a tiny HTTP server), all published; its CPU share over
    opts.seconds, and its RSS at the end."""
    http = socket.socket()
    http.bind(("127.0.0.1", 0))
    http.listen(1024)
    http_port = http.getsockname()[1]

    def serve_http():
        while True:
            try:
                conn, _ = http.accept()
            except OSError:
                return
            try:
                conn.recv(2048)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
            except OSError:
                pass
            conn.close()

    for _ in range(4):
        threading.Thread(target=serve_http, daemon=True).start()
    tcp = Service()
    tcp.up()
    config = f"{scratch}/services{count}.toml"
    with open(config, "w") as f:
        f.write(f'[registrar]\nregistry = "etcd://{opts.etcd}/disco"\ninterval = "1s"\ntimeout = "500ms"\nrise = 1\n')
        for i in range(count):
            check = '"tcp"' if i % 2 == 0 else f'"http://127.0.0.1:{http_port}/health"'
            port = tcp.port if i % 2 == 0 else http_port
            f.write(f'\n[[registrar.service]]\nservice = "many{i}"\ninstance = "m1"\naddress = "127.0.0.1"\nport = {port}\nchecks = [{check}]\n')
    reg = Registrar(opts.disco, ["--config", config], f"{scratch}/many{count}.log")
    try:
        last = f"m1.many{count - 1}.disco.internal"
        if poll(lambda: answered(opts.dns, last), 30) is None:
            print(f"{count} services: not all published")
            return None
        time.sleep(2)
        hz = os.sysconf("SC_CLK_TCK")
        start_ticks, start = cpu_ticks(reg.process.pid), NOW()
        time.sleep(opts.seconds)
        ticks, elapsed = cpu_ticks(reg.process.pid) - start_ticks, NOW() - start
        cpu = ticks / hz / elapsed * 100
        rss = rss_kib(reg.process.pid) / 1024
        return cpu, rss
    finally:
        reg.stop()
        tcp.down()
        http.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--disco", required=True)
    parser.add_argument("--etcd", required=True)
    parser.add_argument("--dns", type=int, required=True)
    parser.add_argument("--failures", type=int, default=10)
    parser.add_argument("--healthy", type=int, default=100)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="failure,healthy,kill,many")
    opts = parser.parse_args()
    only = opts.only.split(",")
    with tempfile.TemporaryDirectory() as scratch:
        if "failure" in only:
            failure_to_withdrawal(opts, scratch)
        if "healthy" in only:
            healthy_to_answered(opts, scratch)
        if "kill" in only:
            sigkill_to_withdrawal(opts, scratch)
        if "many" in only:
            # 100 services against a reference of 1 in the same run, the two
            # taking turns; medians over the rounds.
            results = {1: [], 100: []}
            for _ in range(opts.rounds):
                for count in (1, 100):
                    got = many_services(opts, scratch, count)
                    if got:
                        results[count].append(got)
            for count, runs in results.items():
                if runs:
                    cpu = statistics.median(r[0] for r in runs)
                    rss = statistics.median(r[1] for r in runs)
                    each = ", ".join(f"{r[0]:.2f}%" for r in runs)
                    print(f"{count} service(s) checked every second: CPU {cpu:.2f}% of a core "
                          f"(rounds: {each}), RSS {rss:.1f} MiB  (target for 100: <= 2%, <= 30 MB)")


if __name__ == "__main__":
    main()
