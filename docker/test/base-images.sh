#!/usr/bin/env bash
# Makes the base images the Docker tests build on, from Debian's packages,
# because the test machines reach no image registry: `debootstrap
# --variant=minbase bookworm` into a temporary folder with the few packages
# an image needs, then `docker import`. An image that already exists is kept,
# so only the first run on a machine pays (about a minute per image).
#
#   docker/test/base-images.sh            # every image below
#   docker/test/base-images.sh TAG...     # only these
#
# The tags carry a version: change the number when an image's packages change.
set -euo pipefail

mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

# Image -> the packages it needs beyond minbase (debootstrap's --include).
declare -A includes=(
    # The runtime base of docker/Dockerfile: setcap for the port-53 capability.
    [disco-test/bookworm-base:1]=libcap2-bin,ca-certificates
    # The base of docker/etcd/Dockerfile.
    [disco-test/etcd-base:1]=etcd-server,etcd-client
    # The example web service (busybox httpd) and the client (getent, dig,
    # wget, the MariaDB client).
    [disco-test/tools:1]=busybox,dnsutils,iproute2,mariadb-client
    # The DockStack scenario's ZooKeeper and MariaDB.
    [disco-test/zookeeper-base:1]=zookeeper,default-jre-headless
    [disco-test/mariadb-base:1]=mariadb-server
    # The primary/replica demo's Redis (docker/redis): the server and
    # redis-cli, which its role hook runs.
    [disco-test/redis-base:1]=redis-server,redis-tools
)

die() { echo "base-images.sh: $*" >&2; exit 1; }

docker info >/dev/null 2>&1 || die "no Docker engine answers ('docker info' failed); start dockerd"
command -v debootstrap >/dev/null || die "debootstrap is missing; install it with: apt-get install debootstrap"
[[ $(id -u) -eq 0 ]] || die "debootstrap needs root"

if (($#)); then wanted=("$@"); else wanted=("${!includes[@]}"); fi

# Tests run in parallel processes: one builder at a time, the others wait and
# then find the image made.
exec 9>"${TMPDIR:-/tmp}/disco-base-images.lock"
flock 9

cache=${DISCO_DEBOOTSTRAP_CACHE:-/var/cache/disco-debootstrap}
mkdir -p "$cache"

for image in "${wanted[@]}"; do
    [[ -v includes[$image] ]] || die "unknown image $image (known: ${!includes[*]})"
    if docker image inspect "$image" >/dev/null 2>&1; then
        continue
    fi
    root=$(mktemp -d "${TMPDIR:-/tmp}/disco-rootfs.XXXXXX")
    trap 'rm -rf "$root"' EXIT
    start=$SECONDS
    echo "base-images.sh: making $image (debootstrap, with ${includes[$image]})" >&2
    debootstrap --variant=minbase --cache-dir="$cache" \
        --include="${includes[$image]}" bookworm "$root" "$mirror" \
        >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; die "debootstrap for $image failed (log above)"; }
    rm -f "$root.log"
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
    tar -C "$root" --numeric-owner -c . |
        docker import --change 'CMD ["bash"]' - "$image" >/dev/null
    rm -rf "$root"
    trap - EXIT
    echo "base-images.sh: made $image in $((SECONDS - start)) s" >&2
done
