#!/usr/bin/env bash
# Twenty replicas on one store: REPLICAS `disco serve` processes watching
# one 3-member etcd cluster (STORE=etcd) or one 3-server ZooKeeper
# ensemble (STORE=zk) holding INSTANCES instances.
#
# Usage: bench/replicas.sh [REPLICAS]     (default 20)
#   STORE=etcd|zk INSTANCES=100000 SAMPLES=200 WORKERS=1 (each replica's
#   tokio worker threads) HERD=REPLICAS
#
# Every process shares this machine's cores (disco's replicas, the store's
# three servers, the tools): the figures say what the store pays per
# replica and how far a registration is from the slowest replica, not what
# twenty machines would give.
# - cold start of every replica at once: the time until all are ready, and
#   the store's CPU and resident memory over it;
# - a registration reaching all of them: from the write's acknowledgement
#   to the last replica answering it (p50, p99; `disco-bench latency` with
#   every replica's address);
# - the store's resident memory (the three processes' sum) and watches with
#   every replica running; its CPU with no writes (what watching costs:
#   for ZooKeeper each replica proves its watch every 10 s) and over
#   SAMPLES registrations (per replica);
# - one replica restarted cold while the others run: its time to ready,
#   and the others' registration to answer meanwhile;
# - HERD more replicas cold-started at once while the others run (each
#   asks the store for a full listing): their time until all are ready, and
#   the running replicas' registration to answer meanwhile.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

REPLICAS=${1:-20}
INSTANCES=${INSTANCES:-100000}
SAMPLES=${SAMPLES:-200}
STORE=${STORE:-etcd}
WORKERS=${WORKERS:-1}
HERD=${HERD:-$REPLICAS}

case $STORE in
etcd) ensure_packages dig=dnsutils etcd=etcd-server ;;
zk) ensure_packages dig=dnsutils /usr/share/zookeeper/bin/zkServer.sh=zookeeper ;;
*)
    log "STORE is etcd or zk, not $STORE"
    exit 64
    ;;
esac
build_disco
ulimit -n 65536 2>/dev/null || true

DIR="$BENCH_SCRATCH/replicas"
rm -rf "$DIR" && mkdir -p "$DIR/empty"
# The stores' data goes at the end; the logs stay.
trap 'cleanup; rm -rf "$DIR"/etcd-m* "$DIR"/zk*/data' EXIT
python3 "$REPO/bench/gen_records.py" $((INSTANCES / 10)) 10 "$DIR" 1000 realistic

# The store, on loopback, and what the rest of the script asks of it:
# STORE_PIDS (the three servers), the tools' flag, the replicas' URL, and
# `watches` (every server's count, summed: each replica watches through
# one of them).
case $STORE in
etcd)
    store_name="3-member etcd cluster"
    short_name="etcd (3 members)"
    peers=() clients=() cluster=""
    for m in 1 2 3; do
        peers+=("127.0.0.1:$(free_port)")
        clients+=("127.0.0.1:$(free_port)")
        cluster+="${cluster:+,}m$m=http://${peers[-1]}"
    done
    STORE_PIDS=()
    for i in 0 1 2; do
        m=$((i + 1))
        etcd --name "m$m" --data-dir "$DIR/etcd-m$m" --listen-client-urls "http://${clients[i]}" \
            --advertise-client-urls "http://${clients[i]}" --listen-peer-urls "http://${peers[i]}" \
            --initial-advertise-peer-urls "http://${peers[i]}" --initial-cluster "$cluster" \
            --initial-cluster-state new --quota-backend-bytes 4294967296 --log-level error \
            >"$DIR/etcd-m$m.log" 2>&1 &
        STORE_PIDS+=($!)
        STARTED_PIDS+=($!)
    done
    for _ in $(seq 200); do
        curl -sf "http://${clients[0]}/health" | grep -q true && break
        sleep 0.1
    done
    endpoints=$(IFS=,; echo "${clients[*]}")
    store_flag=(--etcd "${clients[0]}")
    registry="etcd://$endpoints/disco"
    # etcd_debugging_mvcc_watcher_total: watchers on that member.
    watches() {
        local member counts=()
        for member in "${clients[@]}"; do
            counts+=("$(curl -sf "http://$member/metrics" | awk '/^etcd_debugging_mvcc_watcher_total / {print $2}')")
        done
        awk -v c="${counts[*]}" 'BEGIN { n = split(c, v, " "); for (i = 1; i <= n; i++) t += v[i]
            gsub(" ", "/", c); printf "%d (%s on the three members)", t, c }'
    }
    ;;
zk)
    store_name="3-server ZooKeeper ensemble"
    short_name="ZooKeeper (3 servers)"
    ZK_WORDS=ruok,srvr,mntr,srst start_zookeeper_ensemble "$DIR"
    STORE_PIDS=("${ZK_PIDS[@]}")
    store_flag=(--zk "$ZK_HOSTS")
    registry="zk://$ZK_HOSTS/disco"
    # mntr's zk_watch_count and its connections, less the one asking.
    # ZooKeeper 3.8 files a persistent recursive watch under both its data
    # and its child watches (DataTree.addWatch), so each replica's one
    # watch counts twice.
    watches() {
        local host w c watches=() connections=()
        for host in ${ZK_HOSTS//,/ }; do
            read -r w c < <(zk_word "$host" mntr | awk '/^zk_watch_count/ {w = $2}
                /^zk_num_alive_connections/ {c = $2 - 1} END {print w + 0, c + 0}')
            watches+=("$w")
            connections+=("$c")
        done
        awk -v w="${watches[*]}" -v c="${connections[*]}" 'BEGIN { n = split(w, v, " "); for (i = 1; i <= n; i++) t += v[i]
            gsub(" ", "/", w); gsub(" ", "/", c); printf "%d (%s on the three servers, which hold %s connections)", t, w, c }'
    }
    # The JVMs' live heap, summed: a full collection first (jcmd GC.run),
    # so that it is what the data and the watches hold, not garbage.
    live_heap_mib() {
        local t=0 pid used
        for pid in "${STORE_PIDS[@]}"; do
            jcmd "$pid" GC.run >/dev/null 2>&1 || true
            used=$(jcmd "$pid" GC.heap_info 2>/dev/null | sed -n 's/.* used \([0-9]*\)K.*/\1/p' | head -1)
            t=$((t + ${used:-0}))
        done
        echo $((t / 1024))
    }
    ;;
esac

# How often a replica's registry went stale (a lost connection: disco logs
# each, then lists afresh once connected again).
reconnections() { cat "$DIR"/disco-*.log 2>/dev/null | grep -c "registry unreachable" || true; }

store_cpu_ticks() { local t=0 pid; for pid in "${STORE_PIDS[@]}"; do t=$((t + $(cpu_ticks "$pid"))); done; echo "$t"; }
store_rss_mib() { local t=0 pid; for pid in "${STORE_PIDS[@]}"; do t=$((t + $(rss_kib "$pid"))); done; echo $((t / 1024)); }
seconds_since() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN {printf "%.2f", e - s}'; }
hz=$(getconf CLK_TCK)

load_started=$(date +%s.%N)
"$TOOLS" load "${store_flag[@]}" --prefix /disco --file "$DIR/registrations.jsonl" 2>>"$DIR/load.log"
loaded_in=$(seconds_since "$load_started")
sleep 3
# For ZooKeeper both resident figures follow a full collection, as the
# live heap's do: a JVM's resident memory is otherwise its garbage's.
[[ $STORE == zk ]] && heap_loaded=$(live_heap_mib)
rss_loaded=$(store_rss_mib)
watches_before=$(watches)

declare -a PIDS DNS HTTP
# Fresh ports for the replicas named, found before any clock starts (a
# process per port would stagger a start "at once" by seconds).
assign_ports() { # indexes...
    local ports i
    read -ra ports < <(free_ports $(($# * 2)))
    for i in "$@"; do
        DNS[i]=${ports[0]}
        HTTP[i]=${ports[1]}
        ports=("${ports[@]:2}")
    done
}
start_replica() { # index
    TOKIO_WORKER_THREADS=$WORKERS "$DISCO" serve --udp-sockets 1 --listen "127.0.0.1:${DNS[$1]}" \
        --http-listen "127.0.0.1:${HTTP[$1]}" --zones-dir "$DIR/empty" --upstream off --log-level info \
        --registry "$registry" 2>>"$DIR/disco-$1.log" &
    PIDS[$1]=$!
    STARTED_PIDS+=($!)
}
# Waits until every replica named is ready, 600 s at most for all of them;
# prints how many were not.
wait_ready_all() { # indexes...
    local i missing=0 deadline=$((SECONDS + 600))
    for i in "$@"; do
        until curl -sf "http://127.0.0.1:${HTTP[$i]}/ready" >/dev/null 2>&1; do
            if ((SECONDS >= deadline)); then
                missing=$((missing + 1))
                break
            fi
            sleep 0.02
        done
    done
    echo "$missing"
}
median_of() { # values, one per line
    sort -g <<<"$1" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
never_ready() { # count
    (($1 == 0)) || printf ' (%s never ready within 600 s: see %s/disco-*.log)' "$1" "$DIR"
}

printf '# %s replicas (%s worker thread(s) each) on a %s, %s instances, %s cores, load average before: %s, %s\n\n' \
    "$REPLICAS" "$WORKERS" "$store_name" "$INSTANCES" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(date -u +%Y-%m-%dT%H:%MZ)"
printf -- '- %s instances loaded in %s s\n' "$INSTANCES" "$loaded_in"
log "cold start of $REPLICAS replicas at once"
assign_ports $(seq 0 $((REPLICAS - 1)))
[[ $STORE == zk ]] && for host in ${ZK_HOSTS//,/ }; do zk_word "$host" srst >/dev/null; done
ticks=$(store_cpu_ticks)
started=$(date +%s.%N)
for i in $(seq 0 $((REPLICAS - 1))); do start_replica "$i"; done
missing=$(wait_ready_all $(seq 0 $((REPLICAS - 1))))
all_ready=$(seconds_since "$started")
start_cpu=$(awk -v t=$(($(store_cpu_ticks) - ticks)) -v hz="$hz" 'BEGIN {printf "%.1f", t / hz}')
printf -- '- all %s replicas cold-started at once, ready after %s s%s; %s used %s CPU-s meanwhile (load average then: %s)\n' \
    "$REPLICAS" "$all_ready" "$(never_ready "$missing")" "$short_name" "$start_cpu" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf -- '- store connections lost (each then listed afresh) by the replicas during it: %s\n' "$(reconnections)"
if [[ $STORE == zk ]]; then
    # A replica counts its connection lost after 4 s without a byte from
    # the server (2/5 of the 10 s session): the servers' slowest answer
    # says whether they took that long.
    for host in ${ZK_HOSTS//,/ }; do
        zk_word "$host" mntr | awk '/^zk_(max|avg)_latency/ {v[$1] = $2} END {printf "%d %.1f\n", v["zk_max_latency"], v["zk_avg_latency"]}'
    done | awk '{ max = max (NR > 1 ? "/" : "") $1; avg = avg (NR > 1 ? "/" : "") $2 }
        END { printf "- ZooKeeper'"'"'s request latency over it, the three servers: max %s ms, mean %s ms\n", max, avg }'
fi
sleep 3
[[ $STORE == zk ]] && heap_watching=$(live_heap_mib)
rss_watching=$(store_rss_mib)
printf -- '- %s resident memory: %s MiB loaded, %s MiB with %s replicas watching (%+.1f MiB per replica); watches %s → %s\n' \
    "$short_name" "$rss_loaded" "$rss_watching" "$REPLICAS" "$(awk -v a="$rss_loaded" -v b="$rss_watching" -v r="$REPLICAS" \
    'BEGIN {print (b - a) / r}')" "$watches_before" "$(watches)"
if [[ $STORE == zk ]]; then
    printf -- '- ZooKeeper live heap after a full collection (3 servers, -Xmx%s each): %s MiB loaded, %s MiB with %s replicas watching (%+.1f MiB per replica)\n' \
        "${ZK_HEAP:-2g}" "$heap_loaded" "$heap_watching" "$REPLICAS" "$(awk -v a="$heap_loaded" -v b="$heap_watching" -v r="$REPLICAS" 'BEGIN {print (b - a) / r}')"
fi
replica_rss=$(rss_kib "${PIDS[0]}")
printf -- '- one replica'"'"'s resident memory: %s MiB\n' $((replica_rss / 1024))

# Watching alone, no writes: 20 s is two of ZooKeeper's watch proofs per
# replica (and two of etcd's progress requests).
ticks=$(store_cpu_ticks)
sleep 20
awk -v t=$(($(store_cpu_ticks) - ticks)) -v hz="$hz" -v r="$REPLICAS" -v s="$short_name" \
    'BEGIN {printf "- %s CPU with %d replicas watching and no writes, over 20 s: %.1f%% of a core, %.2f%% per replica\n", s, r, t / hz / 20 * 100, t / hz / 20 * 100 / r}'

all_dns=()
for i in $(seq 0 $((REPLICAS - 1))); do all_dns+=(--dns "127.0.0.1:${DNS[$i]}"); done
log "registration to the last replica"
ticks=$(store_cpu_ticks)
started=$(date +%s.%N)
# The tool's figures, or the first line of its error.
printf -- '- %s\n' "$("$TOOLS" latency "${store_flag[@]}" --prefix /disco "${all_dns[@]}" --count "$SAMPLES" 2>&1 | sed -n 1p)"
awk -v t=$(($(store_cpu_ticks) - ticks)) -v hz="$hz" -v s="$(seconds_since "$started")" -v n="$SAMPLES" -v r="$REPLICAS" -v name="$short_name" \
    'BEGIN {printf "- %s CPU over those registrations: %.1f%% of a core, %.2f ms of CPU per registration, %.3f ms per registration per replica\n", name, t / hz / s * 100, t / hz / n * 1000, t / hz / n * 1000 / r}'

log "one replica restarted cold while the others run"
kill "${PIDS[0]}" && wait "${PIDS[0]}" 2>/dev/null || true
others=()
for i in $(seq 1 $((REPLICAS - 1))); do others+=(--dns "127.0.0.1:${DNS[$i]}"); done
assign_ports 0
started=$(date +%s.%N)
start_replica 0
"$TOOLS" latency "${store_flag[@]}" --prefix /disco --service restart "${others[@]}" --count 50 >"$DIR/during.txt" 2>&1 &
during=$!
missing=$(wait_ready_all 0)
printf -- '- a replica restarted cold: ready after %s s%s\n' "$(seconds_since "$started")" "$(never_ready "$missing")"
wait "$during" || true
printf -- '- the other %s meanwhile: %s\n' $((REPLICAS - 1)) "$(sed -n 1p "$DIR/during.txt")"
log "$HERD more replicas cold-started at once while the $REPLICAS run"
herd=($(seq "$REPLICAS" $((REPLICAS + HERD - 1))))
assign_ports "${herd[@]}"
herd_ready() {
    local i
    for i in "${herd[@]}"; do curl -sf "http://127.0.0.1:${HTTP[$i]}/ready" >/dev/null 2>&1 || return 1; done
}
running=()
for i in $(seq 0 $((REPLICAS - 1))); do running+=(--dns "127.0.0.1:${DNS[$i]}"); done
ticks=$(store_cpu_ticks)
started=$(date +%s.%N)
for i in "${herd[@]}"; do start_replica "$i"; done
# Rounds of 25 registrations, each to the last of the running replicas,
# for as long as any of the herd is not ready (600 s at most): every
# sample is taken during the herd's listings.
: >"$DIR/herd.txt"
deadline=$((SECONDS + 600))
until herd_ready || ((SECONDS >= deadline)); do
    "$TOOLS" latency "${store_flag[@]}" --prefix /disco --service herd "${running[@]}" --count 25 2>&1 |
        sed -n 1p >>"$DIR/herd.txt"
done
herd_in=$(seconds_since "$started")
missing=$(wait_ready_all "${herd[@]}")
herd_cpu=$(awk -v t=$(($(store_cpu_ticks) - ticks)) -v hz="$hz" 'BEGIN {printf "%.1f", t / hz}')
printf -- '- %s more replicas cold-started at once beside the %s: all ready after %s s%s; %s used %s CPU-s meanwhile\n' \
    "$HERD" "$REPLICAS" "$herd_in" "$(never_ready "$missing")" "$short_name" "$herd_cpu"
p50s=$(sed -n 's/.*p50 \([0-9.]*\) ms.*/\1/p' "$DIR/herd.txt")
p99s=$(sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p' "$DIR/herd.txt")
if [[ -z $p50s ]]; then
    printf -- '- the running replicas meanwhile: no round of registrations finished (%s)\n' "$(sed -n 1p "$DIR/herd.txt")"
else
    printf -- '- the %s running meanwhile, registration to the last of them, %s rounds of 25: median p50 %s ms, the worst p99 %s ms (each round'"'"'s p99: %s)\n' \
        "$REPLICAS" "$(wc -l <<<"$p50s")" "$(median_of "$p50s")" "$(sort -g <<<"$p99s" | tail -1)" "$(paste -sd/ <<<"$p99s")"
fi
for i in "${herd[@]}"; do kill "${PIDS[$i]}" && wait "${PIDS[$i]}" 2>/dev/null || true; done

printf -- '- store connections lost by the replicas over the whole run: %s; load average after: %s\n' \
    "$(reconnections)" "$(cut -d' ' -f1-3 /proc/loadavg)"
if [[ $STORE == zk ]]; then
    # -Xlog:gc lines end in "Pause ... 123.456ms".
    for n in 1 2 3; do
        awk -v n="$n" '/Pause/ && $NF ~ /ms$/ { ms = $NF + 0; c++; if (ms > max) max = ms; if (/Full/) full++ }
            END { printf "- ZooKeeper server %d: %d collections, %d full, the longest pause %.0f ms\n", n, c, full, max }' "$DIR/zk$n-gc.log"
    done
fi
