#!/usr/bin/env bash
# TCP at scale: many connections held open while one client keeps asking.
#
# Usage: bench/tcp_scale.sh [CONNECTIONS]     (default 10000)
#   SECONDS_PER_RUN=6 ROUNDS=3 CAPS_ONLY=1 (only the last two parts)
#
# disco serves the `services` record set (gen_records.py, 3,000 instances)
# from a zone file, one worker on core 0; the holder and dnsperf share the
# other cores. Three parts:
# - caps raised past CONNECTIONS (--tcp-connections,
#   --tcp-connections-per-client): the connections opened and held (a
#   query on each every 5 s, so that the 10 s idle timer does not close
#   them), resident memory per connection, and an active dnsperf client's
#   answers/s over UDP and over TCP meanwhile, against the same without
#   them (ROUNDS rounds taking turns, medians);
# - the default caps (1,024 in all, 64 per client address): CONNECTIONS
#   truly idle connections from one address: how many the server kept, and
#   whether an active TCP client is still answered (the cap closes the
#   longest-idle connection, never refuses while idle ones sit);
# - the same with the per-client cap raised, so that the total cap is the
#   one reached.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

CONNECTIONS=${1:-10000}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-6}
ROUNDS=${ROUNDS:-3}

ensure_packages dnsperf=dnsperf dig=dnsutils
build_disco
# The holder's sockets, and disco's (each process has its own limit).
want=$((CONNECTIONS + 4096))
hard=$(ulimit -Hn)
[[ $hard == unlimited || $hard -ge $want ]] || {
    log "the hard limit on open files ($hard) is below $want: raise it (limits.conf, or run as root)"
    exit 1
}
ulimit -n "$want"

DIR="$BENCH_SCRATCH/tcp-scale"
rm -rf "$DIR" && mkdir -p "$DIR/zones"
python3 "$REPO/bench/gen_records.py" 1000 3 "$DIR/zones" 50000
mv "$DIR/zones/queries.txt" "$DIR/queries.txt"
rm -f "$DIR/zones/registrations.jsonl"
OTHER_CORES=$(seq -s, 1 $(($(nproc) - 1)))
on_other_cores() { taskset -c "$OTHER_CORES" "$@"; }

start_disco() { # port extra-flags...
    local port=$1
    shift
    TOKIO_WORKER_THREADS=1 taskset -c 0 "$DISCO" serve --listen "127.0.0.1:$port" --zones-dir "$DIR/zones" \
        --udp-sockets 1 --http-listen off --upstream off --log-level warn "$@" 2>>"$DIR/disco.log" &
}

qps() { # port mode
    on_other_cores dnsperf -s 127.0.0.1 -p "$1" -m "$2" -d "$DIR/queries.txt" -l "$SECONDS_PER_RUN" -c 20 -q 100 2>&1 |
        awk '/Queries per second/ {printf "%d", $4}'
}
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf '# TCP at scale: %s connections, %s cores, load average before: %s, %s\n\n' "$CONNECTIONS" "$(nproc)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)" "$(date -u +%Y-%m-%dT%H:%MZ)"

if ((${CAPS_ONLY:-0} == 0)); then
port=$(free_port)
start_disco "$port" --tcp-connections $((CONNECTIONS + 1000)) --tcp-connections-per-client $((CONNECTIONS + 1000))
pid=$!
STARTED_PIDS+=("$pid")
wait_for_dns "$port" svc0.disco.internal
sleep 1
empty=$(rss_kib "$pid")
quiet_udp="" quiet_tcp="" held_udp="" held_tcp="" per_conn=""
hold_seconds=$((SECONDS_PER_RUN * 2 + 12))
for round in $(seq "$ROUNDS"); do
    log "round $round: without held connections"
    quiet_udp+=" $(qps "$port" udp)"
    quiet_tcp+=" $(qps "$port" tcp)"
    log "round $round: with $CONNECTIONS held"
    on_other_cores "$TOOLS" tcp-hold --dns "127.0.0.1:$port" --count "$CONNECTIONS" --seconds "$hold_seconds" \
        --keepalive 5 >"$DIR/hold.txt" 2>"$DIR/hold.err" &
    holder=$!
    sleep 6
    during=$(rss_kib "$pid")
    # Against the server before any connection: the allocator keeps what
    # an earlier round's connections used, so later rounds cost less.
    per_conn+=" $(((during - empty) * 1024 / CONNECTIONS))"
    held_udp+=" $(qps "$port" udp)"
    held_tcp+=" $(qps "$port" tcp)"
    wait "$holder" || true
    log "$(cat "$DIR/hold.err" "$DIR/hold.txt" | tr '\n' ' ')"
    hold_result=$(cat "$DIR/hold.txt")
    sleep 1
done
kill "$pid" && wait "$pid" 2>/dev/null || true

printf '## Caps raised: %s connections held (a query on each every 5 s), %s round(s), medians\n\n' "$CONNECTIONS" "$ROUNDS"
printf -- '- resident memory: empty %s KiB; per held connection %s bytes (each round: %s)\n' "$empty" \
    "$(median "$per_conn")" "${per_conn# }"
printf -- '- %s\n' "$hold_result"
printf '\n| active client | answers/s alone | with %s held | × alone | each round alone / held |\n|---|---|---|---|---|\n' \
    "$CONNECTIONS"
for mode in udp tcp; do
    alone_runs=quiet_$mode held_runs=held_$mode
    alone=$(median "${!alone_runs}")
    held=$(median "${!held_runs}")
    printf '| %s | %s | %s | %s | %s / %s |\n' "$mode" "$alone" "$held" "$(ratio "$held" "$alone")" \
        "$(tr ' ' / <<<"${!alone_runs# }")" "$(tr ' ' / <<<"${!held_runs# }")"
done

fi

cap_run() { # label extra-flags...
    local label=$1
    shift
    local port pid holder answered
    port=$(free_port)
    start_disco "$port" "$@"
    pid=$!
    STARTED_PIDS+=("$pid")
    wait_for_dns "$port" svc0.disco.internal
    on_other_cores "$TOOLS" tcp-hold --dns "127.0.0.1:$port" --count "$CONNECTIONS" --seconds 8 \
        >"$DIR/cap.txt" 2>/dev/null &
    holder=$!
    sleep 5
    # From another address: 127.0.0.1 is at its per-client cap (by design).
    answered=$(dig -b 127.0.0.2 @127.0.0.1 -p "$port" +tcp +time=2 +tries=1 +short svc0.disco.internal A |
        head -1 || true)
    open=$(ss -Htn state established "( sport = :$port )" | wc -l)
    wait "$holder" || true
    kill "$pid" && wait "$pid" 2>/dev/null || true
    printf '| %s | %s | %s | %s |\n' "$label" "$open" "${answered:-no answer}" "$(sed 's/^tcp-hold: //' "$DIR/cap.txt")"
}
printf '\n## Caps: %s idle connections from one address\n\n' "$CONNECTIONS"
printf '| caps | connections open at 5 s (server side) | an active TCP client at 5 s | holder |\n|---|---|---|---|\n'
cap_run "defaults (1024 in all, 64 per client)"
cap_run "1024 in all, per client raised" --tcp-connections-per-client $((CONNECTIONS + 1000))
