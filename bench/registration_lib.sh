# Registration measurements for any store. Source it after lib.sh; don't
# run it. A store's script (registration.sh is etcd's) starts the store,
# then defines:
#
#   registry_url         the --registry URL disco is started with
#   load FILE            registers every line of a registrations.jsonl file
#                        (bench/gen_records.py) under the prefix disco watches
#   churn PREFIX SECONDS 1,000 registrations and withdrawals a second under
#                        PREFIX ("watched" or "unwatched"), into one service
#   latency DNS_PORT     prints registration-to-answer figures
#
# and calls the measure_* functions below in order. Every helper runs on
# STORE_CORES through `on_store_cores`; disco on DISCO_CORES.

# disco gets the first half of the cores; the store, the load and churn
# generators and dnsperf get the rest. Here the store runs beside disco; in
# production it runs on other machines, and the figures should be disco's.
if (($(nproc) > 1)); then
    DISCO_CORES=$(seq -s, 0 $(($(nproc) / 2 - 1)))
    STORE_CORES=$(seq -s, $(($(nproc) / 2)) $(($(nproc) - 1)))
else
    DISCO_CORES=0 STORE_CORES=0
fi
ETCD_CORES=$STORE_CORES
on_store_cores() { taskset -c "$STORE_CORES" "$@"; }

# Starts disco on the store and prints "pid dns_port http_port" (it runs in
# a subshell: the caller records the pid).
start_disco() { # dir
    local dns http workers=$(($(nproc) > 1 ? $(nproc) / 2 : 1))
    dns=$(free_port)
    http=$(free_port)
    mkdir -p "$1/empty"
    TOKIO_WORKER_THREADS=$workers taskset -c "$DISCO_CORES" "$DISCO" serve --udp-sockets "$workers" \
        --listen "127.0.0.1:$dns" --http-listen "127.0.0.1:$http" --zones-dir "$1/empty" \
        --upstream off --log-level warn --registry "$(registry_url)" 2>>"$1/disco.log" &
    echo "$! $dns $http"
}

# Seconds from process start to /ready answering 200.
wait_ready() { # http_port started_at
    local http=$1 started=$2
    for _ in $(seq 3000); do
        if curl -sf "http://127.0.0.1:$http/ready" >/dev/null 2>&1; then
            awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN {printf "%.3f", e - s}'
            return 0
        fi
        sleep 0.01
    done
    echo "never ready"
    return 1
}

# Resident memory of an empty server, then INSTANCES loaded from FILE, then
# the cold start and memory of a server listing them. Leaves that server
# running, with DISCO_PID, DNS_PORT and HTTP_PORT set.
measure_cold_start() { # dir file instances
    local dir=$1 file=$2 instances=$3 started empty_rss full_rss cold pid dns http
    started=$(date +%s.%N)
    read -r pid dns http < <(start_disco "$dir")
    STARTED_PIDS+=("$pid")
    wait_ready "$http" "$started" >/dev/null
    sleep 0.5
    empty_rss=$(rss_kib "$pid")
    kill "$pid"
    wait "$pid" 2>/dev/null || true

    load "$file"
    started=$(date +%s.%N)
    read -r pid dns http < <(start_disco "$dir")
    STARTED_PIDS+=("$pid")
    cold=$(wait_ready "$http" "$started")
    wait_for_dns "$dns" svc0.disco.internal
    sleep 1
    full_rss=$(rss_kib "$pid")
    echo "- cold start with $instances instances, process start to /ready: ${cold} s"
    echo "- resident memory: empty ${empty_rss} KiB, with $instances instances ${full_rss} KiB" \
        "(+$(((full_rss - empty_rss) / 1024)) MiB)"
    DISCO_PID=$pid DNS_PORT=$dns HTTP_PORT=$http
}

# Registration to answer, twice: first right after the bulk load and the
# cold start, while the store still digests the load (ZooKeeper snapshots
# it and its JIT warms to the new requests), then once more, settled. Both
# are printed; the settled one is the steady state.
measure_latency() { # dns_port
    latency "$1" | sed 's/^/- right after the load: /'
    latency "$1" | sed 's/^/- settled: /'
}

median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# Churn: answers/s with and without 1,000 registrations per second, in
# three kinds of run that take turns for ROUNDS rounds (medians): no churn;
# churn under a prefix disco does not watch (what the store and the
# generator cost dnsperf, on the cores they share); churn under disco's own
# prefix (that plus disco's own work). Disco's share is the difference of
# the last two; its CPU while it applies the churn is measured after.
measure_churn() { # queries_file
    local queries=$1 quiet_runs="" elsewhere_runs="" busy_runs=""
    qps_run() {
        on_store_cores dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$queries" -l 6 -c 20 -q 100 2>&1 |
            awk '/Queries per second/ {printf "%d", $4}'
    }
    churn_qps() { # watched|unwatched
        churn "$1" 8 >"$BENCH_SCRATCH/churn.txt" &
        local churn_pid=$!
        sleep 1
        qps_run
        wait "$churn_pid"
    }
    on_store_cores dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$queries" -l 3 -c 20 -q 100 >/dev/null 2>&1 || true
    for _ in $(seq "${ROUNDS:-3}"); do
        quiet_runs+=" $(qps_run)"
        elsewhere_runs+=" $(churn_qps unwatched)"
        busy_runs+=" $(churn_qps watched)"
    done
    echo "- churn: $(sed 's/^churn: //' "$BENCH_SCRATCH/churn.txt"), answers counted over 6 s of it, ${ROUNDS:-3} rounds"
    awk -v q="$(median "$quiet_runs")" -v e="$(median "$elsewhere_runs")" -v b="$(median "$busy_runs")" \
        -v runs="quiet:$quiet_runs; unwatched:$elsewhere_runs; watched:$busy_runs" 'BEGIN {
        printf "- answers/s (medians): %d quiet; %d with churn disco does not watch (%.1f%% drop: the store and the generator share dnsperf'"'"'s cores); %d with churn disco applies (%.1f%% drop); disco'"'"'s own share %.1f%% (of answers/s under the same store load)\n",
            q, e, (q - e) * 100 / q, b, (q - b) * 100 / q, (e - b) * 100 / e
        printf "- answers/s of each run: %s\n", runs }'
    # Disco's own CPU for the same churn with no queries: the most it can
    # take from answering.
    churn watched 8 >/dev/null &
    local churn_pid=$! ticks
    sleep 1
    ticks=$(cpu_ticks "$DISCO_PID")
    sleep 6
    ticks=$(($(cpu_ticks "$DISCO_PID") - ticks))
    wait "$churn_pid"
    awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN {
        printf "- disco'"'"'s CPU while applying 1,000 registrations/s (no queries): %.1f%% of one core\n", t / hz / 6 * 100 }'
}

# One service with 1,000 instances: its SRV answer over TCP.
measure_wide_srv() { # dir
    python3 - "$1/wide.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(1000):
        value = {"address": f"10.252.{i // 256}.{i % 256}", "port": 8080}
        f.write(json.dumps({"service": "wide", "instance": f"wide-{i}", "value": value}) + "\n")
PY
    load "$1/wide.jsonl" 2>/dev/null
    sleep 1
    on_store_cores "$TOOLS" tcp-srv --dns "127.0.0.1:$DNS_PORT" --name wide.disco.internal --count 500 | sed 's/^/- /'
}
