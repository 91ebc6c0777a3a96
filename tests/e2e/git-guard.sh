#!/bin/bash
# End-to-end tests of the git guard, from the attacker's side: in a real sandbox the agent (no
# sudo) writes git state that would make the host's git run a command; the host's real git
# (status, checkout, commit, fetch) then runs while the sandbox still runs and after it stops,
# and the command must not have run. Each attack has a companion: the same write made outside
# any sandbox, on a copy of the repository, does run the command, so each test can fail.
# Runs as an ordinary user. Prints "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
AIRLOCK="${AIRLOCK:-airlock}"
export AIRLOCK_HOME="$HOME/.airlock-e2e"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export GIT_AUTHOR_NAME=e2e GIT_AUTHOR_EMAIL=e2e@example.com GIT_COMMITTER_NAME=e2e GIT_COMMITTER_EMAIL=e2e@example.com
ws="$HOME/e2e-git-guard"
twin="$HOME/e2e-git-guard-companion"
pwned="$HOME/e2e-pwned-by-git"
name=gg
cleanup() { a rm -f "$name" ggclone ggfresh ggmany >/dev/null 2>&1; }
trap cleanup EXIT
cleanup

# A marker file per attack: the command each attack plants touches it, on whichever machine
# runs it.
marker() { echo "$pwned/$1"; }
ran() { [ -e "$(marker "$1")" ] && echo ran || echo "did not run"; }
in_box() { a exec "$name" -- bash -c "cd '$ws' && $1"; }

echo "== a repository with a submodule and a linked worktree"
rm -rf "$ws" "$twin" "$pwned" && mkdir -p "$pwned"
git_workspace "$ws" guarded
git -C "$ws" branch -q feature
git_workspace "$ws/vendor-src" library
git -C "$ws" -c protocol.file.allow=always submodule add -q "$ws/vendor-src" vendor 2>/dev/null
git -C "$ws" commit -qm "add vendor"
expect "the test repository has a submodule checked out" "library" "$(cat "$ws/vendor/README.md")"

a template build shell >/dev/null || { fail "template build shell"; report; exit 1; }
a run -d --name "$name" shell "$ws" >/dev/null || { fail "run -d"; report; exit 1; }

echo "== normal git work inside"
out=$(in_box '
    set -e
    git config user.name agent && git config user.email agent@example.com
    echo one > one.txt && git add one.txt && git commit -qm one && echo commit
    git branch -q topic && git checkout -q topic && echo two > two.txt && git add two.txt && git commit -qm two
    git checkout -q - && echo checkout
    git merge -q --no-edit topic && echo merge
    git checkout -q feature && git rebase -q "$(git rev-parse --abbrev-ref @{-1})" && echo rebase
    git checkout -q -
    echo dirty >> one.txt && git stash -q && git stash pop -q && git checkout -q one.txt && echo stash
    git worktree add -q wt && git -C wt commit -q --allow-empty -m "in the worktree" && echo worktree
    git -c protocol.file.allow=always submodule update -q --init && git -C vendor log -1 --format=%s | grep -q init && echo submodule
    git -C vendor config user.name agent && git -C vendor config user.email a@example.com
    git -C vendor commit -q --allow-empty -m "in the submodule" && echo submodule-commit
    git remote add upstream https://example.com/upstream.git && echo remote
    git gc -q && echo gc
    git worktree remove wt && echo worktree-remove
' 2>/dev/null | xargs)
expect "inside: commit, checkout, merge, rebase, stash, worktree, submodule update and commit, remote add, gc" \
    "commit checkout merge rebase stash worktree submodule submodule-commit remote gc worktree-remove" "$out"
expect "the host sees the agent's commits" "two" "$(git -C "$ws" log -1 --format=%s topic)"
expect "the host sees the agent's remote" "https://example.com/upstream.git" "$(git -C "$ws" remote get-url upstream)"
in_box 'git worktree add -q wt2' >/dev/null 2>&1
expect "a worktree added inside works on the host" "wt2" "$(git -C "$ws/wt2" rev-parse --abbrev-ref HEAD)"

# The companion: the same repository, copied, where the attacks are made outside any sandbox.
cp -a "$ws" "$twin"
echo "gitdir: $twin/.git/worktrees/wt2" > "$twin/wt2/.git"
echo "$twin/wt2/.git" > "$twin/.git/worktrees/wt2/gitdir"
fsmonitor_config() { printf '[core]\n\tfsmonitor = "touch %s; false"\n' "$(marker "$1")"; }
hook() { printf '#!/bin/sh\ntouch %s\n' "$(marker "$1")"; }

echo "== .git/commondir: config and hooks from elsewhere"
attack_commondir='
    cp -r .git evil-common && rm -rf evil-common/modules evil-common/worktrees
    printf "[core]\n\tfsmonitor = \"touch '"$(marker commondir)"'; false\"\n" >> evil-common/config
    printf "#!/bin/sh\ntouch '"$(marker commondir-hook)"'\n" > evil-common/hooks/post-checkout && chmod +x evil-common/hooks/post-checkout
    { echo "$PWD/evil-common" > .git/commondir; } 2>/dev/null && echo written || echo refused'
expect "inside: writing .git/commondir is refused" "refused" "$(in_box "$attack_commondir" 2>/dev/null | tail -n 1)"
git -C "$ws" status >/dev/null 2>&1
git -C "$ws" checkout -q feature 2>/dev/null && git -C "$ws" checkout -q - 2>/dev/null
expect "host git status (sandbox running): the fsmonitor did not run" "did not run" "$(ran commondir)"
expect "host git checkout (sandbox running): the hook did not run" "did not run" "$(ran commondir-hook)"
(cd "$twin" && bash -c "$attack_commondir") >/dev/null
git -C "$twin" status >/dev/null 2>&1
expect "companion: outside a sandbox the same commondir runs the fsmonitor on git status" "ran" "$(ran commondir)"
rm -f "$(marker commondir)" "$twin/.git/commondir"

echo "== submodules and linked worktrees"
attack_nested='
    { printf "[core]\n\tfsmonitor = \"touch '"$(marker module)"'; false\"\n" >> .git/modules/vendor/config; } 2>/dev/null && echo config-written || echo config-refused
    cp .git/modules/vendor/config /tmp/c 2>/dev/null || cp .git/modules/vendor/config c.tmp
    printf "[core]\n\tfsmonitor = \"touch '"$(marker module)"'; false\"\n" | cat .git/modules/vendor/config - > lock.tmp
    { cp lock.tmp .git/modules/vendor/config.lock && mv .git/modules/vendor/config.lock .git/modules/vendor/config; } 2>/dev/null && echo lock-written || echo lock-refused
    { printf "#!/bin/sh\ntouch '"$(marker module-hook)"'\n" > .git/modules/vendor/hooks/post-checkout; } 2>/dev/null && echo hook-written || echo hook-refused
    { echo "$PWD/evil-common" > .git/worktrees/wt2/commondir; } 2>/dev/null && echo wt-commondir-written || echo wt-commondir-refused
    { printf "[core]\n\tfsmonitor = \"touch '"$(marker worktree)"'; false\"\n" > .git/worktrees/wt2/config.worktree; } 2>/dev/null && echo wt-config-written || echo wt-config-refused
    rm -f lock.tmp c.tmp .git/modules/vendor/config.lock'
expect "inside: submodule config (in place and by rename), its hooks, a worktree's commondir and config are refused" \
    "config-refused lock-refused hook-refused wt-commondir-refused wt-config-refused" "$(in_box "$attack_nested" 2>/dev/null | xargs)"
git -C "$ws" status >/dev/null 2>&1
git -C "$ws/vendor" status >/dev/null 2>&1
git -C "$ws/vendor" checkout -q HEAD~0 2>/dev/null
git -C "$ws/wt2" status >/dev/null 2>&1
expect "host git status in the superproject and the submodule: nothing ran" "did not run did not run did not run" \
    "$(ran module) $(ran module-hook) $(ran worktree)"
(cd "$twin" && bash -c "$attack_nested") >/dev/null 2>&1
printf '#!/bin/sh\ntouch %s\n' "$(marker module-hook)" > "$twin/.git/modules/vendor/hooks/post-checkout"
chmod +x "$twin/.git/modules/vendor/hooks/post-checkout"
git -C "$twin" status >/dev/null 2>&1
git -C "$twin/vendor" checkout -q HEAD~0 2>/dev/null
git -C "$twin/wt2" status >/dev/null 2>&1
expect "companion: outside, the submodule's fsmonitor runs on the superproject's git status" "ran" "$(ran module)"
expect "companion: outside, the submodule's hook runs on checkout" "ran" "$(ran module-hook)"
expect "companion: outside, a worktree's commondir runs another config's fsmonitor" "ran" "$(ran commondir)"
rm -f "$pwned"/*

echo "== renaming .git away"
attack_rename='
    { mv .git .git-orig; } 2>/dev/null && echo moved || echo refused
    { mv .git/config .git/config.orig; } 2>/dev/null && echo config-moved || echo config-refused
    { mv .git/hooks .git/hooks.orig; } 2>/dev/null && echo hooks-moved || echo hooks-refused'
expect "inside: .git, its config and hooks cannot be moved" "refused config-refused hooks-refused" \
    "$(in_box "$attack_rename" | xargs)"
expect "the host's .git is where it was" "$ws/.git" "$(git -C "$ws" rev-parse --absolute-git-dir)"
(cd "$twin" && mv .git .git-orig && cp -r .git-orig .git && fsmonitor_config rename >> .git/config)
git -C "$twin" status >/dev/null 2>&1
expect "companion: outside, a .git put in place of the renamed one runs its fsmonitor" "ran" "$(ran rename)"
rm -rf "$twin/.git" && mv "$twin/.git-orig" "$twin/.git" && rm -f "$pwned"/*

echo "== a repository the agent makes, and a .git file that points anywhere"
# A repository git init makes is guarded like the others once the watcher has seen it (the
# sleep); one renamed into place with a command in its config, and a .git file that leads
# anywhere, are moved out of the workspace at once.
attack_new='
    mkdir -p made && git init -q made && sleep 1
    { printf "[core]\n\tfsmonitor = \"touch '"$(marker new-repo)"'; false\"\n" >> made/.git/config; } 2>/dev/null && echo made-config-written || echo made-config-refused
    git -C made -c user.name=a -c user.email=b commit -q --allow-empty -m first && echo made-commit
    mkdir -p prepared/.gitx && cp -r evil-common/. prepared/.gitx/ && sed -i "s|'"$(marker commondir)"'|'"$(marker prepared)"'|" prepared/.gitx/config
    mv prepared/.gitx prepared/.git
    mkdir -p pointer && echo "gitdir: $PWD/evil-common" > pointer/.git
    sed -i "s|'"$(marker commondir)"'|'"$(marker pointer)"'|" evil-common/config
    git update-index --add --cacheinfo "160000,$(git rev-parse HEAD),prepared" && echo gitlink
    sleep 1
    for d in made prepared pointer; do [ -e "$d/.git" ] && echo "$d:present" || echo "$d:gone"; done'
expect "inside: a new repository works but its config is guarded; the prepared one and the .git file are gone" \
    "made-config-refused made-commit gitlink made:present prepared:gone pointer:gone" \
    "$(in_box "$attack_new" 2>/dev/null | xargs)"
git -C "$ws" status >/dev/null 2>&1
for d in made prepared pointer; do git -C "$ws/$d" status >/dev/null 2>&1; done
expect "host git status in the superproject (a gitlink to one) and in each: nothing ran" "did not run did not run did not run" \
    "$(ran new-repo) $(ran prepared) $(ran pointer)"
guard=$(a guard "$name")
expect_match "airlock guard lists the refused write in the new repository" "refused +$ws/made/\.git/config" "$guard"
# Caught after its rename to .git, or already while it was made as .gitx (its HEAD written):
# a race the guard wins either way, which the checks above show (gone, nothing ran).
expect_match "airlock guard lists the prepared one, and why" \
    "moved +$ws/prepared/(\.git \(a new repository that |\.gitx/HEAD \(the HEAD of a directory git takes for a repository)" \
    "$guard"
expect_match "airlock guard lists the .git file" "moved +$ws/pointer/\.git \(a \.git file" "$guard"
expect_match "airlock guard lists the refused commondir" "refused +$ws/\.git/commondir" "$guard"
expect_match "airlock ls counts what the guard did" "$name +running .* [0-9]+ to review" "$(a ls)"
(cd "$twin" && bash -c "$attack_new") >/dev/null 2>&1
git -C "$twin" status >/dev/null 2>&1
git -C "$twin/made" status >/dev/null 2>&1
git -C "$twin/pointer" status >/dev/null 2>&1
expect "companion: outside, a new repository's fsmonitor runs" "ran" "$(ran new-repo)"
expect "companion: outside, the gitlinked repository runs its fsmonitor on the superproject's git status" "ran" "$(ran prepared)"
expect "companion: outside, the .git file leads git to another config" "ran" "$(ran pointer)"
rm -f "$pwned"/*

echo "== a workspace that is not a repository yet"
fresh="$HOME/e2e-git-guard-fresh"
rm -rf "$fresh" "$fresh-twin" && mkdir -p "$fresh" "$fresh-twin"
a run -d --name ggfresh shell "$fresh" >/dev/null
attack_fresh='git init -q && git -c user.name=a -c user.email=b commit -q --allow-empty -m first && echo committed; sleep 1
    git rev-parse --is-inside-work-tree >/dev/null && echo still-a-repository
    { git config core.fsmonitor "touch '"$(marker fresh)"'; false"; } 2>/dev/null && echo config-written || echo config-refused
    { printf "#!/bin/sh\ntouch '"$(marker fresh)"'\n" > .git/hooks/post-commit; } 2>/dev/null && echo hook-written || echo hook-refused'
expect "inside: git init and commit work in a new project; its config and hooks are guarded" \
    "committed still-a-repository config-refused hook-refused" \
    "$(a exec ggfresh -- bash -c "cd '$fresh' && $attack_fresh" 2>/dev/null | xargs)"
git -C "$fresh" status >/dev/null 2>&1
expect "host git status in the new repository: nothing ran" "did not run" "$(ran fresh)"
expect "the host sees the agent's first commit" "first" "$(git -C "$fresh" log -1 --format=%s 2>&1)"
if [ "$(git -C "$fresh" log -1 --format=%s 2>&1)" != first ]; then
    # What the guard did and said, before rm takes the sandbox's logs with it (a rare race
    # seen once in CI: the new repository was moved away while git committed).
    echo "      airlock guard ggfresh:"; a guard ggfresh 2>&1 | sed 's/^/        /'
    echo "      supervisor.log (git guard lines):"
    grep -i "git guard" "$AIRLOCK_HOME/sandboxes/ggfresh/supervisor.log" 2>/dev/null | tail -5 | sed 's/^/        /'
fi
(cd "$fresh-twin" && bash -c "$attack_fresh") >/dev/null 2>&1
git -C "$fresh-twin" status >/dev/null 2>&1
expect "companion: outside, the same repository runs its fsmonitor" "ran" "$(ran fresh)"
a rm -f ggfresh >/dev/null
rm -rf "$fresh" "$fresh-twin" && rm -f "$pwned"/*

echo "== a workspace of many repositories (a directory of projects)"
# Each repository gets a filter, and the init once passed them all in a message that held 16.
many="$HOME/e2e-git-guard-many"
rm -rf "$many" && mkdir -p "$many"
for i in $(seq 1 20); do git init -q "$many/p$i"; done
expect "a workspace with 20 repositories starts, each one's config guarded" "started refused" \
    "$(a run --name ggmany shell "$many" -- -c "echo started; git -C '$many/p20' config core.fsmonitor x 2>/dev/null && echo written || echo refused" 2>/dev/null | xargs)"
expect "companion: its files stay writable" "written" \
    "$(a run --name ggmany shell "$many" -- -c "echo x > '$many/p20/file' && echo written" 2>&1)"
a rm -f ggmany >/dev/null
rm -rf "$many"

echo "== a repository made while the sandbox runs, and descriptors from before its filter"
# git init can write a lock file before the guard has a filter in front of the new .git, and
# rename it after (seen in CI under load). An attacker can do the same on purpose and keep a
# descriptor through adoption in a unix socket, where no look at /proc finds it.
adopt="$HOME/e2e-git-guard-adopt"
rm -rf "$adopt" "$adopt-twin" && mkdir -p "$adopt" "$adopt-twin"
cp "$(dirname "${BASH_SOURCE[0]}")/git_inflight.py" "$adopt/" && cp "$adopt/git_inflight.py" "$adopt-twin/"
a run -d --name ggfresh shell "$adopt" >/dev/null
expect "inside: a config lock written before the guard adopted the repository becomes its config" \
    "renamed committed" \
    "$(a exec ggfresh -- bash -c "mkdir -p '$adopt/early' && cd '$adopt/early' && mkdir .git &&
        printf '[core]\n\trepositoryformatversion = 0\n' > .git/config.lock && sleep 2 &&
        mv .git/config.lock .git/config && echo renamed && git init -q &&
        git -c user.name=a -c user.email=b commit -q --allow-empty -m first && echo committed" 2>&1 | one_line)"
expect "inside: everyday git in the adopted repository, and it is still there after the guard's next look" \
    "config remote branch worktree still-a-repository" \
    "$(a exec ggfresh -- bash -c "cd '$adopt/early' && git config user.name agent && echo config &&
        git remote add origin https://example.com/r.git && echo remote && git branch -q topic && echo branch &&
        git worktree add -q ../early-wt topic && echo worktree && sleep 3 &&
        git rev-parse --is-inside-work-tree >/dev/null && echo still-a-repository" 2>&1 | one_line)"
expect "the host sees the repository and its first commit" "first" "$(git -C "$adopt/early" log -1 --format=%s 2>&1)"
for mode in file dir-write dir-mmap dir-hook dir-moved; do
    a exec ggfresh -- bash -c "mkdir -p '$adopt/$mode' && cd '$adopt/$mode' && python3 ../git_inflight.py $mode '$(marker "$mode")'" \
        >/dev/null 2>&1
    for at in "$adopt/$mode" "$adopt/$mode-moved"; do
        [ -d "$at" ] && (cd "$at" && git status >/dev/null 2>&1; git checkout -q -b probe >/dev/null 2>&1)
    done
    expect "host git status and checkout after the agent wrote through a descriptor from before adoption ($mode): nothing ran" \
        "did not run" "$(ran "$mode")"
    (mkdir -p "$adopt-twin/$mode" && cd "$adopt-twin/$mode" && python3 ../git_inflight.py "$mode" "$(marker "$mode")"
        cd "$adopt-twin/$mode" 2>/dev/null || cd "$adopt-twin/$mode-moved" && git status && git checkout -q -b probe) \
        >/dev/null 2>&1
    expect "companion: outside, the same descriptor plants what git runs ($mode)" "ran" "$(ran "$mode")"
done
moved=$(a guard ggfresh 2>&1 | grep -c "held by a descriptor from before its filter\|which its filter never writes")
expect "the guard says why it moved the repositories written through old descriptors" "yes" \
    "$([ "$moved" -ge 2 ] && echo yes || echo "no ($moved)")"
a rm -f ggfresh >/dev/null
rm -rf "$adopt" "$adopt-twin" && rm -f "$pwned"/*

echo "== what a determined agent tried next (each blocked inside, each works outside)"
# attempt NAME INSIDE-WANT SCRIPT HOST-COMMAND: runs SCRIPT (in the repository's top directory)
# in the sandbox, expects its last output line to be INSIDE-WANT, runs HOST-COMMAND (in the
# repository, as the user) and expects the marker NAME untouched; then the companion runs the
# same SCRIPT and HOST-COMMAND outside any sandbox, on a fresh copy, and expects the marker.
attempt() {
    local label="$1" want="$2" script="$3" host="$4" copy="$twin-$1"
    expect "inside: $label" "$want" "$(in_box "$script" 2>/dev/null | tail -n 1)"
    (cd "$ws" && bash -c "$host") >/dev/null 2>&1
    expect "host ($host): $label ran nothing" "did not run" "$(ran "$label")"
    rm -rf "$copy" && cp -a "$pristine" "$copy"
    (cd "$copy" && bash -c "$script") >/dev/null 2>&1
    (cd "$copy" && bash -c "$host") >/dev/null 2>&1
    expect "companion: outside, $label runs" "ran" "$(ran "$label")"
    rm -rf "$pwned" "$copy" && mkdir -p "$pwned"
}
# A clean index on both sides (the attacks above staged a gitlink), so that rebase --continue
# would run; the companions start from a copy of the repository as it is now.
git -C "$ws" reset -q
mkdir -p "$ws/.atk"
pristine="$twin-pristine"
rm -rf "$pristine" && cp -a "$ws" "$pristine"
attempt gitfile-newline "sub-gone" '
    mkdir -p .git/evil/objects .git/evil/refs/heads && echo "ref: refs/heads/main" > .git/evil/HEAD
    printf "[core]\n\trepositoryformatversion = 0\n\tbare = false\n\tfsmonitor = \"touch '"$(marker gitfile-newline)"'; false\"\n" > .git/evil/config
    mkdir -p ".git/modules"$'"'"'\n'"'"' sub && git update-index --add --cacheinfo "160000,$(git rev-parse HEAD),sub"
    printf "gitdir: $PWD/.git/modules\n/../evil\n" > sub/.git; sleep 1
    [ -e sub/.git ] && echo sub-present || echo sub-gone' \
    'git status'
attempt bare-lookalike "HEAD-gone" '
    mkdir -p lookalike/objects lookalike/refs/heads && echo "ref: refs/heads/main" > lookalike/HEAD
    printf "[core]\n\trepositoryformatversion = 0\n\tbare = false\n\tworktree = ..\n\tfsmonitor = \"touch '"$(marker bare-lookalike)"'; false\"\n" > lookalike/config
    sleep 1; [ -e lookalike/HEAD ] && echo HEAD-present || echo HEAD-gone' \
    'cd lookalike && git status'
attempt worktree-elsewhere "refused" '
    b=$(echo planted | git hash-object -w --stdin); t=$( (git ls-tree HEAD; printf "100644 blob %s\t'"$(basename "$(marker worktree-elsewhere)")"'\n" $b) | git mktree)
    git update-ref refs/heads/elsewhere $(echo e | git -c user.name=a -c user.email=b commit-tree $t -p HEAD)
    { git config core.worktree '"$pwned"'; } 2>/dev/null && echo written || echo refused' \
    'git checkout -q elsewhere'
git -C "$ws" checkout -q -
attempt rebase-exec "refused" '
    mkdir -p .git/rebase-merge && cd .git/rebase-merge && git rev-parse HEAD > onto && cp onto orig-head
    echo "refs/heads/$(git -C ../.. symbolic-ref --short HEAD)" > head-name && : > interactive && : > done && echo 0 > msgnum && echo 1 > end
    { echo "exec touch '"$(marker rebase-exec)"'" > git-rebase-todo; } 2>/dev/null
    grep -q exec git-rebase-todo 2>/dev/null && echo written || echo refused' \
    'git rebase --continue; git rebase --abort; rm -rf .git/rebase-merge'
attempt rebase-prepared-directory "refused" '
    mkdir -p .git/prepared && cd .git/prepared && git rev-parse HEAD > onto && cp onto orig-head
    echo "refs/heads/$(git -C ../.. symbolic-ref --short HEAD)" > head-name && : > interactive && : > done && echo 0 > msgnum && echo 1 > end
    echo "exec touch '"$(marker rebase-prepared-directory)"'" > git-rebase-todo && cd ..
    { mv prepared rebase-merge; } 2>/dev/null && echo written || { echo refused; rm -rf prepared; }' \
    'git rebase --continue; git rebase --abort; rm -rf .git/rebase-merge'
attempt rebase-strategy "refused" '
    h=$(git rev-parse HEAD); b=$(echo new | git hash-object -w --stdin); t2=$(printf "100644 blob %s\tnew.txt\n" $b | git mktree)
    c1=$(echo one | git -c user.name=a -c user.email=b commit-tree $t2 -p $h); b3=$(echo newer | git hash-object -w --stdin)
    t3=$(printf "100644 blob %s\tnew.txt\n" $b3 | git mktree); c2=$(echo two | git -c user.name=a -c user.email=b commit-tree $t3 -p $c1)
    mkdir -p git-merge-x .git/rebase-merge && printf "#!/bin/sh\ntouch '"$(marker rebase-strategy)"'\nexit 1\n" > .atk/evil && chmod +x .atk/evil
    cd .git/rebase-merge && echo "refs/heads/$(git -C ../.. symbolic-ref --short HEAD)" > head-name && echo $h > onto && echo $h > orig-head
    : > interactive && printf "pick %s two\n" $c2 > git-rebase-todo && printf "pick %s one\n" $c1 > done && echo 1 > msgnum && echo 2 > end
    { echo "x/../.atk/evil" > strategy; } 2>/dev/null
    grep -q evil strategy 2>/dev/null && echo written || echo refused' \
    'git rebase --continue; git rebase --abort; rm -rf .git/rebase-merge git-merge-x'
# A descriptor opened before the directory became a repository would write past a filter
# mounted later: such a repository is moved away instead.
attempt held-descriptor "gone" '
    mkdir -p held/.gitx && touch held/.gitx/config && exec 3>>held/.gitx/config
    cp -r made/.git/HEAD made/.git/objects made/.git/refs held/.gitx/ && sleep 1
    mv held/.gitx held/.git 2>/dev/null; sleep 1
    printf "[core]\n\tfsmonitor = \"touch '"$(marker held-descriptor)"'; false\"\n" >&3; exec 3>&-
    [ -e held/.git/HEAD ] && echo present || echo gone' \
    'cd held && git status'
attempt rebase-todo-crlf "refused" '
    mkdir -p .git/rebase-merge && cd .git/rebase-merge && git rev-parse HEAD > onto && cp onto orig-head
    echo "refs/heads/$(git -C ../.. symbolic-ref --short HEAD)" > head-name && : > interactive && : > done && echo 0 > msgnum && echo 1 > end
    { printf "noop\r\nexec touch '"$(marker rebase-todo-crlf)"'\r\n" > git-rebase-todo; } 2>/dev/null
    grep -q exec git-rebase-todo 2>/dev/null && echo written || echo refused' \
    'git rebase --continue; git rebase --abort; rm -rf .git/rebase-merge'
attempt symlink-out-of-git "refused" '
    rm -f .git/COMMIT_EDITMSG; { ln -s '"$(marker symlink-out-of-git)"' .git/COMMIT_EDITMSG; } 2>/dev/null
    [ -L .git/COMMIT_EDITMSG ] && echo written || echo refused' \
    'git commit -q --allow-empty -m "through a link"'
mkdir -p "$pwned-target"
attempt worktree-through-link "refused" '
    ln -sfn '"$pwned-target"' vendor-link && sed "s|../../../vendor|../../../vendor-link|" .git/modules/vendor/config > .git/modules/vendor/c.lock
    { mv .git/modules/vendor/c.lock .git/modules/vendor/config; } 2>/dev/null && echo written || { echo refused; rm -f .git/modules/vendor/c.lock vendor-link; }' \
    'git -C vendor checkout -q -f HEAD; [ -e '"$pwned-target"'/README.md ] && touch '"$(marker worktree-through-link)"''
# A working directory (or a descriptor) in a repository from before its filter was mounted
# would write past the filter: such a repository is moved away.
attempt cwd-in-new-repository "gone" '
    mkdir -p cwdrepo/.gitx && cd cwdrepo/.gitx && mv ../.gitx ../.git && sleep 2
    mkdir -p objects refs/heads 2>/dev/null; echo "ref: refs/heads/main" > HEAD 2>/dev/null
    printf "[core]\n\tfsmonitor = \"touch '"$(marker cwd-in-new-repository)"'; false\"\n" > config 2>/dev/null
    cd ../.. && [ -e cwdrepo/.git/HEAD ] && echo present || echo gone' \
    'cd cwdrepo && git status'
# A .git file written right, then rewritten through a mapping (no event for that) to lead to a
# repository in the agent's home, which the host can reach: moved away while still mapped.
agent_home="$AIRLOCK_HOME/sandboxes/$name/home"
attempt gitfile-mapped "gone" '
    mkdir -p $HOME/evilgd && cp -r made/.git/HEAD made/.git/objects made/.git/refs $HOME/evilgd/ 2>/dev/null
    printf "[core]\n\tbare = false\n\tfsmonitor = \"touch '"$(marker gitfile-mapped)"'; false\"\n" > $HOME/evilgd/config
    python3 -c "
import mmap, os, time
os.makedirs(\"mapped\", exist_ok=True)
good = b\"gitdir: ../.git/modules/vendor\" + b\"/\" * 96 + b\"\\n\"
fd = os.open(\"mapped/.git\", os.O_RDWR | os.O_CREAT, 0o644); os.ftruncate(fd, len(good))
m = mmap.mmap(fd, len(good)); m[:] = good; os.close(fd); time.sleep(2)
bad = b\"gitdir: '"$agent_home"'/evilgd\"; m[:] = bad + b\"/\" * (len(good) - len(bad) - 1) + b\"\\n\"
time.sleep(1); print(\"present\" if os.path.exists(\"mapped/.git\") else \"gone\")"' \
    'cd mapped && git status'
rm -rf "$HOME/evilgd"
# A repository filtered from the start cannot be moved (its .git is a mount point), but the
# directory above it can; another .git then put at its old path is a new one, not the user's.
attempt moved-repository-replaced "gone" '
    mkdir -p .atk/p/g/objects .atk/p/g/refs/heads
    printf "[core]\n\tbare = false\n\tfsmonitor = \"touch '"$(marker moved-repository-replaced)"'; false\"\n" > .atk/p/g/config
    printf "ref: refs/heads/main\n" > .atk/p/g/HEAD.x
    mv vendor-src .atk/vendor-src-moved && mkdir vendor-src && mv .atk/p/g vendor-src/.git &&
        mv vendor-src/.git/HEAD.x vendor-src/.git/HEAD
    sleep 1; [ -e vendor-src/.git ] && echo present || echo gone' \
    'cd vendor-src && git status'
rm -rf "$ws/vendor-src" "$ws/.atk/p" && mv "$ws/.atk/vendor-src-moved" "$ws/vendor-src"
attempt module-under-refs "refused" '
    git clone -q --bare .git/modules/vendor .git/modules/a/refs/x 2>/dev/null && git -C .git/modules/a/refs/x config core.bare false
    { printf "#!/bin/sh\ntouch '"$(marker module-under-refs)"'\n" > .git/modules/a/refs/x/hooks/post-checkout; chmod +x .git/modules/a/refs/x/hooks/post-checkout; } 2>/dev/null
    { printf "[core]\n\tfsmonitor = \"touch '"$(marker module-under-refs)"'; false\"\n" >> .git/modules/a/refs/x/config; } 2>/dev/null
    printf "[submodule \"a/refs/x\"]\n\tpath = sub2\n\turl = '"$ws"'/vendor-src\n" >> .gitmodules
    git update-index --add --cacheinfo "160000,$(git -C vendor rev-parse HEAD),sub2"
    { [ -e .git/modules/a/refs/x/hooks/post-checkout ] || grep -q fsmonitor .git/modules/a/refs/x/config; } && echo written || echo refused' \
    'git -c protocol.file.allow=always submodule update --init'
attempt worktree-gitdir-link "refused" '
    ln -sfn '"$pwned-target"' wt-link && mkdir -p .git/worktrees/evil && git rev-parse HEAD > .git/worktrees/evil/HEAD
    echo ../.. > .git/worktrees/evil/commondir; { echo "$PWD/wt-link/.git" > .git/worktrees/evil/gitdir; } 2>/dev/null
    [ -s .git/worktrees/evil/gitdir ] && echo written || { echo refused; rm -rf .git/worktrees/evil wt-link; }' \
    'git worktree repair; [ -e '"$pwned-target"'/.git ] && touch '"$(marker worktree-gitdir-link)"''
attempt config-hardlink "refused" '
    cp .git/config .git/cfg-a && ln .git/cfg-a .git/cfg-b
    { mv .git/cfg-b .git/config; } 2>/dev/null && echo written || { echo refused; rm -f .git/cfg-a .git/cfg-b; exit; }
    printf "[core]\n\tfsmonitor = \"touch '"$(marker config-hardlink)"'; false\"\n" >> .git/cfg-a' \
    'git status'
attempt config-open-fd "refused" '
    cp .git/config .git/cfg-c && exec 3>>.git/cfg-c
    { mv .git/cfg-c .git/config; } 2>/dev/null && echo written || { echo refused; rm -f .git/cfg-c; exit; }
    printf "[core]\n\tfsmonitor = \"touch '"$(marker config-open-fd)"'; false\"\n" >&3' \
    'git status'
attempt submodule-update-command "refused" '
    git -C vendor commit -q --allow-empty -m moved-on
    cp .git/config .git/cfg-n && printf "[submodule \"vendor\"]\n\tupdate = \"\" !touch '"$(marker submodule-update-command)"'\n" >> .git/cfg-n
    { mv .git/cfg-n .git/config; } 2>/dev/null && echo written || { echo refused; rm -f .git/cfg-n; }' \
    'git -c protocol.file.allow=always submodule update'

echo "== hooks on the host's own commit, after the sandbox stops"
in_box '{ printf "#!/bin/sh\ntouch '"$(marker pre-commit)"'\n" > .git/hooks/pre-commit; chmod +x .git/hooks/pre-commit; } 2>/dev/null; echo change > host.txt' >/dev/null
stop_err=$(a stop "$name" 2>&1 >/dev/null)
expect_match "stop reports what the detached session left" "refused +$ws/\.git/hooks/pre-commit" "$stop_err"
git -C "$ws" add host.txt && git -C "$ws" commit -qm "host commit"
git -C "$ws" status >/dev/null 2>&1
git -C "$ws/vendor" status >/dev/null 2>&1
expect "host git commit, status and checkout after stop: nothing ran" "did not run did not run did not run" \
    "$(ran pre-commit) $(ran commondir) $(ran module)"
expect "the host's hooks are as they were" "0" "$(ls "$ws/.git/hooks" | grep -vc '\.sample$')"
a guard "$name" --restore "$ws/pointer/.git" >/dev/null 2>&1
expect "guard --restore puts a quarantined .git back once stopped" "yes" "$([ -f "$ws/pointer/.git" ] && echo yes || echo no)"
check_error "guard --restore of a path never moved says so" "nothing was moved away" a guard "$name" --restore "$ws/nothing/.git"
# A directory the sandbox swapped for a link since: restoring there would put the agent's
# .git outside the workspace.
rm -rf "$pwned-target" && mkdir -p "$pwned-target"
a run -d --name "$name" shell "$ws" >/dev/null
in_box 'mkdir -p swapped && echo "gitdir: /elsewhere" > swapped/.git && sleep 1 && rm -rf swapped && ln -s '"$pwned-target"' swapped' >/dev/null 2>&1
a stop "$name" >/dev/null 2>&1
check_error "guard --restore does not follow a link put in the directory's place" "no longer the directory it was" \
    a guard "$name" --restore "$ws/swapped/.git"
expect "and nothing was put outside the workspace" "absent" "$([ -e "$pwned-target/.git" ] && echo present || echo absent)"
rm -f "$ws/swapped"

echo "== files the host runs later, reported for run, exec and detached sessions"
a run -d --name "$name" shell "$ws" >/dev/null
err=$(a exec "$name" -- bash -c "cd '$ws' && echo 'all:; touch $(marker make)' > Makefile && git config core.pager evil" 2>&1)
expect_match "exec reports what the guard refused during it" "refused +$ws/\.git/config: .*core\.pager" "$err"
expect_match "airlock guard lists a Makefile an exec wrote, while the sandbox runs" "added +Makefile" "$(a guard "$name")"
a exec "$name" -- bash -c "cd '$ws' && echo 'export X=1' > .envrc" >/dev/null 2>&1
err=$(a stop "$name" 2>&1 >/dev/null)
expect_match "stop reports files a detached session changed" "added +\.envrc" "$err"
err=$(a run --name "$name" shell "$ws" -- -c "echo '{\"scripts\":{\"postinstall\":\"x\"}}' > package.json" 2>&1)
expect_match "run reports package.json scripts" "added +package\.json" "$err"
a stop "$name" >/dev/null 2>&1

echo "== clone mode: the host's git fetch runs nothing of the clone's .git"
git_workspace "$ws-clone" cloned
a create --name ggclone --clone shell "$ws-clone" >/dev/null
clone_attack='
    cd '"$ws-clone"' && git -c user.name=agent -c user.email=a@example.com commit -q --allow-empty -m "from the clone"
    cp -r .git evil-clone-common && common=evil-clone-common
    printf "[core]\n\tfsmonitor = \"touch '"$(marker fetch)"'; false\"\n\talternateRefsCommand = \"touch '"$(marker fetch)"'\"\n[uploadpack]\n\tpackObjectsHook = \"touch '"$(marker fetch)"'\"\n" >> $common/config
    for h in pre-upload-pack post-upload-pack reference-transaction post-checkout; do printf "#!/bin/sh\ntouch '"$(marker fetch)"'\n" > $common/hooks/$h; chmod +x $common/hooks/$h; done
    echo ../evil-clone-common > .git/commondir && echo commondir-written'
expect "clone mode: the agent can redirect the clone's commondir" "commondir-written" \
    "$(a run --name ggclone shell "$ws-clone" -- -c "$clone_attack" 2>/dev/null | tail -n 1)"
a stop ggclone >/dev/null 2>&1
git -C "$ws-clone" fetch -q airlock-ggclone 2>/dev/null
expect "clone mode: git fetch brings the agent's commit" "from the clone" \
    "$(git -C "$ws-clone" log -1 --format=%s "airlock-ggclone/$(git -C "$ws-clone" symbolic-ref --short HEAD)" 2>&1)"
expect "clone mode: git fetch ran nothing the clone's git state names" "did not run" "$(ran fetch)"
clone_dir="$AIRLOCK_HOME/sandboxes/ggclone/clone"
git -C "$clone_dir" status >/dev/null 2>&1
expect "companion: the same state runs its fsmonitor for git status in the clone" "ran" "$(ran fetch)"
a rm -f ggclone >/dev/null 2>&1

rm -rf "$ws" "$twin" "$ws-clone" "$pwned" "$pristine" "$pwned-target"
report
