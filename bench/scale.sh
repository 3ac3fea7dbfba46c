#!/usr/bin/env bash
# disco at scale: a million instances beside a hundred thousand, in etcd and
# in ZooKeeper, and Knot serving the same records from a zone file.
#
# Usage: bench/scale.sh [SECONDS]     (default 8 s per dnsperf run)
#   SIZES="100000 1000000" STORES="etcd zk" ROUNDS=1 CHURN_RATE=5000
#   BURST=100000 KNOT=1 WARM_ALL=1 COLD_ROUNDS=3
#
# Per store and size (100,000 services × 10 instances for a million; every
# instance with named ports, three tags and three metadata pairs:
# gen_records.py's `realistic` set), in one invocation:
# - cold start: the store loaded, then process start to /ready 200, and
#   resident memory above an empty server (bytes per instance), the median
#   of COLD_ROUNDS starts (each printed);
# - the first query of each name (lazy encoding: a fresh server, the query
#   file asked once) and the same file again, at saturation: answers/s,
#   answers per CPU-second, mean and p99 (lib.sh's `measure`, the usual mix:
#   10% NXDOMAIN, 10% NODATA), each run ROUNDS times (medians);
# - with WARM_ALL=1, every service's A and SRV and every instance's A asked
#   once more, and resident memory again: what encoding every answer when
#   the snapshot is built would cost (the eager alternative);
# - registration to answer while CHURN_RATE registrations and withdrawals a
#   second go through the store (p50, p99; the rate reached is printed);
# - a burst: BURST new instances (10 per service) loaded at once; from the
#   first write to every one of them in disco's snapshot (its
#   disco_instances gauge), from the last write's acknowledgement to the
#   same, and dnsperf's p99 over the burst against its p99 before.
# Knot (KNOT=1) serves each size's zone, pinned as disco is, for answers/s
# and answers per CPU-second side by side.
#
# disco runs with one worker on core 0 (registration_lib.sh's split); the
# store, the load and churn tools and dnsperf share the other cores. The
# heap breakdown is a separate valgrind run (BENCHMARKS.md says how).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registration_lib.sh"

SECONDS_PER_RUN=${1:-8}
SIZES=${SIZES:-"100000 1000000"}
STORES=${STORES:-"etcd zk"}
ROUNDS=${ROUNDS:-1}
CHURN_RATE=${CHURN_RATE:-5000}
BURST=${BURST:-100000}
KNOT=${KNOT:-1}
WARM_ALL=${WARM_ALL:-1}
COLD_ROUNDS=${COLD_ROUNDS:-3}

ensure_packages dnsperf=dnsperf dig=dnsutils etcd=etcd-server knotd=knot \
    /usr/share/zookeeper/bin/zkServer.sh=zookeeper
build_disco
ulimit -n 65536 2>/dev/null || true

DIR="$BENCH_SCRATCH/scale"
rm -rf "$DIR" && mkdir -p "$DIR"
client() { # workers dnsperf-args...
    shift
    on_store_cores dnsperf "$@"
}

# Records, queries and the burst file of each size, written once.
for size in $SIZES; do
    mkdir -p "$DIR/$size"
    python3 "$REPO/bench/gen_records.py" $((size / 10)) 10 "$DIR/$size" 100000 realistic
    # Every positive name once: what "all answers encoded" costs.
    awk -v n=$((size / 10)) 'BEGIN { for (s = 0; s < n; s++) {
        printf "svc%d.disco.internal. A\nsvc%d.disco.internal. SRV\n", s, s
        for (i = 0; i < 10; i++) printf "svc%d-%d.svc%d.disco.internal. A\n", s, i, s } }' >"$DIR/$size/all.txt"
done
python3 - "$DIR/burst.jsonl" "$BURST" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for n in range(int(sys.argv[2])):
        s, i = divmod(n, 10)
        value = {"address": f"10.200.{n // 256 % 256}.{n % 256}", "port": 8080,
                 "ports": {"http": 8080}, "tags": ["burst"], "meta": {"wave": "1"}}
        f.write(json.dumps({"service": f"burst{s}", "instance": f"burst{s}-{i}", "value": value}) + "\n")
PY

# The gauge of instances in disco's snapshot.
instances_in_snapshot() {
    curl -sf "http://127.0.0.1:$HTTP_PORT/metrics" | awk '/^disco_instances / {print $2}'
}

# Resident memory once it stops moving (the allocator settles after a load).
declare -A FIG=()
# Every figure is also printed as it is measured, so that a run cut short
# still says what it measured.
fig() { # store size figure value
    FIG["$1|$2|$3"]=$4
    echo "- $1 $2 $3: $4"
}

# The median of column C of ROWS (a row per line), and each value of it.
median_of() { # column rows
    awk -v c="$1" '{print $c}' <<<"${2%$'\n'}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
each_of() { # column rows
    awk -v c="$1" '{print $c}' <<<"${2%$'\n'}" | paste -sd/
}

# Process start to /ready 200 (at most 600 s): wall seconds, and the CPU
# seconds disco used meanwhile (what a loaded machine does not stretch).
wait_ready_cpu() { # pid http_port started_at
    local pid=$1 http=$2 started=$3
    for _ in $(seq 30000); do
        if curl -sf "http://127.0.0.1:$http/ready" >/dev/null 2>&1; then
            awk -v s="$started" -v e="$(date +%s.%N)" -v t="$(cpu_ticks "$pid")" -v hz="$(getconf CLK_TCK)" \
                'BEGIN {printf "%.2f %.2f\n", e - s, t / hz}'
            return 0
        fi
        sleep 0.02
    done
    echo "never -"
}

for store in $STORES; do
    store_dir="$DIR/$store"
    mkdir -p "$store_dir"
    case $store in
    etcd)
        start_etcd "$store_dir"
        store_flag=(--etcd "$ETCD_CLIENT")
        registry_url() { echo "etcd://$ETCD_CLIENT$PREFIX"; }
        ;;
    zk)
        ZK_CORES=$STORE_CORES start_zookeeper "$store_dir"
        store_flag=(--zk "$ZK_CLIENT")
        registry_url() { echo "zk://$ZK_CLIENT$PREFIX"; }
        ;;
    esac
    tool() { # command args...
        local command=$1
        shift
        on_store_cores "$TOOLS" "$command" "${store_flag[@]}" --prefix "$PREFIX" "$@"
    }
    for size in $SIZES; do
        PREFIX="/scale$size"
        data="$DIR/$size"
        log "$store, $size instances: empty server"
        started=$(date +%s.%N)
        read -r pid dns http < <(start_disco "$store_dir")
        STARTED_PIDS+=("$pid")
        wait_ready_cpu "$pid" "$http" "$started" >/dev/null
        empty=$(settled_rss "$pid")
        kill "$pid" && wait "$pid" 2>/dev/null || true

        log "$store, $size instances: loading"
        load_started=$(date +%s.%N)
        tool load --file "$data/registrations.jsonl" 2>>"$store_dir/load.log"
        fig "$store" "$size" load_s "$(awk -v s="$load_started" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}')"

        # COLD_ROUNDS cold starts, the figures the median of them (sorted
        # on each figure alone); the last server stays for what follows.
        colds=""
        for round in $(seq "$COLD_ROUNDS"); do
            log "$store, $size instances: cold start $round of $COLD_ROUNDS"
            started=$(date +%s.%N)
            read -r DISCO_PID DNS_PORT HTTP_PORT < <(start_disco "$store_dir")
            STARTED_PIDS+=("$DISCO_PID")
            read -r wall cpu_s < <(wait_ready_cpu "$DISCO_PID" "$HTTP_PORT" "$started")
            full=$(settled_rss "$DISCO_PID")
            colds+="$wall $cpu_s $full"$'\n'
            if ((round < COLD_ROUNDS)); then
                kill "$DISCO_PID" && wait "$DISCO_PID" 2>/dev/null || true
            fi
        done
        fig "$store" "$size" cold_s "$(median_of 1 "$colds")"
        fig "$store" "$size" cold_s_each "$(each_of 1 "$colds")"
        fig "$store" "$size" cold_cpu_s "$(median_of 2 "$colds")"
        fig "$store" "$size" cold_cpu_s_each "$(each_of 2 "$colds")"
        full=$(median_of 3 "$colds")
        fig "$store" "$size" rss_mib $(((full - empty) / 1024))
        fig "$store" "$size" bytes_per_instance $(((full - empty) * 1024 / size))

        # The query file once, on a server that has answered nothing: the
        # first query of every name it asks (lazy encoding's cost).
        read -r qps p99 < <(client 1 -s 127.0.0.1 -p "$DNS_PORT" -d "$data/queries.txt" -n 1 -c 20 -q 100 -t 2 -v \
            2>/dev/null | tee "$DIR/first.txt" | awk '/Queries per second/ {printf "%d", $4}'
            awk '/^> / {print $NF}' "$DIR/first.txt" | sort -g | awk '{ v[NR] = $1 }
                END { i = int(NR * 0.99); if (i < 1) i = 1; printf " %.3f\n", v[i] * 1000 }')
        fig "$store" "$size" first_qps "$qps"
        fig "$store" "$size" first_p99 "$p99"
        rows=""
        for _ in $(seq "$ROUNDS"); do
            rows+="$(measure "$DISCO_PID" "$DNS_PORT" "$data/queries.txt" "$SECONDS_PER_RUN" 1)"$'\n'
        done
        read -r qps lost cpu mean p99 runs < <(median_row "${rows%$'\n'}")
        fig "$store" "$size" qps "$qps"
        fig "$store" "$size" cpu "$cpu"
        fig "$store" "$size" per_cpu $(((cpu > 0) ? qps * 100 / cpu : 0))
        fig "$store" "$size" p99 "$p99"
        fig "$store" "$size" runs "$runs"
        fig "$store" "$size" rss_asked_mib $((($(rss_kib "$DISCO_PID") - empty) / 1024))

        # ROUNDS runs of churn, each with its own latency probe; the
        # medians of their p50 and p99 (each printed).
        reg=""
        for round in $(seq "$ROUNDS"); do
            log "$store, $size instances: registration to answer under churn, $round of $ROUNDS"
            tool churn --rate "$CHURN_RATE" --seconds 14 >"$DIR/churn.txt" 2>&1 &
            churn_pid=$!
            sleep 2
            tool latency --dns "127.0.0.1:$DNS_PORT" --count 300 >"$DIR/latency.txt" 2>&1 || true
            wait "$churn_pid" || true
            rate=$(sed -n 's/.*(\([0-9]*\)\/s).*/\1/p' "$DIR/churn.txt")
            p50=$(sed -n 's/.*p50 \([0-9.]*\) ms.*/\1/p' "$DIR/latency.txt")
            p99=$(sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p' "$DIR/latency.txt")
            # A probe not answered within 5 s counts as 5,000 ms.
            grep -q "not answered" "$DIR/latency.txt" && p99=5000
            reg+="${rate:-0} ${p50:-5000} ${p99:-5000}"$'\n'
        done
        fig "$store" "$size" churn "$(median_of 1 "$reg")"
        fig "$store" "$size" reg_p50 "$(median_of 2 "$reg")"
        fig "$store" "$size" reg_p99 "$(median_of 3 "$reg")"
        fig "$store" "$size" reg_p99_each "$(each_of 3 "$reg")"

        log "$store, $size instances: burst of $BURST"
        sleep 2
        before=$(instances_in_snapshot)
        client 1 -s 127.0.0.1 -p "$DNS_PORT" -d "$data/queries.txt" -l 10 -c 20 -q 100 -t 2 -v \
            >"$DIR/burst-queries.txt" 2>/dev/null &
        dnsperf_pid=$!
        sleep 1
        burst_started=$(date +%s.%N)
        tool load --file "$DIR/burst.jsonl" 2>>"$store_dir/load.log"
        burst_acked=$(date +%s.%N)
        burst_done=never
        for _ in $(seq 1200); do
            if (($(instances_in_snapshot) >= before + BURST)); then
                burst_done=$(date +%s.%N)
                break
            fi
            sleep 0.05
        done
        wait "$dnsperf_pid" || true
        if [[ $burst_done != never ]]; then
            fig "$store" "$size" burst_s "$(awk -v s="$burst_started" -v e="$burst_done" 'BEGIN {printf "%.2f", e - s}')"
            fig "$store" "$size" burst_after_ack_ms "$(awk -v s="$burst_acked" -v e="$burst_done" 'BEGIN {printf "%d", (e - s) * 1000}')"
        fi
        dig @127.0.0.1 -p "$DNS_PORT" +short "burst$((BURST / 10 - 1)).disco.internal" A | grep -q . &&
            fig "$store" "$size" burst_dig yes
        fig "$store" "$size" burst_p99 "$(awk '/^> / {print $NF}' "$DIR/burst-queries.txt" | sort -g |
            awk '{ v[NR] = $1 } END { i = int(NR * 0.99); if (i < 1) i = 1; printf "%.3f", v[i] * 1000 }')"

        if ((WARM_ALL)); then
            log "$store, $size instances: every name asked once"
            client 1 -s 127.0.0.1 -p "$DNS_PORT" -d "$data/all.txt" -n 1 -c 20 -q 200 -t 5 >/dev/null 2>&1 || true
            fig "$store" "$size" rss_all_mib $((($(settled_rss "$DISCO_PID") - empty) / 1024))
        fi
        kill "$DISCO_PID" && wait "$DISCO_PID" 2>/dev/null || true
    done
done

if ((KNOT)); then
    for size in $SIZES; do
        log "knot, $size instances"
        port=$(free_port)
        start_knot "$DIR/$size" "$port" 1
        pid=$!
        STARTED_PIDS+=("$pid")
        loaded=$(date +%s.%N)
        wait_for_dns "$port" svc0.disco.internal
        fig knot "$size" cold_s "$(awk -v s="$loaded" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}')"
        fig knot "$size" rss_mib $(($(settled_rss "$pid") / 1024))
        rows=""
        for _ in $(seq "$ROUNDS"); do
            rows+="$(measure "$pid" "$port" "$DIR/$size/queries.txt" "$SECONDS_PER_RUN" 1)"$'\n'
        done
        read -r qps lost cpu mean p99 runs < <(median_row "${rows%$'\n'}")
        fig knot "$size" qps "$qps"
        fig knot "$size" cpu "$cpu"
        fig knot "$size" per_cpu $(((cpu > 0) ? qps * 100 / cpu : 0))
        fig knot "$size" p99 "$p99"
        fig knot "$size" runs "$runs"
        kill "$pid" && wait "$pid" 2>/dev/null || true
    done
fi

# The table: one column per store and size, ratios of the largest size to
# the smallest, and to Knot at the same size.
small=${SIZES%% *}
large=${SIZES##* }
printf '# disco at scale, %s cores, load average before: %s, %s, %s s runs, %s round(s)\n\n' "$(nproc)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)" "$(date -u +%Y-%m-%dT%H:%MZ)" "$SECONDS_PER_RUN" "$ROUNDS"
rowsets="load_s:store loaded (s)
cold_s:cold start to /ready (s)
cold_s_each:cold start to /ready, each start (s)
cold_cpu_s:cold start: disco's CPU-seconds to /ready
cold_cpu_s_each:cold start CPU-seconds, each start
rss_mib:RSS above empty (MiB; Knot: all of it)
bytes_per_instance:bytes per instance
rss_asked_mib:RSS after the query runs (MiB)
rss_all_mib:RSS with every A and SRV answer encoded (MiB)
first_qps:first query of each name: answers/s
first_p99:first query of each name: p99 ms
qps:answers/s
cpu:server CPU %
per_cpu:answers per CPU-s
p99:p99 ms at saturation
runs:answers/s of each round
churn:churn reached (registrations/s)
reg_p50:registration to answer under churn: p50 ms
reg_p99:registration to answer under churn: p99 ms
reg_p99_each:registration to answer, p99 of each round (ms; 5000: not answered within 5 s)
burst_s:burst: first write to all in snapshot (s)
burst_after_ack_ms:burst: last acknowledgement to all in snapshot (ms)
burst_dig:burst: a new service answers
burst_p99:burst: query p99 ms"
columns=()
for store in $STORES knot; do
    [[ $store == knot && $KNOT == 0 ]] && continue
    for size in $SIZES; do columns+=("$store|$size"); done
done
printf '| figure |'
for c in "${columns[@]}"; do printf ' %s %s |' "${c%|*}" "${c#*|}"; done
printf ' %s÷%s (etcd) | %s÷%s (zk) |\n|---|' "$large" "$small" "$large" "$small"
for _ in "${columns[@]}"; do printf -- '---|'; done
printf -- '---|---|\n'
while IFS= read -r entry; do
    key=${entry%%:*}
    label=${entry#*:}
    printf '| %s |' "$label"
    for c in "${columns[@]}"; do printf ' %s |' "${FIG["${c%|*}|${c#*|}|$key"]:--}"; done
    for store in etcd zk; do
        printf ' %s |' "$(ratio "${FIG["$store|$large|$key"]:-}" "${FIG["$store|$small|$key"]:-}")"
    done
    printf '\n'
done <<<"$rowsets"
# Beside Knot only when it ran.
if ((KNOT)); then
    for store in $STORES; do
        printf '\n- %s, %s instances: answers/s %s× Knot, per CPU-second %s× Knot' "$store" "$large" \
            "$(ratio "${FIG["$store|$large|qps"]:-}" "${FIG["knot|$large|qps"]:-}")" \
            "$(ratio "${FIG["$store|$large|per_cpu"]:-}" "${FIG["knot|$large|per_cpu"]:-}")"
    done
fi
printf '\n'
