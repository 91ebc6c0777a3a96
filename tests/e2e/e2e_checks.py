"""Checks for the Python halves of the end-to-end suites: one line per check, "ok - NAME" or
"FAIL - NAME: detail", and the totals the suite's shell half adds up."""
import json

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
