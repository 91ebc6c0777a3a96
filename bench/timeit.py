#!/usr/bin/env python3
"""Times shell commands side by side and prints medians and ratios.

Usage: timeit.py RUNS LABEL=COMMAND [LABEL=COMMAND ...] [--setup LABEL=CMD] [--teardown LABEL=CMD]

Runs are interleaved (A, B, C, A, B, C, ...) so that machine noise hits every peer alike.
"{i}" in a command is replaced by the run number. Setup/teardown run outside the timing.
"""
import statistics
import subprocess
import sys
import time


def main():
    runs = int(sys.argv[1])
    commands, setups, teardowns = {}, {}, {}
    target = commands
    for arg in sys.argv[2:]:
        if arg == "--setup":
            target = setups
            continue
        if arg == "--teardown":
            target = teardowns
            continue
        label, _, command = arg.partition("=")
        target[label] = command
        target = commands
    times = {label: [] for label in commands}
    for i in range(runs):
        for label, command in commands.items():
            if label in setups:
                subprocess.run(setups[label].replace("{i}", str(i)), shell=True, check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            start = time.perf_counter()
            result = subprocess.run(command.replace("{i}", str(i)), shell=True,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            elapsed = time.perf_counter() - start
            if result.returncode != 0:
                sys.exit(f"{label} failed (exit {result.returncode}): {result.stderr.decode()[-400:]}")
            times[label].append(elapsed)
            if label in teardowns:
                subprocess.run(teardowns[label].replace("{i}", str(i)), shell=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = next(iter(commands))
    base = statistics.median(times[first])
    for label in commands:
        med = statistics.median(times[label])
        spread = f"{min(times[label]) * 1000:7.1f} .. {max(times[label]) * 1000:7.1f}"
        ratio = "" if label == first else f"  {first} = {base / med:5.2f}x of this"
        print(f"  {label:<22} median {med * 1000:8.1f} ms  (min..max {spread} ms, n={runs}){ratio}")


if __name__ == "__main__":
    main()
