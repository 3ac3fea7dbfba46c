#!/usr/bin/env python3
"""Failover of `disco registrar --elect` against a real store and a real
`disco serve`, both started by failover.sh. Three registrars of `db` at
127.0.0.1, .2 and .3 (each checking a socket of this process), a prober
asking primary.db every 10 ms throughout; each run kills the leader with
SIGKILL and times until another primary is answered, then starts the
killed one again and waits for it to be a replica. Then `disco wait`'s
latency: from the name answering (polled every 2 ms) to its exit.

Prints the figures; every loop is bounded in count and time.
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


def addresses(port, name, timeout=0.2):
    """The A records of name, sorted, or None without an answer."""
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
    rid, flags, qd, an = struct.unpack(">HHHH", reply[:8])
    if rid != ident:
        return None
    if flags & 0xF not in (0, 3):
        return None
    pos = 12
    for _ in range(qd):
        while reply[pos] != 0:
            pos += reply[pos] + 1
        pos += 5
    found = []
    for _ in range(an):
        if reply[pos] & 0xC0 == 0xC0:
            pos += 2
        else:
            while reply[pos] != 0:
                pos += reply[pos] + 1
            pos += 1
        rtype, _, _, length = struct.unpack(">HHIH", reply[pos:pos + 10])
        pos += 10
        if rtype == 1 and length == 4:
            found.append(socket.inet_ntoa(reply[pos:pos + 4]))
        pos += length
    return sorted(found)


class Prober(threading.Thread):
    """Asks primary.db every 10 ms; counts probes and double primaries."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.stop = port, threading.Event()
        self.probes, self.doubles, self.current, self.since = 0, 0, [], NOW()

    def run(self):
        while not self.stop.is_set():
            found = addresses(self.port, "primary.db.disco.internal")
            if found is not None:
                self.probes += 1
                if len(found) > 1:
                    self.doubles += 1
                if found != self.current:
                    self.current, self.since = found, NOW()
            time.sleep(0.01)


def listener(address):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, 0))
    s.listen(64)

    def accept():
        while True:
            conn, _ = s.accept()
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--disco", required=True)
    parser.add_argument("--registry", required=True)
    parser.add_argument("--dns", type=int, required=True)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--ttl", default="2s")
    parser.add_argument("--label", default="store")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="failover.")
    members = {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISCO_")}

    def start(n):
        address = f"127.0.0.{n}"
        port = members[n]["port"] if n in members else listener(address)
        log = open(os.path.join(scratch, f"db-{n}.log"), "ab")
        proc = subprocess.Popen(
            [args.disco, "registrar", "--registry", args.registry, "--service", "db",
             "--instance", f"db-{n}", "--port", str(port), "--address", address,
             "--interval", "200ms", "--timeout", "150ms", "--rise", "1", "--fall", "2",
             "--ttl", args.ttl, "--elect"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
        members[n] = {"port": port, "proc": proc, "address": address}

    prober = Prober(args.dns)
    prober.start()
    for n in (1, 2, 3):
        start(n)

    def until(predicate, limit):
        deadline = NOW() + limit
        while NOW() < deadline:
            if predicate():
                return True
            time.sleep(0.002)
        return False

    def replicas():
        return len(addresses(args.dns, "replica.db.disco.internal") or [])

    failovers = []
    try:
        if not until(lambda: len(prober.current) == 1 and replicas() == 2, 30):
            sys.exit(f"{args.label}: no primary and two replicas within 30 s")
        for run in range(args.runs):
            leader = prober.current[0]
            n = next(k for k, m in members.items() if m["address"] == leader)
            members[n]["proc"].send_signal(signal.SIGKILL)
            members[n]["proc"].wait()
            killed = NOW()
            if not until(lambda: len(prober.current) == 1 and prober.current[0] != leader, 20):
                sys.exit(f"{args.label}: run {run}: no new primary within 20 s")
            failovers.append(prober.since - killed)
            start(n)
            if not until(lambda: replicas() == 2, 20):
                sys.exit(f"{args.label}: run {run}: the restarted one never became a replica")
        # disco wait: from the name answering to its exit.
        waits = []
        port = listener("127.0.0.9")
        for _ in range(10):
            waiter = subprocess.Popen(
                [args.disco, "wait", "late.disco.internal.", "--server", f"127.0.0.1:{args.dns}",
                 "--timeout", "30s"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            exited = {}
            threading.Thread(target=lambda: exited.setdefault("at", (waiter.wait(), NOW())[1]),
                             daemon=True).start()
            reg = subprocess.Popen(
                [args.disco, "registrar", "--registry", args.registry, "--service", "late",
                 "--instance", "late-1", "--port", str(port), "--address", "127.0.0.9",
                 "--interval", "100ms", "--timeout", "50ms", "--rise", "1", "--ttl", args.ttl],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            answered = None
            deadline = NOW() + 20
            while NOW() < deadline and answered is None:
                if addresses(args.dns, "late.disco.internal"):
                    answered = NOW()
                time.sleep(0.002)
            until(lambda: "at" in exited, 10)
            if answered and "at" in exited:
                waits.append(max(0.0, exited["at"] - answered))
            reg.send_signal(signal.SIGTERM)
            reg.wait()
            until(lambda: addresses(args.dns, "late.disco.internal") == [], 10)
    finally:
        prober.stop.set()
        prober.join()
        for m in members.values():
            if m["proc"].poll() is None:
                m["proc"].send_signal(signal.SIGTERM)
                m["proc"].wait()
    print(f"{args.label}: failover (kill -9 of the leader -> another primary answered), "
          f"TTL {args.ttl}, {len(failovers)} runs: median {statistics.median(failovers):.2f} s, "
          f"max {max(failovers):.2f} s, min {min(failovers):.2f} s")
    print(f"{args.label}: double primaries: {prober.doubles} in {prober.probes} probes of primary.db")
    if waits:
        print(f"{args.label}: disco wait, name answering -> exit, {len(waits)} runs: "
              f"median {statistics.median(waits) * 1000:.0f} ms, max {max(waits) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
