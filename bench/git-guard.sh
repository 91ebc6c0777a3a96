#!/bin/bash
# What the git guard costs git inside a sandbox, side by side on this machine: the same
# repository of FILES files (default 100,000), the same image, one sandbox with the filter in
# front of .git (the default) and one without it (--unprotect .git), and the host's own git.
#
#   git status      (a clean tree; the index read, every file's stat)
#   git commit      (one changed file: objects, index, ref and log written)
#
# Every command goes through `airlock exec`, whose own cost is measured too (`true`), so the
# difference between the two sandboxes is the filter's.
#
# Usage (as root): bench/git-guard.sh [RUNS] [FILES]   (BENCH_USER picks the Airlock user)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-9}"
files="${2:-100000}"
why="the benchmark user needs it"
. "$here/bench/lib.sh"

ws="$home/bench-git-guard"
if [ "$(as_user git -C "$ws" ls-files 2>/dev/null | wc -l)" != "$files" ]; then
    echo "making a repository of $files files in $ws (not timed)"
    as_user rm -rf "$ws"
    as_user mkdir -p "$ws"
    as_user python3 - "$ws" "$files" <<'PY'
import os, sys
root, count = sys.argv[1], int(sys.argv[2])
for i in range(count):
    d = os.path.join(root, f"d{i // 100:04d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i % 100:02d}.txt"), "w") as f:
        f.write(f"file {i}\n")
PY
    as_user git -C "$ws" init -q
    as_user git -C "$ws" add -A
    as_user git -C "$ws" -c user.name=bench -c user.email=bench@example.com commit -qm files
fi
as_user "$airlock" template build shell >/dev/null
as_user "$airlock" rm -f gitbench-guard gitbench-open >/dev/null 2>&1 || true
as_user "$airlock" run -d --name gitbench-guard shell "$ws" >/dev/null
as_user "$airlock" run -d --name gitbench-open --unprotect .git shell "$ws" >/dev/null
trap 'as_user "$airlock" rm -f gitbench-guard gitbench-open >/dev/null 2>&1 || true' EXIT
mounted=$(as_user "$airlock" exec gitbench-guard -- grep -c " $ws/.git fuse" /proc/mounts || true)
unmounted=$(as_user "$airlock" exec gitbench-open -- grep -c " $ws/.git fuse" /proc/mounts || true)
[ "$mounted" = 1 ] && [ "$unmounted" = 0 ] || { echo "expected the filter in one sandbox only" >&2; exit 1; }
# The index records files' owners: the host user and the agent (1000 inside) see
# different ones, and each side would re-read every file after the other. Minimal stat checks
# keep the three comparable.
git_as_agent="git -c core.checkStat=minimal -c user.name=bench -c user.email=bench@example.com -C $ws"
# Warm the index and the page cache for all three.
for s in gitbench-guard gitbench-open; do as_user "$airlock" exec "$s" -- $git_as_agent status >/dev/null; done
as_user $git_as_agent status >/dev/null

echo
echo "git status on $files files ($(nproc) cores, $runs runs, interleaved)"
python3 "$here/bench/timeit.py" "$runs" \
    "filter@$user=AIRLOCK_HOME=$state $airlock exec gitbench-guard -- $git_as_agent status" \
    "no-filter@$user=AIRLOCK_HOME=$state $airlock exec gitbench-open -- $git_as_agent status" \
    "exec-true@$user=AIRLOCK_HOME=$state $airlock exec gitbench-guard -- true" \
    "host@$user=$git_as_agent status"

echo
echo "git commit of one changed file"
python3 "$here/bench/timeit.py" "$runs" \
    "filter@$user=AIRLOCK_HOME=$state $airlock exec gitbench-guard -- bash -c 'echo g{i} >> $ws/d0000/f00.txt && $git_as_agent commit -qam g{i}'" \
    "no-filter@$user=AIRLOCK_HOME=$state $airlock exec gitbench-open -- bash -c 'echo o{i} >> $ws/d0000/f00.txt && $git_as_agent commit -qam o{i}'" \
    "exec-true@$user=AIRLOCK_HOME=$state $airlock exec gitbench-guard -- true" \
    "host@$user=echo h{i} >> $ws/d0000/f00.txt && $git_as_agent commit -qam h{i}"
