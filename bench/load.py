"""Issue 9 point 1, booth part: 20 tablets working at once against one booth node over TLS.

Run from the repository root with the project's virtualenv::

    .venv/bin/python bench/load.py [--seconds 60] [--tablets 20] [--seed 1] [--visits 800]

What it does, on a temporary instance folder and SQLite file (nothing in ``instance/`` is touched):

1. fills a node the way an operator would: ``python -m booth.instance``, ``flask --app wsgi db upgrade``,
   ``flask --app wsgi demo --open --visits 800`` (its JSON line gives the staff PINs);
2. seeds a pool of visits whose HIV device was started a minute more than its read window ago (through the
   services, before the server starts), so that tablets have devices *ready to read* during the run: the
   read window is 15+ minutes of real time and the demo day's devices are in the past. The tray has 60
   slots (``MAX_SLOT``): the pool is ``60 − 2 × tablets`` visits (20 at full settings), leaving room for the
   devices the tablets start; once the tray is full, the app refuses a start with a 422 ("choose a tray
   slot"), which the script counts apart as a normal answer (20 tablets open ~60 visits a minute, far more
   than a real tray turns over in 15 minutes);
3. serves the node with ``python -m booth.serve`` and ``VINCULO_TLS=on`` (cheroot + TLS with the node's local
   CA, the server ``make run`` uses for tablets, forced on for loopback), on a free loopback port;
4. enrolls ``--tablets`` devices over HTTPS (one-time codes → ``GET``/``POST /enroll``, keeping cookies); each
   tablet is a thread with ONE keep-alive ``http.client.HTTPSConnection`` trusting ``instance/ca.pem``;
5. for ``--seconds`` every tablet logs in (``K02``, counselor + tester, its right PIN) and then loops over the
   encounter with a seeded human think time of 1–3 s between taps:
   ``GET /visits/new`` → ``POST /visits`` → card → consent (all) → pre-test counseling start/finish → start
   each device from the card's quick-start forms → the read of its own device (``422`` "too early" is the
   app's normal answer and counts as a success) → then a device of the ready pool: result → post-test
   counseling start/finish → close. A 303 is followed with a ``GET`` as htmx does (``HX-Request: true`` on
   the card's forms). Every tablet also polls ``GET /board`` (``HX-Request: true``) every 5 s on the same
   connection, like the timer-board screen;
6. a separate thread measures ``GET /healthz`` every 250 ms on its own connection: the baseline.

Latency is measured on the client, per request (a followed redirect is its own request); the table also
shows the app's own time from its ``Server-Timing`` header, which separates the app from TLS and queueing.
Errors are 5xx, connection errors, any status the script did not expect (a 4xx other than the read's 422
and the full tray's 422), tracebacks in the node's log, and after the run two running devices in one tray
slot or a failed ``PRAGMA integrity_check``. Enrollment happens before the clock starts; each tablet's login
(argon2, once per tablet) is inside the run and counted. ``LOAD_DUMP=DIR`` keeps every page that surprised
the script.

It prints a per-route table and ends with one JSON line:
``{"requests": …, "errors": …, "p50_ms": …, "p95_ms": …, "baseline_p95_ms": …}``.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

from loadlib import (STAFF, Run, Stats, Tablet, baseline_loop, enroll, free_port, pct, prepare, start_node,
                     stop_node, tablet_loop)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--tablets", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--visits", type=int, default=800, help="visits of the demo day")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="vinculo-load-") as tmp:
        folder = Path(tmp)
        t0 = time.monotonic()
        # the tray has MAX_SLOT (60) slots: leave two per tablet for the devices the tablets start
        ready_n = max(4, min(40, 60 - 2 * args.tablets))
        instance, db_url, pins, codes, ready = prepare(folder, args.visits, args.tablets, ready_n)
        print(f"node filled in {time.monotonic() - t0:.1f} s: demo --open --visits {args.visits}, "
              f"{len(ready)} visits with devices ready to read", file=sys.stderr)
        port = free_port()
        proc, ctx = start_node(folder, instance, db_url, port)
        try:
            rnd = random.Random(args.seed)
            tabs = []
            for i, code in enumerate(codes):
                tab = Tablet(port, ctx, None, random.Random(rnd.random()))
                enroll(tab, code, f"Tableta {i + 1}")
                tabs.append(tab)
            stats = Stats()
            for tab in tabs:
                tab.stats = stats
            rnd.shuffle(ready)
            run = Run(port, ctx, stats, args.seconds, args.seed, pins[STAFF], ready)
            base: list[float] = []
            base_errors: list[str] = []
            start = time.monotonic()
            run.deadline = start + args.seconds
            threads = [threading.Thread(target=tablet_loop, args=(run, tab, i), daemon=True)
                       for i, tab in enumerate(tabs)]
            threads.append(threading.Thread(target=baseline_loop, args=(port, ctx, run.deadline, base, base_errors),
                                            daemon=True))
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=args.seconds + 60)
            elapsed = time.monotonic() - start
            alive = proc.poll() is None
        finally:
            stop_node(proc)
        server_log = (folder / "serve.log").read_text()
        import sqlite3

        with sqlite3.connect(folder / "node.sqlite3") as con:  # what the run left: two devices in one tray slot?
            shared_slots = con.execute("SELECT s.slot, COUNT(*) FROM screenings s JOIN visits v ON v.id = s.visit_id "
                                       "WHERE s.state = 'running' GROUP BY v.booth_id, s.slot "
                                       "HAVING COUNT(*) > 1").fetchall()
            integrity = con.execute("PRAGMA integrity_check").fetchone()[0]

    errors = stats.errors + base_errors + ([] if alive else ["the node died"])
    if shared_slots:
        errors.append(f"{len(shared_slots)} tray slots hold two running devices: {shared_slots[:5]}")
    if integrity != "ok":
        errors.append(f"integrity_check: {integrity}")
    tracebacks = server_log.count("Traceback")
    if tracebacks:
        errors.append(f"{tracebacks} tracebacks in the node's log")
        first = server_log.index("Traceback")
        print("the node's first traceback:\n" + server_log[first:first + 6000], file=sys.stderr)
    lat = [ms for _r, ms, _s, _a in stats.samples]
    app_ms = [a for _r, _ms, _s, a in stats.samples if a == a]
    by_route, by_route_app = defaultdict(list), defaultdict(list)
    for r, ms, _s, a in stats.samples:
        by_route[r].append(ms)
        if a == a:
            by_route_app[r].append(a)
    print(f"{args.tablets} tablets, {elapsed:.1f} s, {len(lat)} requests ({len(lat) / elapsed:.1f}/s), "
          f"{run.encounters} encounters closed, reads: {run.reads['ready']} ready, "
          f"{run.reads['too_early']} too early (422), device starts refused for a full tray (422): "
          f"{run.reads['tray_full']}", file=sys.stderr)
    print(f"{'route (client ms; app = Server-Timing)':<48} {'n':>5} {'p50':>7} {'p95':>7} {'max':>7} "
          f"{'app p50':>8} {'app p95':>8}", file=sys.stderr)
    for r, v in sorted(by_route.items(), key=lambda kv: -len(kv[1])):
        a = by_route_app.get(r, [])
        print(f"{r:<48} {len(v):>5} {pct(v, 50):>7.1f} {pct(v, 95):>7.1f} {max(v):>7.1f} {pct(a, 50):>8.1f} "
              f"{pct(a, 95):>8.1f}", file=sys.stderr)
    print(f"{'all tablet requests':<48} {len(lat):>5} {pct(lat, 50):>7.1f} {pct(lat, 95):>7.1f} "
          f"{max(lat) if lat else float('nan'):>7.1f} {pct(app_ms, 50):>8.1f} {pct(app_ms, 95):>8.1f}", file=sys.stderr)
    print(f"{'baseline GET /healthz':<48} {len(base):>5} {pct(base, 50):>7.1f} {pct(base, 95):>7.1f} "
          f"{max(base) if base else float('nan'):>7.1f}", file=sys.stderr)
    for e in errors[:20]:
        print("error:", e, file=sys.stderr)
    print(json.dumps({"requests": len(lat), "errors": len(errors), "p50_ms": round(pct(lat, 50), 1),
                      "p95_ms": round(pct(lat, 95), 1), "baseline_p95_ms": round(pct(base, 95), 1)}))
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
