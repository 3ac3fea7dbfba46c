#!/bin/bash
# Starts one member of a static etcd cluster.
#
#   ETCD_NAME          this member's name: a prefix and its number, e.g. etcd2
#   ETCD_CLUSTER_SIZE  how many members, e.g. 3
#   ETCD_DATA_DIR      where it keeps its data [/var/lib/etcd]
#
# The members are PREFIX1 … PREFIXn, each reachable under its name (a compose
# service name, or a swarm task's hostname "etcd{{.Task.Slot}}"), so every
# member derives the same initial cluster from these two values alone and no
# member bootstraps the others.
#
# A member that starts with an empty data directory while the others already
# hold quorum (a swarm task rescheduled without its data, a lost volume)
# replaces its old self: it removes the member of its name and adds itself
# again, rather than starting "new" and being refused. Extra arguments go to
# etcd.
set -euo pipefail
shopt -s extglob

name=${ETCD_NAME:?set ETCD_NAME, e.g. etcd1}
size=${ETCD_CLUSTER_SIZE:?set ETCD_CLUSTER_SIZE, e.g. 3}
data=${ETCD_DATA_DIR:-/var/lib/etcd}
token=${ETCD_INITIAL_CLUSTER_TOKEN:-disco}
prefix=${name%%+([0-9])}
number=${name#"$prefix"}
if [[ -z $prefix || -z $number || ! $size =~ ^[1-9][0-9]*$ ]] || ((10#$number > size)); then
    echo "disco-etcd: ETCD_NAME must be a prefix and a member number up to ETCD_CLUSTER_SIZE (etcd1 … etcd3 for 3); got ETCD_NAME='$name' ETCD_CLUSTER_SIZE='$size'" >&2
    exit 64
fi
# etcd reads ETCD_* variables as flags: these are said by the flags below.
unset ETCD_NAME ETCD_CLUSTER_SIZE ETCD_DATA_DIR ETCD_INITIAL_CLUSTER_TOKEN

peer_url() { echo "http://$1:2380"; }
members=() others=()
for ((i = 1; i <= size; i++)); do
    members+=("$prefix$i=$(peer_url "$prefix$i")")
    ((i == 10#$number)) || others+=("http://$prefix$i:2379")
done
initial=$(IFS=,; echo "${members[*]}")
state=new

if [[ ! -d $data/member ]] && ((${#others[@]})); then
    ctl() {
        etcdctl --endpoints="$(IFS=,; echo "${others[*]}")" \
            --dial-timeout=2s --command-timeout=5s "$@"
    }
    # A linearizable read succeeds only with quorum: the cluster was formed
    # without this member, which has lost its data.
    if ctl get --keys-only --limit=1 disco-etcd-probe >/dev/null 2>&1; then
        for id in $(ctl member list | awk -F', ' -v n="$name" -v p="$(peer_url "$name")" \
            '$3 == n || $4 == p {print $1}'); do
            echo "disco-etcd: $name has no data but the cluster has quorum: replacing member $id" >&2
            ctl member remove "$id" >&2
        done
        initial=$(ctl member add "$name" --peer-urls="$(peer_url "$name")" |
            sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p')
        state=existing
    fi
fi

exec etcd --name "$name" --data-dir "$data" \
    --listen-client-urls http://0.0.0.0:2379 \
    --advertise-client-urls "http://$name:2379" \
    --listen-peer-urls http://0.0.0.0:2380 \
    --initial-advertise-peer-urls "$(peer_url "$name")" \
    --initial-cluster "$initial" \
    --initial-cluster-state "$state" \
    --initial-cluster-token "$token" \
    --logger=zap \
    "$@"
