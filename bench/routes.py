"""The load bench's hot routes one request at a time: CPU time and SQL statements per request.

Run from the repository root with the project's virtualenv::

    .venv/bin/python bench/routes.py [--repeat 100] [--visits 800] [--tree DIR]

``bench/load.py`` says how long tablets wait under load; this script says what one request costs, which
is what the node can change. It fills a node exactly like ``load.py`` (``loadlib.prepare``: ``demo --open``,
40 visits whose HIV device is ready to read), then, in this process (Flask test client, no TLS, no
network), enrolls one tablet, logs in as K02 and plays the encounter up to each state of the visit card.
Every page below is then requested ``--repeat`` times: the median CPU time of the request (this thread's
``time.thread_time``, so other processes on the machine change it less than a wall clock) and the number
of SQL statements it ran. The clock is frozen a few seconds after the node was filled, so the timers
and the idle lock do not move between requests.

``--tree DIR`` measures the code of another checkout (``git archive <commit> | tar -x -C DIR``, with the
compiled translations copied in) with this same script, for before/after figures.

Ends with one JSON line: ``{"<page>_ms": …, "<page>_queries": …, …}``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

PAGES = ("card_new", "card_consented", "card_started", "card_post_test", "board", "queue", "visit_form",
         "healthz")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=100)
    ap.add_argument("--visits", type=int, default=800, help="visits of the demo day")
    ap.add_argument("--tree", type=Path, help="measure the code of this checkout instead")
    args = ap.parse_args()
    tree = (args.tree or Path(__file__).resolve().parent.parent).resolve()
    sys.path[:0] = [str(tree / "bench"), str(tree)]
    os.environ["VINCULO_SERVING"] = "1"  # the serving process's app: no Alembic
    import loadlib
    from loadlib import CSRF_RE, STAFF, forms

    with tempfile.TemporaryDirectory(prefix="vinculo-routes-") as tmp:
        folder = Path(tmp)
        instance, db_url, pins, codes, ready = loadlib.prepare(folder, args.visits, 1, 40)
        from sqlalchemy import event

        from booth import create_app
        from booth.clock import FrozenClock
        from booth.extensions import db

        clock = FrozenClock(datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=5))
        app = create_app({"INSTANCE_DIR": str(instance), "SQLALCHEMY_DATABASE_URI": db_url, "CLOCK": clock,
                          "RATELIMIT_ENABLED": False})
        statements = [0]
        with app.app_context():
            event.listen(db.engine, "before_cursor_execute", lambda *a: statements.__setitem__(0, statements[0] + 1))
        client = app.test_client()
        csrf = [""]

        def request(method, path, data=None, hx=False):
            r = client.open(path, method=method, data=data, headers={"HX-Request": "true"} if hx else {},
                            base_url="https://localhost")
            text = r.get_data(as_text=True)
            m = CSRF_RE.search(text)
            if m:
                csrf[0] = m.group(1)
            return r, text

        def post(action, fields):
            r, _t = request("POST", action, {**fields, "csrf_token": csrf[0]}, hx=True)
            if r.status_code != 303:
                raise RuntimeError(f"POST {action}: {r.status_code}")
            return r

        request("GET", f"/enroll?code={codes[0]}")
        request("POST", "/enroll", {"csrf_token": csrf[0], "code": codes[0], "name": "Tableta 1"})
        request("GET", "/login")
        request("POST", "/login", {"csrf_token": csrf[0], "code": STAFF, "pin": pins[STAFF]})

        def new_visit() -> str:
            _r, page = request("GET", "/visits/new")
            action, fields = forms(page, r"^/visits$")[0]
            return post(action, {**fields, "age_band": "25-29"}).headers["Location"]

        def card(url):
            return request("GET", url, hx=True)[1]

        fresh = new_visit()
        consented = new_visit()
        post(*forms(card(consented), r"/consent$")[0])
        started = new_visit()
        post(*forms(card(started), r"/consent$")[0])
        post(*forms(card(started), r"/counseling/pre/start$")[0])
        action, fields = forms(card(started), r"/counseling/pre$")[0]
        post(action, {**fields, "topics": ["window_period"]})
        for action, fields in forms(card(started), r"/visits/[^/]+/screenings$"):
            if "lot" in fields:
                post(action, fields)
        post_test = f"/visits/{ready[0]}"
        for action, fields in forms(card(post_test), r"^/screenings/[^/]+/result$"):
            post(action, {**fields, "outcome": "non_reactive"})

        pages = {"card_new": (fresh, True), "card_consented": (consented, True), "card_started": (started, True),
                 "card_post_test": (post_test, True), "board": ("/board", True), "queue": ("/visits", False),
                 "visit_form": ("/visits/new", False), "healthz": ("/healthz", False)}
        figures = {}
        print(f"{'page (one request at a time)':<30} {'path':<16} {'CPU ms':>8} {'SQL':>5} {'bytes':>7}",
              file=sys.stderr)
        for name in PAGES:
            path, hx = pages[name]
            cpu, counts = [], []
            for _ in range(args.repeat):
                statements[0] = 0
                t0 = time.thread_time()
                r, text = request("GET", path, hx=hx)
                cpu.append((time.thread_time() - t0) * 1000)
                counts.append(statements[0])
                if r.status_code != 200:
                    raise RuntimeError(f"GET {path}: {r.status_code}")
            figures[f"{name}_ms"] = round(statistics.median(cpu), 2)
            figures[f"{name}_queries"] = max(counts)
            shown = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "<id>", path)
            print(f"{name:<30} {shown:<16} {statistics.median(cpu):>8.2f} {max(counts):>5} {len(text):>7}",
                  file=sys.stderr)
        with app.app_context():
            db.engine.dispose()
    print(f"code: {tree}, {args.repeat} requests per page, median CPU time of the request", file=sys.stderr)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
