#!/usr/bin/env bash
# A cold start at scale, one build against another: a store loaded once
# with SIZE instances (gen_records.py's `realistic` set) and kept in the
# scratch directory between invocations, then ROUNDS starts of each build
# in turn, each from process start to /ready 200.
#
# Usage: bench/cold_start.sh [ROUNDS]   (default 3)
#   STORE=etcd|zk SIZE=1000000 DISCO_REF=path/to/other/disco PERF=1
#   QUERY_SECONDS=8 QUERIES=path/to/dnsperf/file CHURN_RATE=5000
#   SIZE_REF=100000
#
# Per start: wall seconds, disco's CPU-seconds, the store's CPU-seconds
# over the same time, resident memory once it settles (lib.sh's
# `settled_rss`). PERF=1 records each start of the build under test with
# `perf record --call-graph dwarf` into the scratch directory. With
# QUERY_SECONDS, each started server then answers the query file once
# (every name's first query), then dnsperf's usual mix (or the file
# QUERIES) for that long: answers/s and answers per CPU-second, the builds
# side by side on the same data. With CHURN_RATE, each started server then
# takes 14 s of that many registrations and withdrawals a second while
# `disco-bench latency` times 300 registrations to their answer (p50, p99),
# as scale.sh does. With SIZE_REF, the store also holds that many
# instances under a prefix of their own, and each round also starts the
# build under test on them: the two sizes in turn on one store, and at the
# end the medians of each and their ratio (issue 20's "a million at 0.95×
# of 100,000", without scale.sh's minutes between the two sizes).
# disco runs as bench/scale.sh runs it: one
# worker on DISCO_CORES, the store on STORE_CORES (registration_lib.sh's
# split).
# etcd keeps its data between invocations; ZooKeeper is loaded afresh.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registration_lib.sh"

ROUNDS=${1:-3}
STORE=${STORE:-etcd}
SIZE=${SIZE:-1000000}
PREFIX="/scale$SIZE"
DIR="$BENCH_SCRATCH/cold_start/$STORE$SIZE"
mkdir -p "$DIR/empty"
ensure_packages etcd=etcd-server /usr/share/zookeeper/bin/zkServer.sh=zookeeper
build_disco

case $STORE in
etcd)
    # Fixed ports: etcd's data directory remembers its member's address.
    ETCD_CLIENT=127.0.0.1:23790
    taskset -c "$STORE_CORES" etcd --name bench --data-dir "$DIR/etcd" \
        --listen-client-urls "http://$ETCD_CLIENT" --advertise-client-urls "http://$ETCD_CLIENT" \
        --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
        --initial-cluster bench=http://127.0.0.1:23800 --quota-backend-bytes 4294967296 \
        --log-level error >"$DIR/etcd.log" 2>&1 &
    STARTED_PIDS+=($!)
    for _ in $(seq 100); do
        curl -sf "http://$ETCD_CLIENT/health" >/dev/null 2>&1 && break
        sleep 0.1
    done
    store_flag=(--etcd "$ETCD_CLIENT")
    registry="etcd://$ETCD_CLIENT$PREFIX"
    ;;
zk)
    rm -rf "$DIR/zk" "$DIR/loaded" "$DIR"/ref*/loaded
    ZK_CORES=$STORE_CORES start_zookeeper "$DIR"
    store_flag=(--zk "$ZK_CLIENT")
    registry="zk://$ZK_CLIENT$PREFIX"
    ;;
*)
    log "STORE is etcd or zk"
    exit 64
    ;;
esac
store_pid=${STARTED_PIDS[0]}

# SIZE instances (and their query file) into DIR, under /scaleSIZE in the
# store, unless DIR says they are there.
load_once() { # size dir
    [[ -f $2/loaded ]] && return
    log "loading $1 instances into $STORE (once)"
    mkdir -p "$2"
    python3 "$REPO/bench/gen_records.py" $(($1 / 10)) 10 "$2" 100000 realistic
    on_store_cores "$TOOLS" load "${store_flag[@]}" --prefix "/scale$1" \
        --file "$2/registrations.jsonl" 2>>"$DIR/load.log"
    touch "$2/loaded"
}
load_once "$SIZE" "$DIR"
SIZE_REF=${SIZE_REF:-}
REF_DIR="$DIR/ref$SIZE_REF"
[[ -n $SIZE_REF ]] && load_once "$SIZE_REF" "$REF_DIR"

QUERY_SECONDS=${QUERY_SECONDS:-0}
CHURN_RATE=${CHURN_RATE:-0}

# lib.sh's `measure` runs dnsperf through this, on the store's cores.
client() { # workers dnsperf-args...
    shift
    on_store_cores dnsperf "$@"
}

# Answers/s over QUERY_SECONDS of the query file, and answers per
# CPU-second of the server's (lib.sh's `measure`, as scale.sh takes them),
# once every name in the file was asked.
answer_rate() { # pid port
    local queries=${QUERIES:-$query_file} qps cpu
    client 1 -s 127.0.0.1 -p "$2" -d "$queries" -c 20 -q 100 -t 2 -n 1 >/dev/null 2>&1 || true
    read -r qps _ cpu _ < <(measure "$1" "$2" "$queries" "$QUERY_SECONDS" 1)
    echo "$qps" $(((cpu > 0) ? qps * 100 / cpu : 0))
}

# Registration to answer while CHURN_RATE changes a second go through the
# store: p50 and p99 in ms of 300 registrations.
churn_latency() { # port
    local churn_pid latency
    on_store_cores "$TOOLS" churn "${store_flag[@]}" --prefix "$PREFIX" --rate "$CHURN_RATE" --seconds 14 \
        >"$DIR/churn.txt" 2>&1 &
    churn_pid=$!
    sleep 2
    latency=$(on_store_cores "$TOOLS" latency "${store_flag[@]}" --prefix "$PREFIX" --dns "127.0.0.1:$1" --count 300 2>&1)
    wait "$churn_pid"
    sed -n 's/.*p50 \([0-9.]*\) ms.*p99 \([0-9.]*\) ms.*/\1 \2/p' <<<"$latency"
}

seconds_between() { awk -v a="$1" -v b="$2" -v hz="${3:-1}" 'BEGIN {printf "%.2f", (b - a) / hz}'; }

cold_start() { # label binary perf_output
    local dns http started store_before pid wall cpu store_cpu hz
    dns=$(free_port)
    http=$(free_port)
    hz=$(getconf CLK_TCK)
    local perf=()
    [[ -n $3 ]] && perf=(perf record -F 250 --call-graph dwarf,32768 -o "$3" --)
    store_before=$(cpu_ticks "$store_pid")
    started=$(date +%s.%N)
    TOKIO_WORKER_THREADS=1 taskset -c "$DISCO_CORES" "${perf[@]}" "$2" serve --udp-sockets 1 \
        --listen "127.0.0.1:$dns" --http-listen "127.0.0.1:$http" --zones-dir "$DIR/empty" \
        --upstream off --log-level warn --registry "$registry" 2>>"$DIR/disco.log" &
    pid=$!
    for _ in $(seq 30000); do
        curl -sf "http://127.0.0.1:$http/ready" >/dev/null 2>&1 && break
        sleep 0.02
    done
    wall=$(seconds_between "$started" "$(date +%s.%N)")
    cpu=$(seconds_between 0 "$(cpu_ticks "$pid")" "$hz")
    store_cpu=$(seconds_between "$store_before" "$(cpu_ticks "$store_pid")" "$hz")
    local rss answers=() registrations=()
    rss=$(($(settled_rss "$pid") / 1024))
    ((QUERY_SECONDS > 0)) && read -ra answers < <(answer_rate "$pid" "$dns")
    ((CHURN_RATE > 0)) && read -ra registrations < <(churn_latency "$dns")
    printf '| %s | %s | %s | %s | %s |%s%s\n' "$1" "$wall" "$cpu" "$store_cpu" "$rss" \
        "${answers[*]:+ ${answers[0]} | ${answers[1]} |}" \
        "${registrations[*]:+ ${registrations[0]} | ${registrations[1]} |}"
    ((QUERY_SECONDS > 0)) && echo "$1|${answers[0]}|${answers[1]}" >>"$DIR/answers.txt"
    kill -INT "$pid"
    wait "$pid" 2>/dev/null || true
}

printf '\n%s, %s instances, %s rounds\n\n' "$STORE" "$SIZE" "$ROUNDS"
header="| build | wall to /ready (s) | disco CPU-s | $STORE CPU-s | RSS (MiB) |"
if ((QUERY_SECONDS > 0)); then
    ensure_packages dnsperf=dnsperf
    header+=" answers/s | per CPU-s |"
fi
((CHURN_RATE > 0)) && header+=" registration to answer p50 ms | p99 ms |"
printf '%s\n%s\n' "$header" "$(sed 's/[^|][^|]*|/---|/g' <<<"$header")"
query_file=$DIR/queries.txt
: >"$DIR/answers.txt"
for round in $(seq "$ROUNDS"); do
    cold_start "disco" "$DISCO" "${PERF:+$DIR/perf$round.data}"
    [[ -n ${DISCO_REF:-} ]] && cold_start "reference" "$DISCO_REF" ""
    if [[ -n $SIZE_REF ]]; then
        registry=${registry%"$PREFIX"}/scale$SIZE_REF PREFIX=/scale$SIZE_REF query_file=$REF_DIR/queries.txt \
            cold_start "disco, $SIZE_REF" "$DISCO" ""
    fi
done
if [[ -n $SIZE_REF ]] && ((QUERY_SECONDS > 0)); then
    # Column C of the rows labelled L, for registration_lib.sh's `median`.
    column_of() { # label column
        awk -F'|' -v l="$1" -v c="$2" '$1 == l {print $c}' "$DIR/answers.txt"
    }
    awk -v a="$(median "$(column_of disco 2)")" -v b="$(median "$(column_of "disco, $SIZE_REF" 2)")" \
        -v c="$(median "$(column_of disco 3)")" -v d="$(median "$(column_of "disco, $SIZE_REF" 3)")" \
        -v n="$SIZE" -v r="$SIZE_REF" \
        'BEGIN { printf "\nmedians: %d instances %d answers/s, %d per CPU-s; %d instances %d answers/s, %d per CPU-s; ratio %.2f, per CPU-s %.2f\n", n, a, c, r, b, d, a / b, c / d }'
fi
