#!/bin/bash
# A sandbox's private Docker engine (`airlock run --docker`) beside the host's Docker, in one run:
#   run     `docker run --rm IMAGE true`: inside, the docker CLI on the host talks to the sandbox's
#           engine through its socket ($AIRLOCK_HOME/sandboxes/NAME/docker-run/docker.sock, the
#           user's own), so no `airlock exec` is timed; the host's is the root daemon's
#   build   `docker build --no-cache` of the same two-line Dockerfile (FROM the image, one RUN)
#   start   a stopped sandbox `airlock run -d --docker` to a `docker info` that answers, against a
#           second root dockerd of the host's Docker started on its own data root to its first
#           `docker info` (no bridge or iptables of its own: the host's daemon holds docker0)
# The image is Debian's essential set (mmdebstrap), imported into both engines. Both use their
# default network (a bridge) for `run`. Timed with bench/timeit.py: wall clock, medians of RUNS
# runs, interleaved; the ratio is airlock's time over the host's.
#
# Usage (as root): bench/docker.sh [RUNS]   (default 5). BENCH_USER the Airlock user, AIRLOCK
# the binary.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-5}"
why="the host's docker daemon needs it"
. "$here/bench/lib.sh"
name=bench-docker
work="$(mktemp -d /tmp/airlock-bench-docker.XXXXXX)"
chmod 755 "$work"
ws="$home/bench-docker-ws"
second="$work/second-dockerd"
cleanup() {
    as_user "$airlock" rm -f "$name" >/dev/null 2>&1 || true
    [ -f "$second.pid" ] && kill "$(cat "$second.pid")" 2>/dev/null
    docker rmi -f bench/small bench/built >/dev/null 2>&1 || true
    stop_dockerd
    rm -rf "$work" "$ws" /var/lib/airlock-bench-dockerd
}
trap cleanup EXIT
start_dockerd "$work"

echo "building the image (Debian essential, not timed)"
mmdebstrap --quiet --variant=essential --mode=unshare bookworm "$work/base.tar" http://deb.debian.org/debian \
    >/dev/null 2>&1
mkdir -p "$ws"
cp "$work/base.tar" "$ws/base.tar"
printf 'FROM bench/small\nRUN echo built > /built.txt\n' > "$ws/Dockerfile"
chown -R "$user:" "$ws"
docker import "$work/base.tar" bench/small >/dev/null

echo "making the sandbox with --docker (its image is built once, not timed)"
as_user "$airlock" rm -f "$name" >/dev/null 2>&1 || true
as_user "$airlock" run -d --name "$name" --docker shell "$ws" >/dev/null
sock="$state/sandboxes/$name/docker-run/docker.sock"
inside="DOCKER_HOST=unix://$sock"
as_user env "$inside" docker import "$ws/base.tar" bench/small >/dev/null
# One untimed run in each engine first (its first container sets up the bridge).
as_user env "$inside" docker run --rm bench/small true
docker run --rm bench/small true

echo "medians of $runs runs ($(nproc) cores; airlock: $airlock as $user; host: Docker $(docker version -f '{{.Server.Version}}') as root)"
echo "docker run --rm IMAGE true"
python3 "$here/bench/timeit.py" "$runs" \
    "airlock@$user=$inside docker run --rm bench/small true" \
    "host=docker run --rm bench/small true"
echo "docker build --no-cache (FROM the image, one RUN)"
python3 "$here/bench/timeit.py" "$runs" \
    "airlock@$user=cd $ws && $inside docker build -q --no-cache -t bench/built ." \
    "host=cd $ws && docker build -q --no-cache -t bench/built ."
echo "engine start to a working docker info"
python3 "$here/bench/timeit.py" "$runs" \
    "airlock@$user=AIRLOCK_HOME=$state $airlock run -d --name $name shell $ws && $inside docker info >/dev/null" \
    --setup "airlock=AIRLOCK_HOME=$state $airlock stop $name" \
    "host=dockerd --data-root /var/lib/airlock-bench-dockerd --exec-root $second.exec -H unix://$second.sock --pidfile $second.pid --bridge none --iptables=false >$second.log 2>&1 & until docker -H unix://$second.sock info >/dev/null 2>&1; do sleep 0.01; done" \
    --teardown "host=kill \$(cat $second.pid); while [ -e $second.pid ]; do sleep 0.05; done"
