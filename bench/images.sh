#!/bin/bash
# Image pulls side by side on this machine, from one registry on loopback (Debian's
# docker-registry, TLS from a throwaway CA) holding a Debian image built by the test helper
# (tests/e2e/make_oci_image.py on an mmdebstrap root: about 45 MB compressed, 4 layers) and a
# second image that shares all but its last layer:
#   airlock image pull   fetch (skopeo) + unpack of every layer, as an ordinary user, rootless
#   skopeo copy          fetch only, into an OCI layout: the floor of the fetch Airlock does
#   docker pull          fetch + unpack into the daemon's overlay2 store, as root
# Then the second image (only its own layer new) with airlock and docker, and the first
# sandbox or container started from the pulled image (airlock run --image, which merges the
# layers once; docker run --rm). Each cell starts from an empty store (airlock image rm,
# docker rmi, a fresh layout) outside the timing; medians of RUNS runs, interleaved.
#
# Usage (as root): bench/images.sh [RUNS]   (default 5). BENCH_USER picks the Airlock user,
# AIRLOCK the binary, REGISTRY_PORT the loopback port (19582).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-5}"
port="${REGISTRY_PORT:-19582}"
why="a docker daemon, its certs.d and the benchmark user need it"
. "$here/bench/lib.sh"
for tool in skopeo docker-registry mmdebstrap; do
    command -v "$tool" >/dev/null || "$here/scripts/system-packages.sh"
done

work="$(mktemp -d /tmp/airlock-bench-images.XXXXXX)"
chmod 755 "$work"
mkdir "$work/user" && chown "$user" "$work/user"
registry="127.0.0.1:$port"
certs_d="/etc/docker/certs.d/$registry"
ws="$home/bench-images-ws"
pids=()
cleanup() {
    as_user "$airlock" rm -f bench-img >/dev/null 2>&1 || true
    for ref in app:v1 app:v2; do
        as_user "$airlock" image rm "$registry/bench/$ref" >/dev/null 2>&1 || true
        docker rmi -f "$registry/bench/$ref" >/dev/null 2>&1 || true
    done
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    stop_dockerd
    rm -rf "$work" "$certs_d" "$ws"
}
trap cleanup EXIT
start_dockerd "$work"

echo "building the test images (not timed)"
bash "$here/tests/e2e/certs.sh" "$work" "IP:127.0.0.1"
chmod 644 "$work/ca.pem"
cat /etc/ssl/certs/ca-certificates.crt "$work/ca.pem" >"$work/bundle.pem"
export SSL_CERT_FILE="$work/bundle.pem"
mkdir -p "$certs_d" && cp "$work/ca.pem" "$certs_d/ca.crt"
mkdir -p "$work/registry"
cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: $registry
  tls:
    certificate: $work/server.pem
    key: $work/server.key
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -s --cacert "$work/ca.pem" "https://$registry/v2/" >/dev/null && break; sleep 0.1; done
mmdebstrap --quiet --variant=essential bookworm "$work/base.tar" http://deb.debian.org/debian >/dev/null 2>&1
python3 "$here/tests/e2e/make_oci_image.py" "$work/layout" v1 "$work/base.tar" >/dev/null
python3 "$here/tests/e2e/make_oci_image.py" "$work/layout" v2 "$work/base.tar" --extra more >/dev/null
for tag in v1 v2; do
    skopeo --insecure-policy copy -q "oci:$work/layout:$tag" "docker://$registry/bench/app:$tag"
done
echo "image: $(du -sh "$work/layout/blobs" | cut -f1) of blobs for both tags; 4 layers, the last differs"
as_user mkdir -p "$ws"
env_user="HOME=$home AIRLOCK_HOME=$state SSL_CERT_FILE=$work/bundle.pem"
v1="$registry/bench/app:v1"
v2="$registry/bench/app:v2"

echo
echo "first pull of an image, $runs runs each (empty store before each)"
python3 "$here/bench/timeit.py" "$runs" \
    "airlock image pull@$user=$env_user $airlock image pull $v1" \
    --teardown "airlock image pull=$env_user $airlock image rm $v1" \
    "skopeo copy (fetch only)@$user=$env_user skopeo --insecure-policy copy -q docker://$v1 oci:$work/user/skopeo-{i}:v1" \
    --teardown "skopeo copy (fetch only)=rm -rf $work/user/skopeo-{i}" \
    "docker pull=docker pull -q $v1" \
    --teardown "docker pull=docker rmi -f $v1"

echo
echo "second image sharing 3 of its 4 layers, $runs runs each (the first image pulled before, not timed)"
as_user env $env_user "$airlock" image pull "$v1" >/dev/null 2>&1
docker pull -q "$v1" >/dev/null
python3 "$here/bench/timeit.py" "$runs" \
    "airlock image pull@$user=$env_user $airlock image pull $v2" \
    --teardown "airlock image pull=$env_user $airlock image rm $v2" \
    "docker pull=docker pull -q $v2" \
    --teardown "docker pull=docker rmi -f $v2"

echo
echo "first start from the pulled image, $runs runs each (airlock merges the layers once per image)"
python3 "$here/bench/timeit.py" "$runs" \
    "airlock run --image@$user=$env_user $airlock run --name bench-img --image $v1 shell $ws -- -c true" \
    --teardown "airlock run --image=$env_user $airlock rm -f bench-img && $env_user $airlock image rm $v1 && $env_user $airlock image pull $v1" \
    "docker run --rm=docker run --rm --network none $v1 true"
echo
echo "airlock as $user (rootless); skopeo as $user; docker as root. The airlock start includes"
echo "merging the image's layers (hard links) the first time; later starts skip it."
