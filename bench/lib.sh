# Shared by the benchmarks: run as root, with Airlock's side as an ordinary user (created if
# missing, with subordinate ids) and its own state directory. Source it after setting `why`
# (what root is needed for); it sets user, home, airlock and as_user.
[ "$(id -u)" = 0 ] || { echo "run as root ($why)" >&2; exit 2; }
user="${BENCH_USER:-airlock-e2e}"
airlock="${AIRLOCK:-/usr/local/bin/airlock}"
id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
grep -q "^$user:" /etc/subuid || usermod --add-subuids 200000-265535 --add-subgids 200000-265535 "$user"
home="$(getent passwd "$user" | cut -d: -f6)"
state="$home/.airlock-bench"
as_user() { runuser -u "$user" -- env HOME="$home" AIRLOCK_HOME="$state" "$@"; }

# start_dockerd WORK: a docker daemon to compare with (docker.io installed if missing); one that
# already answers is used as it is. stop_dockerd ends only the one started here.
dockerd_pid=""
start_dockerd() {
    command -v dockerd >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null
    docker info >/dev/null 2>&1 && return
    echo "starting dockerd (log: $1/dockerd.log)"
    dockerd >"$1/dockerd.log" 2>&1 &
    dockerd_pid=$!
    for _ in $(seq 150); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
    docker info >/dev/null 2>&1 || { tail -20 "$1/dockerd.log" >&2; echo "dockerd did not start" >&2; exit 1; }
}
stop_dockerd() {
    [ -n "$dockerd_pid" ] || return 0
    kill "$dockerd_pid" 2>/dev/null || true
    wait "$dockerd_pid" 2>/dev/null || true
}

# import_template TEMPLATE IMAGE WORK: builds (or finds) Airlock's image of TEMPLATE as the user
# and imports it into docker as IMAGE, so both peers run the very same files; sets digest and
# rootfs. The rootfs was unpacked in the sandbox's user namespace: its root is the user's first
# subordinate id, its 1000 the user. The ids are shifted back (Airlock's mapping: 0-999 ->
# start.., 1000 -> the user, 1001.. -> start+1000..) so docker sees the owners the sandbox does.
import_template() {
    local template="$1" image="$2" work="$3"
    echo "building (or finding) the '$template' image as $user (not timed)"
    digest=$(as_user "$airlock" template build "$template")
    rootfs="$state/images/$digest/rootfs"
    [ -d "$rootfs" ] || { echo "no root filesystem at $rootfs" >&2; exit 1; }
    [ "$(docker image inspect -f '{{index .Config.Labels "airlock.digest"}}' "$image" 2>/dev/null)" = "$digest" ] &&
        return
    echo "importing $rootfs into docker as $image"
    idmap %U "$(id -u "$user")" "$(subordinate /etc/subuid)" >"$work/owner-map"
    idmap %G "$(id -g "$user")" "$(subordinate /etc/subgid)" >"$work/group-map"
    tar --numeric-owner --owner-map="$work/owner-map" --group-map="$work/group-map" -C "$rootfs" -c . |
        docker import --change "LABEL airlock.digest=$digest" - "$image" >/dev/null
}
idmap() { # FIND-FORMAT HOST-ID SUBORDINATE-START
    find "$rootfs" -xdev -printf "$1\n" | sort -un | awk -v host="$2" -v start="$3" '
        { c = $1 }
        $1 >= start && $1 < start + 1000 { c = $1 - start }
        $1 >= start + 1000 && $1 < start + 65536 { c = $1 - start + 1 }
        $1 == host { c = 1000 }
        { print "+" $1 " +" c }'
}
subordinate() { awk -F: -v u="$user" -v i="$(id -u "$user")" '$1 == u || $1 == i { print $2; exit }' "$1"; }
