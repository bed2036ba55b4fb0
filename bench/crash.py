"""Issue 9 point 2: the booth node killed with SIGKILL at random moments under the load of ``bench/load.py``.

Run from the repository root with the project's virtualenv::

    .venv/bin/python bench/crash.py [--rounds 10] [--tablets 20] [--seconds 60] [--seed 1] [--visits 800]
                                    [--think 1,3]

On a temporary instance folder and SQLite file (nothing in ``instance/`` is touched) it fills and serves a node
exactly as ``bench/load.py`` does (``demo --open``, ``python -m booth.serve`` with ``VINCULO_TLS=on``), enrolls
``--tablets`` tablets, and then, ``--rounds`` times:

1. every tablet logs in and runs the encounter (1–3 s think time, board polls; ``--think 0.05,0.3`` hammers the
   node so that more kills cut a request in flight) — the code of ``bench/load.py``,
   from ``bench/loadlib.py``; each tablet writes down every write the node acknowledged: the ``303`` (or, when a
   visit closes, the ``204`` + ``HX-Redirect`` htmx gets) after a ``POST`` — the new visit's id from the
   ``Location``, the visit or screening id and what was done from the form (consent, counseling started or
   finished, device started with lot L, result, closed as "done");
2. at a seeded random moment between 1 s and ``--seconds`` (default 60, the load bench's run) after the round's
   start the node gets ``SIGKILL`` (requests in flight die with it; whatever they did not get an answer for is
   not in the log). One encounter at human pace is ~13 taps, about half a minute, and every round starts new
   ones: shorter rounds would rarely reach the result and the close;
3. the node is started again on the same instance folder, database file and port (``booth.serve`` runs
   ``PRAGMA quick_check`` at start-up and SQLite replays the WAL); it must answer ``/healthz``;
4. the SQLite file is checked while the node runs: ``PRAGMA integrity_check`` is ``ok`` and every write
   acknowledged in *any* round so far is there — the row by its id, and the acknowledged state (the counseling
   finished, the device read, the visit closed as "done");
5. the tray is cleared for the next round through the services while the node is idle (every running device
   not in the pool of ready ones is closed out, every lot is topped up to 200 devices) and the pool of devices
   ready to read is filled up again; the tablets reconnect to the new process with their cookies, as a
   tablet's browser would.

Errors, reported apart from the lost writes: a node that does not come back, tracebacks in its log, and any
answer the tablets did not expect (a ``4xx``/``5xx`` other than the app's normal ``422`` answers) — broken
connections at the kill are expected. ``tests/test_crash.py`` runs the same rounds, small (4 tablets, ≤ 10 s).

It prints one line per round and ends with one JSON line:
``{"rounds": …, "lost_acked": …, "integrity": "ok", "acked": …, "errors": …}``
(``rounds``: rounds survived — killed, restarted and checked).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from loadlib import (STAFF, AckLog, Run, Stats, Tablet, enroll, free_port, node_app, pct, prepare, seed_ready,
                     start_node, stop_node, tablet_loop)

# what each acknowledged write must have left in the database; the parameters are (id, detail) as hex
CHECKS = {
    "visit": "SELECT 1 FROM visits WHERE id = :id",
    # one tap records every offered disease in one commit: one active consent proves the commit
    "consent": "SELECT 1 FROM consents WHERE visit_id = :id AND given = 1 AND voided_at IS NULL",
    "counseling_start": "SELECT 1 FROM counseling WHERE visit_id = :id AND kind = :detail "
                        "AND started_at IS NOT NULL AND voided_at IS NULL",
    "counseling": "SELECT 1 FROM counseling WHERE visit_id = :id AND kind = :detail "
                  "AND finished_at IS NOT NULL AND voided_at IS NULL",
    "screening": "SELECT 1 FROM screenings WHERE visit_id = :id AND lot_id = :detail",
    "result": "SELECT 1 FROM screenings s JOIN screening_results r ON r.screening_id = s.id "
              "WHERE s.id = :id AND s.state = 'read' AND r.voided_at IS NULL",
    "close": "SELECT 1 FROM visits WHERE id = :id AND final_state = :detail AND closed_at IS NOT NULL",
}


def lost_writes(db_file: Path, acked: list[tuple[str, str, str]]) -> tuple[list[tuple[str, str, str]], str]:
    """The acknowledged writes missing from the file, and its ``PRAGMA integrity_check``."""
    con = sqlite3.connect(db_file, timeout=30)
    try:
        integrity = "; ".join(r[0] for r in con.execute("PRAGMA integrity_check").fetchall())
        lost = []
        for kind, ident, detail in acked:
            detail_hex = uuid.UUID(detail).hex if kind == "screening" else detail
            if con.execute(CHECKS[kind], {"id": uuid.UUID(ident).hex, "detail": detail_hex}).fetchone() is None:
                lost.append((kind, ident, detail))
    finally:
        con.close()
    return lost, integrity


def refill(app, pool: list[str], want: int) -> int:
    """Between rounds: close out the devices that are running and not in the pool (the tablets' own, whose read
    window is 15 minutes away, and pool devices a killed tablet never read), bring every lot back to 200 devices
    (a small demo day's stock runs out) and top the pool up to ``want``."""
    from sqlalchemy import select

    from booth.auth.models import Staff
    from booth.events.models import Booth
    from booth.extensions import db
    from booth.screening import services as screening
    from booth.screening.models import Screening
    from booth.stock import services as stock
    from booth.stock.models import KitLot

    now = datetime.now(timezone.utc)
    with app.app_context():
        keep = {uuid.UUID(v) for v in pool}
        tester = db.session.scalar(select(Staff).where(Staff.code == "T01"))
        closed = 0
        for s in db.session.scalars(select(Screening).where(Screening.state == "running")).all():
            if s.visit_id not in keep:
                screening.close_out(db.session, s, now=now, actor=tester)
                closed += 1
        booth = db.session.scalar(select(Booth).limit(1))
        for lot in db.session.scalars(select(KitLot)).all():
            on_hand = stock.lot_on_hand(db.session, lot.id)
            if on_hand < 200:
                stock.adjust_lot(db.session, booth_id=booth.id, lot=lot, delta=200 - on_hand, reason="transfer",
                                 now=now, actor=tester)
        db.session.commit()
        pool.extend(seed_ready(max(0, want - len(pool)), now - timedelta(seconds=1)))
        db.engine.dispose()
    return closed


def crash_rounds(folder: Path, *, rounds: int, tablets: int, seconds: float, seed: int, visits: int,
                 think=(1.0, 3.0), kill_after: float = 1.0, extra_env: dict | None = None, say=None) -> dict:
    """Fill and serve a node in ``folder``, then ``rounds`` × (load, SIGKILL, restart, check). A summary."""
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    t0 = time.monotonic()
    ready_n = max(4, min(40, 60 - 2 * tablets))  # as bench/load.py: the tray has 60 slots
    instance, db_url, pins, codes, pool = prepare(folder, visits, tablets, ready_n, extra_env)
    db_file = folder / "node.sqlite3"
    say(f"node filled in {time.monotonic() - t0:.1f} s: demo --open --visits {visits}, {len(pool)} devices ready")
    rnd = random.Random(seed)
    port = free_port()
    proc, ctx = start_node(folder, instance, db_url, port, extra_env, log_name="serve-0.log")
    app = node_app(instance, db_url)
    acks = AckLog()
    summary = {"rounds": 0, "lost": [], "integrity": "ok", "errors": [], "restart_ms": [], "kills_at": [],
               "acked_by_kind": {}, "kills_mid_post": 0}
    try:
        tabs = []
        for i, code in enumerate(codes):
            tab = Tablet(port, ctx, None, random.Random(rnd.random()), acks)
            enroll(tab, code, f"Tableta {i + 1}")
            tabs.append(tab)
        for r in range(1, rounds + 1):
            stats = Stats()
            for tab in tabs:
                tab.stats = stats
            rnd.shuffle(pool)
            run = Run(port, ctx, stats, seconds, seed, pins[STAFF], pool, think)
            kill_at = rnd.uniform(kill_after, seconds)
            before = len(acks.acked)
            start = time.monotonic()
            run.deadline = start + seconds
            threads = [threading.Thread(target=tablet_loop, args=(run, tab, i), daemon=True)
                       for i, tab in enumerate(tabs)]
            for t in threads:
                t.start()
            time.sleep(max(0.0, start + kill_at - time.monotonic()))
            run.deadline = time.monotonic()  # no tablet starts a new tap: the requests that fail were in flight
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            for t in threads:
                t.join(timeout=60)
            if any(t.is_alive() for t in threads):
                summary["errors"].append(f"round {r}: a tablet still runs a minute after the kill")
            summary["errors"] += [f"round {r}: {e}" for e in stats.unexpected]
            t1 = time.monotonic()
            try:
                proc, ctx = start_node(folder, instance, db_url, port, extra_env, log_name=f"serve-{r}.log")
            except RuntimeError as e:
                summary["errors"].append(f"round {r}: {e}")
                break
            summary["restart_ms"].append((time.monotonic() - t1) * 1000)
            lost, integrity = lost_writes(db_file, acks.acked)
            if integrity != "ok" and summary["integrity"] == "ok":
                summary["integrity"] = f"round {r}: {integrity}"
            summary["lost"] = lost  # cumulative: every write acknowledged in any round so far
            summary["rounds"] = r
            summary["kills_at"].append(kill_at)
            broken = stats.broken
            broken_posts = sum(e.startswith("POST ") for e in broken)
            summary["kills_mid_post"] += bool(broken_posts)
            closed = refill(app, pool, ready_n)
            say(f"round {r}: SIGKILL at {kill_at:.1f} s, {len(acks.acked) - before} writes acknowledged "
                f"({len(acks.acked)} in all), lost {len(lost)}, integrity_check {integrity}, restart "
                f"{summary['restart_ms'][-1]:.0f} ms, {len(stats.samples)} requests, "
                f"{len(broken)} in flight broken by the kill ({broken_posts} POST), {len(stats.unexpected)} unexpected; "
                f"{closed} devices closed out for the next round")
            for tab in tabs:
                tab.reconnect(port, ctx)
    finally:
        stop_node(proc)
    logs = "".join(p.read_text() for p in sorted(folder.glob("serve-*.log")))
    if "Traceback" in logs:
        first = logs.index("Traceback")
        summary["errors"].append(f"{logs.count('Traceback')} tracebacks in the node's logs; the first:\n"
                                 + logs[first:first + 3000])
    for kind, _i, _d in acks.acked:
        summary["acked_by_kind"][kind] = summary["acked_by_kind"].get(kind, 0) + 1
    summary["acked"] = len(acks.acked)
    summary["acked_writes"] = list(acks.acked)
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--tablets", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60, help="the longest round; the kill comes before")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--visits", type=int, default=800, help="visits of the demo day")
    ap.add_argument("--think", default="1,3", help="seconds between two taps, LOW,HIGH (a human: 1,3)")
    args = ap.parse_args()
    think = tuple(float(x) for x in args.think.split(","))

    with tempfile.TemporaryDirectory(prefix="vinculo-crash-") as tmp:
        t0 = time.monotonic()
        s = crash_rounds(Path(tmp), rounds=args.rounds, tablets=args.tablets, seconds=args.seconds, seed=args.seed,
                         visits=args.visits, think=think)
    print(f"{s['rounds']} of {args.rounds} rounds survived in {time.monotonic() - t0:.0f} s, {args.tablets} tablets; "
          f"kills at {', '.join(f'{k:.1f}' for k in s['kills_at'])} s; restart to the first /healthz 200: "
          f"median {pct(s['restart_ms'], 50):.0f} ms, max {max(s['restart_ms'], default=float('nan')):.0f} ms; "
          f"{s['kills_mid_post']} kills cut a POST in flight", file=sys.stderr)
    print("acknowledged writes: " + ", ".join(f"{k} {n}" for k, n in sorted(s["acked_by_kind"].items())),
          file=sys.stderr)
    for kind, ident, detail in s["lost"][:20]:
        print(f"LOST: {kind} {ident} {detail}", file=sys.stderr)
    for e in s["errors"][:20]:
        print("error:", e, file=sys.stderr)
    print(json.dumps({"rounds": s["rounds"], "lost_acked": len(s["lost"]), "integrity": s["integrity"],
                      "acked": s["acked"], "errors": len(s["errors"])}))
    ok = s["rounds"] == args.rounds and not s["lost"] and s["integrity"] == "ok" and not s["errors"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
