#!/usr/bin/env bash
# Registration figures with ZooKeeper, the same measurements as
# registration.sh takes with etcd (registration_lib.sh): registration to
# answer latency, cold start and resident memory with many instances,
# answers/s under churn, and the SRV answer of a 1,000-instance service.
#
# Usage: bench/registration_zk.sh [INSTANCES]    (default 100000)
#   ROUNDS=3: rounds of the churn measurement (medians are printed)
#
# ZooKeeper is Debian's package, run with java on a free loopback port with
# a data dir in the scratch directory, pinned to the store's cores. Its
# defaults are kept (fsync of the transaction log included), as etcd's are.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registration_lib.sh"

INSTANCES=${1:-100000}
ensure_packages dnsperf=dnsperf dig=dnsutils /usr/share/zookeeper/bin/zkServer.sh=zookeeper
build_disco

dir="$BENCH_SCRATCH/registration-zk"
rm -rf "$dir" && mkdir -p "$dir"
python3 "$REPO/bench/gen_records.py" $((INSTANCES / 10)) 10 "$dir" 50000

ZK_CORES=$STORE_CORES start_zookeeper "$dir"

registry_url() { echo "zk://$ZK_CLIENT/disco"; }
load() { on_store_cores "$TOOLS" load --zk "$ZK_CLIENT" --prefix /disco --file "$1"; }
churn() { # watched|unwatched seconds
    local prefix=/disco
    [[ $1 == unwatched ]] && prefix=/elsewhere
    on_store_cores "$TOOLS" churn --zk "$ZK_CLIENT" --prefix "$prefix" --rate 1000 --seconds "$2"
}
latency() { # dns_port
    on_store_cores "$TOOLS" latency --zk "$ZK_CLIENT" --prefix /disco --dns "127.0.0.1:$1" --count 500
}

echo "# Registration figures (ZooKeeper): $INSTANCES instances, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
measure_cold_start "$dir" "$dir/registrations.jsonl" "$INSTANCES"
measure_latency "$DNS_PORT"
measure_churn "$dir/queries.txt"
measure_wide_srv "$dir"
