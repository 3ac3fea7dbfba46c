#!/usr/bin/env bash
# Query throughput and latency of disco (fed from a zone file, and from
# etcd), Knot DNS, NSD and hickory-dns, side by side, on the same records and
# the same query file, each server given the same cores and worker threads.
#
# Usage: bench/throughput.sh [SECONDS]     (default 10 s per measurement)
#   SETS="services large" WORKERS="1 2" SERVERS="knot nsd hickory disco-zone disco-etcd"
#
# Prints one table per record set: answers/s and lost queries at saturation,
# mean and p99 latency at saturation and at half the measured maximum rate
# (dnsperf -Q), and each server's throughput as a ratio to Knot's in the
# same run.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SECONDS_PER_RUN=${1:-10}
SETS=${SETS:-"services large"}
WORKERS=${WORKERS:-"1 2"}
SERVERS=${SERVERS:-"knot nsd hickory disco-zone disco-etcd"}

ensure_packages dnsperf=dnsperf knotd=knot nsd=nsd dig=dnsutils etcd=etcd-server
ensure_hickory
build_disco

# name:services:instances-per-service
declare -A SET_SHAPE=([services]=1000:3 [large]=10000:10)

start_knot() { # dir port workers
    cat >"$1/knot.conf" <<CONF
server:
    listen: 127.0.0.1@$2
    udp-workers: $3
    tcp-workers: 1
    background-workers: 1
    rundir: $1
database:
    storage: $1/knot-db
template:
  - id: default
    storage: $1
    journal-content: none
    zonefile-sync: -1
zone:
  - domain: disco.internal
    file: $1/disco.internal.zone
log:
  - target: stderr
    any: error
CONF
    taskset -c "$(cores "$3")" knotd -c "$1/knot.conf" 2>"$1/knot.log" &
}

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

start_disco_zone() {
    TOKIO_WORKER_THREADS=$3 taskset -c "$(cores "$3")" "$DISCO" serve --listen "127.0.0.1:$2" \
        --zones-dir "$1" --udp-sockets "$3" --http-listen off --upstream off --log-level warn &
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

# dnsperf at saturation, then with every query's latency, then at a fixed rate.
# Prints: qps lost mean_ms p99_ms
measure() { # port queries seconds [max_qps]
    local port=$1 queries=$2 seconds=$3 limit=${4:-}
    local args=(-s 127.0.0.1 -p "$port" -d "$queries" -l "$seconds" -c 20 -q 100 -t 2)
    [[ -n $limit ]] && args+=(-Q "$limit")
    local summary
    summary=$(dnsperf "${args[@]}" 2>&1)
    local qps lost
    qps=$(awk '/Queries per second/ {printf "%d", $4}' <<<"$summary")
    lost=$(awk '/Queries lost/ {print $3}' <<<"$summary")
    # Per-query latencies (-v) for the mean and p99; a shorter run, since
    # printing every query costs dnsperf time.
    local latencies
    latencies=$(dnsperf "${args[@]}" -l "$(((seconds + 1) / 2))" -v 2>/dev/null |
        awk '/^> / {print $NF}' | sort -g)
    awk -v qps="$qps" -v lost="$lost" '{ v[NR] = $1; sum += $1 }
        END { if (NR == 0) { print qps, lost, "-", "-"; exit }
              i = int(NR * 0.99); if (i < 1) i = 1
              printf "%s %s %.3f %.3f\n", qps, lost, sum / NR * 1000, v[i] * 1000 }' <<<"$latencies"
}

run_set() {
    local set=$1 shape=${SET_SHAPE[$1]} dir="$BENCH_SCRATCH/$1"
    rm -rf "$dir" && mkdir -p "$dir"
    python3 "$REPO/bench/gen_records.py" "${shape%%:*}" "${shape##*:}" "$dir"
    local instances=$((${shape%%:*} * ${shape##*:}))
    printf '\n## %s: %s instances (%s services), %s s per run, %s\n\n' "$set" "$instances" "${shape%%:*}" \
        "$SECONDS_PER_RUN" "$(date -u +%Y-%m-%dT%H:%MZ)"
    printf '| server | workers | answers/s | lost | mean ms | p99 ms | × Knot | at ½ max: mean ms | p99 ms |\n'
    printf '|---|---|---|---|---|---|---|---|---|\n'
    for workers in $WORKERS; do
        local knot_qps=""
        for server in $SERVERS; do
            local port
            port=$(free_port)
            rm -rf "$dir/etcd" "$dir/knot-db"
            "start_${server//-/_}" "$dir" "$port" "$workers"
            STARTED_PIDS+=($!)
            wait_for_dns "$port" svc0.disco.internal
            # Warm up: caches, lazily encoded answers.
            dnsperf -s 127.0.0.1 -p "$port" -d "$dir/queries.txt" -l 2 -c 20 >/dev/null 2>&1 || true
            read -r qps lost mean p99 < <(measure "$port" "$dir/queries.txt" "$SECONDS_PER_RUN")
            read -r _ _ half_mean half_p99 < <(measure "$port" "$dir/queries.txt" "$SECONDS_PER_RUN" $((qps / 2)))
            [[ $server == knot ]] && knot_qps=$qps
            local ratio="-"
            [[ -n $knot_qps && $knot_qps -gt 0 ]] && ratio=$(awk -v a="$qps" -v b="$knot_qps" 'BEGIN {printf "%.2f", a / b}')
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$server" "$workers" "$qps" "$lost" \
                "$mean" "$p99" "$ratio" "$half_mean" "$half_p99"
            cleanup
        done
    done
}

echo "# Query throughput, $(nproc) cores, $(uname -r)"
for set in $SETS; do
    run_set "$set"
done
