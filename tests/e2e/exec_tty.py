"""Drives `airlock exec -it` under a real pseudo-terminal, as a person at a terminal would.

    exec_tty.py resize AIRLOCK NAME    prints the size the command saw at start, and after the
                                       terminal grew (its SIGWINCH), then its exit status
    exec_tty.py interrupt AIRLOCK NAME types Ctrl-C at a running `sleep`; prints the status
                                       (130: the shell's child died of SIGINT) and the time
                                       it took, in whole seconds
"""
import fcntl, os, pty, select, struct, sys, termios, time

what, airlock, name = sys.argv[1:4]
commands = {
    "resize": "stty size; trap 'stty size; exit 0' WINCH; echo waiting; while :; do sleep 0.1; done",
    "interrupt": "echo ready; sleep 30",
}


def set_size(fd, rows, columns):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


pid, master = pty.fork()
if pid == 0:
    set_size(0, 24, 80)
    os.execvp(airlock, [airlock, "exec", "-it", name, "--", "bash", "-c", commands[what]])

output = b""


def read_until(marker, timeout=20):
    global output
    deadline = time.time() + timeout
    while marker not in output and time.time() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
    return marker in output


if what == "resize":
    read_until(b"waiting")
    set_size(master, 40, 120)
    read_until(b"40 120")
    _, status = os.waitpid(pid, 0)
    lines = [line.strip() for line in output.decode(errors="replace").splitlines()]
    sizes = [line for line in lines if line.replace(" ", "").isdigit() and " " in line]
    print(" / ".join(sizes), os.waitstatus_to_exitcode(status))
else:
    read_until(b"ready")
    started = time.time()
    os.write(master, b"\x03")
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), int(time.time() - started))
