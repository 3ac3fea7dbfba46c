#!/usr/bin/env bash
# `disco registrar --docker`'s figures against the real Docker engine, a
# real etcd and a real disco serve on 127.0.0.1: HEALTHCHECK healthy →
# answered, `docker stop` → NXDOMAIN and → exit, reconcile of N labelled
# containers (time, CPU), RSS with N containers beside 0, CPU at rest. The
# containers run the static busybox image the container tests import
# (disco-test/busybox:1, made here if missing) and carry the label
# disco-bench.scope, by which they are all removed at the end. See
# bench/README.md.
#
#   bench/docker.sh [--containers 200] [--rounds 30]
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ensure_packages etcd=etcd-server python3=python3 busybox=busybox-static
docker info >/dev/null 2>&1 || { log "no Docker engine answers"; exit 1; }
# DISCO_BENCH_BINARY: another build to measure (e.g. target/debug/disco).
if [[ -n ${DISCO_BENCH_BINARY:-} ]]; then
    DISCO=$DISCO_BENCH_BINARY
else
    (cd "$REPO" && cargo build --release --locked --bin disco >/dev/null)
fi
dir=$(mktemp -d "$BENCH_SCRATCH/docker.XXXXXX")
remove_containers() {
    local ids
    ids=$(docker ps --all --quiet --filter label=disco-bench.scope=docker)
    [[ -z $ids ]] || docker rm --force $ids >/dev/null 2>&1 || true
}
trap 'cleanup; remove_containers' EXIT
remove_containers
if ! docker image inspect disco-test/busybox:1 >/dev/null 2>&1; then
    root="$dir/image"
    mkdir -p "$root/bin" "$root/tmp" "$root/www"
    cp "$(command -v busybox)" "$root/bin/busybox"
    for tool in sh httpd test touch rm sleep; do ln -s busybox "$root/bin/$tool"; done
    tar -C "$root" -c bin tmp www | docker import --change 'ENV PATH=/bin' \
        --change 'EXPOSE 8080' - disco-test/busybox:1 >/dev/null
fi
start_etcd "$dir"
dns=$(free_port)
mkdir -p "$dir/zones"
"$DISCO" serve --listen "127.0.0.1:$dns" --http-listen off --upstream off \
    --zones-dir "$dir/zones" --registry "etcd://$ETCD_CLIENT/disco" >"$dir/disco.log" 2>&1 &
STARTED_PIDS+=($!)
sleep 1
log "etcd at $ETCD_CLIENT, disco on 127.0.0.1:$dns; the machine is shared, figures are noisy"
python3 "$REPO/bench/docker_bench.py" --disco "$DISCO" --etcd "$ETCD_CLIENT" --dns "$dns" \
    --scratch "$dir" "$@"
