#!/usr/bin/env bash
# Registration figures with etcd: registration to answer latency, cold start
# and resident memory with many instances, answers/s under churn, and the
# SRV answer of a 1,000-instance service over TCP.
#
# Usage: bench/registration.sh [INSTANCES]    (default 100000)
#   ROUNDS=3: rounds of the churn measurement (medians are printed)
#
# The measurements are store-agnostic (registration_lib.sh): this script
# starts etcd and says how to load, churn and time registrations through it.
# The ZooKeeper backend and the registrar add their figures with a script of
# the same shape.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registration_lib.sh"

INSTANCES=${1:-100000}
ensure_packages dnsperf=dnsperf dig=dnsutils etcd=etcd-server
build_disco

dir="$BENCH_SCRATCH/registration"
rm -rf "$dir" && mkdir -p "$dir"
python3 "$REPO/bench/gen_records.py" $((INSTANCES / 10)) 10 "$dir" 50000

start_etcd "$dir"
registry_url() { echo "etcd://$ETCD_CLIENT/disco"; }
load() { on_store_cores "$TOOLS" load --etcd "$ETCD_CLIENT" --prefix /disco --file "$1"; }
churn() { # watched|unwatched seconds
    local prefix=/disco
    [[ $1 == unwatched ]] && prefix=/elsewhere
    on_store_cores "$TOOLS" churn --etcd "$ETCD_CLIENT" --prefix "$prefix" --rate 1000 --seconds "$2"
}
latency() { # dns_port
    on_store_cores "$TOOLS" latency --etcd "$ETCD_CLIENT" --prefix /disco --dns "127.0.0.1:$1" --count 500
}

echo "# Registration figures (etcd): $INSTANCES instances, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
measure_cold_start "$dir" "$dir/registrations.jsonl" "$INSTANCES"
measure_latency "$DNS_PORT"
measure_churn "$dir/queries.txt"
measure_wide_srv "$dir"
