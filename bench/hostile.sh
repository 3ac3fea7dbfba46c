#!/usr/bin/env bash
# What a hostile client's questions cost disco, against ordinary ones.
#
# Usage: bench/hostile.sh [SECONDS]     (default 10 s per measurement)
#   ROUNDS=3 SERVICES=10000 INSTANCES=10 SKYDNS_SERVICES=1000
#
# disco serves SERVICES x INSTANCES native registrations with tags (100,000
# by default) and SKYDNS_SERVICES x INSTANCES SkyDNS entries from one etcd,
# pinned to one core with one UDP socket; dnsperf runs on the other core(s)
# at saturation. Printed, each the median of ROUNDS rounds:
#   - per kind of question (bench/hostile_data.py): answers/s, the server's
#     answers per CPU-second, and that as a multiple of the cheapest kind's
#     cost (the issue's bound: the worst question costs at most a few times
#     the best);
#   - the usual mix against a mix of half usual names, half hostile ones
#     (repeated and unordered tags, SkyDNS wildcards): answers per
#     CPU-second of each, and their ratio. A ratio near 1 means a hostile
#     question costs what an ordinary one does, so the ordinary names keep
#     their throughput beside them (the issue asks >= 0.8).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SECONDS_PER_RUN=${1:-10}
ROUNDS=${ROUNDS:-3}
SERVICES=${SERVICES:-10000}
INSTANCES=${INSTANCES:-10}
SKYDNS_SERVICES=${SKYDNS_SERVICES:-1000}
KINDS="instance-a nxdomain service-a service-srv tag-srv two-tags-srv repeated-tags skydns-wildcard skydns-deep"

ensure_packages dnsperf=dnsperf etcd=etcd-server dig=dnsutils
build_disco

dir="$BENCH_SCRATCH/hostile"
rm -rf "$dir" && mkdir -p "$dir/empty"
python3 "$REPO/bench/hostile_data.py" "$SERVICES" "$INSTANCES" "$SKYDNS_SERVICES" "$dir"

ETCD_CORES=0 start_etcd "$dir"
"$TOOLS" load --etcd "$ETCD_CLIENT" --prefix /disco --file "$dir/registrations.jsonl"
"$TOOLS" load --etcd "$ETCD_CLIENT" --prefix /skydns/internal/disco --file "$dir/skydns.jsonl"

port=$(free_port)
TOKIO_WORKER_THREADS=1 taskset -c 0 "$DISCO" serve --listen "127.0.0.1:$port" --zones-dir "$dir/empty" \
    --udp-sockets 1 --http-listen off --upstream off --log-level warn \
    --registry "etcd://$ETCD_CLIENT/disco" --registry "skydns+etcd://$ETCD_CLIENT/skydns" &
disco=$!
STARTED_PIDS+=("$disco")
wait_for_dns "$port" "svc$((SERVICES - 1)).disco.internal"
wait_for_dns "$port" "x0.sky$((SKYDNS_SERVICES - 1)).services.disco.internal"

dnsperf_on_rest() { taskset -c "$(seq -s, 1 $(($(nproc) - 1)))" dnsperf "$@"; }

# One run at saturation. Prints: answers/s answers-per-CPU-second rcodes
saturate() { # queries seconds
    local before after summary
    before=$(cpu_ticks "$disco")
    summary=$(dnsperf_on_rest -s 127.0.0.1 -p "$port" -d "$1" -l "$2" -c 20 -q 100 -t 2 2>&1)
    after=$(cpu_ticks "$disco")
    awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v s="$2" '
        /Queries per second/ { qps = $4 }
        # "Response codes: NOERROR 9 (90.00%), NXDOMAIN 1 (10.00%)" -> NOERROR(90.00%),NXDOMAIN(10.00%)
        /Response codes/ {
            sub(/.*Response codes: */, "")
            n = split($0, parts, /, /)
            for (i = 1; i <= n; i++) { split(parts[i], f, " "); codes = codes (i > 1 ? "," : "") f[1] f[3] }
        }
        END { cpu = t / hz; printf "%d %d %s\n", qps, (cpu > 0 ? qps * s / cpu : 0), codes }' <<<"$summary"
}

# Warm every file once: answers encoded on first ask are the steady state.
for kind in $KINDS normal hostile; do
    file="$dir/q-$kind.txt"
    [[ -f $file ]] || file="$dir/$kind.txt"
    dnsperf_on_rest -s 127.0.0.1 -p "$port" -d "$file" -l 2 -c 20 >/dev/null 2>&1 || true
done

declare -A rows=()
for _ in $(seq "$ROUNDS"); do
    for kind in $KINDS normal hostile; do
        file="$dir/q-$kind.txt"
        [[ -f $file ]] || file="$dir/$kind.txt"
        read -r qps per_cpu codes < <(saturate "$file" "$SECONDS_PER_RUN")
        rows[$kind]+="$per_cpu $qps $codes"$'\n'
    done
done

median() { sort -n -k1,1 <<<"${rows[$1]%$'\n'}" | awk '{ row[NR] = $0 } END { print row[int((NR + 1) / 2)] }'; }

printf '# Hostile questions, %s instances + %s SkyDNS entries, disco on 1 core, %s s runs, median of %s rounds, %s\n\n' \
    "$((SERVICES * INSTANCES))" "$((SKYDNS_SERVICES * INSTANCES))" "$SECONDS_PER_RUN" "$ROUNDS" \
    "$(date -u +%Y-%m-%dT%H:%MZ)"
printf '| question | answers/s | answers per CPU-s | cost × cheapest | response codes |\n|---|---|---|---|---|\n'
best=0
for kind in $KINDS; do
    read -r per_cpu _ < <(median "$kind")
    ((per_cpu > best)) && best=$per_cpu
done
worst_kind="" worst=0
for kind in $KINDS; do
    read -r per_cpu qps codes < <(median "$kind")
    cost=$(ratio "$best" "$per_cpu")
    if [[ -z $worst_kind ]] || ((per_cpu < worst)); then worst=$per_cpu worst_kind=$kind; fi
    printf '| %s | %s | %s | %s | %s |\n' "$kind" "$qps" "$per_cpu" "$cost" "$codes"
done
read -r normal_cpu normal_qps _ < <(median normal)
read -r hostile_cpu hostile_qps _ < <(median hostile)
printf '\nworst question: %s, %s× the cheapest one'"'"'s cost\n' "$worst_kind" "$(ratio "$best" "$worst")"
printf '\n| mix | answers/s | answers per CPU-s |\n|---|---|---|\n'
printf '| usual | %s | %s |\n| half hostile | %s | %s |\n' "$normal_qps" "$normal_cpu" "$hostile_qps" "$hostile_cpu"
printf '\nhalf hostile ÷ usual, answers per CPU-s: %s\n' "$(ratio "$hostile_cpu" "$normal_cpu")"
