#!/bin/bash
# End-to-end tests of `airlock fork` and `airlock save`, as an ordinary user, with real
# sandboxes: a sandbox set up by its agent (a package's files, a removed image directory, a
# file in its home) is forked and saved; each copy is checked to hold the set-up and to go its
# own way afterwards. Prints "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
AIRLOCK="${AIRLOCK:-airlock}"
export AIRLOCK_HOME="$HOME/.airlock-e2e"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

ws="$HOME/e2e-fork"
ws2="$HOME/e2e-fork-other"
name="shell-e2e-fork"
forked="e2e-forked"
saved_template="e2e-saved-$(rand 3)"
templates_dir="${XDG_CONFIG_HOME:-$HOME/.config}/airlock/templates"
cleanup() {
    for sandbox in "$name" "$forked" e2e-forked-2 e2e-from-saved; do a rm -f "$sandbox" >/dev/null 2>&1; done
    for layout in "$AIRLOCK_HOME/saved/$saved_template"-*; do
        [ -d "$layout" ] && a image rm "oci:$layout" >/dev/null 2>&1
    done
    rm -rf "$ws" "$ws2" "$templates_dir/$saved_template.yaml" "$AIRLOCK_HOME/saved/$saved_template"-*
}
trap cleanup EXIT
cleanup
mkdir -p "$ws" "$ws2"
in_sandbox() { a exec "$1" -- bash -c "$2" 2>&1; }

echo "== a sandbox its agent has set up"
a template build shell >/dev/null || { fail "template build shell"; report; exit 1; }
a run -d --name "$name" shell "$ws" >/dev/null || { fail "run -d"; report; exit 1; }
in_sandbox "$name" 'echo from-home > ~/state.txt
sudo sh -c "mkdir -p /opt/seeded && echo db-row > /opt/seeded/table && rm -rf /usr/share/doc/bash"' >/dev/null
expect "its set-up is in place" "from-home db-row gone" \
    "$(in_sandbox "$name" 'cat ~/state.txt /opt/seeded/table; [ -e /usr/share/doc/bash ] || echo gone' | one_line)"

echo "== fork"
check_error "a running sandbox is refused in one line" "is running: stop it first" a fork "$name" "$forked"
expect "  and nothing was made" "" "$(a ls -q | grep -x "$forked")"
a stop "$name" >/dev/null
out=$(a fork "$name" "$forked" --json)
expect "fork prints the new sandbox as JSON" "$forked $ws" \
    "$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["name"], r["workspace"])' "$out")"
a run -d --name "$forked" shell "$ws" >/dev/null
expect "the fork holds the layer and home: files, the removed directory, the home file" "from-home db-row gone" \
    "$(in_sandbox "$forked" 'cat ~/state.txt /opt/seeded/table; [ -e /usr/share/doc/bash ] || echo gone' | one_line)"
expect "  its files keep their owners" "agent root" "$(in_sandbox "$forked" 'stat -c %U ~/state.txt /opt/seeded/table' | one_line)"
in_sandbox "$forked" 'echo changed > ~/state.txt; sudo sh -c "echo forked-row > /opt/seeded/table"' >/dev/null
a run -d --name "$name" shell "$ws" >/dev/null
expect "a change in the fork is not in the first" "from-home db-row" \
    "$(in_sandbox "$name" 'cat ~/state.txt /opt/seeded/table' | one_line)"
in_sandbox "$name" 'echo first-only > /tmp/x; sudo touch /opt/first-only' >/dev/null
expect "  nor one in the first in the fork" "changed forked-row absent" \
    "$(in_sandbox "$forked" 'cat ~/state.txt /opt/seeded/table; [ -e /opt/first-only ] || echo absent' | one_line)"
a stop "$name" >/dev/null
a fork "$name" e2e-forked-2 --workspace "$ws2" >/dev/null 2>&1
expect "--workspace gives the fork another workspace" "$ws2" \
    "$(a inspect e2e-forked-2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["workspace"])')"
a run -d --name e2e-forked-2 shell "$ws2" >/dev/null
expect "  where the agent works" "$ws2" "$(in_sandbox e2e-forked-2 pwd)"
echo first-workspace > "$ws/marker"
expect "  and the first workspace is not mounted" "absent" \
    "$(in_sandbox e2e-forked-2 "[ -e '$ws/marker' ] && echo present || echo absent")"
expect "  companion: the first sandbox sees the marker" "first-workspace" \
    "$(a run --name "$name" shell "$ws" -- -c 'cat marker' 2>&1)"

echo "== save as a template"
a run -d --name "$name" shell "$ws" >/dev/null
# A real package, built and installed with dpkg by the agent's root.
in_sandbox "$name" 'set -e; d=$(mktemp -d); mkdir -p $d/pkg/DEBIAN $d/pkg/usr/share/e2e-saved
printf "Package: e2e-saved\nVersion: 1.0\nArchitecture: all\nMaintainer: e2e <e2e@example.com>\nDescription: a package installed before save\n" > $d/pkg/DEBIAN/control
echo from-the-package > $d/pkg/usr/share/e2e-saved/data
dpkg-deb --build $d/pkg $d/e2e-saved.deb >/dev/null && sudo dpkg -i $d/e2e-saved.deb >/dev/null && echo installed' >/dev/null 2>&1 || true
expect "the agent installed a package" "install ok installed" "$(in_sandbox "$name" "dpkg-query -W -f '\${Status}' e2e-saved")"
check_error "save of a running sandbox is refused in one line" "is running: stop it first" a save "$name" "$saved_template"
a stop "$name" >/dev/null
out=$(a save "$name" "$saved_template" 2>"$HOME/.e2e-save.err")
expect "save NAME TEMPLATE prints the template" "$saved_template" "$out"
[ "$out" = "$saved_template" ] || tail -n 3 "$HOME/.e2e-save.err"
expect "template ls lists it" "$saved_template" "$(a template ls 2>/dev/null | awk '{print $1}' | grep -x "$saved_template")"
a run -d --name e2e-from-saved --template "$saved_template" shell "$ws2" >/dev/null 2>&1
expect "run --template of it: the package installed before is installed" "install ok installed from-the-package" \
    "$(in_sandbox e2e-from-saved "dpkg-query -W -f '\${Status}' e2e-saved; echo; cat /usr/share/e2e-saved/data" | one_line)"
expect "  the layer's files and removals are there" "db-row gone" \
    "$(in_sandbox e2e-from-saved 'cat /opt/seeded/table; [ -e /usr/share/doc/bash ] || echo gone' | one_line)"
expect "  but not the first sandbox's home" "absent" "$(in_sandbox e2e-from-saved '[ -e ~/state.txt ] && echo present || echo absent')"
expect "  nor its workspace" "absent" "$(in_sandbox e2e-from-saved "[ -e '$ws/marker' ] && echo present || echo absent")"
expect "  sudo works as in the first" "root" "$(in_sandbox e2e-from-saved 'sudo -n id -un')"
ca_line=$(sed -n 2p "$AIRLOCK_HOME/ca/ca.pem")
expect "  and Airlock's CA is nowhere in the saved image" "0" \
    "$(cat "$AIRLOCK_HOME/saved/$saved_template"-*/blobs/sha256/* | grep -c -F "$ca_line")"
expect "  companion: the CA's line is one the search finds" "1" "$(grep -c -F "$ca_line" "$AIRLOCK_HOME/ca/ca.pem")"

echo "== save -o into the workspace, where the sandbox may have planted a link"
echo "host-only" > "$HOME/e2e-save-victim"
in_sandbox "$forked" "ln -s '$HOME/e2e-save-victim' '$ws/image.tar'" >/dev/null
a stop "$name" >/dev/null 2>&1
a save "$name" -o "$ws/image.tar" >/dev/null 2>&1
expect "the file the link named is untouched" "host-only" "$(head -c 9 "$HOME/e2e-save-victim")"
expect "  and the archive is a file of its own" "regular file" "$(stat -c %F "$ws/image.tar" 2>/dev/null)"
expect "  nothing partial is left beside it" "" "$(ls -A "$ws" | grep partial)"
rm -f "$HOME/e2e-save-victim" "$ws/image.tar"

echo "== bad input"
check_error "save -o onto a directory" "is a directory" a save "$name" -o "$ws2"
check_error "save onto a template that exists" "already exists" a save "$name" shell
check_error "save with a bad template name" "invalid template name" a save "$name" "Bad/Name"
check_error "save -o into a directory that does not exist" "no directory" a save "$name" -o /nonexistent/x.tar
check_error "save with both a template and -o" "one of them" a save "$name" t1 -o "$HOME/x.tar"
expect "  and nothing was written" "" "$(ls "$HOME"/x.tar "$templates_dir"/t1.yaml 2>/dev/null)"
check_error "a fork onto an existing name" "already exists" a fork "$name" "$forked"
check_error "an unknown sandbox" "no sandbox named" a fork nosuch e2e-x
check_error "a bad name" "invalid sandbox name" a fork "$name" "Bad Name"
check_error "a workspace that does not exist" "does not exist" a fork "$name" e2e-x --workspace /nonexistent
expect "  and nothing was made" "" "$(a ls -q | grep -x e2e-x)"

report
