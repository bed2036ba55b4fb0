"""One complete booth encounter, as a volunteer taps it: taps, typed fields, server time, bytes.

Run from the repository root with the project's virtualenv and the test requirements (it reuses the test
fixtures' booth builders; Debian's chromium, never ``playwright install``)::

    .venv/bin/python bench/encounter.py [--runs 3] [--warmup 1] [--shots DIR]

What it does, on a temporary instance folder and SQLite file (nothing in ``instance/`` is touched):

1. builds a booth node with a ``FrozenClock`` as the test fixtures do: migrated SQLite, first-run setup,
   signed-off clinical settings (HIV two-test algorithm, HCV one test), lots and supplies received
   (``build_ctx`` of ``tests/workflow/conftest.py``) and one volunteer ``B01`` who both tests and
   counsels; production argon2 cost; serves it on a free loopback port (werkzeug, threaded);
2. in Debian's Chromium on a tablet (800×1280, Spanish as on the day) logs in with the PIN (not
   measured), then plays ``--warmup`` encounters (not measured: the node compiles its templates) and
   ``--runs`` measured ones. Each starts with the queue, its **first page load**; bytes count after it;
3. an encounter: New visit → age band → consent to every test → start the HIV test → start the HCV
   test → (21 minutes: the read windows open) → HIV non-reactive → HCV non-reactive → start post-test
   counseling → (4 minutes) → result given → condoms → lubricant → finish counseling → Done. Every tap
   and every typed field goes through one helper (``Volunteer``) that counts it;
4. for every request: the node's time from its ``Server-Timing: app;dur=…`` header (p95 over every
   request of the measured runs) and, with ``request.sizes()``, the bytes on the wire: ``bytes`` is what
   the node sends after the first page load (response headers + bodies; a cached static file costs a
   ``304`` with headers only), worst run; ``details`` adds what the tablet sends.

While the clocks move, the tablet keeps its session alive (the idle lock is 5 minutes) with a request
and a touch every 4 minutes, not counted: on a real day the tablet serves other visits meanwhile.
Goals (issue 5): ≤ 14 taps, 0 typed fields, p95 < 50 ms, < 150 KB. Ends with one JSON line.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from booth import create_app  # noqa: E402
from booth.clock import FrozenClock  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TABLET = {"width": 800, "height": 1280}
STAFF_CODE, STAFF_PIN = "B01", "582931"
SERVER_TIMING = re.compile(r"app;dur=([0-9.]+)")


def build_node(folder: Path, clock: FrozenClock):
    """A ready booth on a fresh migrated SQLite file; returns (app, device token)."""
    from flask_migrate import upgrade

    from booth.auth import services as auth
    from booth.auth.models import Role
    from booth.extensions import db
    from tests.conftest import START, new_device, setup_node
    from tests.workflow.conftest import build_ctx

    clock.set(START)
    (folder / "instance").mkdir()
    app = create_app({"SECRET_KEY": "bench-secret-" + "x" * 40, "INSTANCE_DIR": str(folder / "instance"),
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'node.sqlite3'}", "CLOCK": clock})
    with app.app_context():
        upgrade()
    for name in ("alembic", "werkzeug"):
        logging.getLogger(name).setLevel(logging.WARNING)
    node = setup_node(app, clock)
    with app.app_context():
        build_ctx(app, node, clock)
        auth.create_staff(db.session, code=STAFF_CODE, roles=[Role.TESTER, Role.COUNSELOR], pin=STAFF_PIN,
                          now=clock.now())
        db.session.commit()
    return app, new_device(app, clock, name="Tablet 1")


def serve(app):
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, name="bench-node", daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


class Volunteer:
    """The only way the script touches the page: every tap and every typed field is counted."""

    def __init__(self, page, shots: Path | None):
        self.page, self.shots, self.taps, self.typed, self.log = page, shots, 0, 0, []

    def tap(self, selector: str, what: str):
        self.taps += 1
        self.log.append(what)
        self.page.locator(selector).first.click()

    def type(self, selector: str, text: str, what: str):
        self.typed += 1
        self.log.append(what)
        self.page.locator(selector).first.fill(text)

    def see(self, selector: str):
        """Wait until the screen shows ``selector`` (the answer of the last tap has been swapped in)."""
        from playwright.sync_api import expect
        expect(self.page.locator(selector).first).to_be_visible()

    def gone(self, selector: str):
        """Wait until ``selector`` has left the screen (the card was swapped after the last tap)."""
        from playwright.sync_api import expect
        expect(self.page.locator(selector)).to_have_count(0)

    def shot(self, name: str):
        if self.shots:
            self.shots.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(self.shots / f"encounter-{len(self.log):02d}-{name}.png"), full_page=True)


def keep_alive(page, base: str, clock: FrozenClock, minutes: int):
    """Move the node's clock and the tablet's in steps shorter than the idle lock; the tablet is in use
    meanwhile (a request and a touch per step, neither counted)."""
    while minutes > 0:
        step = min(4, minutes)
        clock.advance(minutes=step)
        minutes -= step
        assert page.request.get(base + "/visits").ok
        page.evaluate("document.dispatchEvent(new Event('pointerdown'))")
        page.clock.fast_forward(step * 60_000)


def encounter(page, base: str, clock: FrozenClock, shots: Path | None) -> Volunteer:
    v = Volunteer(page, shots)
    v.see("#queue")
    v.tap('a[href="/visits/new"]', "New visit")
    v.see("#intake")
    v.shot("intake")
    v.tap('button[name="age_band"][value="25-29"]', "age band 25–29")
    v.see("#visit-card")
    v.shot("card-new")
    v.tap('form:has(input[name="all"]) button', "consent to every test")
    v.see('form[action$="/screenings"]:has(input[name="nonce"][value$="hiv"]) button')
    v.shot("card-consented")
    v.tap('form[action$="/screenings"]:has(input[name="nonce"][value$="hiv"]) button', "start HIV test")
    v.see('.device')
    v.tap('form[action$="/screenings"]:has(input[name="nonce"][value$="hcv"]) button', "start HCV test")
    v.see('.device >> nth=1')
    v.shot("card-running")
    keep_alive(page, base, clock, 21)
    v.see('.device .timer--ready >> nth=1')
    v.tap('.device button[value="non_reactive"]', "read HIV: non-reactive")
    v.see('.results tbody tr')
    v.tap('.device button[value="non_reactive"]', "read HCV: non-reactive")
    v.see('form[action$="/counseling/post/start"] button')
    v.shot("card-read")
    v.tap('form[action$="/counseling/post/start"] button', "start post-test counseling")
    v.gone('form[action$="/counseling/post/start"]')
    keep_alive(page, base, clock, 4)
    v.tap('label:has(input[name="result_given"][value="yes"])', "result given: yes")
    v.tap('label:has(input[name="supply_condom"][value="4"])', "condoms: 4")
    v.tap('label:has(input[name="supply_lubricant"][value="2"])', "lubricant: 2")
    v.shot("card-counseling")
    v.tap('form[action$="/counseling/post"] button[type="submit"]', "finish post-test counseling")
    v.see('form[action$="/close"]:has(input[name="final_state"][value="done"]) button.button--primary')
    v.shot("card-counseled")
    v.tap('form[action$="/close"]:has(input[name="final_state"][value="done"]) button', "Done")
    page.wait_for_url(re.compile(r"/visits$"))
    v.see("#queue")
    v.shot("queue-after")
    return v


def measure(finished: list, base: str, counted_from: int) -> list[dict]:
    rows = []
    for i, req in enumerate(finished):
        resp, sizes = req.response(), req.sizes()
        match = SERVER_TIMING.search((resp.headers.get("server-timing") if resp else "") or "")
        rows.append({"counted": i >= counted_from, "request": f"{req.method} {req.url[len(base):]}",
                     "status": resp.status if resp else None, "app_ms": float(match.group(1)) if match else None,
                     "up": sizes["requestHeadersSize"] + sizes["requestBodySize"],
                     "down": sizes["responseHeadersSize"] + sizes["responseBodySize"]})
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="measured encounters (server times are pooled)")
    parser.add_argument("--warmup", type=int, default=1, help="encounters played first, not measured")
    parser.add_argument("--shots", type=Path, help="keep a screenshot of every screen in this folder")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    clock = FrozenClock()
    runs = []
    with tempfile.TemporaryDirectory(prefix="vinculo-encounter-") as tmp:
        app, device = build_node(Path(tmp), clock)
        server, base = serve(app)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                context = browser.new_context(viewport=TABLET)
                context.set_default_timeout(10_000)
                context.add_cookies([{"name": "vinculo_device", "value": device, "url": base}])
                context.clock.install(time=clock.now())
                page = context.new_page()
                # not measured: the volunteer logs in with the PIN
                page.goto(base + "/login")
                page.fill('input[name="code"]', STAFF_CODE)
                page.fill('input[name="pin"]', STAFF_PIN)
                page.click('button[type="submit"].button--primary')
                page.wait_for_url(base + "/")
                for n in range(args.warmup + args.runs):
                    finished: list = []
                    listener = lambda request: finished.append(request)  # noqa: E731
                    page.on("requestfinished", listener)
                    page.goto(base + "/visits")  # the first page load: bytes are counted after it
                    page.wait_for_load_state("load")
                    first_load = len(finished)
                    t0 = time.perf_counter()
                    shots = args.shots if n == args.warmup else None
                    volunteer = encounter(page, base, clock, shots)
                    page.wait_for_load_state("load")
                    wall = time.perf_counter() - t0
                    page.remove_listener("requestfinished", listener)
                    if n >= args.warmup:
                        runs.append((volunteer, measure(finished, base, first_load), wall))
                browser.close()
        finally:
            server.shutdown()
            server.server_close()
            with app.app_context():
                from booth.extensions import db
                db.engine.dispose()

    volunteer, rows, wall = runs[0]
    print(f"first measured encounter ({wall:.1f} s in the browser); * = after the first page load, counted")
    print(f"  {'request':58} {'status':>6} {'app ms':>7} {'up B':>6} {'down B':>7}")
    for r in rows:
        print(f"{'*' if r['counted'] else ' '} {r['request'][:58]:58} {r['status'] or '':>6} "
              f"{'' if r['app_ms'] is None else r['app_ms']:>7} {r['up']:>6} {r['down']:>7}")
    print("taps:", "; ".join(volunteer.log))
    timed = [r["app_ms"] for _v, rr, _w in runs for r in rr if r["app_ms"] is not None]
    per_run = [sum(r["down"] for r in rr if r["counted"]) for _v, rr, _w in runs]
    up = [sum(r["up"] for r in rr if r["counted"]) for _v, rr, _w in runs]
    assert len({(v.taps, v.typed) for v, _r, _w in runs}) == 1, "every encounter needs the same taps"
    details = {"runs": len(runs), "requests_per_encounter": sum(r["counted"] for r in rows),
               "server_times": len(timed), "p50_ms": round(sorted(timed)[len(timed) // 2], 1),
               "max_ms": max(timed), "bytes_down_per_run": per_run, "bytes_up_per_run": up,
               "bytes_both_ways": max(d + u for d, u in zip(per_run, up))}
    print("details:", json.dumps(details))
    # bytes: what the node sends (response headers + bodies) after the first page load, worst run
    figures = {"taps": volunteer.taps, "typed_fields": volunteer.typed, "p95_ms": round(p95(timed), 1),
               "bytes": max(per_run)}
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
