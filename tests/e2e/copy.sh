#!/bin/bash
# End-to-end tests of `airlock cp`, as an ordinary user, with real sandboxes: a directory, a
# file and a link pointing out, both ways, ownership checked on both sides, a stopped sandbox,
# tar streams, bad input; and from the attacker's side, a sandbox whose root replaced `tar`
# with one that sends a hostile archive (links out, `..`, absolute names, a device), next to a
# companion showing the host's own tar would have followed such a link.
# Prints "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
AIRLOCK="${AIRLOCK:-airlock}"
export AIRLOCK_HOME="$HOME/.airlock-e2e"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

ws="$HOME/e2e-copy"
name="shell-e2e-copy"
work="$(mktemp -d /tmp/airlock-copy.XXXXXX)"
victim="$HOME/e2e-copy-victim"
cleanup() {
    a rm -f "$name" >/dev/null 2>&1
    rm -rf "$ws" "$work" "$victim"
}
trap cleanup EXIT
a rm -f "$name" >/dev/null 2>&1
rm -rf "$ws" "$victim" && mkdir -p "$ws" "$victim"
echo "host-only" > "$victim/secret.txt"
in_sandbox() { a exec "$name" -- bash -c "$1" 2>&1; }

echo "== into a running sandbox"
a template build shell >/dev/null || { fail "template build shell"; report; exit 1; }
a run -d --name "$name" shell "$ws" >/dev/null || { fail "run -d"; report; exit 1; }
src="$work/src"
mkdir -p "$src/sub" && echo one > "$src/a.txt" && echo two > "$src/sub/b.txt"
chmod 750 "$src/sub" && chmod 640 "$src/a.txt"
ln -s "$victim/secret.txt" "$src/out-link"
a cp "$src" "$name:/tmp/"
expect "cp DIR NAME:/tmp/ puts it inside /tmp" "one two" "$(in_sandbox 'cat /tmp/src/a.txt /tmp/src/sub/b.txt' | one_line)"
expect "  owned by the agent inside" "agent:agent agent:agent agent:agent" \
    "$(in_sandbox 'stat -c %U:%G /tmp/src /tmp/src/a.txt /tmp/src/sub/b.txt' | one_line)"
expect "  modes kept" "640 750" "$(in_sandbox 'stat -c %a /tmp/src/a.txt /tmp/src/sub' | one_line)"
expect "  a link pointing out is copied as a link" "$victim/secret.txt" "$(in_sandbox 'readlink /tmp/src/out-link')"
expect "  and leads to nothing of the host inside" "absent" \
    "$(in_sandbox '[ -e /tmp/src/out-link ] && cat /tmp/src/out-link || echo absent')"
a cp "$src/a.txt" "$name:/tmp/renamed.txt"
expect "cp FILE NAME:/new/name takes the new name" "one" "$(in_sandbox 'cat /tmp/renamed.txt')"
a cp "$src/." "$name:/tmp/contents"
expect "cp DIR/. copies the contents into a new directory" "a.txt out-link sub" "$(in_sandbox 'ls /tmp/contents' | one_line)"
a cp "$src/a.txt" "$name:$ws/in-workspace.txt"
expect "a file copied into the workspace belongs to the user on the host" "$(id -un)" "$(stat -c %U "$ws/in-workspace.txt")"
echo changed > "$work/a.txt"
a cp "$work/a.txt" "$name:/tmp/src/"
expect "a file over a file replaces it" "changed" "$(in_sandbox 'cat /tmp/src/a.txt')"
tar -C "$src" -c a.txt sub | a cp - "$name:/tmp/stream"
expect "cp - NAME:DIR unpacks a tar stream from standard input" "one two" \
    "$(in_sandbox 'cat /tmp/stream/a.txt /tmp/stream/sub/b.txt' | one_line)"
expect "  owned by the agent" "agent" "$(in_sandbox 'stat -c %U /tmp/stream/sub/b.txt')"

echo "== out of it"
in_sandbox 'mkdir -p /tmp/o/d && echo x > /tmp/o/d/f && chmod 600 /tmp/o/d/f && ln -s '"$victim"'/secret.txt /tmp/o/evil && ln -s / /tmp/o/root
sudo sh -c "echo root-made > /tmp/o/by-root && chmod 600 /tmp/o/by-root && chown root:root /tmp/o/by-root"' >/dev/null
a cp "$name:/tmp/o" "$work/out"
expect "cp NAME:DIR HOST-NEW takes the new name" "by-root d evil root" "$(ls "$work/out" | one_line)"
expect "  every file belongs to the user on the host, root's too" "$(id -un) $(id -un) $(id -un)" \
    "$(stat -c %U "$work/out/d/f" "$work/out/by-root" "$work/out/d" | one_line)"
expect "  root's file is readable by the user" "root-made" "$(cat "$work/out/by-root")"
expect "  modes kept" "600" "$(stat -c %a "$work/out/d/f")"
expect "  a link pointing out is copied as a link" "$victim/secret.txt /" "$(readlink "$work/out/evil" "$work/out/root" | one_line)"
expect "  and its target is untouched" "host-only" "$(cat "$victim/secret.txt")"
mkdir -p "$work/into"
a cp "$name:/tmp/o/d" "$work/into"
expect "cp NAME:DIR HOST-DIR puts it inside" "x" "$(cat "$work/into/d/f")"
expect "cp NAME:FILE - writes a tar stream" "f" "$(a cp "$name:/tmp/o/d/f" - | tar -t)"
expect "nothing is left beside the destinations" "" "$(ls -A "$work" | grep airlock-cp)"

echo "== a stopped sandbox"
a stop "$name" >/dev/null
a cp "$work/a.txt" "$name:/home/agent/kept.txt"
a cp "$name:/home/agent/kept.txt" "$work/kept.txt"
expect "cp in and out of a stopped sandbox" "changed" "$(cat "$work/kept.txt")"
expect "  and it is stopped again" "stopped" "$(a ls --json | python3 -c "import json,sys; print([s['status'] for s in json.load(sys.stdin) if s['name']=='$name'][0])")"
a run -d --name "$name" shell "$ws" >/dev/null
expect "  what went in is there when it runs" "changed" "$(in_sandbox 'cat /home/agent/kept.txt')"

echo "== bad input: one line each"
check_error "a sandbox path that does not exist" "no such file or directory: /nonexistent" a cp "$name:/nonexistent" "$work/x"
check_error "a host path that does not exist" "No such file or directory" a cp "$work/nonexistent" "$name:/tmp/"
check_error "a directory inside that does not exist" "no directory /no/such/ in the sandbox" a cp "$src" "$name:/no/such/"
check_error "a relative path inside" "absolute path" a cp "$src" "$name:relative"
check_error "no sandbox on either side" "name a sandbox on one side" a cp "$src" "$work/y"
check_error "an unknown sandbox" "no sandbox named" a cp "$src" "nosuch:/tmp/"
check_error "a directory over a file" "cannot put a directory over the file" a cp "$name:/etc/apt" "$work/kept.txt"
expect "  and the file is as it was" "changed" "$(cat "$work/kept.txt")"

echo "== from the attacker's side: a sandbox that sends a hostile archive"
# Root inside replaces tar with a program that answers every `tar -c` with an archive made to
# escape: a link to the victim directory and a file through it, `..` and absolute names, a
# device node, and (last) a hard link to a host file. The same archive aimed at a companion
# directory shows that a naive extractor (Python's tarfile without a filter) does follow it.
mkdir -p "$work/companion-victim"
echo "host-only" > "$work/companion-victim/secret.txt"
in_sandbox "sudo python3 - '$victim' '$work/companion-victim' <<'EOF'
import io, os, sys, tarfile
def archive(victim):
    members = []
    d = tarfile.TarInfo('o'); d.type = tarfile.DIRTYPE; d.mode = 0o755; members.append((d, b''))
    l = tarfile.TarInfo('o/escape'); l.type = tarfile.SYMTYPE; l.linkname = victim; members.append((l, b''))
    f = tarfile.TarInfo('o/escape/secret.txt'); f.size = 6; members.append((f, b'owned\n'))
    f2 = tarfile.TarInfo('o/../../../../..' + victim + '/dotdot.txt'); f2.size = 6; members.append((f2, b'owned\n'))
    f3 = tarfile.TarInfo(victim + '/absolute.txt'); f3.size = 6; members.append((f3, b'owned\n'))
    c = tarfile.TarInfo('o/console'); c.type = tarfile.CHRTYPE; c.devmajor = 5; c.devminor = 1; members.append((c, b''))
    h = tarfile.TarInfo('o/hard'); h.type = tarfile.LNKTYPE; h.linkname = victim + '/secret.txt'; members.append((h, b''))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.GNU_FORMAT) as t:
        for info, data in members:
            t.addfile(info, io.BytesIO(data) if data else None)
    return buf.getvalue()
open('/tmp/hostile.tar', 'wb').write(archive(sys.argv[1]))
open('/tmp/companion.tar', 'wb').write(archive(sys.argv[2]))
os.rename('/usr/bin/tar', '/usr/bin/tar.real')
open('/usr/bin/tar', 'w').write('#!/bin/sh\nexec cat /tmp/hostile.tar\n')
os.chmod('/usr/bin/tar', 0o755)
EOF" >/dev/null
err=$(a cp "$name:/tmp/o" "$work/hostile" 2>&1 >/dev/null)
expect "the copy says at most one line" "1" "$(printf '%s\n' "$err" | grep -c '' | sed 's/^0$/1/')"
expect "the victim's file is untouched" "host-only" "$(cat "$victim/secret.txt")"
expect "nothing was written in the victim directory" "secret.txt" "$(ls -A "$victim" | one_line)"
expect "nothing was written anywhere else" "" \
    "$(find "$HOME" /tmp -xdev \( -name dotdot.txt -o -name absolute.txt \) 2>/dev/null | grep -v "^$work/hostile/")"
expect "no device node was made" "" "$(find "$work" -type c 2>/dev/null)"
a exec "$name" -- cat /tmp/companion.tar > "$work/companion.tar"
mkdir -p "$work/naive"
python3 -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" "$work/companion.tar" "$work/naive" 2>/dev/null
expect "  companion: a naive extractor writes through the link" "owned" "$(cat "$work/companion-victim/secret.txt")"
in_sandbox 'sudo mv /usr/bin/tar.real /usr/bin/tar' >/dev/null

echo "== from the attacker's side: a sandbox that changes the destination while the copy runs"
# tar inside waits for the copy's directory beside the destination (in the workspace, which
# the sandbox writes), sends its archive, then moves that directory away and puts a link to
# the victim directory in its place: placing by path would move the victim's files.
cat > "$ws/.swap-tar" <<SWAP
#!/bin/sh
for i in \$(seq 200); do s=\$(ls -d '$ws'/.airlock-cp-* 2>/dev/null | head -n 1); [ -n "\$s" ] && break; sleep 0.05; done
cat /tmp/one.tar
exec >&-
sleep 0.3
mv "\$s" "\$s.moved" && ln -s '$victim' "\$s"
SWAP
in_sandbox "mkdir -p /tmp/one && echo from-sandbox > /tmp/one/a.txt && tar -c -f /tmp/one.tar -C /tmp/one .
sudo mv /usr/bin/tar /usr/bin/tar.real && sudo install -m 755 '$ws/.swap-tar' /usr/bin/tar" >/dev/null
rm -f "$ws/.swap-tar"
echo "host-only" > "$victim/secret.txt"
(cd "$ws" && a cp "$name:/tmp/one/." ./dist >/dev/null 2>&1)
expect "the victim's files stay where they are" "secret.txt" "$(ls -A "$victim" | one_line)"
expect "  the copy landed where asked" "from-sandbox" "$(cat "$ws/dist/a.txt" 2>/dev/null)"
in_sandbox 'sudo mv /usr/bin/tar.real /usr/bin/tar; rm -rf '"$ws"'/.airlock-cp-*' >/dev/null
# A link the sandbox planted on the way to a destination in its workspace.
in_sandbox "ln -s '$victim' '$ws/planted'" >/dev/null
check_error "a destination through a link the sandbox planted is refused" "link the sandbox can change" \
    a cp "$name:/tmp/one/a.txt" "$ws/planted/"
expect "  and nothing was written there" "secret.txt" "$(ls -A "$victim" | one_line)"
ln -s "$victim" "$work/mine"
a cp "$name:/tmp/one/a.txt" "$work/mine/" >/dev/null 2>&1
expect "  companion: a link outside the workspace is the user's own, and is followed" "a.txt secret.txt" \
    "$(ls -A "$victim" | one_line)"
rm -f "$victim/a.txt"

echo "== what comes out cannot run as the user for others"
in_sandbox 'sudo cp /usr/bin/id /tmp/idsuid && sudo chmod 6755 /tmp/idsuid && mkdir -p /tmp/open && chmod 777 /tmp/open' >/dev/null
expect "companion: inside it is set-uid and world-writable" "6755 777" "$(in_sandbox 'stat -c %a /tmp/idsuid /tmp/open' | one_line)"
a cp "$name:/tmp/idsuid" "$work/idsuid"
a cp "$name:/tmp/open" "$work/open"
expect "out, it loses its set-id bits and others' write" "755 775" "$(stat -c %a "$work/idsuid" "$work/open" | one_line)"

echo "== what goes in leaves the directories it lands in as they were"
before=$(in_sandbox 'stat -c "%U %a" /srv /usr/local')
tar -C "$src" -c a.txt | a cp - "$name:/srv"
a cp "$src/." "$name:/usr/local"
expect "/srv and /usr/local keep their owner and mode" "$before" "$(in_sandbox 'stat -c "%U %a" /srv /usr/local')"
expect "  and what went in is the agent's" "agent agent" "$(in_sandbox 'stat -c %U /srv/a.txt /usr/local/a.txt' | one_line)"

report
