#!/usr/bin/env bash
# disco registrar's figures against a real etcd and a real disco serve on
# 127.0.0.1: failure to withdrawal, healthy to answered, SIGKILL to
# withdrawal, and one registrar with 100 services checked every second (CPU
# and RSS, beside 1 service as the reference). See bench/README.md.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ensure_packages etcd=etcd-server python3=python3
(cd "$REPO" && cargo build --release --locked --bin disco >/dev/null)
dir=$(mktemp -d "$BENCH_SCRATCH/registrar.XXXXXX")
start_etcd "$dir"
dns=$(free_port)
mkdir -p "$dir/zones"
"$DISCO" serve --listen "127.0.0.1:$dns" --http-listen off --upstream off \
    --zones-dir "$dir/zones" --registry "etcd://$ETCD_CLIENT/disco" >"$dir/disco.log" 2>&1 &
STARTED_PIDS+=($!)
sleep 1
log "etcd at $ETCD_CLIENT, disco on 127.0.0.1:$dns; the machine is shared, figures are noisy"
python3 "$REPO/bench/registrar_bench.py" --disco "$DISCO" --etcd "$ETCD_CLIENT" --dns "$dns" "$@"
