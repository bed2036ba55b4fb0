"""Reports: how long the booth dashboard and the central dashboard take (issue 8's figures).

Run from the repository root with the project's virtualenv::

    TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \
    .venv/bin/python bench/dashboard.py [--visits 2000] [--seed 1] [--runs 20] [--open]
        [--booths 50] [--events 10] [--days 10] [--per-day 2000] [--templates 2] [--central-runs 30] [--keep | --reuse]

**Booth** (SQLite, a temporary instance folder; nothing in ``instance/`` is touched):

1. migrates a fresh booth node and fills it with ``flask --app wsgi demo --visits N --seed S`` (the same
   command a person runs: event, staff, example destinations, a day of visits 10:00–16:00 local, closed
   at 16:00 unless ``--open``), with the node's clock frozen at 17:00 local on the event day (``--open``:
   15:30, the day still running);
2. enrolls a tablet and logs the coordinator in through ``POST /login`` (production argon2 cost);
3. times, ``--runs`` times each after one untimed warm-up: ``booth.reports.indicators.daily_totals``
   alone; the whole ``GET /dashboard`` page through Flask's test client (indicators + templates + SVG
   chart: what the goal is about); and the htmx partial the page polls every 30 s (``HX-Request``).

**Central** (PostgreSQL; skipped without ``TEST_DATABASE_URL``):

4. makes its own scratch database ``vinculo_bench_dashboard`` on that server (dropped at the end unless
   ``--keep``; ``--reuse`` measures a kept one again), migrates it, and fills it with ``booths × days ×
   per-day`` visits (50 × 10 × 2,000 = 1,000,000 over 10 events) by ``COPY`` (bench/centralgen.py: copies of
   ``--templates`` closed demo days with new ids, booths, events and dates, plus clinics' linkage records);
5. builds the summary of every booth-day (``booth.reports.central.refresh_all``: what sync keeps up to
   date) and times one booth-day's refresh (what each pushed batch pays per booth-day it touches);
6. signs a coordinator in (password + TOTP) and times, ``--central-runs`` times each after a warm-up,
   ``GET /central/dashboard?event=…`` (one event) and ``GET /central/dashboard`` (all events), all events
   again with a date range (read per booth-day instead of per booth), the shareable view for one and all
   events, and ``SELECT count(*) FROM visits`` (the yardstick) on the same connection pool.

Ends with one JSON line ``{"event_p95_ms", "all_p95_ms", "count_ms", "booth_ms"}``. Goals: ``booth_ms``
(median of the full page) < 100 ms with 2,000 visits on SQLite; ``event_p95_ms`` and ``all_p95_ms`` < 300 ms
with 1,000,000 visits on PostgreSQL. ``count_ms`` is the median of the ``count(*)``; the details go to
standard error.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from datetime import datetime, time as dtime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from booth import create_app  # noqa: E402
from booth.clock import FrozenClock  # noqa: E402

TZ = "America/Mexico_City"
DAY = datetime(2026, 6, 27).date()
CSRF_RE = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


def build(folder: Path, visits: int, seed: int, open_day: bool):
    from flask_migrate import upgrade

    from booth.auth import services as auth
    from booth.extensions import db

    local = dtime(15, 30) if open_day else dtime(17, 0)
    clock = FrozenClock(datetime.combine(DAY, local, ZoneInfo(TZ)).astimezone(timezone.utc))
    (folder / "instance").mkdir()
    app = create_app({"SECRET_KEY": "bench-secret-" + "x" * 40, "INSTANCE_DIR": str(folder / "instance"),
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'node.sqlite3'}", "CLOCK": clock})
    with app.app_context():
        upgrade()
    logging.getLogger("alembic").setLevel(logging.WARNING)   # after: the migration environment sets it up
    t0 = time.perf_counter()
    args = ["demo", "--visits", str(visits), "--seed", str(seed), "--timezone", TZ] + (["--open"] if open_day else [])
    result = app.test_cli_runner().invoke(args=args)
    if result.exit_code != 0:
        raise SystemExit(f"demo failed: {result.output}")
    fill_s = time.perf_counter() - t0
    pin = next(s["pin"] for s in json.loads(result.output.strip().splitlines()[-1])["staff"] if s["code"] == "C01")
    with app.app_context():
        _row, code = auth.create_enrollment_code(db.session, now=clock.now(), minutes=10, actor=None)
        _dev, token = auth.enroll_device(db.session, code=code, name="Bench tablet", now=clock.now())
        db.session.commit()
    client = app.test_client()
    client.set_cookie("vinculo_device", token)
    page = client.get("/login").get_data(as_text=True)
    r = client.post("/login", data={"code": "C01", "pin": pin, "csrf_token": CSRF_RE.search(page).group(1)})
    assert r.status_code == 303, r.status_code
    return app, client, fill_s


def timed(fn, runs: int) -> list[float]:
    fn()  # warm-up: first template compilation, first statements prepared
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)], 1)


def ms(values) -> float:
    return round(statistics.median(values), 1)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visits", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--open", dest="open_day", action="store_true", help="leave the booth's day open (15:30)")
    parser.add_argument("--booths", type=int, default=50)
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--days", type=int, default=10, help="days each booth works")
    parser.add_argument("--per-day", type=int, default=2000, help="visits per booth-day at central")
    parser.add_argument("--templates", type=int, default=2, help="distinct demo days copied (seeds S, S+1 …)")
    parser.add_argument("--central-runs", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--reuse", action="store_true", help="measure a kept scratch database again")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="vinculo-dashboard-") as tmp:
        booth = booth_part(Path(tmp), args)
        central_url = os.environ.get("TEST_DATABASE_URL")
        central = central_part(Path(tmp), args, central_url) if central_url else None

    print(json.dumps({"booth": booth, "central": central}), file=sys.stderr)
    if central is None:
        line = {"event_p95_ms": None, "all_p95_ms": None, "count_ms": None, "booth_ms": booth["page_ms"],
                "central": "not measured: set TEST_DATABASE_URL"}
    else:
        line = {"event_p95_ms": central["event_p95_ms"], "all_p95_ms": central["all_p95_ms"],
                "count_ms": central["count_ms"], "booth_ms": booth["page_ms"]}
    print(json.dumps(line))
    return line


def booth_part(tmp: Path, args) -> dict:
    folder = tmp / "booth"
    folder.mkdir()
    app, client, fill_s = build(folder, args.visits, args.seed, args.open_day)
    from booth.events.queries import this_booth
    from booth.extensions import db
    from booth.reports import indicators
    from booth.settings import services as settings_services

    with app.app_context():
        booth = this_booth(db.session)
        settings = settings_services.signed(db.session, booth.event_id)
        now = app.config["CLOCK"].now()
        totals = indicators.daily_totals(db.session, booth_id=booth.id, day=DAY, tz_name=TZ, settings=settings,
                                         now=now)
        ind = timed(lambda: (indicators.daily_totals(db.session, booth_id=booth.id, day=DAY, tz_name=TZ,
                                                     settings=settings, now=now), db.session.rollback()),
                    args.runs)
        summary = {"visits": totals.visits, "devices": totals.devices.used,
                   "hiv_reactive": totals.disease("hiv").reactive, "hcv_reactive": totals.disease("hcv").reactive}

    def page(headers=None):
        r = client.get("/dashboard", headers=headers or {})
        assert r.status_code == 200, r.status_code
        return r

    size_page, size_partial = len(page().data), len(page({"HX-Request": "true"}).data)
    full = timed(page, args.runs)
    partial = timed(lambda: page({"HX-Request": "true"}), args.runs)
    with app.app_context():
        db.engine.dispose()
    return {
        "machine": f"{os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}",
        "day": summary, "fill_s": round(fill_s, 1), "runs": args.runs, "open_day": args.open_day,
        "indicators_ms": ms(ind), "indicators_max_ms": round(max(ind), 1),
        "page_ms": ms(full), "page_max_ms": round(max(full), 1), "page_bytes": size_page,
        "partial_ms": ms(partial), "partial_max_ms": round(max(partial), 1), "partial_bytes": size_partial,
        "sqlite": str(folder / "node.sqlite3"),
    }


SCRATCH = "vinculo_bench_dashboard"
CENTRAL_NOW = datetime(2026, 9, 30, 18, 0, tzinfo=timezone.utc)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def central_part(tmp: Path, args, server_url: str) -> dict:
    import psycopg
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    import centralgen

    base = make_url(server_url)
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    url = base.set(database=SCRATCH).render_as_string(hide_password=False)
    dsn = base.set(drivername="postgresql", database=SCRATCH).render_as_string(hide_password=False)
    out: dict = {"booths": args.booths, "events": args.events, "days": args.days, "templates": args.templates}
    if not args.reuse:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{SCRATCH}"')
    clock = FrozenClock(CENTRAL_NOW)
    (tmp / "central").mkdir(exist_ok=True)
    app = create_app({"SECRET_KEY": "bench-secret-" + "x" * 40, "INSTANCE_DIR": str(tmp / "central"),
                      "ROLE": "central", "SQLALCHEMY_DATABASE_URI": url, "CLOCK": clock})
    from booth.extensions import db
    from booth.reports import central

    try:
        if not args.reuse:
            from flask_migrate import upgrade

            with app.app_context():
                upgrade()
            logging.getLogger("alembic").setLevel(logging.WARNING)
            # the booth-days to copy: closed demo days (the booth part's own day when it is one)
            t0 = time.perf_counter()
            sources = []
            if not args.open_day and args.visits == args.per_day:
                sources.append(tmp / "booth" / "node.sqlite3")
            for i in range(len(sources), args.templates):
                folder = tmp / f"template{i}"
                folder.mkdir()
                t_app, _c, _f = build(folder, args.per_day, args.seed + i, False)
                with t_app.app_context():
                    db.engine.dispose()
                sources.append(folder / "node.sqlite3")
            templates = []
            for path in sources:
                engine = sa.create_engine(f"sqlite:///{path}")
                templates.append(centralgen.extract(engine, db.metadata))
                engine.dispose()
            out["templates_s"] = round(time.perf_counter() - t0, 1)
            log(f"templates: {[t.visits for t in templates]} visits ({out['templates_s']} s)")
            units = centralgen.layout(args.booths, args.events, args.days, len(templates))
            t0 = time.perf_counter()
            out["rows"] = centralgen.load(dsn, templates, units, events=args.events, booths=args.booths,
                                          now=CENTRAL_NOW, log=log)
            out["copy_s"] = round(time.perf_counter() - t0, 1)
            with psycopg.connect(dsn, autocommit=True) as conn:
                t0 = time.perf_counter()
                conn.execute("VACUUM ANALYZE")
                out["vacuum_analyze_s"] = round(time.perf_counter() - t0, 1)
            log(f"loaded in {out['copy_s']} s, VACUUM ANALYZE {out['vacuum_analyze_s']} s")
            with app.app_context():
                t0 = time.perf_counter()
                n = central.refresh_all(db.session.connection(), now=CENTRAL_NOW)
                db.session.commit()
                out["summaries"] = n
                out["refresh_all_s"] = round(time.perf_counter() - t0, 1)
            log(f"summaries of {n} booth-days in {out['refresh_all_s']} s")
        with psycopg.connect(dsn) as conn:
            out["visits"] = conn.execute("SELECT count(*) FROM visits").fetchone()[0]
            out["db_mb"] = round(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 2**20)
            out["summary_kb"] = round(conn.execute(
                "SELECT pg_total_relation_size('report_days')").fetchone()[0] / 1024)

        with app.app_context():
            # one booth-day's refresh: what a pushed batch pays for each booth-day it touches
            booth_id, day = db.session.execute(sa.select(central.ReportDay.booth_id, central.ReportDay.day)
                                               .limit(1)).one()
            one = timed(lambda: (central.refresh_days(db.session.connection(), [(booth_id, day)], now=CENTRAL_NOW),
                                 db.session.rollback()), 5)
            out["refresh_one_ms"] = ms(one)
            event_id = db.session.scalar(sa.select(sa.func.min(sa.cast(central.Event.id, sa.String)))
                                         .where(central.Event.central_event_id.is_(None)))
            count = timed(lambda: db.session.execute(sa.text("SELECT count(*) FROM visits")).scalar_one(),
                          args.central_runs)
            db.session.rollback()
        out["count_ms"], out["count_p95_ms"] = ms(count), p95(count)

        client = central_signin(app, clock)

        def get(path, **query):
            def run():
                r = client.get(path, query_string=query)
                assert r.status_code == 200, r.status_code
                return r
            return run

        for key, path, query in (("event", "/central/dashboard", {"event": event_id}),
                                 ("all", "/central/dashboard", {}),
                                 ("all_dates", "/central/dashboard", {"from": "2026-01-01", "to": "2026-12-31"}),
                                 ("share_event", "/central/dashboard/shareable", {"event": event_id}),
                                 ("share_all", "/central/dashboard/shareable", {})):
            size = len(get(path, **query)().data)
            values = timed(get(path, **query), args.central_runs)
            out[f"{key}_p95_ms"], out[f"{key}_ms"], out[f"{key}_max_ms"] = p95(values), ms(values), round(max(values), 1)
            out[f"{key}_bytes"] = size
            log(f"{key}: median {ms(values)} ms, p95 {p95(values)} ms")
        out["load_average"] = os.getloadavg()[0]
        return out
    finally:
        with app.app_context():
            db.engine.dispose()
        if not args.keep:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')


def central_signin(app, clock):
    """A coordinator signs in at central as a person does: staff code, password, TOTP."""
    import pyotp

    from booth.auth import services as auth
    from booth.auth.models import Role
    from booth.extensions import db

    password = "bench coordinator passphrase"
    with app.app_context():
        staff = auth.staff_by_code(db.session, "C90")
        if staff is None:
            staff = auth.create_staff(db.session, code="C90", roles=[Role.COORDINATOR], password=password,
                                      now=clock.now())
            auth.begin_totp_setup(db.session, staff)
            earlier = clock.now() - timedelta(seconds=30)
            auth.confirm_totp(db.session, staff, pyotp.TOTP(staff.totp_secret).at(earlier), now=clock.now(),
                              policy=auth.LockoutPolicy())
        else:                      # --reuse: the same frozen time as the last run, whose code was spent
            staff.totp_last_step = None
        db.session.commit()
        secret = staff.totp_secret
    client = app.test_client()
    page = client.get("/signin").get_data(as_text=True)
    r = client.post("/signin", data={"code": "C90", "password": password, "totp": pyotp.TOTP(secret).at(clock.now()),
                                     "csrf_token": CSRF_RE.search(page).group(1)})
    assert r.status_code == 303, r.status_code
    return client


if __name__ == "__main__":
    main()
