#!/usr/bin/env bash
# Registration figures with etcd: registration to answer latency, cold start
# and resident memory with many instances, and answers/s under churn.
#
# Usage: bench/registration.sh [INSTANCES]    (default 100000)
#   ROUNDS=3: rounds of the churn measurement (medians are printed)
#
# A ZooKeeper or registrar script adds its figures the same way: start the
# store, load bench/gen_records.py's registrations through it, and reuse
# measure_cold_start / measure_churn below with its own loader.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

INSTANCES=${1:-100000}
ensure_packages dnsperf=dnsperf dig=dnsutils etcd=etcd-server
build_disco

dir="$BENCH_SCRATCH/registration"
rm -rf "$dir" && mkdir -p "$dir/empty"
python3 "$REPO/bench/gen_records.py" $((INSTANCES / 10)) 10 "$dir" 50000

# disco gets the first half of the cores; etcd, the load and churn
# generators and dnsperf get the rest. Here etcd runs beside disco; in
# production it runs on other machines, and the figures should be disco's.
if (($(nproc) > 1)); then
    DISCO_CORES=$(seq -s, 0 $(($(nproc) / 2 - 1)))
    ETCD_CORES=$(seq -s, $(($(nproc) / 2)) $(($(nproc) - 1)))
else
    DISCO_CORES=0 ETCD_CORES=0
fi
others() { taskset -c "$ETCD_CORES" "$@"; }

start_etcd "$dir"
client=$ETCD_CLIENT

# Starts disco on etcd and prints "pid dns_port http_port".
start_disco() {
    local dns http
    dns=$(free_port)
    http=$(free_port)
    local workers=$(($(nproc) > 1 ? $(nproc) / 2 : 1))
    TOKIO_WORKER_THREADS=$workers taskset -c "$DISCO_CORES" "$DISCO" serve --udp-sockets "$workers" \
        --listen "127.0.0.1:$dns" --http-listen "127.0.0.1:$http" --zones-dir "$dir/empty" \
        --upstream off --log-level warn --registry "etcd://$client/disco" 2>>"$dir/disco.log" &
    echo "$! $dns $http"
}

# Seconds from process start to /ready answering 200.
wait_ready() {
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

echo "# Registration figures: $INSTANCES instances, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"

# Memory of an empty server, for the baseline.
started=$(date +%s.%N)
read -r pid dns http < <(start_disco)
STARTED_PIDS+=("$pid") # start_disco ran in a subshell
wait_ready "$http" "$started" >/dev/null
sleep 0.5
empty_rss=$(rss_kib "$pid")
kill "$pid"; wait "$pid" 2>/dev/null || true

others "$TOOLS" load --etcd "$client" --prefix /disco --file "$dir/registrations.jsonl"

started=$(date +%s.%N)
read -r pid dns http < <(start_disco)
STARTED_PIDS+=("$pid") # start_disco ran in a subshell
cold=$(wait_ready "$http" "$started")
wait_for_dns "$dns" svc0.disco.internal
sleep 1
full_rss=$(rss_kib "$pid")
echo "- cold start with $INSTANCES instances, process start to /ready: ${cold} s"
echo "- resident memory: empty ${empty_rss} KiB, with $INSTANCES instances ${full_rss} KiB (+$(((full_rss - empty_rss) / 1024)) MiB)"

others "$TOOLS" latency --etcd "$client" --prefix /disco --dns "127.0.0.1:$dns" --count 500 | sed 's/^/- /'

# Churn: answers/s with and without 1,000 registrations per second, in
# three kinds of run that take turns for ROUNDS rounds (medians): no churn;
# churn under a prefix disco does not watch (what etcd and the generator
# cost dnsperf, on the cores they share); churn under disco's own prefix
# (that plus disco's own work). Disco's share is the difference of the last
# two; its CPU while it applies the churn is measured after. The
# churn goes into one service ("churn", up to 1,000 instances), the hardest
# case for the updater: every snapshot rebuilds that service whole.
queries="$dir/queries.txt"
others dnsperf -s 127.0.0.1 -p "$dns" -d "$queries" -l 3 -c 20 -q 100 >/dev/null 2>&1 || true
qps_run() { # seconds
    others dnsperf -s 127.0.0.1 -p "$dns" -d "$queries" -l "$1" -c 20 -q 100 2>&1 | awk '/Queries per second/ {printf "%d", $4}'
}
churn_qps() { # prefix
    others "$TOOLS" churn --etcd "$client" --prefix "$1" --rate 1000 --seconds 8 >"$dir/churn.txt" &
    local churn_pid=$!
    sleep 1
    qps_run 6
    wait "$churn_pid"
}
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
quiet_runs="" elsewhere_runs="" busy_runs=""
for _ in $(seq "${ROUNDS:-3}"); do
    quiet_runs+=" $(qps_run 6)"
    elsewhere_runs+=" $(churn_qps /elsewhere)"
    busy_runs+=" $(churn_qps /disco)"
done
echo "- churn: $(sed 's/^churn: //' "$dir/churn.txt") per run, ${ROUNDS:-3} rounds"
awk -v q="$(median "$quiet_runs")" -v e="$(median "$elsewhere_runs")" -v b="$(median "$busy_runs")" \
    -v runs="quiet:$quiet_runs; elsewhere:$elsewhere_runs; disco:$busy_runs" 'BEGIN {
    printf "- answers/s (medians): %d quiet; %d with churn disco does not watch (%.1f%% drop: etcd and the generator share dnsperf'"'"'s cores); %d with churn disco applies (%.1f%% drop); disco'"'"'s own share %.1f%% (of answers/s under the same etcd load)\n",
        q, e, (q - e) * 100 / q, b, (q - b) * 100 / q, (e - b) * 100 / e
    printf "- answers/s of each run: %s\n", runs }'
# Disco's own CPU for the same churn with no queries: the most it can take
# from answering.
others "$TOOLS" churn --etcd "$client" --prefix /disco --rate 1000 --seconds 8 >/dev/null &
churn_pid=$!
sleep 1
ticks=$(cpu_ticks "$pid")
sleep 6
ticks=$(($(cpu_ticks "$pid") - ticks))
wait "$churn_pid"
awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN {
    printf "- disco'"'"'s CPU while applying 1,000 registrations/s (no queries): %.1f%% of one core\n", t / hz / 6 * 100 }'

# One service with 1,000 instances: its SRV answer over TCP.
python3 - "$dir/wide.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(1000):
        value = {"address": f"10.252.{i // 256}.{i % 256}", "port": 8080}
        f.write(json.dumps({"service": "wide", "instance": f"wide-{i}", "value": value}) + "\n")
PY
others "$TOOLS" load --etcd "$client" --prefix /disco --file "$dir/wide.jsonl" 2>/dev/null
sleep 1
others "$TOOLS" tcp-srv --dns "127.0.0.1:$dns" --name wide.disco.internal --count 500 | sed 's/^/- /'
