#!/usr/bin/env bash
# Query throughput and latency of disco (fed from a zone file, and from
# etcd), Knot DNS, NSD and hickory-dns, side by side, on the same records and
# the same query file, each server given the same cores and worker threads.
#
# Usage: bench/throughput.sh [SECONDS]     (default 10 s per measurement)
#   SETS="services large" WORKERS="1 2" SERVERS="knot nsd hickory disco-zone disco-etcd"
#   ROUNDS=3 SPLIT_SERVERS="knot disco-zone" (positive against negative answers; "" skips)
#   REFERENCE=knot (the server the ratios are to; it must come first in SERVERS)
#   Response rate limiting's cost: SERVERS="disco-rrl-off disco-zone disco-rrl-counted"
#   REFERENCE=disco-rrl-off SPLIT_SERVERS="" (disco-zone runs the defaults,
#   loopback exempt; disco-rrl-counted counts every answer in the table at
#   rates no run reaches; disco-rrl-off has every limit at 0)
#
# Prints one table per record set: answers/s and lost queries at saturation,
# the server's CPU use over that run and so its answers per CPU-second, mean
# and p99 latency at saturation and at half the measured maximum rate
# (dnsperf -Q), and each server's figures as ratios to Knot's in the same
# run. Every figure is from the round with the median answers/s.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SECONDS_PER_RUN=${1:-10}
SETS=${SETS:-"services large"}
WORKERS=${WORKERS:-"1 2"}
SERVERS=${SERVERS:-"knot nsd hickory disco-zone disco-etcd"}
ROUNDS=${ROUNDS:-3}
SPLIT_SERVERS=${SPLIT_SERVERS-"knot disco-zone"}
REFERENCE=${REFERENCE:-knot}

ensure_packages dnsperf=dnsperf knotd=knot nsd=nsd dig=dnsutils etcd=etcd-server
# Only what the chosen servers need is built.
[[ " $SERVERS " == *" hickory "* ]] && ensure_hickory
if [[ " $SERVERS " == *" disco-etcd "* ]]; then
    build_disco
else
    build_disco_only
fi

# name:services:instances-per-service
declare -A SET_SHAPE=([services]=1000:3 [large]=10000:10)

start_nsd() {
    mkdir -p "$1/nsd"
    cat >"$1/nsd.conf" <<CONF
server:
    ip-address: 127.0.0.1@$2
    server-count: $3
    username: ""
    zonesdir: "$1"
    database: ""
    pidfile: "$1/nsd/nsd.pid"
    xfrdfile: "$1/nsd/xfrd.state"
    zonelistfile: "$1/nsd/zone.list"
    logfile: "$1/nsd.log"
    verbosity: 0
    # Response rate limiting would drop a benchmark's repeated NXDOMAINs.
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: disco.internal
    zonefile: disco.internal.zone
CONF
    taskset -c "$(cores "$3")" nsd -d -c "$1/nsd.conf" &
}

start_hickory() {
    cat >"$1/hickory.toml" <<CONF
listen_addrs_ipv4 = ["127.0.0.1"]
listen_port = $2
drop_privileges = false
[[zones]]
zone = "disco.internal"
zone_type = "Primary"
file = "disco.internal.zone"
CONF
    taskset -c "$(cores "$3")" "$HICKORY" -q -c "$1/hickory.toml" -z "$1" --workers "$3" >"$1/hickory.log" 2>&1 &
}

start_disco_zone() { # dir port workers [flags...]
    TOKIO_WORKER_THREADS=$3 taskset -c "$(cores "$3")" "$DISCO" serve --listen "127.0.0.1:$2" \
        --zones-dir "$1" --udp-sockets "$3" --http-listen off --upstream off --log-level warn "${@:4}" &
}

start_disco_rrl_off() {
    start_disco_zone "$@" --rrl-responses 0 --rrl-nxdomains 0 --rrl-errors 0
}

# Every answer counted in the table, none limited: no client is exempt, and
# the rates are above what one client reaches (NXDOMAINs, keyed by the
# network alone, would be limited at the default 1000 a second).
start_disco_rrl_counted() {
    start_disco_zone "$@" --rrl-exempt none --rrl-nxdomains 1000000 --rrl-errors 1000000
}

start_disco_etcd() {
    local dir=$1 port=$2 workers=$3
    # etcd runs beside the server but is idle while dnsperf runs.
    start_etcd "$dir"
    "$TOOLS" load --etcd "$ETCD_CLIENT" --prefix /disco --file "$dir/registrations.jsonl"
    mkdir -p "$dir/empty"
    TOKIO_WORKER_THREADS=$workers taskset -c "$(cores "$workers")" "$DISCO" serve --listen "127.0.0.1:$port" \
        --zones-dir "$dir/empty" --udp-sockets "$workers" --http-listen off --upstream off --log-level warn \
        --registry "etcd://$ETCD_CLIENT/disco" &
}

# dnsperf runs on the cores the server does not use when there are any
# (1 worker on 2 cores), else beside it, unpinned.
client() { # workers dnsperf-args...
    local workers=$1
    shift
    if ((workers < $(nproc))); then
        taskset -c "$(seq -s, "$workers" $(($(nproc) - 1)))" dnsperf "$@"
    else
        dnsperf "$@"
    fi
}

run_set() {
    local set=$1 shape=${SET_SHAPE[$1]} dir="$BENCH_SCRATCH/$1"
    rm -rf "$dir" && mkdir -p "$dir"
    python3 "$REPO/bench/gen_records.py" "${shape%%:*}" "${shape##*:}" "$dir"
    local instances=$((${shape%%:*} * ${shape##*:}))
    printf '\n## %s: %s instances (%s services), %s s per run, median of %s rounds, %s\n\n' "$set" \
        "$instances" "${shape%%:*}" "$SECONDS_PER_RUN" "$ROUNDS" "$(date -u +%Y-%m-%dT%H:%MZ)"
    printf '| server | workers | answers/s | lost | server CPU %% | answers per CPU-s | mean ms | p99 ms | × %s | × %s per CPU-s | at ½ max: mean ms | p99 ms | answers/s of each round |\n' \
        "$REFERENCE" "$REFERENCE"
    printf '|---|---|---|---|---|---|---|---|---|---|---|---|---|\n'
    for workers in $WORKERS; do
        # Rounds interleave the servers, so a slow spell of the machine
        # falls on all of them rather than on one.
        declare -A rows=()
        for round in $(seq "$ROUNDS"); do
            for server in $SERVERS; do
                local port
                port=$(free_port)
                rm -rf "$dir/etcd" "$dir/knot-db"
                "start_${server//-/_}" "$dir" "$port" "$workers"
                local pid=$!
                STARTED_PIDS+=("$pid")
                wait_for_dns "$port" svc0.disco.internal
                # Warm up: caches, lazily encoded answers.
                client "$workers" -s 127.0.0.1 -p "$port" -d "$dir/queries.txt" -l 2 -c 20 >/dev/null 2>&1 || true
                read -r qps lost cpu mean p99 < <(measure "$pid" "$port" "$dir/queries.txt" "$SECONDS_PER_RUN" "$workers")
                read -r _ _ _ half_mean half_p99 < <(measure "$pid" "$port" "$dir/queries.txt" "$SECONDS_PER_RUN" \
                    "$workers" $((qps / 2)))
                rows[$server]+="$qps $lost $cpu $mean $p99 $half_mean $half_p99"$'\n'
                cleanup
            done
        done
        local knot_qps="" knot_per_cpu=""
        for server in $SERVERS; do
            read -r qps lost cpu mean p99 half_mean half_p99 runs < <(median_row "${rows[$server]%$'\n'}")
            local per_cpu="-"
            ((cpu > 0)) && per_cpu=$((qps * 100 / cpu))
            if [[ $server == "$REFERENCE" ]]; then
                knot_qps=$qps
                knot_per_cpu=$per_cpu
            fi
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$server" "$workers" "$qps" \
                "$lost" "$cpu" "$per_cpu" "$mean" "$p99" "$(ratio "$qps" "$knot_qps")" \
                "$(ratio "$per_cpu" "$knot_per_cpu")" "$half_mean" "$half_p99" "$runs"
        done
        unset rows
    done
}

# Negative answers against positive ones: each server at 1 worker, once on
# the query file's existing names only, once on its NXDOMAIN and NODATA
# questions only. Answers per CPU-second is the figure: a client-bound
# answers/s would hide a difference.
run_split() { # set
    local dir="$BENCH_SCRATCH/$1"
    grep -v -e '^missing' -e ' TXT$' "$dir/queries.txt" >"$dir/positive.txt"
    grep -e '^missing' -e ' TXT$' "$dir/queries.txt" >"$dir/negative.txt"
    printf '\n### %s: positive against negative answers, 1 worker, median of %s rounds\n\n' "$1" "$ROUNDS"
    printf '| server | positive: answers/s | per CPU-s | negative: answers/s | per CPU-s | negative ÷ positive per CPU-s |\n'
    printf '|---|---|---|---|---|---|\n'
    for server in $SPLIT_SERVERS; do
        declare -A split=()
        for _ in $(seq "$ROUNDS"); do
            local port
            port=$(free_port)
            rm -rf "$dir/etcd" "$dir/knot-db"
            "start_${server//-/_}" "$dir" "$port" 1
            local pid=$!
            STARTED_PIDS+=("$pid")
            wait_for_dns "$port" svc0.disco.internal
            client 1 -s 127.0.0.1 -p "$port" -d "$dir/queries.txt" -l 2 -c 20 >/dev/null 2>&1 || true
            for kind in positive negative; do
                read -r qps _ cpu _ < <(measure "$pid" "$port" "$dir/$kind.txt" "$SECONDS_PER_RUN" 1)
                # Per CPU-second first: the median is taken on it.
                split[$kind]+="$((cpu > 0 ? qps * 100 / cpu : 0)) $qps"$'\n'
            done
            cleanup
        done
        read -r pos_cpu pos_qps _ < <(median_row "${split[positive]%$'\n'}")
        read -r neg_cpu neg_qps _ < <(median_row "${split[negative]%$'\n'}")
        printf '| %s | %s | %s | %s | %s | %s |\n' "$server" "$pos_qps" "$pos_cpu" "$neg_qps" "$neg_cpu" \
            "$(ratio "$neg_cpu" "$pos_cpu")"
        unset split
    done
}

echo "# Query throughput, $(nproc) cores, $(uname -r)"
for set in $SETS; do
    run_set "$set"
    if [[ -n $SPLIT_SERVERS ]]; then run_split "$set"; fi
done
