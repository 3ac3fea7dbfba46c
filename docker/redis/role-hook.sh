#!/bin/bash
# redis-role: the registrar's --on-role-change for Redis, run on every
# change of role with DISCO_ROLE, DISCO_SERVICE and DISCO_PRIMARY_ADDRESS
# (docs: "Primary and replicas").
#
#   primary   REPLICAOF NO ONE: this Redis takes writes
#   replica   REPLICAOF <DISCO_PRIMARY_ADDRESS> 6379 (run again whenever the
#             primary moves); with no address known yet, nothing: the
#             registrar tells it again once it knows
#   none      nothing: not in DNS (unhealthy, in maintenance, the store
#             away), it keeps what it was until it has a role again
set -euo pipefail

cli() { redis-cli -h 127.0.0.1 -p "${REDIS_PORT:-6379}" "$@"; }

case ${DISCO_ROLE:-} in
primary)
    cli replicaof no one
    ;;
replica)
    if [[ -n ${DISCO_PRIMARY_ADDRESS:-} ]]; then
        cli replicaof "$DISCO_PRIMARY_ADDRESS" "${REDIS_PORT:-6379}"
    fi
    ;;
none) ;;
*)
    echo "redis-role: unknown DISCO_ROLE '${DISCO_ROLE:-}'" >&2
    exit 64
    ;;
esac
