"""Checks for the Python halves of the end-to-end suites: one line per check, "ok - NAME" or
"FAIL - NAME: detail", the totals the suite's shell half adds up, and polling."""
import json
import time

totals = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    if ok:
        totals["passed"] += 1
        print(f"ok - {name}", flush=True)
    else:
        totals["failed"] += 1
        print(f"FAIL - {name}: {detail}", flush=True)
    return ok


def expect(name, want, got):
    return check(name, want == got, f"want {want!r} got {got!r}")


def short(value, limit=400):
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def wait_until(predicate, timeout, interval=0.25):
    """Polls until predicate() is truthy; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


async def settle(predicate, timeout, interval=0.25):
    """wait_until in a worker thread, so the client keeps reading the server meanwhile."""
    import anyio

    return await anyio.to_thread.run_sync(wait_until, predicate, timeout, interval)
