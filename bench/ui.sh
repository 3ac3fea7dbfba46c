#!/usr/bin/env bash
# The query path must not notice the web page. disco fed from etcd (1,000
# services x 3 instances) under a churn of registrations, measured with
# dnsperf with no HTTP client at all ("closed"), then with STREAMS event
# streams (/v1/changes/stream) open and the page (/ui/) fetched every
# second ("open"), the modes taking turns for ROUNDS rounds; the median
# answers/s of each and their ratio (the target is >= 0.98).
#
# Then, with 10,000 services x 10 instances (100,000) in etcd: the page's
# weight and the time Chromium takes to load and render it, and the
# latency of /v1/services and /v1/services/{name}.
#
# Usage: bench/ui.sh [SECONDS]   (default 10 s per run)
#   ROUNDS=3 STREAMS=8 CHURN=200 (registrations changed per second)
#   PROFILE=release (debug: a quicker build; absolute figures mean little,
#   the open / closed ratio still compares like with like)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
PROFILE=${PROFILE:-release}

SECONDS_PER_RUN=${1:-10}
ROUNDS=${ROUNDS:-3}
STREAMS=${STREAMS:-8}
CHURN=${CHURN:-200}

ensure_packages dnsperf=dnsperf dig=dnsutils etcd=etcd-server curl=curl chromium=chromium
if [[ $PROFILE == release ]]; then
    (cd "$REPO" && cargo build --release --locked --bin disco >/dev/null)
else
    (cd "$REPO" && cargo build --locked --bin disco >/dev/null)
    DISCO="$REPO/target/debug/disco"
fi
[[ -x $TOOLS ]] || (cd "$REPO/bench/tools" && cargo build --release >/dev/null)

# disco on core 0, dnsperf on the others.
start_disco() { # dir port http
    mkdir -p "$1/empty"
    TOKIO_WORKER_THREADS=1 taskset -c 0 "$DISCO" serve --listen "127.0.0.1:$2" --http-listen "127.0.0.1:$3" \
        --zones-dir "$1/empty" --udp-sockets 1 --upstream off --log-level warn \
        --registry "etcd://$ETCD_CLIENT/disco" &
    STARTED_PIDS+=($!)
    DISCO_PID=$!
}

client_cores() { seq -s, 1 $(($(nproc) - 1)); }

# answers/s of one dnsperf run.
qps() { # port queries
    taskset -c "$(client_cores)" dnsperf -s 127.0.0.1 -p "$1" -d "$2" -l "$SECONDS_PER_RUN" -c 20 -q 100 -t 2 2>&1 |
        awk '/Queries per second/ {printf "%d", $4}'
}

median() { tr ' ' '\n' | grep . | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

dir="$BENCH_SCRATCH/ui"
rm -rf "$dir" && mkdir -p "$dir"
python3 "$REPO/bench/gen_records.py" 1000 3 "$dir" >/dev/null
start_etcd "$dir"
"$TOOLS" load --etcd "$ETCD_CLIENT" --prefix /disco --file "$dir/registrations.jsonl" >/dev/null
port=$(free_port)
http=$(free_port)
start_disco "$dir" "$port" "$http"
wait_for_dns "$port" "svc0.disco.internal."
# Warm up.
taskset -c "$(client_cores)" dnsperf -s 127.0.0.1 -p "$port" -d "$dir/queries.txt" -l 2 -c 20 >/dev/null 2>&1 || true

closed=()
open=()
for round in $(seq "$ROUNDS"); do
    for mode in closed open; do
        "$TOOLS" churn --etcd "$ETCD_CLIENT" --prefix /disco --rate "$CHURN" --seconds $((SECONDS_PER_RUN + 2)) >/dev/null &
        churn=$!
        clients=()
        if [[ $mode == open ]]; then
            for _ in $(seq "$STREAMS"); do
                curl -sN "http://127.0.0.1:$http/v1/changes/stream" >/dev/null &
                clients+=($!)
            done
            (for _ in $(seq $((SECONDS_PER_RUN + 2))); do
                curl -s "http://127.0.0.1:$http/ui/" >/dev/null
                sleep 1
            done) &
            clients+=($!)
            # Every stream connected before the measurement.
            for _ in $(seq 50); do
                curl -s "http://127.0.0.1:$http/metrics" | grep -q "^disco_http_event_streams $STREAMS\$" && break
                sleep 0.1
            done
        fi
        result=$(qps "$port" "$dir/queries.txt")
        for pid in "${clients[@]}"; do kill "$pid" 2>/dev/null || true; done
        for pid in "${clients[@]}"; do wait "$pid" 2>/dev/null || true; done
        wait "$churn" || true
        log "round $round $mode: $result answers/s"
        if [[ $mode == closed ]]; then closed+=("$result"); else open+=("$result"); fi
    done
done
closed_median=$(echo "${closed[@]}" | median)
open_median=$(echo "${open[@]}" | median)

printf '\n## Query path with the page open: 3,000 instances, churn %s/s, %s s per run, %s rounds, %s build, %s\n\n' \
    "$CHURN" "$SECONDS_PER_RUN" "$ROUNDS" "$PROFILE" "$(date -u +%Y-%m-%dT%H:%MZ)"
echo "| mode | answers/s (median) | runs |"
echo "|---|---:|---|"
echo "| closed: no HTTP client | $closed_median | $(echo "${closed[@]}" | tr ' ' /) |"
echo "| open: $STREAMS event streams + /ui/ every second | $open_median | $(echo "${open[@]}" | tr ' ' /) |"
echo
echo "open / closed: $(awk -v a="$open_median" -v b="$closed_median" 'BEGIN {printf "%.3f", a / b}') (target >= 0.98)"
cleanup

# The page and the API at size.
dir="$BENCH_SCRATCH/ui-large"
rm -rf "$dir" && mkdir -p "$dir"
python3 "$REPO/bench/gen_records.py" 10000 10 "$dir" >/dev/null
start_etcd "$dir"
"$TOOLS" load --etcd "$ETCD_CLIENT" --prefix /disco --file "$dir/registrations.jsonl" >/dev/null
port=$(free_port)
http=$(free_port)
start_disco "$dir" "$port" "$http"
for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$http/ready" >/dev/null && break
    sleep 0.1
done
service=$(curl -s "http://127.0.0.1:$http/v1/services?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["services"][0]["name"])')

# Median of 20 requests: seconds.
latency() {
    for _ in $(seq 20); do curl -s -o /dev/null -w '%{time_total}\n' "$1"; done | sort -g | awk '{v[NR] = $1} END {printf "%.1f ms", v[10] * 1000}'
}
weight() { curl -s -o /dev/null -w '%{size_download}' "$1"; }
# Chromium's first contentful paint and load event for a page, read
# through the DevTools protocol.
render() {
    python3 "$REPO/tests/common/cdp_dom.py" "$1" "</html>" 60 2>&1 >/dev/null |
        awk '/^timing/ {sub(/^timing /, ""); print}' |
        python3 -c 'import json, sys; t = json.load(sys.stdin); print("first paint %.0f ms, load %.0f ms" % (t["first_contentful_paint"], t["load"]))'
}

printf '\n## Page and API at 100,000 instances (10,000 services), %s\n\n' "$(date -u +%Y-%m-%dT%H:%MZ)"
echo "| what | bytes | time |"
echo "|---|---:|---:|"
echo "| /ui/ (first 1,000 services, registries, 50 changes) | $(weight "http://127.0.0.1:$http/ui/") | $(latency "http://127.0.0.1:$http/ui/") server, $(render "http://127.0.0.1:$http/ui/") in Chromium |"
echo "| /ui/app.js + /ui/style.css | $(($(weight "http://127.0.0.1:$http/ui/app.js") + $(weight "http://127.0.0.1:$http/ui/style.css"))) | |"
echo "| /v1/services (100 a page) | $(weight "http://127.0.0.1:$http/v1/services") | $(latency "http://127.0.0.1:$http/v1/services") |"
echo "| /v1/services?limit=10000 (all) | $(weight "http://127.0.0.1:$http/v1/services?limit=10000") | $(latency "http://127.0.0.1:$http/v1/services?limit=10000") |"
echo "| /v1/services/$service | $(weight "http://127.0.0.1:$http/v1/services/$service") | $(latency "http://127.0.0.1:$http/v1/services/$service") |"
echo "| /v1/changes?since=0 (100) | $(weight "http://127.0.0.1:$http/v1/changes?since=0") | $(latency "http://127.0.0.1:$http/v1/changes?since=0") |"
