#!/bin/bash
# End-to-end tests of container images, as an ordinary user: a registry on loopback (Debian's
# docker-registry, TLS from a test CA, one anonymous and one behind a password) seeded with an
# image this suite builds layer by layer (make_oci_image.py: whiteouts, an opaque directory, a
# hard link, a link to /, a set-uid binary, User/Env/WorkingDir/Entrypoint); pulls from it, from
# an OCI layout and from a docker-archive; the errors a user meets; and sandboxes started from
# the image, where each of those shows as in the image.
# Prints "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
AIRLOCK="${AIRLOCK:-airlock}"
export AIRLOCK_HOME="$HOME/.airlock-e2e-images"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

work=$(mktemp -d /tmp/airlock-e2e-images.XXXXXX)
registry_pids=()
cleanup() {
    a rm -f img-e2e >/dev/null 2>&1
    a rm -f from-e2e >/dev/null 2>&1
    a rm -f img-net >/dev/null 2>&1
    a rm -f img-podman >/dev/null 2>&1
    rm -f "$HOME/airlock-e2e-from-escape"
    for pid in "${registry_pids[@]}"; do kill "$pid" 2>/dev/null; done
    if [ -d "$work/podman/data" ]; then
        env XDG_DATA_HOME="$work/podman/data" XDG_RUNTIME_DIR="$work/podman/run" podman unshare rm -rf "$work/podman/data" 2>/dev/null
    fi
    kill "$(cat "$work/podman/run/libpod/tmp/pause.pid" 2>/dev/null)" 2>/dev/null
    rm -rf "$work" "$HOME/e2e-images-ws"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== a registry on loopback, and an image built layer by layer"
bash "$here/certs.sh" "$work" "IP:127.0.0.1,DNS:localhost"
# skopeo (Go) trusts what SSL_CERT_FILE holds: the system's CAs and the test CA.
cat /etc/ssl/certs/ca-certificates.crt "$work/ca.pem" > "$work/bundle.pem"
export SSL_CERT_FILE="$work/bundle.pem"
python3 -c 'import crypt; print("e2e:" + crypt.crypt("right-password", crypt.mksalt(crypt.METHOD_BLOWFISH)))' \
    > "$work/htpasswd" 2>/dev/null
start_registry() { # NAME PORT [auth]
    local dir="$work/$1"
    mkdir -p "$dir/storage"
    {
        printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n' "$dir/storage"
        printf 'http:\n  addr: 127.0.0.1:%s\n  tls:\n    certificate: %s\n    key: %s\n' "$2" "$work/server.pem" "$work/server.key"
        [ "${3:-}" = auth ] && printf 'auth:\n  htpasswd:\n    realm: e2e\n    path: %s\n' "$work/htpasswd"
        [ "${3:-}" = token ] && printf 'auth:\n  token:\n    realm: https://127.0.0.1:%s/token\n    service: e2e-registry\n    issuer: e2e-issuer\n    rootcertbundle: %s\n' \
            "$token_port" "$work/token.pem"
    } > "$dir/config.yml"
    docker-registry serve "$dir/config.yml" > "$dir/log" 2>&1 &
    registry_pids+=($!)
    for _ in $(seq 50); do curl -s --cacert "$work/ca.pem" "https://127.0.0.1:$2/v2/" >/dev/null && return 0; sleep 0.1; done
    tail -n 3 "$dir/log"
    return 1
}
open_port=$(free_port)
auth_port=$(free_port)
# A third, behind a token server as Docker Hub and GHCR are (tokens signed by a key of its own).
token_port=$(free_port)
bearer_port=$(free_port)
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=e2e token signer" -keyout "$work/token.key" \
    -out "$work/token.pem" 2>/dev/null
python3 "$here/token_server.py" "$token_port" "$work/server.pem" "$work/server.key" "$work/token.pem" \
    "$work/token.key" e2e:right-password >"$work/token.log" 2>&1 &
registry_pids+=($!)
start_registry open "$open_port" && start_registry locked "$auth_port" auth && start_registry bearer "$bearer_port" token
expect "two registries answer on loopback (one anonymous, one with a password)" "yes" \
    "$(curl -s --cacert "$work/ca.pem" "https://127.0.0.1:$open_port/v2/" >/dev/null &&
        [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$work/ca.pem" "https://127.0.0.1:$auth_port/v2/")" = 401 ] &&
        echo yes)"

# With Python, for the MCP server's image.
mmdebstrap --quiet --variant=essential --include=python3 --mode=unshare \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' bookworm "$work/base.tar" http://deb.debian.org/debian \
    >/dev/null 2>&1 || fail "mmdebstrap of the base layer"
v1_digest=$(python3 "$here/make_oci_image.py" "$work/layout" v1 "$work/base.tar")
python3 "$here/make_oci_image.py" "$work/layout" v2 "$work/base.tar" --extra more >/dev/null
open="127.0.0.1:$open_port"
push() { skopeo --insecure-policy copy -q "$@" >/dev/null 2>&1; }
push "oci:$work/layout:v1" "docker://$open/e2e/app:v1" && push "oci:$work/layout:v2" "docker://$open/e2e/app:v2" &&
    push --dest-creds e2e:right-password "oci:$work/layout:v1" "docker://127.0.0.1:$auth_port/e2e/app:v1" &&
    push --dest-creds e2e:right-password "oci:$work/layout:v1" "docker://127.0.0.1:$bearer_port/e2e/app:v1"
expect "the test image is in the three registries" "0" "$?"
expect_match "companion: the third asks for a token from its token server (Bearer realm)" \
    "Bearer realm=\"https://127.0.0.1:$token_port/token\"" \
    "$(curl -s -D - -o /dev/null --cacert "$work/ca.pem" "https://127.0.0.1:$bearer_port/v2/" | tr -d '\r')"

echo "== kill -9 of a pull while it unpacks"
"$AIRLOCK" image pull "$open/e2e/app:v1" >/dev/null 2>&1 &
pull_pid=$!
for _ in $(seq 200); do compgen -G "$AIRLOCK_HOME/layers/.partial-*" >/dev/null && break; sleep 0.05; done
seen=$(compgen -G "$AIRLOCK_HOME/layers/.partial-*" >/dev/null && echo unpacking || echo "not seen")
kill -KILL "$pull_pid" 2>/dev/null; wait "$pull_pid" 2>/dev/null
sleep 0.5
expect "companion: the pull was caught while it unpacked" "unpacking" "$seen"
expect "no fetch or unpack of the killed pull runs on" "" \
    "$(pgrep -af "_unpack-layer --state - $AIRLOCK_HOME|skopeo .*$AIRLOCK_HOME/blobs" | grep -v pgrep)"
expect "no image was recorded half-made" "" "$(ls "$AIRLOCK_HOME/pulled" 2>/dev/null)"
a image pull "$open/e2e/app:v1" >/dev/null 2>&1
expect "the next pull sweeps what it left and pulls" "1 " \
    "$(a image ls --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))') $(ls -A "$AIRLOCK_HOME/layers" | grep '^\.' ; ls -A "$AIRLOCK_HOME/pulls" | grep -v '^.lock$')"
a image rm "$open/e2e/app:v1" >/dev/null 2>&1

echo "== pulling"
out=$(a image pull "$open/e2e/app:v1" 2>"$work/pull.err")
expect_match "image pull from the registry prints the image ID" '^[0-9a-f]{64}$' "$out"
expect "it shows progress: each blob, each layer unpacked" "yes" \
    "$(grep -q 'Copying blob' "$work/pull.err" && grep -q 'layer 3/3 .*unpacked' "$work/pull.err" && echo yes)"
second=$(a image pull "$open/e2e/app:v2" 2>&1 >/dev/null)
expect "a second image that shares three layers fetches and unpacks only its own" "1 3" \
    "$(printf '%s\n' "$second" | grep -c 'unpacked .* in ') $(printf '%s\n' "$second" | grep -c 'already unpacked')"
expect "image ls lists both" "2" "$(a image ls --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
expect "template ls lists them where templates are" "2" \
    "$(a template ls --json | python3 -c 'import json,sys; print(sum(r["source"].startswith("image") for r in json.load(sys.stdin)))')"
expect "image inspect shows the config: User, Env, WorkingDir, Entrypoint, Cmd" \
    "1000 APP_MODE=test /opt/app /bin/sh -c echo entry" \
    "$(a image inspect "$open/e2e/app:v1" | python3 -c 'import json,sys; i=json.load(sys.stdin); print(i["user"], i["env"][1], i["workingDir"], *i["entrypoint"], *i["cmd"])')"
pinned="$open/e2e/app@$v1_digest"
expect_match "a reference pinned by its right digest pulls" '^[0-9a-f]{64}$' "$(a image pull "$pinned" 2>/dev/null)"

echo "== what goes wrong says so in one line, and leaves nothing"
before=$(ls "$AIRLOCK_HOME/pulled" "$AIRLOCK_HOME/layers" | sort | md5sum)
wrong="sha256:$(printf '0%.0s' $(seq 64))"
check_error "a digest pinned wrong is refused" "not found" a image pull "$open/e2e/app@$wrong"
check_error "an unknown image" "image $open/e2e/nothing:v1 not found" a image pull "$open/e2e/nothing:v1"
check_error "an unreachable registry" "cannot reach the registry" a image pull "127.0.0.1:$(free_port)/e2e/app:v1"
printf 'e2e:wrong-password\n' | a secret set e2e-registry --host 127.0.0.1 --header Authorization >/dev/null 2>&1
check_error "a wrong password" "refused the credentials" a image pull --creds-secret e2e-registry "127.0.0.1:$auth_port/e2e/app:v1"
check_error "no password at all" "refused the credentials" a image pull "127.0.0.1:$auth_port/e2e/app:v1"
check_error "a malformed reference" "invalid image reference" a image pull "E2E/App"
expect "nothing was left by the failed pulls" "$before" "$(ls "$AIRLOCK_HOME/pulled" "$AIRLOCK_HOME/layers" | sort | md5sum)"
expect "and no staging layout or partial layer" "" "$(ls -A "$AIRLOCK_HOME/pulls" | grep -v '^.lock$'; ls -A "$AIRLOCK_HOME/layers" | grep '^\.')"
printf 'e2e:right-password\n' | a secret set e2e-registry --host 127.0.0.1 --header Authorization >/dev/null 2>&1
expect_match "the right password (an airlock secret) pulls" '^[0-9a-f]{64}$' \
    "$(a image pull --creds-secret e2e-registry "127.0.0.1:$auth_port/e2e/app:v1" 2>/dev/null)"
a secret rm e2e-registry >/dev/null
bearer="127.0.0.1:$bearer_port/e2e/app:v1"
check_error "token auth: an anonymous token grants nothing, one line" "refused the credentials" a image pull "$bearer"
printf 'e2e:wrong-password\n' | a secret set e2e-bearer --host 127.0.0.1 --header Authorization >/dev/null 2>&1
check_error "token auth: the token server refuses a wrong password, one line" "refused the credentials" \
    a image pull --creds-secret e2e-bearer "$bearer"
printf 'e2e:right-password\n' | a secret set e2e-bearer --host 127.0.0.1 --header Authorization >/dev/null 2>&1
expect_match "token auth: the right password (an airlock secret) gets a token and pulls" '^[0-9a-f]{64}$' \
    "$(a image pull --creds-secret e2e-bearer "$bearer" 2>/dev/null)"
a secret rm e2e-bearer >/dev/null
# The user's own Docker login: ~/.docker/config.json's auths (a home of the test's own).
mkdir -p "$work/home/.docker"
printf '{"auths": {"127.0.0.1:%s": {"auth": "%s"}}}\n' "$auth_port" "$(printf 'e2e:right-password' | base64)" \
    > "$work/home/.docker/config.json"
expect_match "the user's ~/.docker/config.json auths pull from the registry with a password" '^[0-9a-f]{64}$' \
    "$(HOME="$work/home" a image pull "127.0.0.1:$auth_port/e2e/app:v1" 2>/dev/null)"

echo "== other sources: an OCI layout and a docker-archive"
skopeo --insecure-policy copy -q "oci:$work/layout:v1" "docker-archive:$work/app.tar:e2e/app:v1" >/dev/null 2>&1
id_registry=$(a image inspect "$open/e2e/app:v1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
expect "an oci: layout gives the same image" "$id_registry" "$(a image pull "oci:$work/layout:v1" 2>/dev/null)"
# A docker-archive holds Docker's form of the config (another digest), and the same layers.
layers_of() { a image inspect "$1" | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["layers"]))'; }
layer_count=$(ls "$AIRLOCK_HOME/layers" | wc -l)
a image pull "docker-archive:$work/app.tar" >/dev/null 2>&1
expect "a docker-archive: gives the same layers, none unpacked again" "$(layers_of "$open/e2e/app:v1") $layer_count" \
    "$(layers_of "docker-archive:$work/app.tar") $(ls "$AIRLOCK_HOME/layers" | wc -l)"

echo "== the user's Podman store (containers-storage:)"
# Podman's store of its own, under the suite's directory: the user's is left alone. Its image
# lacks the file written through a link to / (Podman, as Docker, cannot export that layer).
podman_env=(env XDG_DATA_HOME="$work/podman/data" XDG_RUNTIME_DIR="$work/podman/run" XDG_CONFIG_HOME="$work/podman/config")
mkdir -p -m 700 "$work/podman/run"
python3 "$here/make_oci_image.py" "$work/podman-layout" v1 "$work/base.tar" --no-write-through >/dev/null
skopeo --insecure-policy copy -q "oci:$work/podman-layout:v1" "docker-archive:$work/podman.tar:e2e/pod:v1" >/dev/null 2>&1
"${podman_env[@]}" podman load -q -i "$work/podman.tar" >/dev/null 2>&1
expect "companion: podman holds the image loaded from a docker-archive" "docker.io/e2e/pod:v1" \
    "$("${podman_env[@]}" podman images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null)"
"${podman_env[@]}" "$AIRLOCK" image pull containers-storage:e2e/pod:v1 >/dev/null 2>"$work/podman-pull.err" ||
    tail -n 3 "$work/podman-pull.err"
expect "containers-storage: gives the image's layers, the base shared with the registry's image" \
    "3 $(layers_of "$open/e2e/app:v1" | cut -d' ' -f1)" \
    "$(layers_of containers-storage:e2e/pod:v1 | wc -w) $(layers_of containers-storage:e2e/pod:v1 | cut -d' ' -f1)"
expect "a sandbox starts from the image of the Podman store" "1000 test" \
    "$(a run --name img-podman --image containers-storage:e2e/pod:v1 shell "$work" -- -c 'echo $(id -u) $APP_MODE' 2>/dev/null)"
a rm -f img-podman >/dev/null 2>&1
check_error "an image the Podman store lacks gets one line" "containers-storage:e2e/absent:v1 is not in your Podman store" \
    "${podman_env[@]}" "$AIRLOCK" image pull containers-storage:e2e/absent:v1
a image rm containers-storage:e2e/pod:v1 >/dev/null 2>&1
"${podman_env[@]}" podman unshare rm -rf "$work/podman/data" 2>/dev/null
# Rootless Podman keeps a process holding its user namespace: it goes with the store.
kill "$(cat "$work/podman/run/libpod/tmp/pause.pid" 2>/dev/null)" 2>/dev/null

echo "== a sandbox from the image"
ws="$HOME/e2e-images-ws"
mkdir -p "$ws"
inside=$(a run --name img-e2e --image "$open/e2e/app:v1" shell "$ws" -- -c '
    id -u; echo "$APP_MODE"; ls /opt/app | xargs; cat /opt/app/data/* | xargs
    [ "$(stat -c %i /opt/app/hardlink)" = "$(stat -c %i /etc/airlock-test/hardlink-source)" ] && echo same-inode
    readlink /rootlink; cat /opt/app/through-root; stat -c "%A %U" /usr/local/bin/suid-id
    stat -c "%U %a" /home/owned; pwd; ls /dev/null >/dev/null && echo dev-ok
    echo changed > /home/owned/notes' 2>/dev/null)
expect "the agent runs as the image's uid 1000" "1000" "$(sed -n 1p <<<"$inside")"
expect "the image's Env is set" "test" "$(sed -n 2p <<<"$inside")"
expect "whiteouts and the opaque directory hide what lower layers had" "data hardlink keep through-root" "$(sed -n 3p <<<"$inside")"
expect "the opaque directory holds only its own layer's file" "after the opaque marker" "$(sed -n 4p <<<"$inside")"
expect "a hard link is one file" "same-inode" "$(sed -n 5p <<<"$inside")"
expect "a link to / is a link, and a file written through it landed in the image" "/ written through a link to /" \
    "$(sed -n 6,7p <<<"$inside" | xargs)"
expect "the set-uid bit and owner are kept" "-rwsr-xr-x root" "$(sed -n 8p <<<"$inside")"
expect "an owner from the layer maps to the sandbox's user (uid 1000: the added agent)" "agent 750" "$(sed -n 9p <<<"$inside")"
expect "the agent works in the workspace, at its host path" "$ws" "$(sed -n 10p <<<"$inside")"
expect "the sandbox's own /dev, not the layer's" "dev-ok" "$(sed -n 11p <<<"$inside")"
expect "a write to the image's file goes to the sandbox's layer, never to the shared layers" "kept" \
    "$(cat "$AIRLOCK_HOME"/layers/*/root/home/owned/notes "$AIRLOCK_HOME"/images/*/rootfs/home/owned/notes 2>/dev/null | sort -u | xargs)"
check_error "run --image with a malformed reference says so, though the sandbox exists" "invalid image reference" \
    a run --name img-e2e --image "E2E/App" shell "$ws" -- -c true
a rm -f img-e2e >/dev/null

echo "== an image's sandbox reaches out only through its proxy, under the policy"
up_port=$(free_port)
mkdir -p "$work/www" && echo served > "$work/www/index.html"
python3 -m http.server --bind 127.0.0.1 --directory "$work/www" "$up_port" >/dev/null 2>&1 &
registry_pids+=($!)
cat > "$ws/egress.py" <<EOF
import os, urllib.error, urllib.request
def get(url):
    try:
        return urllib.request.urlopen(url, timeout=20).status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception as e:
        return type(e).__name__
print(get("http://up.test:$up_port/"), get("http://denied.test:$up_port/"), "HTTP_PROXY" in os.environ)
EOF
out=$(a run --name img-net --image "$open/e2e/app:v1" --add-host "up.test:127.0.0.1" --allow-cidr 127.0.0.1/32 \
    --allow-host up.test shell "$ws" -- -c 'python3 egress.py' 2>/dev/null)
expect "companion: an allowed host is reached from the image's sandbox" "200" "$(cut -d' ' -f1 <<<"$out")"
expect "a host the policy does not allow is refused by the proxy (403), which the sandbox is set to use" \
    "403 True" "$(cut -d' ' -f2- <<<"$out")"
expect_match "the sandbox's network log shows both" "up.test.*denied.test|denied.test.*up.test" \
    "$(a network log img-net 2>/dev/null | tr '\n' ' ')"
a rm -f img-net >/dev/null

echo "== a template from the image, with steps on top (as FROM and RUN)"
export XDG_CONFIG_HOME="$work/config"
mkdir -p "$XDG_CONFIG_HOME/airlock/templates"
escape="$HOME/airlock-e2e-from-escape"
rm -f "$escape"
cat > "$XDG_CONFIG_HOME/airlock/templates/e2e-from.yaml" <<EOF
name: e2e-from
from: $open/e2e/app:v1
steps:
  - echo "from a step" > /opt/app/from-step
  - rm /opt/app/keep
  - echo replaced > /opt/app/data/new
  - id -u > /opt/step-uid
  - echo kept > /root/from-root && chmod 755 /root
  - mkdir -p "$(dirname "$escape")" && echo escaped > "$escape"
EOF
a template build e2e-from >"$work/from.out" 2>"$work/from.err"
expect_match "template build runs the steps, with progress" "step 6/6" "$(cat "$work/from.err")"
inside=$(a run --name from-e2e --template e2e-from shell "$ws" -- -c '
    cat /opt/app/from-step; test -e /opt/app/keep && echo keep-shows || echo keep-gone; cat /opt/app/data/new
    cat /opt/step-uid; id -u; echo "$APP_MODE"; cat "'"$escape"'"; cat /root/from-root' 2>/dev/null)
expect "a step's new file is in the template's sandboxes" "from a step" "$(sed -n 1p <<<"$inside")"
expect "a file a step removed is gone (the build's whiteout)" "keep-gone" "$(sed -n 2p <<<"$inside")"
expect "a file a step changed reads changed" "replaced" "$(sed -n 3p <<<"$inside")"
expect "steps run as root; the agent as the image's uid 1000 with its Env" "0 1000 test" \
    "$(sed -n 4,6p <<<"$inside" | xargs)"
expect "companion: the step that wrote to the host's path wrote it inside the image" "escaped" \
    "$(sed -n 7p <<<"$inside")"
expect "what a step wrote in root's home is kept (the build has no home of its own in memory)" "kept" \
    "$(sed -n 8p <<<"$inside")"
expect "the step's write never reached the host (steps run in a sandbox, not a chroot)" "absent" \
    "$([ -e "$escape" ] && echo present || echo absent)"
expect "the image's own layers are untouched by the steps" "after the opaque marker" \
    "$(cat "$AIRLOCK_HOME"/layers/*/root/opt/app/data/new 2>/dev/null | sort -u | xargs)"
expect "template ls shows it built, from its image" "yes from $open/e2e/app:v1" \
    "$(a template ls --json | python3 -c 'import json,sys; r=[r for r in json.load(sys.stdin) if r["name"]=="e2e-from"][0]; print("yes" if r["built"] else "no", r["description"])')"
expect "no build sandbox is left" "" "$(a ls -q | grep '^build-')"
a rm -f from-e2e >/dev/null
printf 'name: e2e-fails\nfrom: %s\nsteps: ["echo about to fail; exit 3"]\n' "$open/e2e/app:v1" \
    > "$XDG_CONFIG_HOME/airlock/templates/e2e-fails.yaml"
err=$(a template build e2e-fails 2>&1 >/dev/null)
status=$?
expect_match "a failing step: non-zero, its output shown, then one error line naming the step" \
    "^1 .*about to fail airlock: template 'e2e-fails': step 1/1: .* failed \(exit status 3" "$status $(echo $err)"
printf 'name: e2e-noapt\nfrom: %s\npackages: [cowsay]\n' "$open/e2e/app:v1" \
    > "$XDG_CONFIG_HOME/airlock/templates/e2e-noapt.yaml"
expect_match "packages on an image without apt-get: it says so" "no apt-get to install packages with" \
    "$(a template build e2e-noapt 2>&1 >/dev/null | xargs)"
printf 'name: e2e-both\nfrom: %s\nsuite: bookworm\n' "$open/e2e/app:v1" \
    > "$XDG_CONFIG_HOME/airlock/templates/e2e-both.yaml"
check_error "a template both from an image and of a suite: one line" "not both" a template build e2e-both
rm -f "$XDG_CONFIG_HOME/airlock/templates/e2e-both.yaml"
expect "no build sandbox is left after the failures" "" "$(a ls -q | grep '^build-')"
a template rm e2e-from >/dev/null 2>&1
expect "template rm removes the built tree (and not the image)" "no 1" \
    "$(a template ls --json | python3 -c 'import json,sys; r=[r for r in json.load(sys.stdin) if r["name"]=="e2e-from"][0]; print("yes" if r["built"] else "no")') $(a image ls --json | python3 -c "import json,sys; print(sum('$open/e2e/app:v1' in i['references'] for i in json.load(sys.stdin)))")"
unset XDG_CONFIG_HOME

echo "== an MCP server given only by its image (pinned by digest), and that image as a code sandbox"
python3 -m venv "$work/venv" && "$work/venv/bin/pip" install -q mcp >"$work/pip.log" 2>&1 || fail "pip install mcp"
site=$("$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
mcp_digest=$(python3 "$here/make_oci_image.py" "$work/layout" mcp "$work/base.tar" --mcp "$site" \
    "$here/gateway_test_server.py")
push "oci:$work/layout:mcp" "docker://$open/e2e/mcp-server:v1"
pinned_mcp="$open/e2e/mcp-server@$mcp_digest"
marker="imgmcp-$$-$RANDOM"
# Docker's catalog format: its top-level keys, a server with `image:` and `command:` (which
# takes the place of the image's Cmd, after its Entrypoint, as in `docker run IMAGE ARGS`).
{
    printf 'name: e2e-catalog\ndisplayName: E2E catalog in Docker format\nregistry:\n  img-mcp:\n'
    printf '    description: A server given only by its image\n    title: Image server\n    type: server\n'
    printf '    image: %s\n    command: [img-mcp, %s]\n' "$pinned_mcp" "$marker"
    printf '    env: [{name: FROM_CATALOG, value: "yes"}]\n    disableNetwork: true\n'
} > "$work/catalog.yaml"
seen=$(cd "$work" && timeout -k 10 900 "$work/venv/bin/python" "$here/image_mcp_client.py" gateway \
    "$work/catalog.yaml" img-mcp "$marker" 2>"$work/gateway.err")
field() { # KEY.PATH of the JSON the client printed; a list as words
    python3 -c '
import json, sys
value = json.loads(sys.argv[1])
for key in sys.argv[2].split("."):
    value = value[key]
print(" ".join(map(str, value)) if isinstance(value, list) else value)' "$seen" "$1" 2>/dev/null
}
expect "the real mcp client lists the image server's tools through the gateway" "yes" \
    "$(field tools | grep -qw hello_img_mcp && field tools | grep -qw whoami && echo yes)"
[ -n "$(field tools)" ] || tail -n 5 "$work/gateway.err"
expect "  its call reaches the server: the catalog's command took the place of the image's Cmd" "img-mcp" \
    "$(field whoami.name)"
expect "  it runs as the image's User (mcp, 1500:1500), in its WorkingDir (made: no layer has it)" \
    "1500 1500 /opt/mcp/state" \
    "$(field whoami.uid) $(field whoami.gid) $(field whoami.cwd)"
expect "  with the image's Env, the catalog's env, and the account's own home" "image yes /srv/mcp mcp" \
    "$(field env.MCP_MODE) $(field env.FROM_CATALOG) $(field env.HOME) $(field env.USER)"
expect "the gateway pulled the pinned image on first use" "yes" \
    "$(a image inspect "$pinned_mcp" >/dev/null 2>&1 && echo yes)"
expect "no sandbox of the server is left" "" "$(a ls -q | grep '^mcp-img-mcp-')"
# The server ran as a subordinate id of the user's: any user's process counts.
expect "no process of the server is left" "" "$(pgrep -f "$marker" | xargs)"

# As a distroless image: no shell, no sleep. The server is its own program; the sandbox's init
# waits on Airlock's pause instead of sleep.
bare_digest=$(python3 "$here/make_oci_image.py" "$work/layout" mcp-bare "$work/base.tar" --mcp "$site" \
    "$here/gateway_test_server.py" --bare)
push "oci:$work/layout:mcp-bare" "docker://$open/e2e/mcp-bare:v1"
pinned_bare="$open/e2e/mcp-bare@$bare_digest"
printf 'registry:\n  img-bare:\n    image: %s\n    command: [img-bare, %s]\n    disableNetwork: true\n' \
    "$pinned_bare" "$marker" > "$work/bare.yaml"
seen=$(cd "$work" && timeout -k 10 900 "$work/venv/bin/python" "$here/image_mcp_client.py" gateway \
    "$work/bare.yaml" img-bare "$marker" 2>"$work/bare.err")
expect "a server from an image with no shell and no sleep (as distroless) answers through the gateway" \
    "img-bare 1500" "$(field whoami.name) $(field whoami.uid)"
[ -n "$(field whoami.name)" ] || tail -n 5 "$work/bare.err"
check_error "companion: that image has no shell, so an agent's sandbox from it is refused in one line" \
    "has no /bin/sh" a run --name img-bare-e2e --image "$pinned_bare" shell "$ws" -- -c true
expect "  and nothing of it is left" "" "$(a ls -q | grep -E '^(img-bare-e2e|mcp-img-bare-)')"

printf 'registry:\n  bad-image:\n    image: "Not/An Image"\n' > "$work/bad.yaml"
check_error "a catalog entry whose image is not a reference: one line naming it" "server 'bad-image'" \
    a mcp tools ls --catalog "$work/bad.yaml" --servers bad-image

seen=$(cd "$work" && timeout -k 10 600 "$work/venv/bin/python" "$here/image_mcp_client.py" code-sandbox \
    "$pinned_mcp" "oci:$work/layout:mcp" "$open/e2e/app:never-pulled" 2>"$work/code.err")
expect "a code sandbox from the same image (sandbox_initialize {image})" "$pinned_mcp" "$(field initialize.image)"
[ -n "$(field initialize.image)" ] || tail -n 5 "$work/code.err"
expect "  its command runs as the image's User, with its Env and Python, in /workspace, which it can write" \
    "mcp image 42 /workspace written 0" "$(field exec.stdout | xargs) $(field exec.exit_code)"
expect "  and its sandbox is gone after sandbox_stop" "" "$(a ls -q | grep '^code-')"
# The client is the agent: it may not have the host read a path or pull what the user did not.
expect_match "a client's image that is a host path is refused" "only a registry's image or one already pulled" \
    "$(field refused | head -c 300)"
expect_match "a client's registry image not pulled is refused without --pull-images" \
    "is not pulled: the user pulls it.*--pull-images" "$(field refused | tr '\n' ' ')"
expect "  and neither was pulled" "" \
    "$(a image ls --json | python3 -c 'import json,sys; print(" ".join(r for i in json.load(sys.stdin) for r in i["references"] if "never-pulled" in r or "layout:mcp" in r))')"

echo "== removing"
a image rm "$open/e2e/app:v2" >/dev/null 2>&1
expect "rm of an image keeps the layers other images have (v1's three, each server image's own)" "5" \
    "$(ls "$AIRLOCK_HOME/layers" | wc -l)"
for name in $(a image ls --json | python3 -c 'import json,sys; print(" ".join(i["id"] for i in json.load(sys.stdin)))'); do
    a image rm "$name" >/dev/null 2>&1
done
expect "rm of the last image removes its layers, blobs and the tree sandboxes started from" "0 0 0" \
    "$(ls "$AIRLOCK_HOME/layers" | wc -l) $(ls "$AIRLOCK_HOME/blobs/sha256" | wc -l) $(ls "$AIRLOCK_HOME/images" | wc -l)"
check_error "rm of an image never pulled" "no pulled image" a image rm "$open/e2e/none:v1"

report
