#!/bin/bash
# Forking a sandbox with changes, side by side on this machine:
#   airlock   `airlock fork SRC NEW` (copies SRC's overlay upper layer and home with
#             cp -a --reflink=auto in a user namespace, plus its settings), then the first
#             command in the fork: `airlock run -d --name NEW shell WS` + `airlock exec NEW -- true`;
#             rootless, as the ordinary bench user, each tool on its default network
#   docker    `docker commit SRC IMAGE` (the container's layer becomes an image layer), then
#             `docker run -d --name NEW --user agent IMAGE sleep infinity` + `docker exec NEW true`;
#             root daemon, overlay2, the default bridge network
#   cp floor  `cp -a --reflink=auto` of the same upper layer and home by root on the host, into
#             a directory on the same filesystem: what the copying alone costs, a reference
# SRC is a stopped sandbox of template 'shell', and a stopped container of the same root
# filesystem imported into docker (bench/lib.sh), in which the agent (uid 1000, 'agent') made
# the same changes, untimed: for a size of S MiB, 3/4 of it as 1 MiB files in /opt/data (written
# with sudo: in the sandbox's layer) and 1/4 as a tree of small files (2, 8, 16 and 39 KiB, 100
# to a directory) in ~/.cache/bench-tree (the sandbox's home), all random (os.urandom, generated
# inside, incompressible), and /usr/share/doc removed (a whiteout), /usr/share/common-licenses
# replaced by a new directory (an opaque directory) and a user.* xattr on both data roots.
# Timed: wall clock of each command (bash's EPOCHREALTIME around it); the airlock commands run
# as the user through setpriv (no PAM session), docker's as root. "total" is fork (or commit)
# to the first command's exit, the median of the per-run sums. Each fork is checked afterwards,
# untimed, against its source (file count, bytes, a hash, the whiteout, the opaque directory,
# the xattrs; docker commit keeps no user.* xattrs, moby/moby#35699: noted, not failed) and
# removed (airlock rm -f; docker rm -f + rmi), outside the timing. No caches are dropped: the
# source's files are in the page cache for every peer alike; a `sync` before each peer's turn
# writes out the previous one's dirty pages. Medians of RUNS runs; within a run the peers are
# interleaved and their order rotates from run to run.
#
# Usage (as root): bench/fork.sh [RUNS]   (default 3). BENCH_SIZES the sizes in MiB (default
# "100 1000"), BENCH_USER the Airlock user, AIRLOCK the binary. Needs ~3x the largest size free.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-3}"
sizes="${BENCH_SIZES:-100 1000}"
why="a docker daemon and the benchmark user need it"
. "$here/bench/lib.sh"
if ! as_user "$airlock" fork --help 2>/dev/null | grep -q 'airlock fork'; then
    echo "$airlock has no 'fork' command (build and install the current tree)" >&2
    exit 1
fi

src="bench-fork-src"          # the source sandbox and container; the forks are bench-fork-RUN
image="airlock-bench-shell"   # the docker image of the 'shell' template (bench/lib.sh)
committed="airlock-bench-fork" # docker commit's images: airlock-bench-fork:SIZE-RUN
work="$(mktemp -d /tmp/airlock-bench-fork.XXXXXX)"
chmod 755 "$work"
ws="$home/bench-fork-ws"
floor="$home/.bench-fork-floor" # the cp floor's copies: the same filesystem as the state directory
results="$work/results"
cd "$work"

# Everything this script may have made, and nothing else: sandboxes and containers named
# bench-fork-*, the images of `docker commit` here, the floor's copies.
remove_all() {
    local name
    for name in $(as_user "$airlock" ls -q 2>/dev/null | grep '^bench-fork-' || true); do
        as_user "$airlock" rm -f "$name" >/dev/null 2>&1 || true
    done
    if docker info >/dev/null 2>&1; then
        docker ps -aq --filter 'name=^bench-fork-' | xargs -r docker rm -f >/dev/null 2>&1 || true
        docker images -q "$committed" | sort -u | xargs -r docker rmi -f >/dev/null 2>&1 || true
    fi
    rm -rf "$floor"
}
cleanup() {
    remove_all
    stop_dockerd
    rm -rf "$work" "$ws"
}
trap cleanup EXIT
start_dockerd "$work"
import_template shell "$image" "$work"
remove_all
as_user mkdir -p "$ws"

# The airlock commands that are timed: the user's ids set directly, as bench/timeit.py does.
uid=$(id -u "$user")
gid=$(id -g "$user")
user_direct() {
    setpriv --reuid="$uid" --regid="$gid" --clear-groups env -i HOME="$home" USER="$user" \
        PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 AIRLOCK_HOME="$state" "$@"
}
# timed SIZE PEER METRIC COMMAND...: runs COMMAND (its output in $work/out), records its seconds
# as a line SIZE PEER METRIC SECONDS RUN of the results ($run: the run under way).
timed() {
    local size="$1" peer="$2" metric="$3" t0 t1
    shift 3
    t0=$EPOCHREALTIME
    if ! "$@" >"$work/out" 2>"$work/err"; then
        echo "failed: $*" >&2
        tail -20 "$work/err" >&2
        exit 1
    fi
    t1=$EPOCHREALTIME
    seconds=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
    echo "$size $peer $metric $seconds $run" >>"$results"
}

# Inside, as the agent: gen KIND ROOT MIB writes the random files; check prints what a fork
# must have kept; setup (GEN BLOBS TREE CHECK) makes the changes and prints check's lines.
gen=$(
    cat <<'PY'
import os, sys
kind, root, mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(root, exist_ok=True)
if kind == "blobs":
    for i in range(mib):
        with open(f"{root}/blob-{i:05d}.bin", "wb") as f:
            f.write(os.urandom(1 << 20))
else:
    sizes, left, i = [2048, 8192, 16384, 39936], mib << 20, 0
    while left > 0:
        d = f"{root}/d{i // 100:04d}"
        os.makedirs(d, exist_ok=True)
        n = min(sizes[i % 4], left)
        with open(f"{d}/f{i % 100:03d}", "wb") as f:
            f.write(os.urandom(n))
        left, i = left - n, i + 1
os.setxattr(root, "user.bench", b"fork")
PY
)
check=$(
    cat <<'PY'
import hashlib, os
def tree(p):
    n = s = 0
    for d, _, files in os.walk(p):
        for f in files:
            n, s = n + 1, s + os.lstat(os.path.join(d, f)).st_size
    return f"{n} files, {s} bytes"
def attr(p):
    try:
        return os.getxattr(p, "user.bench").decode()
    except OSError as e:
        return f"none ({e.strerror})"
def md5(p):
    with open(p, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()[:12]
home = os.path.expanduser("~/.cache/bench-tree")
print(f"/opt/data: {tree('/opt/data')}, md5 {md5('/opt/data/blob-00000.bin')}, xattr {attr('/opt/data')}")
print(f"~/.cache/bench-tree: {tree(home)}, md5 {md5(home + '/d0000/f000')}, xattr {attr(home)}")
print("/usr/share/doc:", "present" if os.path.lexists("/usr/share/doc") else "removed")
print("/usr/share/common-licenses:", " ".join(sorted(os.listdir("/usr/share/common-licenses"))))
PY
)
setup='set -e
sudo python3 -c "$1" blobs /opt/data "$2"
python3 -c "$1" tree "$HOME/.cache/bench-tree" "$3"
sudo rm -rf /usr/share/doc /usr/share/common-licenses
sudo mkdir /usr/share/common-licenses
echo kept | sudo tee /usr/share/common-licenses/ONLY >/dev/null
python3 -c "$4"'

failed_checks=0
declare -A lost_xattrs=()
# verify SIZE PEER OUTPUT-FILE: the fork's check lines against its source's. The xattrs are
# told apart: docker's layers keep none but security.capability (moby/moby#35699), a known
# difference noted rather than failed.
verify() {
    local strip='s/, xattr .*//'
    if ! cmp -s <(sed "$strip" "$work/source-$2") <(sed "$strip" "$3"); then
        echo "  CHECK FAILED: $2's fork at $1 MiB differs from its source:" >&2
        diff "$work/source-$2" "$3" | sed 's/^/    /' >&2 || true
        failed_checks=$((failed_checks + 1))
    elif ! cmp -s "$work/source-$2" "$3"; then
        if [ -z "${lost_xattrs[$2]:-}" ]; then
            echo "  note: $2's fork lost the user.* xattrs:"
            grep xattr "$3" | sed 's/^/    /'
        fi
        lost_xattrs[$2]=1
    fi
}
run_airlock() { # SIZE RUN
    local fork="bench-fork-$2"
    timed "$1" airlock fork user_direct "$airlock" fork "$src" "$fork" --json
    # --json: bytesCopied, and seconds by fork's own clock (the copies and a du of them)
    python3 -c 'import json, sys; j = json.load(open(sys.argv[1]))
print(sys.argv[2], "airlock bytes", j["bytesCopied"], sys.argv[3])
print(sys.argv[2], "airlock own", j["seconds"], sys.argv[3])' "$work/out" "$1" "$2" >>"$results"
    timed "$1" airlock start user_direct "$airlock" run -d --name "$fork" shell "$ws"
    timed "$1" airlock exec user_direct "$airlock" exec "$fork" -- true
    as_user "$airlock" exec "$fork" -- python3 -c "$check" >"$work/check"
    verify "$1" airlock "$work/check"
    as_user "$airlock" rm -f "$fork" >/dev/null
}
run_docker() { # SIZE RUN
    local fork="bench-fork-$2" tag="$committed:$1-$2"
    timed "$1" docker fork docker commit "$src" "$tag"
    timed "$1" docker start docker run -d --name "$fork" --user agent "$tag" sleep infinity
    timed "$1" docker exec docker exec "$fork" true
    echo "$1 docker bytes $(($(docker image inspect -f '{{.Size}}' "$tag") - base_size)) $2" >>"$results"
    docker exec "$fork" python3 -c "$check" >"$work/check"
    verify "$1" docker "$work/check"
    docker rm -f "$fork" >/dev/null
    docker rmi "$tag" >/dev/null
}
run_floor() { # SIZE RUN
    local dir="$state/sandboxes/$src"
    mkdir -p "$floor"
    timed "$1" floor fork cp -a --reflink=auto -- "$dir/upper" "$dir/home" "$floor/"
    rm -rf "$floor"
}

base_size=$(docker image inspect -f '{{.Size}}' "$image")
echo
fstype() { df --output=fstype "$1" | tail -1; }
docker_root=$(docker info -f '{{.DockerRootDir}}')
echo "airlock state: $(fstype "$state") ($state)"
echo "docker root:   $(fstype "$docker_root") ($docker_root, $(docker info -f '{{.Driver}}{{range .DriverStatus}}{{if eq (index . 0) "Native Overlay Diff"}}, native overlay diff {{index . 1}}{{end}}{{end}}'))"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
peers=(airlock docker floor)
for size in $sizes; do
    blobs=$((size * 3 / 4))
    small=$((size - blobs))
    echo
    echo "$size MiB: setting up $src in airlock and in docker ($blobs x 1 MiB in /opt/data, $small MiB of small files in ~/.cache/bench-tree; not timed)"
    as_user "$airlock" run -d --name "$src" shell "$ws" >/dev/null
    as_user "$airlock" exec "$src" -- bash -c "$setup" bash "$gen" "$blobs" "$small" "$check" >"$work/source-airlock"
    as_user "$airlock" stop "$src" >/dev/null
    docker run --name "$src" --user agent "$image" bash -c "$setup" bash "$gen" "$blobs" "$small" "$check" \
        >"$work/source-docker"
    sed 's/^/  airlock source: /' "$work/source-airlock"
    sed 's/^/  docker source:  /' "$work/source-docker"
    sync
    for run in $(seq "$runs"); do
        order=()
        for i in 0 1 2; do order+=("${peers[$(((run + i) % 3))]}"); done
        line="  run $run:"
        for peer in "${order[@]}"; do
            sync
            "run_$peer" "$size" "$run"
            line+=" $peer$(awk -v s="$size" -v p="$peer" -v r="$run" '$1 == s && $2 == p && $5 == r &&
                $3 != "bytes" && $3 != "own" { printf " %s %.2fs", $3, $4 }' "$results");"
        done
        echo "$line"
    done
    as_user "$airlock" rm -f "$src" >/dev/null
    docker rm -f "$src" >/dev/null
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "medians of $runs runs ($(nproc) cores; airlock: $airlock as $user; docker $(docker version -f '{{.Server.Version}}'))"
python3 - "$results" <<'PY'
import statistics, sys
from collections import defaultdict
rows = defaultdict(list)  # (size, peer, metric) -> values
for line in open(sys.argv[1]):
    size, peer, metric, value, _ = line.split()
    rows[int(size), peer, metric].append(float(value))
med = lambda k: statistics.median(rows[k]) if rows.get(k) else None
def total(size, peer, metrics):  # the median of the per-run sums
    values = [rows[size, peer, m] for m in metrics]
    return statistics.median(map(sum, zip(*values)))
for size in sorted({k[0] for k in rows}):
    print(f"\n{size} MiB of changes")
    print(f"  {'':<20}{'fork/commit':>12}{'start':>9}{'1st exec':>10}{'start+exec':>12}{'total':>9}{'bytes':>10}")
    figures = {}
    for peer, label in (("airlock", "airlock fork+run"), ("docker", "docker commit+run")):
        f = {m: med((size, peer, m)) for m in ("fork", "start", "exec")}
        f["start+exec"] = total(size, peer, ("start", "exec"))
        f["total"] = total(size, peer, ("fork", "start", "exec"))
        f["bytes"] = med((size, peer, "bytes"))
        figures[peer] = f
        print(f"  {label:<20}{f['fork']:>11.3f}s{f['start']:>8.3f}s{f['exec']:>9.3f}s{f['start+exec']:>11.3f}s"
              f"{f['total']:>8.3f}s{f['bytes'] / 1e6:>7.0f} MB")
    a, d = figures["airlock"], figures["docker"]
    r = lambda m: f"{a[m] / d[m]:.2f}x"
    print(f"  {'airlock / docker':<20}{r('fork'):>12}{r('start'):>9}{r('exec'):>10}{r('start+exec'):>12}{r('total'):>9}")
    own, floor = med((size, "airlock", "own")), med((size, "floor", "fork"))
    print(f"  airlock fork: {a['fork']:.3f}s wall, {own:.3f}s by its own --json clock; root's cp -a of the same")
    print(f"  layer and home on the host: {floor:.3f}s ({floor / a['fork'] * 100:.0f}% of the fork's wall clock);"
          f" {a['bytes'] / a['fork'] / 1e6:.0f} MB/s through fork")
PY
echo
echo "bytes: airlock's bytesCopied (du of the new layer and home); docker's committed image less"
echo "the base image. airlock as $user (rootless), docker as root. No caches dropped."
for peer in airlock docker; do
    [ -z "${lost_xattrs[$peer]:-}" ] || echo "$peer's forks lost the user.* xattrs of the source"
done
[ "$failed_checks" = 0 ] && echo "every fork checked against its source: files, bytes, a hash, the whiteout, the opaque dir" ||
    { echo "$failed_checks fork checks FAILED (above)"; exit 1; }
