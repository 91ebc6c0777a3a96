#!/usr/bin/env python3
"""Times shell commands side by side and prints medians and ratios.

Usage: timeit.py RUNS LABEL[@USER]=COMMAND ... [--setup LABEL=CMD] [--teardown LABEL=CMD]

Runs are interleaved (A, B, C, A, B, C, ...) so that machine noise hits every peer alike.
"{i}" in a command is replaced by the run number. Setup/teardown run outside the timing.
LABEL@USER runs that command (and its setup/teardown) as USER, switched to directly rather
than through runuser or sudo, so no PAM session is timed.
"""
import pwd
import statistics
import subprocess
import sys
import time


def main():
    runs = int(sys.argv[1])
    commands, setups, teardowns, users = {}, {}, {}, {}
    target = commands
    for arg in sys.argv[2:]:
        if arg == "--setup":
            target = setups
            continue
        if arg == "--teardown":
            target = teardowns
            continue
        label, _, command = arg.partition("=")
        label, _, user = label.partition("@")
        if user:
            users[label] = pwd.getpwnam(user)
        target[label] = command
        target = commands
    times = {label: [] for label in commands}

    def run(label, command, **kwargs):
        account = users.get(label)
        if account is None:
            return subprocess.run(command, shell=True, **kwargs)

        # The switch is made by subprocess's C child code (user=, group=, extra_groups=), as
        # cheap as the root peers' spawn: a preexec_fn would fork Python itself and run Python
        # in the child, some 2 ms that only this peer would pay.
        env = {"HOME": account.pw_dir, "USER": account.pw_name, "PATH": "/usr/local/bin:/usr/bin:/bin",
               "LANG": "C.UTF-8"}
        return subprocess.run(command, shell=True, user=account.pw_uid, group=account.pw_gid, extra_groups=[],
                              env=env, cwd=account.pw_dir, **kwargs)

    for i in range(runs):
        for label, command in commands.items():
            if label in setups:
                run(label, setups[label].replace("{i}", str(i)), check=True,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            start = time.perf_counter()
            result = run(label, command.replace("{i}", str(i)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            elapsed = time.perf_counter() - start
            if result.returncode != 0:
                sys.exit(f"{label} failed (exit {result.returncode}): {result.stderr.decode()[-400:]}")
            times[label].append(elapsed)
            if label in teardowns:
                run(label, teardowns[label].replace("{i}", str(i)), stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL)
    first = next(iter(commands))
    base = statistics.median(times[first])
    for label in commands:
        med = statistics.median(times[label])
        spread = f"{min(times[label]) * 1000:7.1f} .. {max(times[label]) * 1000:7.1f}"
        ratio = "" if label == first else f"  {first} / this = {base / med:5.2f}"
        print(f"  {label:<22} median {med * 1000:8.1f} ms  (min..max {spread} ms, n={runs}){ratio}")


if __name__ == "__main__":
    main()
