"""A spoofed-source DNS flood, for tests/containers/rrl.rs: run in a network
namespace that routes the victim network to its loopback (AnyIP), so that
what disco sends the forged sources is received and counted here.

    rrl_flood.py SERVER COUNT SECONDS VICTIM_NET [cookie]

Sends COUNT queries for docs.disco.internal A (EDNS) to SERVER:53 over
SECONDS, each from a forged address of VICTIM_NET (a /24 given as its first
three octets) through a raw socket; with "cookie", first learns a server
cookie for one forged address and sends every query from it, with the
cookie. Reads the answers until each query is accounted for: answered, or
dropped as disco's /metrics (SERVER:9153) counts. Prints one JSON object:
the answers of each kind, and `seconds` the sending took and `answering`
from the first query sent to the last answer read (disco may still be
reading the flood after the last one left, on a loaded machine).
"""

import json
import socket
import struct
import sys
import time
import urllib.request

PORT = 40053
CLIENT_COOKIE = bytes.fromhex("2464c4abcf10c957")


def query(qid, cookie=None):
    header = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1)
    name = b"".join(bytes([len(l)]) + l for l in b"docs.disco.internal".split(b".")) + b"\0"
    options = b""
    if cookie is not None:
        options = struct.pack("!HH", 10, len(cookie)) + cookie
    opt = b"\0" + struct.pack("!HHIH", 41, 1232, 0, len(options)) + options
    return header + name + struct.pack("!HH", 1, 1) + opt


def packet(src, dst, payload):
    udp = struct.pack("!HHHH", PORT, 53, 8 + len(payload), 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, socket.IPPROTO_UDP, 0,
        socket.inet_aton(src), socket.inet_aton(dst),
    )
    return ip + udp


def cookie_of(reply):
    """The COOKIE option data and the full rcode of a reply that ends with one."""
    if len(reply) < 39 or reply[-28:-24] != b"\0\x0a\0\x18":
        return None, reply[3] & 0x0F
    extended = reply[-28 - 11 + 5]
    return reply[-24:], extended << 4 | (reply[3] & 0x0F)


def dropped(server):
    text = urllib.request.urlopen(f"http://{server}:9153/metrics", timeout=5).read().decode()
    return sum(
        int(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("disco_rrl_dropped_total{")
    )


def main():
    server, count, seconds, net = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    with_cookie = len(sys.argv) > 5 and sys.argv[5] == "cookie"
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    receiver.bind(("0.0.0.0", PORT))
    receiver.settimeout(0.2)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)

    cookie = None
    if with_cookie:
        raw.sendto(packet(f"{net}.77", server, query(0, CLIENT_COOKIE)), (server, 0))
        reply, _ = receiver.recvfrom(4096)
        cookie, _ = cookie_of(reply)
    dropped_before = dropped(server)

    started = time.monotonic()
    for n in range(count):
        src = f"{net}.77" if with_cookie else f"{net}.{1 + n % 250}"
        raw.sendto(packet(src, server, query(n & 0xFFFF, cookie)), (server, 0))
        # Paced: the n-th query leaves at n/count of the way.
        ahead = started + seconds * (n + 1) / count - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        else:
            pass
    sending = time.monotonic() - started

    got = {"full": 0, "truncated": 0, "bad_cookie": 0}
    deadline = time.monotonic() + 30
    last_answer = started
    while True:
        try:
            reply, _ = receiver.recvfrom(4096)
            last_answer = time.monotonic()
        except socket.timeout:
            lost = dropped(server) - dropped_before
            if sum(got.values()) + lost >= count or time.monotonic() > deadline:
                break
            continue
        _, rcode = cookie_of(reply)
        if rcode == 23:
            got["bad_cookie"] += 1
        elif reply[2] & 0x02:
            got["truncated"] += 1
        else:
            got["full"] += 1
    got.update(
        sent=count,
        seconds=round(sending, 3),
        answering=round(last_answer - started, 3),
        dropped=dropped(server) - dropped_before,
    )
    print(json.dumps(got))


main()
