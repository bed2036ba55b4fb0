"""Run the booth-workflow state machine and the property tests with the `bench` hypothesis profile
(1,000 examples each) instead of the `ci` profile `make test` uses.

    .venv/bin/python bench/stateful.py

Ends with one JSON line: {"examples_per_test": 1000, "tests": …, "passed": …, "failed": …, "seconds": …}.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ["tests/workflow/test_stateful.py", "tests/workflow/test_windows_algorithm.py", "tests/referrals/test_codes.py"]


def main() -> int:
    env = dict(os.environ, HYPOTHESIS_PROFILE="bench")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS], cwd=ROOT,
                          env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    passed = int(m.group(1)) if (m := re.search(r"(\d+) passed", tail)) else 0
    failed = int(m.group(1)) if (m := re.search(r"(\d+) failed", tail)) else 0
    print(proc.stdout[-2000:])
    print(json.dumps({"examples_per_test": 1000, "tests": passed + failed, "passed": passed, "failed": failed,
                      "seconds": round(seconds, 1)}))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
