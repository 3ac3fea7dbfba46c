#!/usr/bin/env bash
# Twenty replicas on one store: REPLICAS `disco serve` processes watching
# one 3-member etcd cluster holding INSTANCES instances.
#
# Usage: bench/replicas.sh [REPLICAS]     (default 20)
#   INSTANCES=100000 SAMPLES=200
#
# Every process shares this machine's cores (disco's replicas, etcd's three
# members, the tools): the figures say what the store pays per replica and
# how far a registration is from the slowest replica, not what twenty
# machines would give.
# - cold start of every replica at once: the time until all are ready, and
#   etcd's CPU and resident memory over it;
# - a registration reaching all of them: from the put's acknowledgement to
#   the last replica answering it (p50, p99; `disco-bench latency` with
#   every replica's address);
# - etcd's resident memory and watchers with every replica running, and its
#   CPU over SAMPLES registrations (per replica);
# - one replica restarted cold while the others run: its time to ready,
#   and the others' registration to answer meanwhile.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

REPLICAS=${1:-20}
INSTANCES=${INSTANCES:-100000}
SAMPLES=${SAMPLES:-200}

ensure_packages dig=dnsutils etcd=etcd-server
build_disco
ulimit -n 65536 2>/dev/null || true

DIR="$BENCH_SCRATCH/replicas"
rm -rf "$DIR" && mkdir -p "$DIR/empty"
python3 "$REPO/bench/gen_records.py" $((INSTANCES / 10)) 10 "$DIR" 1000 realistic

# Three members on loopback.
peers=() clients=() cluster=""
for m in 1 2 3; do
    peers+=("127.0.0.1:$(free_port)")
    clients+=("127.0.0.1:$(free_port)")
    cluster+="${cluster:+,}m$m=http://${peers[-1]}"
done
ETCD_PIDS=()
start_member() { # index (0-based)
    local m=$(($1 + 1))
    etcd --name "m$m" --data-dir "$DIR/etcd-m$m" --listen-client-urls "http://${clients[$1]}" \
        --advertise-client-urls "http://${clients[$1]}" --listen-peer-urls "http://${peers[$1]}" \
        --initial-advertise-peer-urls "http://${peers[$1]}" --initial-cluster "$cluster" \
        --initial-cluster-state new --quota-backend-bytes 4294967296 --log-level error \
        >"$DIR/etcd-m$m.log" 2>&1 &
    ETCD_PIDS+=($!)
    STARTED_PIDS+=($!)
}
for i in 0 1 2; do start_member "$i"; done
for _ in $(seq 200); do
    curl -sf "http://${clients[0]}/health" | grep -q true && break
    sleep 0.1
done
endpoints=$(IFS=,; echo "${clients[*]}")

etcd_cpu_ticks() { local t=0 pid; for pid in "${ETCD_PIDS[@]}"; do t=$((t + $(cpu_ticks "$pid"))); done; echo "$t"; }
etcd_rss_mib() { local t=0 pid; for pid in "${ETCD_PIDS[@]}"; do t=$((t + $(rss_kib "$pid"))); done; echo $((t / 1024)); }
watchers() { curl -sf "http://${clients[0]}/metrics" | awk '/^etcd_debugging_mvcc_watcher_total / {print $2}'; }
seconds_since() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN {printf "%.2f", e - s}'; }
hz=$(getconf CLK_TCK)

"$TOOLS" load --etcd "${clients[0]}" --prefix /disco --file "$DIR/registrations.jsonl" 2>>"$DIR/load.log"
rss_loaded=$(etcd_rss_mib)
watchers_before=$(watchers)

declare -a PIDS DNS HTTP
start_replica() { # index
    local dns http
    dns=$(free_port)
    http=$(free_port)
    TOKIO_WORKER_THREADS=1 "$DISCO" serve --udp-sockets 1 --listen "127.0.0.1:$dns" \
        --http-listen "127.0.0.1:$http" --zones-dir "$DIR/empty" --upstream off --log-level warn \
        --registry "etcd://$endpoints/disco" 2>>"$DIR/disco-$1.log" &
    PIDS[$1]=$!
    STARTED_PIDS+=($!)
    DNS[$1]=$dns
    HTTP[$1]=$http
}
wait_ready_all() { # indexes...
    local i
    for i in "$@"; do
        for _ in $(seq 6000); do
            curl -sf "http://127.0.0.1:${HTTP[$i]}/ready" >/dev/null 2>&1 && break
            sleep 0.02
        done
    done
}

printf '# %s replicas on a 3-member etcd cluster, %s instances, %s cores, load average before: %s, %s\n\n' \
    "$REPLICAS" "$INSTANCES" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(date -u +%Y-%m-%dT%H:%MZ)"
log "cold start of $REPLICAS replicas at once"
ticks=$(etcd_cpu_ticks)
started=$(date +%s.%N)
for i in $(seq 0 $((REPLICAS - 1))); do start_replica "$i"; done
wait_ready_all $(seq 0 $((REPLICAS - 1)))
all_ready=$(seconds_since "$started")
start_cpu=$(awk -v t=$(($(etcd_cpu_ticks) - ticks)) -v hz="$hz" 'BEGIN {printf "%.1f", t / hz}')
printf -- '- all %s replicas cold-started at once, ready after %s s; etcd (3 members) used %s CPU-s meanwhile\n' \
    "$REPLICAS" "$all_ready" "$start_cpu"
sleep 3
printf -- '- etcd resident memory (3 members): %s MiB loaded, %s MiB with %s replicas watching; watchers %s → %s\n' \
    "$rss_loaded" "$(etcd_rss_mib)" "$REPLICAS" "${watchers_before:-?}" "$(watchers)"
replica_rss=$(rss_kib "${PIDS[0]}")
printf -- '- one replica'"'"'s resident memory: %s MiB\n' $((replica_rss / 1024))

all_dns=()
for i in $(seq 0 $((REPLICAS - 1))); do all_dns+=(--dns "127.0.0.1:${DNS[$i]}"); done
log "registration to the last replica"
ticks=$(etcd_cpu_ticks)
started=$(date +%s.%N)
printf -- '- %s\n' "$("$TOOLS" latency --etcd "${clients[0]}" --prefix /disco "${all_dns[@]}" --count "$SAMPLES")"
awk -v t=$(($(etcd_cpu_ticks) - ticks)) -v hz="$hz" -v s="$(seconds_since "$started")" -v n="$SAMPLES" -v r="$REPLICAS" \
    'BEGIN {printf "- etcd CPU over those registrations: %.1f%% of a core, %.2f ms of CPU per registration, %.3f ms per registration per replica\n", t / hz / s * 100, t / hz / n * 1000, t / hz / n * 1000 / r}'

log "one replica restarted cold while the others run"
kill "${PIDS[0]}" && wait "${PIDS[0]}" 2>/dev/null || true
others=()
for i in $(seq 1 $((REPLICAS - 1))); do others+=(--dns "127.0.0.1:${DNS[$i]}"); done
started=$(date +%s.%N)
start_replica 0
"$TOOLS" latency --etcd "${clients[0]}" --prefix /disco --service restart "${others[@]}" --count 50 >"$DIR/during.txt" 2>&1 &
during=$!
wait_ready_all 0
printf -- '- a replica restarted cold: ready after %s s\n' "$(seconds_since "$started")"
wait "$during" || true
printf -- '- the other %s meanwhile: %s\n' $((REPLICAS - 1)) "$(cat "$DIR/during.txt")"
