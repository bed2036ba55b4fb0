"""Backups (issue 9, point 3): how long an encrypted backup and a restore take for a 2,000-visit day.

Run from the repository root with the project's virtualenv::

    .venv/bin/python bench/backup.py [--visits 2000] [--seed 1] [--runs 3]

On a temporary instance folder and SQLite file (nothing in ``instance/`` is touched):

1. migrates a fresh booth node and fills it with ``flask --app wsgi demo --visits N --seed S`` (through the
   CLI runner: the same command a person runs), then ``backup init-recovery``;
2. times ``--runs`` backups (what ``backup now`` and the periodic thread do: SQLite online backup into
   memory, zlib, AES-256-GCM, one X25519-wrapped data key per recipient — here the recovery key and a
   central key, 0600 file with fsync) and ``--runs`` restores of the last one onto a new, empty database
   file (decrypt, ``PRAGMA integrity_check`` in memory, copy to disk, integrity check again, fsync, rename);
3. checks the restored file has the same ids as the original in every checked table.

Ends with one JSON line ``{"backup_s": …, "restore_s": …, "backup_bytes": …}`` (medians), plus the size of
the database itself and the number of visits.
"""
from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from booth import create_app  # noqa: E402
from booth.backup import crypto, services  # noqa: E402
from booth.clock import FrozenClock  # noqa: E402

TABLES = ("visits", "consents", "screenings", "screening_results", "referrals", "audit_entries")


def ids(db_file: Path) -> dict:
    con = sqlite3.connect(db_file)
    try:
        return {t: sorted(r[0] for r in con.execute(f"SELECT id FROM {t}")) for t in TABLES}  # noqa: S608
    finally:
        con.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--visits", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    from flask_migrate import upgrade

    with tempfile.TemporaryDirectory(prefix="vinculo-bench-backup-") as tmp:
        folder = Path(tmp)
        (folder / "instance").mkdir()
        db_file = folder / "node.sqlite3"
        clock = FrozenClock(datetime(2026, 6, 27, 23, 0, tzinfo=timezone.utc))
        central = crypto.new_private_key()
        app = create_app({"SECRET_KEY": "bench-secret-" + "x" * 40, "INSTANCE_DIR": str(folder / "instance"),
                          "SQLALCHEMY_DATABASE_URI": f"sqlite:///{db_file}", "CLOCK": clock,
                          "BACKUP_DIR": str(folder / "stick"),
                          "BACKUP_CENTRAL_PUBLIC_KEY": crypto.public_to_text(crypto.public_of(central))})
        with app.app_context():
            upgrade()
        runner = app.test_cli_runner()
        t0 = time.perf_counter()
        r = runner.invoke(args=["demo", "--visits", str(args.visits), "--seed", str(args.seed)])
        assert r.exit_code == 0, r.output
        print(f"demo --visits {args.visits}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        r = runner.invoke(args=["backup", "init-recovery"])
        key = crypto.key_from_text(next(line.strip() for line in r.output.splitlines() if line.startswith("    ")))
        with app.app_context():
            from booth.extensions import db
            db.engine.dispose()
        recipients = services.recipients(app.config, app.instance_path)
        original = ids(db_file)
        backup_times, restore_times, path = [], [], None
        for i in range(args.runs):
            clock.advance(minutes=10)
            t0 = time.perf_counter()
            path = services.make_backup(db_file=db_file, dest=folder / "stick", recipients=recipients, now=clock.now())
            backup_times.append(time.perf_counter() - t0)
        for i in range(args.runs):
            target = folder / f"restored-{i}" / "node.sqlite3"
            t0 = time.perf_counter()
            services.restore(path=path, private=key, db_file=target)
            restore_times.append(time.perf_counter() - t0)
            assert ids(target) == original, "restored records differ"
        db_bytes = db_file.stat().st_size + sum(p.stat().st_size for p in folder.glob("node.sqlite3-wal"))
        out = {"backup_s": round(statistics.median(backup_times), 3),
               "restore_s": round(statistics.median(restore_times), 3),
               "backup_bytes": path.stat().st_size,
               "database_bytes": db_bytes, "visits": len(original["visits"]),
               "backup_runs_s": [round(x, 3) for x in backup_times],
               "restore_runs_s": [round(x, 3) for x in restore_times],
               "records": {t: len(v) for t, v in original.items()},
               "python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
