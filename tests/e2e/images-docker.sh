#!/bin/bash
# End-to-end checks of images against Docker itself. Run as root by scripts/test.sh (a Docker
# daemon needs root here); Airlock runs as the ordinary user $E2E_USER. A private dockerd (its
# own data root and socket, no bridge, containers with --network none) loads the image
# images.sh builds layer by layer (whiteouts, an opaque directory, a hard link, a link to /, a
# set-uid binary, User/Env/WorkingDir); `docker save` writes it out; Airlock pulls that
# docker-archive and starts a sandbox from it; the same probe runs in `docker run` and in the
# sandbox, and each line must read the same.
# Prints "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
AIRLOCK="${AIRLOCK:-airlock}"
user="${E2E_USER:-airlock-e2e}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

work=$(mktemp -d /tmp/airlock-e2e-images-docker.XXXXXX)
chmod 755 "$work"
user_home=$(getent passwd "$user" | cut -d: -f6)
dockerd_pid=""
as_user() {
    runuser -u "$user" -- env -i HOME="$user_home" PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \
        AIRLOCK_HOME="$user_home/.airlock-e2e-images-docker" "$AIRLOCK" "$@"
}
cleanup() {
    as_user rm -f img-docker-e2e >/dev/null 2>&1
    as_user reset -f >/dev/null 2>&1
    [ -n "$dockerd_pid" ] && kill "$dockerd_pid" 2>/dev/null && wait "$dockerd_pid" 2>/dev/null
    rm -rf "$work" "$user_home/e2e-images-docker-ws" "$user_home/.airlock-e2e-images-docker"
}
trap cleanup EXIT
export DOCKER_HOST="unix://$work/docker.sock"

echo "== a private Docker daemon"
dockerd --data-root "$work/docker" --exec-root "$work/exec" --pidfile "$work/dockerd.pid" -H "$DOCKER_HOST" \
    --bridge=none --iptables=false --ip6tables=false >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 150); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
expect "dockerd answers on its own socket" "yes" "$(docker info >/dev/null 2>&1 && echo yes)"
docker info >/dev/null 2>&1 || { tail -n 5 "$work/dockerd.log"; report; exit; }

echo "== the image, loaded into Docker and saved by it"
mmdebstrap --quiet --variant=essential --mode=unshare --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    bookworm "$work/base.tar" http://deb.debian.org/debian \
    >/dev/null 2>&1 || fail "mmdebstrap of the base layer"
# Without the member written through the link to /: dockerd unpacks such a layer, and then
# fails its own `docker save` of it (it looks for the file through the link, on the host).
python3 "$here/make_oci_image.py" "$work/layout" v1 "$work/base.tar" --no-write-through >/dev/null
skopeo --insecure-policy copy -q "oci:$work/layout:v1" "docker-archive:$work/loaded.tar:e2e/app:v1" >/dev/null
docker load -q -i "$work/loaded.tar" >/dev/null
docker save -o "$work/saved.tar" e2e/app:v1
chmod 644 "$work/saved.tar"
expect "docker save wrote the image" "yes" "$([ -s "$work/saved.tar" ] && echo yes)"
expect_match "airlock (as $user) pulls docker save's archive" '^[0-9a-f]{64}$' \
    "$(as_user image pull "docker-archive:$work/saved.tar" 2>/dev/null)"

# The local Docker store, as a user of the daemon's group pulls from it (DOCKER_HOST names it).
chgrp "$(id -gn "$user")" "$work/docker.sock"
expect "docker-daemon: (the daemon of DOCKER_HOST) gives the image docker save wrote" \
    "$(as_user image inspect "docker-archive:$work/saved.tar" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"])')" \
    "$(runuser -u "$user" -- env -i HOME="$user_home" PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \
        AIRLOCK_HOME="$user_home/.airlock-e2e-images-docker" DOCKER_HOST="$DOCKER_HOST" "$AIRLOCK" image pull \
        docker-daemon:e2e/app:v1 >/dev/null 2>"$work/daemon.err" &&
        as_user image inspect docker-daemon:e2e/app:v1 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"])')"

echo "== each thing the layers do shows in the sandbox as in docker run"
# One line per property; owners by number (the sandbox names uid 1000 `agent`, Docker nothing;
# the agent's group is its own, where Docker gives an unnamed uid the group 0).
probe='id -u; echo "$APP_MODE"; ls -A /opt/app | xargs; ls -A /opt/app/data | xargs; cat /opt/app/data/* | xargs
[ "$(stat -c %i /opt/app/hardlink)" = "$(stat -c %i /etc/airlock-test/hardlink-source)" ] && echo one-file || echo two-files
readlink /rootlink; stat -c "%A %u:%g" /usr/local/bin/suid-id
stat -c "%A %u:%g" /home/owned; cat /home/owned/notes; test -e /opt/app/gone && echo gone-shows || echo gone-hidden
test -e /opt/app/dir-to-delete && echo dir-shows || echo dir-hidden'
docker run --rm --network none e2e/app:v1 "$probe" >"$work/docker.out" 2>&1
mkdir -p "$user_home/e2e-images-docker-ws" && chown "$user:" "$user_home/e2e-images-docker-ws"
as_user run --name img-docker-e2e --image "docker-archive:$work/saved.tar" shell "$user_home/e2e-images-docker-ws" \
    -- -c "$probe" >"$work/airlock.out" 2>"$work/airlock.err"
expect "companion: docker run printed every line of the probe" "12" "$(grep -c '' "$work/docker.out")"
names=(uid "Env APP_MODE" "whiteouts in /opt/app" "the opaque directory" "its content" "the hard link"
    "the link to /" "the set-uid binary" "a directory owned by 1000" "its file"
    "a whited-out file" "a whited-out directory")
for i in "${!names[@]}"; do
    line=$((i + 1))
    expect "${names[$i]}: as in docker run" "$(sed -n "${line}p" "$work/docker.out")" \
        "$(sed -n "${line}p" "$work/airlock.out")"
done
[ -s "$work/airlock.out" ] || tail -n 3 "$work/airlock.err"

echo "== airlock save's archive, loaded by docker load"
# The sandbox above, changed by its root (a file added, an image directory removed), stopped
# and saved by the user; Docker loads the file and runs it.
as_user exec -u root img-docker-e2e -- sh -c 'mkdir -p /opt/saved && echo saved-by-airlock > /opt/saved/marker && rm -rf /opt/app/data' \
    >/dev/null 2>&1
as_user stop img-docker-e2e >/dev/null 2>&1
saved="$user_home/e2e-airlock-saved.tar"
as_user save img-docker-e2e -o "$saved" >/dev/null 2>"$work/save.err"
expect "airlock save -o writes the archive" "yes" "$([ -s "$saved" ] && echo yes)"
[ -s "$saved" ] || tail -n 3 "$work/save.err"
expect "docker load reads it" "Loaded image: airlock/img-docker-e2e:latest" "$(docker load -i "$saved" 2>&1 | tail -n 1)"
expect "docker run of it shows the sandbox's changes" "saved-by-airlock removed absent" \
    "$(docker run --rm --network none airlock/img-docker-e2e:latest sh -c \
        "cat /opt/saved/marker; test -e /opt/app/data && echo present || echo removed
        test -e '$user_home/e2e-images-docker-ws' && echo workspace-present || echo absent" 2>&1 | xargs)"
ca_body=$(sed -n 2p "$user_home/.airlock-e2e-images-docker/ca/ca.pem" 2>/dev/null)
expect "  and never Airlock's CA" "0" "$(tar -xOf "$saved" 2>/dev/null | grep -c -F "${ca_body:-no-ca-found}")"
expect "  companion: the CA's line is one the search finds" "1" "$(grep -c -F "${ca_body:-no-ca-found}" "$user_home/.airlock-e2e-images-docker/ca/ca.pem")"
rm -f "$saved"

report
