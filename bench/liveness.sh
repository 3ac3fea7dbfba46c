#!/usr/bin/env bash
# Time from a silently dead watch to its detection and to the right answer.
# Runs the liveness tests (tests/etcd/liveness.rs, tests/zookeeper/liveness.rs:
# a TCP proxy between disco and the store swallows what the store sends on
# the watch's connection while keeping it open, then a registration is made
# or, on ZooKeeper, an existing node's data changed) ROUNDS times at each
# proof interval, and prints, per store, change and interval, the median
# and range of: the resync counted in /metrics ("detected") and DNS giving
# the new answer ("answered"), both from the moment the watch went silent,
# and which resync cause counted it: `behind` is the proof; etcd's HTTP/2
# keepalive (10 s + 5 s) ends the connection as `watch_ended`.
#
# Usage: bench/liveness.sh   ROUNDS=5 INTERVALS="1s 10s" (10 s is the default
# --watch-proof-interval). Debug build of the tests; the times are the
# proofs' and the stores', not the build's.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-5}
INTERVALS=${INTERVALS:-1s 10s}
ensure_packages etcd=etcd-server /usr/share/zookeeper/bin/zkServer.sh=zookeeper

out="$BENCH_SCRATCH/liveness.log"
: >"$out"
(cd "$REPO" && cargo nextest run --no-run --test etcd --test zookeeper >/dev/null 2>&1)
for interval in $INTERVALS; do
    for round in $(seq "$ROUNDS"); do
        log "interval $interval, round $round"
        (cd "$REPO" && DISCO_TEST_PROOF_INTERVAL=$interval timeout 600 \
            cargo nextest run --no-fail-fast --test etcd --test zookeeper liveness --no-capture 2>&1) |
            grep '^LIVENESS' >>"$out" || log "a run failed: see cargo nextest run --test etcd --test zookeeper liveness"
    done
done

printf '\n## Dead watch to detection and to the right answer, %s rounds, %s\n\n' "$ROUNDS" "$(date -u +%Y-%m-%dT%H:%MZ)"
python3 - "$out" <<'EOF'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r"LIVENESS (\S+) (\S+) interval=(\S+) detected=(\S+) cause=(\S+) answered=(\S+)", line)
    if not m:
        continue
    def seconds(text):
        value = float(re.match(r"[\d.]+", text).group())
        if text.endswith("µs"):
            return value / 1e6
        return value / 1000 if text.endswith("ms") else value
    store, kind, interval, detected, cause, answered = m.groups()
    rows.setdefault((store, kind, interval), []).append((seconds(detected), seconds(answered), cause))
print("| store | silent change | proof interval | detected (median, range) | right answer (median, range) | found by | runs |")
print("|---|---|---|---:|---:|---|---:|")
for (store, kind, interval), runs in sorted(rows.items(), key=lambda r: (r[0][2], r[0][0], r[0][1])):
    d = [r[0] for r in runs]
    a = [r[1] for r in runs]
    fmt = lambda xs: f"{statistics.median(xs):.2f} s ({min(xs):.2f}–{max(xs):.2f})"
    causes = ", ".join(f"{c} ×{sum(1 for r in runs if r[2] == c)}" for c in sorted({r[2] for r in runs}))
    print(f"| {store} | {kind} | {interval} | {fmt(d)} | {fmt(a)} | {causes} | {len(runs)} |")
EOF
