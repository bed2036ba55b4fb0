"""Issue 7 figures: push 5 booths × 2,000 visits (10,000 visits with their related records) into an empty
central database over loopback, against a plain psycopg ``executemany`` of the same rows; central's memory
during the push; then the same 10,000 visits through the fault-injecting proxy.

Run from the repository root with the project's virtualenv (PostgreSQL needed)::

    TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/sync.py [--nodes 5] [--visits 2000] [--batch 1000] [--cache DIR] [--no-faulty] \\
        [--no-dashboard-refresh] [--keep]

Nothing in ``instance/`` is touched. PostgreSQL is reached through ``TEST_DATABASE_URL`` (its database is
not used: the script drops and creates scratch databases of its own, ``vinculo_bench_sync``,
``vinculo_bench_sync_plain`` and ``vinculo_bench_sync_faulty``, and drops them at the end unless ``--keep``).

1. **Booth nodes**: ``--nodes`` folders, each with its ``instance/`` and SQLite file, migrated and filled by
   ``flask --app wsgi demo --visits N --seed S`` (seeds 1…nodes; a closed demo day). ``demo`` takes about a
   minute per 2,000 visits: with ``--cache DIR`` the filled nodes are kept there (never enrolled) and copied
   on later runs. Each phase below works on fresh copies.
2. **Central**: a scratch database migrated with ``flask --app wsgi db upgrade`` (``VINCULO_ROLE=central``), and
   ``python -m booth.serve`` (waitress, plain HTTP on loopback) as a real process. Each node is registered
   (``flask --app wsgi sync register-node NAME --json`` at central) and enrolled (``flask --app wsgi sync enroll
   URL CODE`` on the booth) — not timed.
3. **Sync** (``sync_s``): the nodes push one after the other, in this process, with ``booth.sync.node.push``
   (what ``flask sync push`` runs: read the outbox as JSON written by SQLite, sign, POST with two requests in
   flight, write the acknowledgements in the booth's SQLite), batch size ``--batch`` (default ``outbox.BATCH``, what ``node.push`` and the sync screen use;
   ``flask sync push --batch`` has its own default). ``sync_s`` is the wall time from the first
   node's first read to the last node's last acknowledgement. Afterwards it checks, per kind, central's ledger
   count against the rows the nodes hold, central's visits, that every node's receipt matches and that no
   record is pending, quarantined or deferred.
   **Memory** (``central_rss_mb``): ``VmRSS`` of the central process sampled every 20 ms during the push; the
   figure is the peak, ``max(samples, VmHWM)`` (``VmHWM`` covers the whole life of the process).
4. **Yardstick** (``executemany_s``): the same rows, read from the nodes' SQLite files with the same columns
   (per kind, kinds in push order: parents first; ids in order within a kind), inserted with psycopg
   ``executemany`` into a second empty database migrated the same way, one transaction. Only the inserts and
   the commit are timed (the rows are read and converted first); the kit catalogue the kit lots point to is
   inserted before the clock starts. It runs ``--yardstick-runs`` times (default 3; the tables are emptied with
   ``TRUNCATE`` between runs) and ``executemany_s`` is the median run (``executemany_runs_s`` lists them all):
   one run moved by ±30 % between bench runs on this shared machine. ``ratio`` = ``sync_s / executemany_s``
   (goal ≤ 4). For scale it also
   times the same plain insert of the ledger rows the sync writes beside them (``executemany_ledger_s``).
   **CPU** (``sync_cpu_s``, ``executemany_cpu_s``, ``cpu_ratio``): user + system seconds of this process (the
   booth side), of central's process and of the PostgreSQL backends of each scratch database while the push or
   the inserts run (``/proc``): on a machine shared with other work they stretch less than wall time.
   ``--no-dashboard-refresh`` (a diagnosis) serves central with ``booth.reports.central.refresh_days`` replaced
   by a no-op, to see what the dashboard summaries recomputed at the end of each push cost.
5. **Bad network** (unless ``--no-faulty``): fresh copies of the nodes, a third empty database and central
   process, and ``tests/sync/faulty_proxy.py`` between them (drops 20 % of requests, drops 20 % of responses,
   duplicates 10 %); the nodes push at the same time, one thread each, with the real back-off (jitter,
   real sleeps) and up to ``--attempts`` tries per batch. Checked as in 3: exactly ``nodes × visits`` visits,
   every record once, every receipt matching.

It ends with one JSON line:
``{"sync_s": …, "executemany_s": …, "ratio": …, "central_rss_mb": …, …}`` (the issue's keys first).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from psycopg.types.json import Json  # noqa: E402

from bench import synclib  # noqa: E402  (shared with bench/central_load.py)
from bench.synclib import Scratch  # noqa: E402

SCRATCH = "vinculo_bench_sync"


# ---------------------------------------------------------------- central as a real process

def cpu_s(pid: int) -> float:
    """User + system CPU time of a process so far (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CPU:
    """CPU seconds spent by this process, another process and the PostgreSQL backends of a database while a
    block runs: on a machine shared with other work, these do not stretch with the load as wall time does."""

    def __init__(self, scratch: "Scratch", other: int | None = None):
        self.scratch, self.other = scratch, other

    def backends(self) -> dict[int, float]:
        with psycopg.connect(self.scratch.admin, autocommit=True) as conn:
            pids = [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s",
                                               (self.scratch.name,))]
        return {pid: cpu_s(pid) for pid in pids}

    def __enter__(self):
        pg = self.backends()
        self.t0 = (pg, cpu_s(self.other) if self.other else 0.0, time.process_time())
        return self

    def __exit__(self, *exc):
        pg, other, own = self.t0
        self.own_s = time.process_time() - own
        self.other_s = (cpu_s(self.other) - other) if self.other else 0.0
        self.pg_s = sum(v - pg.get(pid, 0.0) for pid, v in self.backends().items())


def status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


# --no-dashboard-refresh (a diagnosis, not the product): central without the dashboard's summary refresh
WITHOUT_REFRESH = ("import sys, booth.reports.central as c; c.refresh_days = lambda *a, **k: 0; "
                   "from booth.serve import main; sys.exit(main())")


class Central(synclib.Central):
    """bench/synclib's central server (``python -m booth.serve``, ``VINCULO_ROLE=central``), sampling its RSS;
    ``refresh=False``: without the dashboard's summary refresh (``--no-dashboard-refresh``)."""

    def __init__(self, folder: Path, db_url: str, refresh: bool = True):
        super().__init__(folder, db_url)
        if not refresh:
            self.serve = ["-c", WITHOUT_REFRESH]
        self.samples: list[int] = []
        self._sampling = threading.Event()

    def rss_mb(self) -> float:
        return status_kb(self.proc.pid, "VmRSS") / 1024

    def sample(self):
        """Context manager: sample VmRSS every 20 ms while the block runs."""
        central = self

        class Sampler:
            def __enter__(self):
                central.samples = []
                central._sampling.set()
                self.thread = threading.Thread(target=self.loop, daemon=True)
                self.thread.start()
                return self

            def loop(self):
                while central._sampling.is_set():
                    central.samples.append(status_kb(central.proc.pid, "VmRSS"))
                    time.sleep(0.02)

            def __exit__(self, *exc):
                central._sampling.clear()
                self.thread.join()

        return Sampler()

    def peak_mb(self) -> float:
        return max(max(self.samples or [0]), status_kb(self.proc.pid, "VmHWM")) / 1024


# ---------------------------------------------------------------- booth nodes

def booth_app(folder: Path):
    from booth import create_app

    return create_app({"ROLE": "booth", "INSTANCE_DIR": str(folder / "instance"),
                       "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'node.sqlite3'}"})


def enroll_all(central: Central, nodes: list[Path]) -> list:
    apps = []
    for i, folder in enumerate(nodes):
        synclib.enroll(folder, central.url, central.register_cli(f"Módulo {i + 1}")["code"])
        apps.append(booth_app(folder))
    return apps


def started(work: Path, base_url: str, name: str, refresh: bool = True) -> tuple[Scratch, Central]:
    """An empty scratch database ``name``, migrated, and central serving it (its folder: ``work / name``)."""
    scratch = Scratch(base_url, name)
    central = Central(work / name, scratch.url, refresh)
    central.migrate()
    central.start()
    return scratch, central


def held_counts(app) -> dict:
    from booth.extensions import db
    from booth.sync import records as R

    with app.app_context():
        return {k.name: db.session.scalar(sa.select(sa.func.count()).select_from(db.metadata.tables[k.table]))
                for k in R.KINDS}


def transport(app, url: str | None = None):
    from booth import clock
    from booth.sync import client

    state = client.load_state(app.instance_path)
    if url:
        state.central_url = url
    return client.Transport(state, lambda: clock.now().timestamp(), timeout=300)


def push_one(app, url=None, **kw):
    from booth.extensions import db
    from booth.sync import node

    with app.app_context():
        report = node.push(db.session, transport(app, url), **kw)
        db.session.remove()
    return report


def verify(central: Central, apps: list, held: list[dict], reports: list, visits: int) -> dict:
    """Central holds every record once (ledger per kind = rows held by the nodes), the visits, and every
    receipt matches; nothing pending, quarantined or deferred."""
    from booth.extensions import db
    from booth.sync import node, records as R

    engine = sa.create_engine(central.env["DATABASE_URL"])
    with engine.connect() as conn:
        ledger = dict(conn.execute(sa.text("SELECT kind, count(*) FROM sync_records GROUP BY kind")).all())
        central_visits = conn.execute(sa.text("SELECT count(*) FROM visits")).scalar_one()
        quarantine = conn.execute(sa.text("SELECT count(*) FROM sync_quarantine")).scalar_one()
    engine.dispose()
    wrong = {k.name: (ledger.get(k.name, 0), sum(h[k.name] for h in held)) for k in R.KINDS
             if ledger.get(k.name, 0) != sum(h[k.name] for h in held)}
    receipts, pending = [], 0
    for app in apps:
        with app.app_context():
            receipts.append(node.receipt(db.session, transport(app))["match"])
            pending += sum(node.outbox.pending_counts(db.session, db.metadata).values())
            db.session.remove()
    out = {"central_visits": central_visits, "expected_visits": visits * len(apps),
           "records": sum(ledger.values()), "ledger_mismatch": wrong, "receipts_match": all(receipts),
           "pending": pending, "quarantine_rows": quarantine,
           "quarantined": sum(r.quarantined for r in reports), "deferred": sum(r.deferred for r in reports)}
    out["ok"] = (central_visits == visits * len(apps) and not wrong and all(receipts) and pending == 0
                 and quarantine == 0 and out["quarantined"] == 0 and out["deferred"] == 0)
    return out


# ---------------------------------------------------------------- the plain executemany yardstick

def plain_rows(nodes: list[Path]) -> tuple[list, list]:
    """[(target table, columns, rows)] per kind in push order (all nodes), and the kit catalogue."""
    from booth.extensions import db
    from booth.sync import records as R

    def convert(value):
        return Json(value) if isinstance(value, (dict, list)) else value

    per_kind: dict[str, list] = {k.name: [] for k in R.KINDS}
    catalogue = []
    kit = R.PULL_BY_NAME["kit_product"]
    for i, folder in enumerate(nodes):
        app = booth_app(folder)
        with app.app_context():
            for kind in R.KINDS + ((kit,) if i == 0 else ()):
                cols = R.columns(db.metadata, kind)
                table = db.metadata.tables[kind.table]
                rows = db.session.execute(sa.select(*cols).order_by(table.c.id)).all()
                rows = [tuple(convert(v) for v in r) for r in rows]
                if kind is kit:
                    catalogue = [(kind.target, [c.name for c in cols], rows)]
                else:
                    per_kind[kind.name].extend(rows)
            names = {k.name: [c.name for c in R.columns(db.metadata, k)] for k in R.KINDS}
            db.session.remove()
            db.engine.dispose()
    return [(k.target, names[k.name], per_kind[k.name]) for k in R.KINDS], catalogue


def insert_sql(table: str, cols: list[str]) -> str:
    return (f'INSERT INTO "{table}" ({", ".join(f"{chr(34)}{c}{chr(34)}" for c in cols)}) '
            f'VALUES ({", ".join(["%s"] * len(cols))})')


def executemany(scratch: Scratch, tables: list, catalogue: list, n_nodes: int, runs: int = 3) -> dict:
    """The yardstick, ``runs`` times into the emptied tables (TRUNCATE between runs); its figure is the median
    run (one run moved by ±30 % between bench runs on this shared machine)."""
    from datetime import datetime, timezone

    from booth.db import new_id

    timed = []
    with psycopg.connect(scratch.dsn) as conn:
        with conn.cursor() as cur:
            for table, cols, rows in catalogue:
                cur.executemany(insert_sql(table, cols), rows)
        conn.commit()
        for i in range(runs):
            if i:
                conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t, _c, _r in tables) + " CASCADE")
                conn.commit()
            with CPU(scratch) as cpu:
                t0 = time.perf_counter()
                with conn.cursor() as cur:
                    for table, cols, rows in tables:
                        if rows:
                            cur.executemany(insert_sql(table, cols), rows)
                conn.commit()
                timed.append((time.perf_counter() - t0, cpu))
        # the ledger rows the sync writes beside them (kind, id, node, received_at), for scale
        now = datetime.now(timezone.utc)
        nodes = [new_id() for _ in range(n_nodes)]
        with conn.cursor() as cur:
            cur.executemany(insert_sql("sync_nodes", ["id", "name", "code_hash", "code_expires_at", "created_at"]),
                            [(n, f"n{i}", f"{i:064d}", now, now) for i, n in enumerate(nodes)])
        conn.commit()
        from booth.sync import records as R
        ledger = [(R.KINDS[i].name, row[cols.index("id")], nodes[0], now)
                  for i, (table, cols, rows) in enumerate(tables) for row in rows]
        t0 = time.perf_counter()
        with conn.cursor() as cur:
            cur.executemany(insert_sql("sync_records", ["kind", "record_id", "node_id", "received_at"]), ledger)
        conn.commit()
        ledger_s = time.perf_counter() - t0
    rows_s, cpu = sorted(timed, key=lambda t: t[0])[len(timed) // 2]
    return {"executemany_s": rows_s, "executemany_runs_s": [round(t, 2) for t, _c in timed],
            "executemany_ledger_s": ledger_s, "cpu": {"client_s": cpu.own_s, "postgres_s": cpu.pg_s},
            "rows": sum(len(rows) for _t, _c, rows in tables)}


# ---------------------------------------------------------------- phases

def push_processes(folders: list[Path], batch: int) -> tuple[list, list[float], float]:
    """Every node's ``flask sync push --json`` as its own process, all started at once (booths are separate
    machines; here they share the 2 cores with central and PostgreSQL). Returns the reports, each node's wall
    time and the children's CPU seconds."""
    import resource
    from types import SimpleNamespace

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "sync", "push", "--json", "--batch",
                               str(batch)], cwd=ROOT, env=synclib.node_env(f), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for f in folders]
    reports, walls = [], []
    for p in procs:
        out, err = p.communicate()
        walls.append(round(time.perf_counter() - t0, 2))
        if p.returncode != 0:
            raise SystemExit(f"sync push failed:\n{out[-2000:]}\n{err[-2000:]}")
        reports.append(SimpleNamespace(**json.loads(out.strip().splitlines()[-1])))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return reports, walls, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def phase_direct(work: Path, base_url: str, nodes, batch: int, keep: bool, refresh: bool,
                 concurrent: bool = False) -> dict:
    scratch, central = started(work, base_url, SCRATCH, refresh)
    try:
        apps = enroll_all(central, nodes(work / "direct"))
        held = [held_counts(a) for a in apps]
        idle = central.rss_mb()
        reports, per_node = [], []
        children_s = 0.0
        with central.sample(), CPU(scratch, central.proc.pid) as cpu:
            t0 = time.perf_counter()
            if concurrent:
                for app in apps:   # the processes open the node files themselves
                    with app.app_context():
                        from booth.extensions import db

                        db.engine.dispose()
                reports, per_node, children_s = push_processes([Path(a.instance_path).parent for a in apps], batch)
            else:
                for app in apps:
                    t1 = time.perf_counter()
                    reports.append(push_one(app, batch_size=batch))
                    per_node.append(round(time.perf_counter() - t1, 2))
            sync_s = time.perf_counter() - t0
        peak = central.peak_mb()
        after = central.rss_mb()
        check = verify(central, apps, held, reports, visits=VISITS)
    finally:
        central.stop()
        if not keep:
            scratch.drop()
    return {"nodes": [Path(a.instance_path).parent for a in apps], "sync_s": sync_s, "per_node_s": per_node,
            "central_rss_mb": peak, "central_idle_rss_mb": idle, "central_after_rss_mb": after,
            "batches": sum(r.batches for r in reports), "retries": sum(r.retries for r in reports),
            "check": check, "held": held,
            "cpu": {"booth_s": cpu.own_s + children_s, "central_s": cpu.other_s, "postgres_s": cpu.pg_s},
            "concurrent": concurrent}


def phase_faulty(work: Path, base_url: str, nodes, batch: int, attempts: int, keep: bool,
                 refresh: bool) -> dict:
    from tests.sync.faulty_proxy import FaultyProxy

    scratch, central = started(work, base_url, SCRATCH + "_faulty", refresh)
    try:
        apps = enroll_all(central, nodes(work / "faulty"))
        held = [held_counts(a) for a in apps]
        reports: dict = {}
        errors: list = []
        with FaultyProxy(central.port, seed=7) as proxy, central.sample():
            def worker(i, app):
                try:
                    reports[i] = push_one(app, proxy.url, batch_size=batch, attempts=attempts, rng=random.Random(i))
                except Exception as e:  # noqa: BLE001 - reported
                    errors.append(f"node {i + 1}: {e!r}")

            t0 = time.perf_counter()
            threads = [threading.Thread(target=worker, args=(i, a)) for i, a in enumerate(apps)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
        peak = central.peak_mb()
        ordered = [reports[i] for i in sorted(reports)]
        check = verify(central, apps, held, ordered, visits=VISITS) if not errors else {"ok": False}
    finally:
        central.stop()
        if not keep:
            scratch.drop()
    return {"wall_s": wall, "errors": errors, "faults": dict(proxy.counts), "central_rss_mb": peak,
            "retries": sum(r.retries for r in ordered), "batches": sum(r.batches for r in ordered), "check": check}


VISITS = 2000


def main() -> int:
    global VISITS
    from booth.sync import outbox

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nodes", type=int, default=5)
    p.add_argument("--visits", type=int, default=2000, help="visits per node (demo day)")
    p.add_argument("--batch", type=int, default=outbox.BATCH, help=f"records per push request (default {outbox.BATCH})")
    p.add_argument("--attempts", type=int, default=60, help="tries per batch in the bad-network phase")
    p.add_argument("--cache", type=Path, default=None, help="keep/reuse the filled (never enrolled) nodes here")
    p.add_argument("--no-faulty", action="store_true", help="skip the bad-network phase")
    p.add_argument("--concurrent", action="store_true",
                   help="the booths push at once, each `flask sync push` its own process (as separate laptops would), "
                        "instead of one after the other in this process")
    p.add_argument("--yardstick-runs", type=int, default=3,
                   help="times the executemany yardstick runs (its figure is the median run)")
    p.add_argument("--keep", action="store_true", help="keep the scratch databases and the temporary folder")
    p.add_argument("--no-dashboard-refresh", action="store_true",
                   help="diagnosis: serve central without the dashboard's per-batch summary refresh")
    args = p.parse_args()
    load_before = os.getloadavg()[0]
    VISITS = args.visits
    base_url = os.environ.get("TEST_DATABASE_URL")
    if not base_url:
        print("TEST_DATABASE_URL is not set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="vinculo-bench-sync-"))
    try:
        print(f"nodes: {args.nodes} × demo --visits {args.visits}", flush=True)
        cache = args.cache or work / "pristine"   # filled once, copied fresh for each phase

        def nodes(into: Path) -> list[Path]:
            return synclib.demo_nodes(into, list(range(1, args.nodes + 1)), args.visits, cache,
                                      log=lambda line: print(line, flush=True))

        direct = phase_direct(work, base_url, nodes, args.batch, args.keep, not args.no_dashboard_refresh,
                              concurrent=args.concurrent)
        c = direct["check"]
        print(f"sync: {c['records']:,} records ({c['central_visits']:,} visits) from {args.nodes} nodes in "
              f"{direct['sync_s']:.1f} s ({direct['batches']} batches of ≤ {args.batch}; per node "
              f"{', '.join(f'{s:.1f}' for s in direct['per_node_s'])} s); check {'ok' if c['ok'] else 'FAILED'}",
              flush=True)
        if not c["ok"]:
            print(json.dumps(c, default=str), flush=True)
        print(f"central RSS: idle {direct['central_idle_rss_mb']:.0f} MB, peak during the push "
              f"{direct['central_rss_mb']:.0f} MB, after {direct['central_after_rss_mb']:.0f} MB", flush=True)

        tables, catalogue = plain_rows(direct["nodes"])   # the pushed copies (enrolling added an audit entry)
        scratch = Scratch(base_url, SCRATCH + "_plain")
        Central(work / "central_plain", scratch.url).migrate()   # migrated as central's, never served
        try:
            plain = executemany(scratch, tables, catalogue, args.nodes, args.yardstick_runs)
        finally:
            if not args.keep:
                scratch.drop()
        ratio = direct["sync_s"] / plain["executemany_s"]
        print(f"executemany: {plain['rows']:,} rows in {plain['executemany_s']:.1f} s (median of "
              f"{', '.join(f'{t:.1f}' for t in plain['executemany_runs_s'])} s) "
              f"(+ ledger rows {plain['executemany_ledger_s']:.1f} s); ratio {ratio:.2f} (goal ≤ 4)", flush=True)
        sync_cpu, plain_cpu = direct["cpu"], plain["cpu"]
        cpu_ratio = sum(sync_cpu.values()) / sum(plain_cpu.values())
        print(f"CPU: sync booth {sync_cpu['booth_s']:.1f} s + central {sync_cpu['central_s']:.1f} s + PostgreSQL "
              f"{sync_cpu['postgres_s']:.1f} s; executemany client {plain_cpu['client_s']:.1f} s + PostgreSQL "
              f"{plain_cpu['postgres_s']:.1f} s; ratio {cpu_ratio:.2f}", flush=True)

        faulty = None
        if not args.no_faulty:
            faulty = phase_faulty(work, base_url, nodes, args.batch, args.attempts, args.keep,
                                  not args.no_dashboard_refresh)
            fc = faulty["check"]
            print(f"bad network: {faulty['faults']} → {fc.get('central_visits')} visits, "
                  f"receipts {'match' if fc.get('receipts_match') else 'DO NOT match'}, {faulty['retries']} retries, "
                  f"{faulty['wall_s']:.1f} s wall, central peak {faulty['central_rss_mb']:.0f} MB; "
                  f"check {'ok' if fc['ok'] else 'FAILED'} {faulty['errors'] or ''}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}", file=sys.stderr)

    out = {"sync_s": round(direct["sync_s"], 2), "executemany_s": round(plain["executemany_s"], 2),
           "ratio": round(ratio, 2), "central_rss_mb": round(direct["central_rss_mb"], 1),
           "nodes": args.nodes, "visits": c["central_visits"], "records": c["records"], "batch": args.batch,
           "sync_ok": c["ok"], "executemany_runs_s": plain["executemany_runs_s"],
           "executemany_ledger_s": round(plain["executemany_ledger_s"], 2), "window": outbox.WINDOW,
           "dashboard_refresh": not args.no_dashboard_refresh, "concurrent": args.concurrent,
           "sync_cpu_s": {k: round(v, 1) for k, v in sync_cpu.items()},
           "executemany_cpu_s": {k: round(v, 1) for k, v in plain_cpu.items()}, "cpu_ratio": round(cpu_ratio, 2),
           "load_avg": [round(load_before, 1), round(os.getloadavg()[0], 1)]}
    if faulty is not None:
        fc = faulty["check"]
        out.update({"faulty_ok": fc["ok"], "faulty_visits": fc.get("central_visits"),
                    "faulty_receipts_match": fc.get("receipts_match"), "faulty_wall_s": round(faulty["wall_s"], 1),
                    "faulty_retries": faulty["retries"], "faulty_counts": faulty["faults"],
                    "faulty_central_rss_mb": round(faulty["central_rss_mb"], 1)})
    print(json.dumps(out))
    return 0 if c["ok"] and (faulty is None or faulty["check"]["ok"]) else 1


if __name__ == "__main__":
    sys.exit(main())
