"""Issue 9 point 2: the booth node killed with SIGKILL under load keeps every write it acknowledged.

Real processes and a real SIGKILL: the node is filled by ``demo --open`` and served by ``python -m booth.serve``
over TLS; 4 simulated tablets (``bench/loadlib.py``, the client of ``bench/load.py``) run the encounter and log
every write the node acknowledged; the node is killed at a seeded random moment within 10 s, restarted on the
same files, and the SQLite file must pass ``PRAGMA integrity_check`` and hold every acknowledged write.
``bench/crash.py`` runs the same rounds at full load (20 tablets, ≥ 10 rounds).
"""
from __future__ import annotations

import sqlite3
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from crash import crash_rounds, lost_writes  # noqa: E402

ROUNDS = 3
CHEAP_ARGON2 = {"VINCULO_ARGON2_TIME_COST": "1", "VINCULO_ARGON2_MEMORY_COST_KIB": "1024"}


def test_sigkill_under_load_loses_no_acknowledged_write(tmp_path):
    # short think times: 4 tablets make a few hundred writes in 3 rounds, so kills land among them
    s = crash_rounds(tmp_path, rounds=ROUNDS, tablets=4, seconds=10, seed=9, visits=40, think=(0.05, 0.3),
                     extra_env=CHEAP_ARGON2, say=lambda line: None)

    assert s["errors"] == []
    assert s["rounds"] == ROUNDS, "the node did not come back after every kill"
    assert s["integrity"] == "ok"
    assert s["lost"] == []
    assert len(s["kills_at"]) == ROUNDS and all(1.0 <= k <= 10.0 for k in s["kills_at"])
    # the rounds wrote every kind of record the encounter makes, and the node acknowledged them
    assert set(s["acked_by_kind"]) == {"visit", "consent", "counseling_start", "counseling", "screening", "result",
                                       "close"}, s["acked_by_kind"]
    assert s["acked"] >= 30

    # the same check, now that the node is stopped, finds them all again ...
    db_file = tmp_path / "node.sqlite3"
    assert lost_writes(db_file, s["acked_writes"]) == ([], "ok")
    # ... and would see a write that is missing or whose acknowledged state is not there (on a copy of the file)
    copy = tmp_path / "copy.sqlite3"
    with sqlite3.connect(db_file) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    closed = next((k, i, d) for k, i, d in s["acked_writes"] if k == "close")
    with sqlite3.connect(copy) as con:
        con.execute("UPDATE visits SET final_state = NULL, closed_at = NULL WHERE id = ?", (uuid.UUID(closed[1]).hex,))
    never = ("visit", str(uuid.uuid4()), "")
    lost, integrity = lost_writes(copy, s["acked_writes"] + [never])
    assert integrity == "ok"
    assert lost == [closed, never]
