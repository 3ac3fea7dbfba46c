#!/bin/bash
# redis-elected: redis-server, and `disco registrar` beside it in the same
# container, which checks it, registers it as DISCO_SERVICE (default redis)
# and campaigns for primary.<service> with --elect; on every change of role
# it runs redis-role (REPLICAOF NO ONE when elected, REPLICAOF <primary>
# 6379 as a replica).
#
# One container rather than a sidecar container: the hook must reach its own
# Redis at 127.0.0.1, and a swarm service cannot share another's network
# namespace (compose's network_mode: service:… has no swarm equivalent).
#
#   DISCO_REGISTRY   the store, e.g. etcd://etcd1:2379/disco (required)
#   DISCO_SERVICE    the service [redis]
#   DISCO_INSTANCE   the instance id [the container's host name]
#   DISCO_ADDRESS_SUBNET  register the container's address in this IPv4
#                    subnet (a swarm task on several overlay networks, whose
#                    default route is docker_gwbridge) [--address auto]
#   DISCO_TTL, …     any other registrar flag, as DISCO_<FLAG>
#
# Extra arguments go to redis-server. SIGTERM withdraws the registration
# first (another instance is elected at once), then stops Redis.
set -euo pipefail

: "${DISCO_REGISTRY:?set DISCO_REGISTRY, e.g. etcd://etcd1:2379/disco}"
service=${DISCO_SERVICE:-redis}
instance=${DISCO_INSTANCE:-$(hostname)}
# The registrar reads DISCO_* as its flags; these are said below.
unset DISCO_SERVICE DISCO_INSTANCE

# Whether IPv4 address $1 is in subnet $2 (a.b.c.d/n).
in_subnet() {
    local a b c d ip net bits=${2#*/}
    IFS=. read -r a b c d <<<"$1"
    ip=$(((a << 24) | (b << 16) | (c << 8) | d))
    IFS=. read -r a b c d <<<"${2%/*}"
    net=$(((a << 24) | (b << 16) | (c << 8) | d))
    local mask=$(((0xffffffff << (32 - bits)) & 0xffffffff))
    (((ip & mask) == (net & mask)))
}
if [[ -n ${DISCO_ADDRESS_SUBNET:-} && -z ${DISCO_ADDRESS:-} ]]; then
    for ip in $(hostname -I); do
        if [[ $ip =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] && in_subnet "$ip" "$DISCO_ADDRESS_SUBNET"; then
            export DISCO_ADDRESS=$ip
            break
        fi
    done
    if [[ -z ${DISCO_ADDRESS:-} ]]; then
        echo "redis-elected: no address of this container ($(hostname -I)) is in DISCO_ADDRESS_SUBNET=$DISCO_ADDRESS_SUBNET" >&2
        exit 64
    fi
fi
unset DISCO_ADDRESS_SUBNET

redis-server --bind 0.0.0.0 --protected-mode no --port 6379 \
    --dir /var/lib/redis --daemonize no "$@" &
redis=$!

disco registrar --service "$service" --instance "$instance" --port 6379 \
    --check tcp --elect --on-role-change redis-role &
registrar=$!

stop() {
    trap - TERM INT
    kill -TERM "$registrar" 2>/dev/null || true
    wait "$registrar" || true
    kill -TERM "$redis" 2>/dev/null || true
    wait "$redis" || true
}
trap 'stop; exit 0' TERM INT

# Either one ending ends the container (and its restart policy applies).
set +e
wait -n "$redis" "$registrar"
status=$?
set -e
echo "redis-elected: $( kill -0 "$redis" 2>/dev/null && echo "the registrar" || echo "redis-server") exited ($status); stopping" >&2
stop
exit "$status"
