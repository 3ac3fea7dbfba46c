#!/bin/bash
# Starts one server of a static ZooKeeper ensemble.
#
#   ZK_NAME           this server's name: a prefix and its number, e.g. zookeeper2
#   ZK_ENSEMBLE_SIZE  how many servers, e.g. 3 (1: standalone)
#   ZK_DATA_DIR       where it keeps its data [/var/lib/zookeeper/data]
#   ZK_HEAP           the JVM's heap [256m]
#
# The servers are PREFIX1 … PREFIXn, each reachable under its name (a
# compose service name, or a swarm task's hostname "zookeeper{{.Task.Slot}}"),
# so every server writes the same ensemble from these two values, and its
# myid is its number. A server that lost its data syncs from the leader.
set -euo pipefail
shopt -s extglob

name=${ZK_NAME:?set ZK_NAME, e.g. zookeeper1}
size=${ZK_ENSEMBLE_SIZE:?set ZK_ENSEMBLE_SIZE, e.g. 3}
data=${ZK_DATA_DIR:-/var/lib/zookeeper/data}
prefix=${name%%+([0-9])}
number=${name#"$prefix"}
if [[ -z $prefix || -z $number || ! $size =~ ^[1-9][0-9]*$ ]] || ((10#$number > size)); then
    echo "disco-zookeeper: ZK_NAME must be a prefix and a server number up to ZK_ENSEMBLE_SIZE (zookeeper1 … zookeeper3 for 3); got ZK_NAME='$name' ZK_ENSEMBLE_SIZE='$size'" >&2
    exit 64
fi

config=$data/zoo.cfg
cat >"$config" <<CONFIG
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$data
clientPort=2181
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,mntr
# A server's own name may resolve to an address of another network.
quorumListenOnAllIPs=true
CONFIG
if ((size > 1)); then
    echo "$((10#$number))" >"$data/myid"
    for ((i = 1; i <= size; i++)); do
        echo "server.$i=$prefix$i:2888:3888"
    done >>"$config"
fi

# Logs to the console, through Debian's log4j configuration.
exec java "-Xmx${ZK_HEAP:-256m}" -XX:+UseSerialGC \
    -Dzookeeper.root.logger=INFO,CONSOLE \
    -cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$config"
