#!/usr/bin/env bash
# Registration figures with etcd: registration to answer latency, cold start
# and resident memory with many instances, and answers/s under churn.
#
# Usage: bench/registration.sh [INSTANCES]    (default 100000)
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

start_etcd "$dir"
client=$ETCD_CLIENT

# Starts disco on etcd and prints "pid dns_port http_port".
start_disco() {
    local dns http
    dns=$(free_port)
    http=$(free_port)
    "$DISCO" serve --listen "127.0.0.1:$dns" --http-listen "127.0.0.1:$http" --zones-dir "$dir/empty" \
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

"$TOOLS" load --etcd "$client" --prefix /disco --file "$dir/registrations.jsonl"

started=$(date +%s.%N)
read -r pid dns http < <(start_disco)
STARTED_PIDS+=("$pid") # start_disco ran in a subshell
cold=$(wait_ready "$http" "$started")
wait_for_dns "$dns" svc0.disco.internal
sleep 1
full_rss=$(rss_kib "$pid")
echo "- cold start with $INSTANCES instances, process start to /ready: ${cold} s"
echo "- resident memory: empty ${empty_rss} KiB, with $INSTANCES instances ${full_rss} KiB (+$(((full_rss - empty_rss) / 1024)) MiB)"

"$TOOLS" latency --etcd "$client" --prefix /disco --dns "127.0.0.1:$dns" --count 500 | sed 's/^/- /'

# Churn: answers/s with and without 1,000 registrations per second.
queries="$dir/queries.txt"
dnsperf -s 127.0.0.1 -p "$dns" -d "$queries" -l 3 -c 20 -q 100 >/dev/null 2>&1 || true
quiet=$(dnsperf -s 127.0.0.1 -p "$dns" -d "$queries" -l 10 -c 20 -q 100 2>&1 | awk '/Queries per second/ {printf "%d", $4}')
# Churn: answers/s while 1,000 registrations a second go through etcd, first
# under a prefix disco does not watch (the cost of etcd and the generator
# sharing the cores), then under disco's own (that plus disco's updates).
churn_qps() { # prefix
    "$TOOLS" churn --etcd "$client" --prefix "$1" --rate 1000 --seconds 12 >"$dir/churn.txt" &
    local churn_pid=$!
    sleep 1
    dnsperf -s 127.0.0.1 -p "$dns" -d "$queries" -l 10 -c 20 -q 100 2>&1 | awk '/Queries per second/ {printf "%d", $4}'
    wait "$churn_pid"
}
elsewhere=$(churn_qps /elsewhere)
busy=$(churn_qps /disco)
echo "- churn: $(sed 's/^churn: //' "$dir/churn.txt")"
awk -v q="$quiet" -v e="$elsewhere" -v b="$busy" 'BEGIN {
    printf "- answers/s: %d quiet; %d with churn disco does not watch (%.1f%% drop: etcd and the generator on the same cores); %d with churn disco applies (%.1f%% drop; %.1f%% of it disco'"'"'s own)\n",
        q, e, (q - e) * 100 / q, b, (q - b) * 100 / q, (e - b) * 100 / q }'

# One service with 1,000 instances: its SRV answer over TCP.
python3 - "$dir/wide.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(1000):
        value = {"address": f"10.252.{i // 256}.{i % 256}", "port": 8080}
        f.write(json.dumps({"service": "wide", "instance": f"wide-{i}", "value": value}) + "\n")
PY
"$TOOLS" load --etcd "$client" --prefix /disco --file "$dir/wide.jsonl" 2>/dev/null
sleep 1
"$TOOLS" tcp-srv --dns "127.0.0.1:$dns" --name wide.disco.internal --count 500 | sed 's/^/- /'
