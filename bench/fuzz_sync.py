"""Issue 7 / 9: schemathesis against the sync API, at least 1,000 generated inputs per operation and mode.

Run from the repository root (PostgreSQL from ``TEST_DATABASE_URL``; the test makes its own scratch database)::

    TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test .venv/bin/python bench/fuzz_sync.py

It runs ``tests/sync/test_api_fuzz.py`` with the hypothesis ``bench`` profile (1,000 examples per operation and
mode: valid and malformed cases from the OpenAPI document, each signed like a real node) and adds up what the
test saw. A 5xx or a refused request that wrote anything fails the test, so ``server_errors`` and ``writes`` are
0 whenever the run ends with exit code 0. Ends with one JSON line:
``{"operations": …, "inputs": …, "refused_4xx": …, "accepted_2xx": …, "server_errors": 0, "writes": 0}``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    if not os.environ.get("TEST_DATABASE_URL"):
        print("set TEST_DATABASE_URL (PostgreSQL)", file=sys.stderr)
        return 2
    report = Path(tempfile.mkdtemp()) / "fuzz.jsonl"
    env = {**os.environ, "HYPOTHESIS_PROFILE": "bench", "VINCULO_FUZZ_REPORT": str(report)}
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/sync/test_api_fuzz.py"], cwd=ROOT, env=env)
    seconds = time.monotonic() - started
    rows = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
    for r in rows:
        print(f"{r['path']:<22} {r['mode']:<9} inputs {r['4xx'] + r['2xx']:>5}  refused {r['4xx']:>5}  "
              f"accepted {r['2xx']:>5}")
    result = {"operations": len({r["path"] for r in rows}), "cases": len(rows),
              "inputs": sum(r["4xx"] + r["2xx"] for r in rows), "refused_4xx": sum(r["4xx"] for r in rows),
              "accepted_2xx": sum(r["2xx"] for r in rows),
              "min_inputs_per_case": min((r["4xx"] + r["2xx"] for r in rows), default=0),
              "server_errors": 0 if proc.returncode == 0 else None, "writes": 0 if proc.returncode == 0 else None,
              "seconds": round(seconds, 1), "exit": proc.returncode}
    print(json.dumps(result))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
