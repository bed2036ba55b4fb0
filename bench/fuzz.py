"""Issue 9 point 6: every state-changing form of the booth node and of the central server gets generated malformed
input (tests/test_fuzz_forms.py) with the `bench` hypothesis profile: 1,000 inputs per route instead of the 25 that
`make test` sends.

    TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test .venv/bin/python bench/fuzz.py [--examples N]

Without TEST_DATABASE_URL the central server's routes are skipped (and say so). Prints one line per route (inputs,
answers by status, the distinct refusals seen) and ends with one JSON line:
{"endpoints": …, "inputs": …, "server_errors": 0, "writes": 0, "min_inputs_per_endpoint": …, "failed_tests": …,
 "seconds": …}.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=None, help="per route (default: the bench profile, 1,000)")
    parser.add_argument("-k", default=None, help="only the routes pytest -k selects")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "fuzz.jsonl"
        env = dict(os.environ, HYPOTHESIS_PROFILE="bench", VINCULO_FUZZ_REPORT=str(report))
        if args.examples:
            env["VINCULO_FUZZ_EXAMPLES"] = str(args.examples)
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_fuzz_forms.py",
               "-k", args.k or "refuses_malformed_input or ignores_junk"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        rows = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
    for r in rows:
        statuses = " ".join(f"{k}×{v}" for k, v in sorted(r.get("statuses", {}).items()))
        print(f"{r['role']:<7} {r['endpoint']:<36} {r['inputs']:>6} inputs  {statuses:<28} "
              f"{len(r.get('refusals', {}))} distinct refusals  server errors {r['server_errors']}  writes {r['writes']}")
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr.strip()[-500:]
    failed = sum(int(n) for n in re.findall(r"(\d+) (?:failed|errors?)\b", tail))
    skipped = int(m.group(1)) if (m := re.search(r"(\d+) skipped", tail)) else 0
    print(tail)
    if proc.returncode:
        print(proc.stdout[-4000:])
    if skipped:
        print(f"{skipped} skipped (the central routes need TEST_DATABASE_URL)")
    print(json.dumps({"endpoints": len(rows), "inputs": sum(r["inputs"] for r in rows),
                      "server_errors": sum(r["server_errors"] for r in rows), "writes": sum(r["writes"] for r in rows),
                      "min_inputs_per_endpoint": min((r["inputs"] for r in rows), default=0),
                      "failed_tests": failed, "seconds": round(seconds, 1)}))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
