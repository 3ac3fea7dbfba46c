#!/usr/bin/env bash
# Failover of `disco registrar --elect` on a real etcd and a real ZooKeeper,
# each watched by a real `disco serve` on 127.0.0.1: kill -9 of the leader
# until another primary is answered (median and max over RUNS runs, TTL
# 2 s), the double primaries a prober asking primary.db every 10 ms saw
# (the reference: 0), and `disco wait`'s latency. See bench/README.md.
# Usage: bench/failover.sh [RUNS]    (default 20)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
RUNS=${1:-20}

ensure_packages etcd=etcd-server python3=python3 /usr/share/zookeeper/bin/zkServer.sh=zookeeper
# DISCO_BIN: a disco binary already built (the failover is the store's
# TTL, not disco's speed); else the release build.
if [[ -n ${DISCO_BIN:-} ]]; then
    DISCO=$DISCO_BIN
else
    (cd "$REPO" && cargo build --release --locked --bin disco >/dev/null)
fi
dir=$(mktemp -d "$BENCH_SCRATCH/failover.XXXXXX")
mkdir -p "$dir/zones" "$dir/zk"

start_etcd "$dir"
ZK_CLIENT="127.0.0.1:$(free_port)"
# A short tick, so that 2 s sessions are granted as asked (ZooKeeper's
# bounds are 2 and 20 ticks).
cat >"$dir/zoo.cfg" <<CFG
tickTime=100
dataDir=$dir/zk
clientPort=${ZK_CLIENT#*:}
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=srvr
CFG
java -cp /usr/share/java/zookeeper.jar org.apache.zookeeper.server.quorum.QuorumPeerMain \
    "$dir/zoo.cfg" >"$dir/zk.log" 2>&1 &
STARTED_PIDS+=($!)
for _ in $(seq 300); do
    python3 -c "import socket,sys; s=socket.create_connection(('127.0.0.1', ${ZK_CLIENT#*:})); s.send(b'srvr'); sys.exit(0 if b'Mode' in s.recv(4096) else 1)" 2>/dev/null && break
    sleep 0.1
done

for store in etcd zk; do
    case $store in
        etcd) registry="etcd://$ETCD_CLIENT/disco" ;;
        zk) registry="zk://$ZK_CLIENT/disco" ;;
    esac
    dns=$(free_port)
    "$DISCO" serve --listen "127.0.0.1:$dns" --http-listen off --upstream off \
        --zones-dir "$dir/zones" --registry "$registry" >"$dir/disco-$store.log" 2>&1 &
    pid=$!
    STARTED_PIDS+=($pid)
    sleep 1
    log "$store: $registry, disco on 127.0.0.1:$dns; the machine is shared, figures are noisy"
    python3 "$REPO/bench/failover.py" --disco "$DISCO" --registry "$registry" --dns "$dns" \
        --runs "$RUNS" --label "$store"
    kill "$pid" && wait "$pid" 2>/dev/null || true
done
