#!/usr/bin/env bash
# What a ZooKeeper watch proof costs at size. INSTANCES registrations
# (default 100,000) in a real ZooKeeper; disco serve watching them with a
# proof every second; the proof's own trace line (sync, node count, root
# stat and the slice of nodes whose mzxid is compared: 1,024 at 100,000)
# read for SECONDS seconds. Prints the median and 90th percentile of a
# proof's time and the slice size.
#
# Usage: bench/zk_proof.sh [INSTANCES] [SECONDS]   (defaults 100000, 30)
#   DISCO_BIN (default: the release build, built here), BENCH_TOOLS (the
#   disco-bench binary, default: built here).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

INSTANCES=${1:-100000}
SECONDS_TO_READ=${2:-30}
ensure_packages /usr/share/zookeeper/bin/zkServer.sh=zookeeper
if [[ -z ${DISCO_BIN:-} ]]; then
    (cd "$REPO" && cargo build --release --locked --bin disco >/dev/null)
    DISCO_BIN=$DISCO
fi
TOOLS=${BENCH_TOOLS:-$TOOLS}
[[ -x $TOOLS ]] || (cd "$REPO/bench/tools" && cargo build --release >/dev/null)

dir="$BENCH_SCRATCH/zk-proof"
rm -rf "$dir" && mkdir -p "$dir/zk" "$dir/empty"
python3 "$REPO/bench/gen_records.py" $((INSTANCES / 10)) 10 "$dir" >/dev/null

zk_port=$(free_port)
cat >"$dir/zoo.cfg" <<CFG
tickTime=2000
dataDir=$dir/zk
clientPort=$zk_port
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr
maxClientCnxns=0
CFG
java -Xmx2g -cp /usr/share/java/zookeeper.jar \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg" >"$dir/zk.log" 2>&1 &
STARTED_PIDS+=($!)
for _ in $(seq 300); do
    python3 -c "import socket,sys; s=socket.create_connection(('127.0.0.1', $zk_port)); s.send(b'srvr'); sys.exit(0 if b'Mode' in s.recv(4096) else 1)" 2>/dev/null && break
    sleep 0.1
done
log "loading $INSTANCES registrations"
"$TOOLS" load --zk "127.0.0.1:$zk_port" --prefix /disco --file "$dir/registrations.jsonl" >/dev/null

dns=$(free_port)
"$DISCO_BIN" serve --listen "127.0.0.1:$dns" --http-listen "127.0.0.1:$(free_port)" \
    --zones-dir "$dir/empty" --upstream off --watch-proof-interval 1s \
    --log-level "warn,disco::backend::zookeeper=trace" \
    --registry "zk://127.0.0.1:$zk_port/disco" 2>"$dir/disco.log" &
STARTED_PIDS+=($!)
sleep "$SECONDS_TO_READ"
cleanup

printf '\n## ZooKeeper watch proof at %s instances, a proof a second for %s s, %s\n\n' \
    "$INSTANCES" "$SECONDS_TO_READ" "$(date -u +%Y-%m-%dT%H:%MZ)"
python3 - "$dir/disco.log" <<'EOF'
import re, statistics, sys
took, slices = [], set()
for line in open(sys.argv[1], errors="replace"):
    if "watch proof read" not in line:
        continue
    t = re.search(r"took_us=(\d+)", line)
    s = re.search(r"slice=(\d+)", line)
    if t:
        took.append(int(t.group(1)) / 1000)
    if s:
        slices.add(int(s.group(1)))
if not took:
    sys.exit("no proof line in the log: is the filter right?")
took.sort()
p90 = took[int(len(took) * 0.9) - 1] if len(took) >= 10 else took[-1]
print(f"{len(took)} proofs; slice {sorted(slices)} nodes; "
      f"median {statistics.median(took):.1f} ms, p90 {p90:.1f} ms, max {took[-1]:.1f} ms")
EOF
