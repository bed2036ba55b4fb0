"""Reports: how long the booth dashboard takes on a full day (booth part of issue 8's figures).

Run from the repository root with the project's virtualenv::

    .venv/bin/python bench/dashboard.py [--visits 2000] [--seed 1] [--runs 20] [--open]

What it does, on a temporary instance folder and SQLite file (nothing in ``instance/`` is touched):

1. migrates a fresh booth node and fills it with ``flask --app wsgi demo --visits N --seed S`` (the same
   command a person runs: event, staff, example destinations, a day of visits 10:00–16:00 local, closed
   at 16:00 unless ``--open``), with the node's clock frozen at 17:00 local on the event day (``--open``:
   15:30, the day still running);
2. enrolls a tablet and logs the coordinator in through ``POST /login`` (production argon2 cost);
3. times, ``--runs`` times each after one untimed warm-up: ``booth.reports.indicators.daily_totals``
   alone; the whole ``GET /dashboard`` page through Flask's test client (indicators + templates + SVG
   chart: what the goal is about); and the htmx partial the page polls every 30 s (``HX-Request``).

Ends with one JSON line. Goal: ``booth_ms`` (median of the full page) < 100 ms with 2,000 visits on SQLite.
The central keys of issue 8 (``event_p95_ms``, ``all_p95_ms``, ``count_ms``: PostgreSQL, 1,000,000
visits) come with the central dashboard; until then the line says so in ``central``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from datetime import datetime, time as dtime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visits", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--open", dest="open_day", action="store_true", help="leave the day open (15:30)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="vinculo-dashboard-") as tmp:
        app, client, fill_s = build(Path(tmp), args.visits, args.seed, args.open_day)
        from booth.extensions import db
        from booth.reports import indicators
        from booth.settings import services as settings_services
        from booth.events.queries import this_booth

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

    def ms(values):
        return round(statistics.median(values), 1)

    report = {
        "machine": f"{os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}",
        "day": summary, "fill_s": round(fill_s, 1), "runs": args.runs, "open_day": args.open_day,
        "indicators_ms": ms(ind), "indicators_max_ms": round(max(ind), 1),
        "page_ms": ms(full), "page_max_ms": round(max(full), 1), "page_bytes": size_page,
        "partial_ms": ms(partial), "partial_max_ms": round(max(partial), 1), "partial_bytes": size_partial,
    }
    print(json.dumps(report), file=sys.stderr)
    line = {"booth_ms": ms(full),
            "central": "not measured yet: event_p95_ms, all_p95_ms and count_ms come with the central dashboard"}
    print(json.dumps(line))
    return line


if __name__ == "__main__":
    main()
