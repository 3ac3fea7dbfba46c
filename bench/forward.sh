#!/usr/bin/env bash
# Forwarding: disco against unbound and dnsmasq, each forwarding to the same
# Knot DNS upstream on loopback.
#
# Usage: bench/forward.sh [SECONDS]     (default 10 s per measurement)
#   ROUNDS=3 NAMES=2000 COLD_NAMES=200000 COLD_RATE=10000
#   FORWARDERS="disco unbound dnsmasq"
#   DISCO_REF=PATH: another build of disco (e.g. main's, before a change),
#   run as forwarder "disco-ref" when FORWARDERS names it
#
# Each forwarder is pinned to core 0 with one worker (disco: one UDP socket
# and one runtime thread); Knot and dnsperf share the other cores. Two
# measurements per round, the forwarders taking turns so that a slow spell
# of the machine falls on all of them:
# - cache hits: NAMES names, each asked once to warm the cache, then
#   dnsperf at saturation over them (answers/s, the forwarder's CPU and so
#   answers per CPU-second, mean and p99 latency);
# - cold misses: a fresh forwarder, and a query file of COLD_NAMES names
#   never asked before (a wildcard in Knot's zone answers them), sent once:
#   answers/s, p99 latency and queries lost, every query a miss; then, on
#   another fresh forwarder, COLD_RATE (default 10000) cold misses a
#   second, for p99 at the same load for all.
# Figures are the medians of ROUNDS rounds, with ratios to unbound and
# dnsmasq in the same run.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SECONDS_PER_RUN=${1:-10}
ROUNDS=${ROUNDS:-3}
NAMES=${NAMES:-2000}
COLD_NAMES=${COLD_NAMES:-200000}
FORWARDERS=${FORWARDERS:-"disco unbound dnsmasq"}
COLD_RATE=${COLD_RATE:-10000}

ensure_packages dnsperf=dnsperf knotd=knot unbound=unbound dnsmasq=dnsmasq-base dig=dnsutils
build_disco_only

DIR="$BENCH_SCRATCH/forward"
rm -rf "$DIR" && mkdir -p "$DIR"
OTHER_CORES=$(seq -s, 1 $(($(nproc) - 1)))

# The upstream's zone (not under test., which unbound answers itself):
# NAMES names with long TTLs (hits stay hits), and a
# wildcard for the cold names.
{
    echo '$TTL 3600'
    echo '@ IN SOA ns hostmaster 1 3600 600 86400 60'
    echo '@ IN NS ns'
    echo 'ns IN A 127.0.0.1'
    for i in $(seq 0 $((NAMES - 1))); do echo "h$i IN A 10.$((i / 65536 % 256)).$((i / 256 % 256)).$((i % 256))"; done
    echo '*.cold IN A 192.0.2.9'
} >"$DIR/fwd.bench.zone"
for i in $(seq 0 $((NAMES - 1))); do echo "h$i.fwd.bench A"; done >"$DIR/hits.txt"
awk -v n="$COLD_NAMES" 'BEGIN { for (i = 0; i < n; i++) printf "u%d.cold.fwd.bench A\n", i }' >"$DIR/cold.txt"
awk -v n="$COLD_NAMES" 'BEGIN { for (i = 0; i < n; i++) printf "r%d.cold.fwd.bench A\n", i }' >"$DIR/cold-rate.txt"

KNOT_PORT=$(free_port)
cat >"$DIR/knot.conf" <<CONF
server:
    listen: 127.0.0.1@$KNOT_PORT
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
    rundir: $DIR
database:
    storage: $DIR/knot-db
template:
  - id: default
    storage: $DIR
    journal-content: none
    zonefile-sync: -1
zone:
  - domain: fwd.bench
    file: $DIR/fwd.bench.zone
log:
  - target: stderr
    any: error
CONF
taskset -c "$OTHER_CORES" knotd -c "$DIR/knot.conf" 2>"$DIR/knot.log" &
KNOT_PID=$!
wait_for_dns "$KNOT_PORT" h0.fwd.bench

start_disco() { # port
    TOKIO_WORKER_THREADS=1 taskset -c 0 "$DISCO" serve --listen "127.0.0.1:$1" --zones-dir "$DIR/empty" \
        --udp-sockets 1 --http-listen off --upstream "127.0.0.1:$KNOT_PORT" --log-level warn &
}

start_disco-ref() { # port
    DISCO=$DISCO_REF start_disco "$1"
}

start_unbound() { # port
    cat >"$DIR/unbound.conf" <<CONF
server:
    interface: 127.0.0.1@$1
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "$DIR"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 0
    num-threads: 1
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    module-config: "iterator"
    msg-cache-size: 64m
    rrset-cache-size: 128m
    domain-insecure: "fwd.bench."
remote-control:
    control-enable: no
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@$KNOT_PORT
CONF
    taskset -c 0 unbound -d -c "$DIR/unbound.conf" &
}

start_dnsmasq() { # port
    taskset -c 0 dnsmasq --keep-in-foreground --no-resolv --no-hosts --log-facility=- \
        --listen-address=127.0.0.1 --bind-interfaces --port="$1" --server="127.0.0.1#$KNOT_PORT" \
        --cache-size=10000 --dns-forward-max=1000 2>/dev/null &
}
mkdir -p "$DIR/empty"

# dnsperf on the cores the forwarder does not use.
client() { # workers dnsperf-args...
    shift
    taskset -c "$OTHER_CORES" dnsperf "$@"
}

# One pass over the cold names: answers/s, p99 (ms) and queries lost, from
# the same run. A lost query counts as the 3 s dnsperf waited for it (it is
# in the slowest percent, not the fastest). With RATE, dnsperf sends at most
# that many queries a second (open loop: p99 at an equal load for all).
cold_run() { # port [rate]
    local trace="$DIR/cold-latencies.txt" names="$DIR/cold.txt" rate=()
    if [[ -n ${2:-} ]]; then
        rate=(-Q "$2")
        names="$DIR/cold-rate.txt"
    fi
    client 1 -s 127.0.0.1 -p "$1" -d "$names" -n 1 -l "$SECONDS_PER_RUN" -c 20 -q 500 -t 3 "${rate[@]}" -v \
        >"$trace" 2>/dev/null || true
    local qps lost
    qps=$(awk '/Queries per second/ {printf "%d", $4}' "$trace")
    lost=$(awk '/Queries lost/ {print $3}' "$trace")
    awk '/^> / {print ($2 == "T" ? 3 : $NF)}' "$trace" | sort -g | awk -v qps="$qps" -v lost="${lost:-0}" '
        { v[NR] = $1 }
        END { if (NR == 0) { print qps, "-", lost; exit }
              i = int(NR * 0.99); if (i < 1) i = 1
              printf "%s %.3f %s\n", qps, v[i] * 1000, lost }'
    rm -f "$trace"
}

# cold_run on a fresh forwarder SERVER (nothing cached), stopped after;
# sets COLD_ROW to its "answers/s p99 lost".
fresh_cold_run() { # server [rate]
    local port pid
    port=$(free_port)
    "start_$1" "$port"
    pid=$!
    STARTED_PIDS+=("$pid")
    wait_for_dns "$port" h0.fwd.bench
    COLD_ROW=$(cold_run "$port" ${2:+"$2"})
    kill "$pid" && wait "$pid" 2>/dev/null || true
    STARTED_PIDS=("$KNOT_PID")
}

declare -A hits=() colds=() rated=()
for round in $(seq "$ROUNDS"); do
    for server in $FORWARDERS; do
        log "round $round: $server"
        port=$(free_port)
        "start_$server" "$port"
        pid=$!
        STARTED_PIDS+=("$pid")
        wait_for_dns "$port" h0.fwd.bench
        # Warm the cache: every name once, then a short run.
        client 1 -s 127.0.0.1 -p "$port" -d "$DIR/hits.txt" -n 1 -c 1 -q 50 >/dev/null 2>&1 || true
        client 1 -s 127.0.0.1 -p "$port" -d "$DIR/hits.txt" -l 2 -c 20 >/dev/null 2>&1 || true
        read -r qps lost cpu mean p99 < <(measure "$pid" "$port" "$DIR/hits.txt" "$SECONDS_PER_RUN" 1)
        hits[$server]+="$qps $lost $cpu $mean $p99"$'\n'
        kill "$pid" && wait "$pid" 2>/dev/null || true
        STARTED_PIDS=("$KNOT_PID")

        fresh_cold_run "$server"
        colds[$server]+="$COLD_ROW"$'\n'
        fresh_cold_run "$server" "$COLD_RATE"
        rated[$server]+="$COLD_ROW"$'\n'
    done
done

printf '# Forwarding, %s cores, %s, load average before: %s\n' "$(nproc)" "$(uname -r)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '\n## Cache hits: %s names, %s s per run, median of %s rounds, %s\n\n' "$NAMES" "$SECONDS_PER_RUN" \
    "$ROUNDS" "$(date -u +%Y-%m-%dT%H:%MZ)"
printf '| forwarder | answers/s | lost | CPU %% | answers per CPU-s | mean ms | p99 ms | × unbound | × dnsmasq | × unbound per CPU-s | × dnsmasq per CPU-s | answers/s of each round |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|---|\n'
declare -A qps_of=() cpu_of=() hit_rows=()
for server in $FORWARDERS; do
    read -r qps lost cpu mean p99 runs < <(median_row "${hits[$server]%$'\n'}")
    qps_of[$server]=$qps
    cpu_of[$server]=$(((cpu > 0) ? qps * 100 / cpu : 0))
    hit_rows[$server]="$qps|$lost|$cpu|${cpu_of[$server]}|$mean|$p99|$runs"
done
for server in $FORWARDERS; do
    IFS='|' read -r qps lost cpu per_cpu mean p99 runs <<<"${hit_rows[$server]}"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$server" "$qps" "$lost" "$cpu" \
        "$per_cpu" "$mean" "$p99" "$(ratio "$qps" "${qps_of[unbound]:-}")" "$(ratio "$qps" "${qps_of[dnsmasq]:-}")" \
        "$(ratio "$per_cpu" "${cpu_of[unbound]:-}")" "$(ratio "$per_cpu" "${cpu_of[dnsmasq]:-}")" "$runs"
done

printf '\n## Cold misses: %s names never asked, one pass (at most %s s), median of %s rounds\n\n' "$COLD_NAMES" \
    "$SECONDS_PER_RUN" "$ROUNDS"
printf 'dnsperf keeps 500 queries outstanding: a lost query holds its place for\n'
printf '3 s (and counts as 3 s in p99), so a forwarder that drops queries answers\n'
printf 'the rest with fewer ahead of them. At %s queries/s (open loop) every\n' "$COLD_RATE"
printf 'forwarder gets the same load.\n\n'
printf '| forwarder | answers/s | p99 ms | lost | × unbound answers/s | p99 at %s/s | lost at %s/s | answers/s of each round |\n' \
    "$COLD_RATE" "$COLD_RATE"
printf '|---|---|---|---|---|---|---|---|\n'
declare -A cold_qps=()
for server in $FORWARDERS; do
    read -r qps p99 lost runs < <(median_row "${colds[$server]%$'\n'}")
    cold_qps[$server]="$qps $p99 $lost $runs"
done
read -r unbound_cold _ < <(echo "${cold_qps[unbound]:-- -}")
for server in $FORWARDERS; do
    read -r qps p99 lost runs <<<"${cold_qps[$server]}"
    # The rate run's median p99 (its answers/s is the rate).
    read -r _ rate_p99 rate_lost < <(sort -g -k2,2 <<<"${rated[$server]%$'\n'}" | sed -n "$(((ROUNDS + 1) / 2))p")
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$server" "$qps" "$p99" "$lost" "$(ratio "$qps" "$unbound_cold")" \
        "$rate_p99" "$rate_lost" "$runs"
done
