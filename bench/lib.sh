# Shared helpers for the benchmark scripts. Source it; don't run it.
# Every server runs on 127.0.0.1 only; every run is bounded in time.

BENCH_SCRATCH=${BENCH_SCRATCH:-/var/tmp/disco-bench}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$BENCH_SCRATCH"
STARTED_PIDS=()

log() { echo "bench: $*" >&2; }

# Ends every process this script started, by pid.
cleanup() {
    for pid in "${STARTED_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${STARTED_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    STARTED_PIDS=()
}
trap cleanup EXIT

# Installs Debian packages that provide the given commands (command=package).
ensure_packages() {
    local missing=()
    for pair in "$@"; do
        command -v "${pair%%=*}" >/dev/null 2>&1 || missing+=("${pair#*=}")
    done
    ((${#missing[@]})) || return 0
    if [[ $(id -u) -ne 0 ]]; then
        log "missing ${missing[*]}: sudo apt-get install ${missing[*]}"
        exit 1
    fi
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Builds hickory-dns's own server from crates.io into the scratch directory.
HICKORY="$BENCH_SCRATCH/hickory/bin/hickory-dns"
ensure_hickory() {
    [[ -x $HICKORY ]] && return 0
    log "building hickory-dns 0.26.3 from crates.io into $BENCH_SCRATCH (once)"
    cargo install hickory-dns --version 0.26.3 --locked --root "$BENCH_SCRATCH/hickory" \
        --target-dir "$BENCH_SCRATCH/hickory-target" >/dev/null
}

# Builds disco and the benchmark tools in release mode (into
# CARGO_TARGET_DIR when it is set, as cargo does).
# DISCO_BIN=PATH runs that build of disco instead, and builds none.
DISCO="${DISCO_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/disco}"
TOOLS="${CARGO_TARGET_DIR:-$REPO/bench/tools/target}/release/disco-bench"
build_disco_only() {
    [[ -n ${DISCO_BIN:-} ]] || (cd "$REPO" && cargo build --release --locked --bin disco >/dev/null)
}
build_disco() {
    build_disco_only
    # With DISCO_BIN, tools already built are used as they are too.
    [[ -n ${DISCO_BIN:-} && -x $TOOLS ]] || (cd "$REPO/bench/tools" && cargo build --release >/dev/null)
}

# Starts Knot DNS serving DIR/disco.internal.zone on PORT with WORKERS UDP
# workers, pinned to as many cores; the caller records the pid ($!).
start_knot() { # dir port workers
    cat >"$1/knot.conf" <<CONF
server:
    listen: 127.0.0.1@$2
    udp-workers: $3
    tcp-workers: 1
    background-workers: 1
    rundir: $1
database:
    storage: $1/knot-db
template:
  - id: default
    storage: $1
    journal-content: none
    zonefile-sync: -1
zone:
  - domain: disco.internal
    file: $1/disco.internal.zone
log:
  - target: stderr
    any: error
CONF
    taskset -c "$(cores "$3")" knotd -c "$1/knot.conf" 2>"$1/knot.log" &
}

# A free TCP+UDP port on 127.0.0.1.
free_port() {
    python3 - <<'PY'
import socket
while True:
    t = socket.socket(); t.bind(("127.0.0.1", 0)); port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port)); print(port); break
    except OSError:
        pass
    finally:
        u.close(); t.close()
PY
}

# COUNT distinct free TCP+UDP ports on 127.0.0.1, on one line, found by
# one process (free_port's test, every port held until all are found).
free_ports() { # count
    python3 - "$1" <<'PY'
import socket, sys
held = []
while len(held) < int(sys.argv[1]):
    t = socket.socket(); t.bind(("127.0.0.1", 0)); port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port)); held.append((t, u))
    except OSError:
        u.close(); t.close()
print(*(t.getsockname()[1] for t, _ in held))
PY
}

# Waits until a DNS server on PORT answers NAME (at most 60 s).
wait_for_dns() {
    local port=$1 name=$2
    for _ in $(seq 600); do
        if dig @127.0.0.1 -p "$port" +time=1 +tries=1 +short "$name" A 2>/dev/null | grep -q .; then
            return 0
        fi
        sleep 0.1
    done
    log "no answer for $name on port $port"
    return 1
}

# A process and all its descendants.
process_tree() {
    echo "$1"
    local child
    for child in $(pgrep -P "$1" || true); do
        process_tree "$child"
    done
}

# CPU time (clock ticks) a process and its descendants have used so far
# (NSD serves from forked children).
cpu_ticks() {
    local total=0 pid ticks
    for pid in $(process_tree "$1"); do
        # Fields after "pid (comm) ": utime and stime are the 12th and 13th.
        ticks=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}')
        total=$((total + ${ticks:-0}))
    done
    echo "$total"
}

# Cores 0..N-1, for taskset.
cores() { seq -s, 0 $(($1 - 1)); }

# Resident memory of a pid, in KiB.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# Resident memory (KiB) once it has stopped moving: after a cold start
# mimalloc hands freed pages back in steps (the listing's buffers, then an
# idle thread's heap when the thread ends), over up to ten seconds. Sampled
# every half second until it moved less than 1 MiB over the last four
# seconds, for at most 30 s.
settled_rss() { # pid
    local samples=() now
    for _ in $(seq 60); do
        now=$(rss_kib "$1")
        samples+=("$now")
        if ((${#samples[@]} > 8)); then
            local before=${samples[-9]}
            if ((before - now < 1024 && now - before < 1024)); then
                break
            fi
        fi
        sleep 0.5
    done
    echo "$now"
}

# Starts a one-member etcd with its data in DIR/etcd (on ETCD_CORES if
# set); sets ETCD_CLIENT to its client address and waits until it is
# healthy.
start_etcd() {
    local dir=$1 peer
    ETCD_CLIENT="127.0.0.1:$(free_port)"
    peer=$(free_port)
    ${ETCD_CORES:+taskset -c "$ETCD_CORES"} etcd --name bench --data-dir "$dir/etcd" --listen-client-urls "http://$ETCD_CLIENT" \
        --advertise-client-urls "http://$ETCD_CLIENT" --listen-peer-urls "http://127.0.0.1:$peer" \
        --initial-advertise-peer-urls "http://127.0.0.1:$peer" --initial-cluster "bench=http://127.0.0.1:$peer" \
        --quota-backend-bytes 4294967296 --log-level error >"$dir/etcd.log" 2>&1 &
    STARTED_PIDS+=($!)
    for _ in $(seq 100); do
        curl -sf "http://$ETCD_CLIENT/health" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    log "etcd did not become healthy; see $dir/etcd.log"
    return 1
}

# Starts a one-server ZooKeeper (Debian's package, run with java) with its
# data in DIR/zk (on ZK_CORES if set), its defaults kept (fsync of the
# transaction log included, as etcd's are); sets ZK_CLIENT to its client
# address and waits until it serves.
start_zookeeper() { # dir
    local dir=$1
    mkdir -p "$dir/zk"
    ZK_CLIENT="127.0.0.1:$(free_port)"
    cat >"$dir/zoo.cfg" <<CFG
tickTime=2000
dataDir=$dir/zk
clientPort=${ZK_CLIENT#*:}
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr
maxClientCnxns=0
CFG
    ${ZK_CORES:+taskset -c "$ZK_CORES"} java -Xmx${ZK_HEAP:-2g} -cp /usr/share/java/zookeeper.jar \
        org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg" >"$dir/zk.log" 2>&1 &
    STARTED_PIDS+=($!)
    for _ in $(seq 300); do
        python3 -c "import socket,sys; s=socket.create_connection(('127.0.0.1', ${ZK_CLIENT#*:})); s.send(b'srvr'); sys.exit(0 if b'Mode' in s.recv(4096) else 1)" 2>/dev/null && return 0
        sleep 0.1
    done
    log "ZooKeeper did not start; see $dir/zk.log"
    return 1
}

# A ZooKeeper server's answer to a four-letter word (empty when it does
# not answer within 5 s); the word must be in its 4lw.commands.whitelist.
zk_word() { # host:port word
    python3 - "$1" "$2" <<'PY' 2>/dev/null || true
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=5)
s.sendall(sys.argv[2].encode())
answer = b""
while chunk := s.recv(65536):
    answer += chunk
sys.stdout.write(answer.decode(errors="replace"))
PY
}

# Starts a three-server ZooKeeper ensemble on loopback, each server as
# start_zookeeper starts its one (Debian's package run with java, its
# defaults kept, fsync included) with its data and zoo.cfg in DIR/zkN;
# ZK_WORDS are the four-letter words it allows (ruok,srvr unless set).
# Each JVM logs its garbage collections to DIR/zkN-gc.log (ZooKeeper's own
# log goes nowhere: Debian's jar has no logging backend on this path).
# Sets ZK_HOSTS to the three client addresses, comma-separated, and
# ZK_PIDS to the three JVMs, and waits (at most 60 s) until each serves,
# one as leader.
start_zookeeper_ensemble() { # dir
    local dir=$1 n ports servers="" state host deadline=$((SECONDS + 60))
    # Nine distinct ports (client, quorum, election for each server), all
    # bound at once so that none is handed out twice.
    read -ra ports < <(python3 -c '
import socket
held = [socket.socket() for _ in range(9)]
for s in held: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in held))')
    for n in 1 2 3; do
        servers+="server.$n=127.0.0.1:${ports[n * 3 - 2]}:${ports[n * 3 - 1]}"$'\n'
    done
    ZK_HOSTS="127.0.0.1:${ports[0]},127.0.0.1:${ports[3]},127.0.0.1:${ports[6]}"
    ZK_PIDS=()
    for n in 1 2 3; do
        mkdir -p "$dir/zk$n/data"
        echo "$n" >"$dir/zk$n/data/myid"
        cat >"$dir/zk$n/zoo.cfg" <<CFG
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$dir/zk$n/data
clientPort=${ports[n * 3 - 3]}
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=${ZK_WORDS:-ruok,srvr}
maxClientCnxns=0
$servers
CFG
        ${ZK_CORES:+taskset -c "$ZK_CORES"} java -Xmx${ZK_HEAP:-2g} -Xlog:gc:file="$dir/zk$n-gc.log" \
            -cp /usr/share/java/zookeeper.jar \
            org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zk$n/zoo.cfg" >"$dir/zk$n.log" 2>&1 &
        ZK_PIDS+=($!)
        STARTED_PIDS+=($!)
    done
    while ((SECONDS < deadline)); do
        state=""
        for host in ${ZK_HOSTS//,/ }; do
            state+=" $(zk_word "$host" srvr | awk '/^Mode:/ {print $2}')"
        done
        [[ $state =~ ^(\ (leader|follower)){3}$ && $state == *leader* ]] && return 0
        sleep 0.1
    done
    log "the ZooKeeper ensemble did not form (modes:${state:- none}); see $dir/zk*.log"
    return 1
}

# dnsperf (through the calling script's `client`, which pins it) at
# saturation (with the server's CPU time over the run), then again
# with every query's latency, then at a fixed rate.
# Prints: qps lost cpu_percent mean_ms p99_ms
measure() { # pid port queries seconds workers [max_qps]
    local pid=$1 port=$2 queries=$3 seconds=$4 workers=$5 limit=${6:-}
    local args=(-s 127.0.0.1 -p "$port" -d "$queries" -l "$seconds" -c 20 -q 100 -t 2)
    [[ -n $limit ]] && args+=(-Q "$limit")
    local summary ticks_before ticks_after
    ticks_before=$(cpu_ticks "$pid")
    summary=$(client "$workers" "${args[@]}" 2>&1)
    ticks_after=$(cpu_ticks "$pid")
    local qps lost cpu
    qps=$(awk '/Queries per second/ {printf "%d", $4}' <<<"$summary")
    lost=$(awk '/Queries lost/ {print $3}' <<<"$summary")
    cpu=$(awk -v t=$((ticks_after - ticks_before)) -v hz="$(getconf CLK_TCK)" -v s="$seconds" \
        'BEGIN {printf "%d", t / hz / s * 100}')
    # Per-query latencies (-v) for the mean and p99, from a shorter run. They
    # go to a file and are sorted afterwards: a pipe would have the sort
    # compete with dnsperf and the server for the same cores.
    local trace="$BENCH_SCRATCH/latencies.txt"
    client "$workers" "${args[@]}" -l "$(((seconds + 1) / 2))" -v >"$trace" 2>/dev/null || true
    awk '/^> / {print $NF}' "$trace" | sort -g | awk -v qps="$qps" -v lost="$lost" -v cpu="$cpu" '
        { v[NR] = $1; sum += $1 }
        END { if (NR == 0) { print qps, lost, cpu, "-", "-"; exit }
              i = int(NR * 0.99); if (i < 1) i = 1
              printf "%s %s %s %.3f %.3f\n", qps, lost, cpu, sum / NR * 1000, v[i] * 1000 }'
    rm -f "$trace"
}

# The row with the median first field, and every row's first field.
median_row() { # rows, one per line: qps lost cpu mean p99 half_mean half_p99
    local sorted runs
    sorted=$(sort -n -k1,1 <<<"$1")
    runs=$(awk '{print $1}' <<<"$1" | paste -sd/)
    awk -v runs="$runs" '{ row[NR] = $0 } END { print row[int((NR + 1) / 2)], runs }' <<<"$sorted"
}

# a / b with two decimals, or "-" when either is unknown.
ratio() {
    [[ $1 =~ ^[0-9]+$ && $2 =~ ^[0-9]+$ && $2 -gt 0 ]] || {
        echo -
        return
    }
    awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'
}
