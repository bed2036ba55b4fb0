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
import http.client
import json
import math
import os
import random
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CSRF_RE = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
FORM_RE = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S)
INPUT_RE = re.compile(r"<input\b([^>]*)>")
ATTR_RE = re.compile(r'([\w-]+)="([^"]*)"')
SERVER_TIMING_RE = re.compile(r"app;dur=([0-9.]+)")
STAFF = "K02"  # counselor + tester: one tablet can run the whole encounter


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


def node_env(instance: Path, db_url: str, port: int | None = None) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("VINCULO_") and k not in ("DATABASE_URL", "HOST", "PORT")}
    env.update(VINCULO_INSTANCE_DIR=str(instance), DATABASE_URL=db_url, HOST="127.0.0.1", VINCULO_TLS="on")
    if port:
        env["PORT"] = str(port)
    return env


# ------------------------------------------------------------------ the node

def prepare(folder: Path, visits: int, tablets: int, ready: int) -> tuple[Path, str, dict, list[str], list[str]]:
    instance, db_url = folder / "instance", f"sqlite:///{folder / 'node.sqlite3'}"
    env = node_env(instance, db_url)

    def run(*args):
        return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, check=True, capture_output=True,
                              text=True).stdout

    run("-m", "booth.instance", str(instance))
    run("-m", "flask", "--app", "wsgi", "db", "upgrade")
    out = run("-m", "flask", "--app", "wsgi", "demo", "--open", "--visits", str(visits))
    demo = json.loads(out.strip().splitlines()[-1])
    pins = {s["code"]: s["pin"] for s in demo["staff"]}

    from sqlalchemy import select

    from booth import create_app
    from booth.auth import services as auth
    from booth.auth.models import Staff
    from booth.events.models import Booth
    from booth.extensions import db
    from booth.screening import services as screening
    from booth.settings import services as settings_services
    from booth.stock.models import KitLot
    from booth.visits import services as visit_services

    app = create_app({"INSTANCE_DIR": str(instance), "SQLALCHEMY_DATABASE_URI": db_url})
    now = datetime.now(timezone.utc)
    with app.app_context():
        codes = []
        for _ in range(tablets):
            _row, code = auth.create_enrollment_code(db.session, now=now, minutes=30, actor=None)
            codes.append(code)
        booth = db.session.scalar(select(Booth).limit(1))
        tester = db.session.scalar(select(Staff).where(Staff.code == "T01"))
        settings = settings_services.signed(db.session, booth.event.id)
        products = settings_services.products_by_code(db.session)
        lots = {code: db.session.scalar(select(KitLot).where(KitLot.product_id == products[code].id))
                for code in ("determine-hiv",)}
        today = visit_services.local_day(booth.event, now)
        code = "determine-hiv"
        lot = lots[code]
        read_from = lot.read_from_s if lot.read_from_s is not None else settings.product(code)["read_from_s"]
        started = now - timedelta(seconds=read_from + 60)  # ready to read during the run
        ready_ids = []
        for _ in range(ready):
            v = visit_services.register_visit(db.session, booth=booth, intake=visit_services.Intake(age_band="25-29"),
                                              now=started - timedelta(minutes=2), actor=tester)
            for disease in settings.diseases:  # HIV only: one tray slot per waiting person
                visit_services.record_consent(db.session, v, disease=disease, given=disease == "hiv",
                                              settings=settings, language="es", now=started - timedelta(minutes=1),
                                              actor=tester)
            screening.start(db.session, visit=v, product=products[code], lot=lot, sample_type="fingerstick",
                            slot=None, settings=settings, today=today, now=started, actor=tester)
            ready_ids.append(str(v.id))
        db.session.commit()
        db.engine.dispose()
    return instance, db_url, pins, codes, ready_ids


# ------------------------------------------------------------------ the clients

class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.samples: list[tuple[str, float, int, float]] = []  # (route, ms, status, server ms)
        self.errors: list[str] = []

    def add(self, route: str, ms: float, status: int, server_ms: float) -> None:
        with self.lock:
            self.samples.append((route, ms, status, server_ms))

    def error(self, what: str) -> None:
        with self.lock:
            self.errors.append(what)


def route_of(method: str, path: str) -> str:
    path = path.split("?")[0]
    return method + " " + re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id>", path)


class Tablet:
    """A tablet's browser: one keep-alive HTTPS connection and a cookie jar."""

    def __init__(self, port: int, ctx: ssl.SSLContext, stats: Stats | None, rng: random.Random):
        self.port, self.ctx, self.stats, self.rng = port, ctx, stats, rng
        self.conn = self._connect()
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def _connect(self):
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=30)

    def request(self, method: str, path: str, body: dict | None = None, hx: bool = False,
                expect: tuple[int, ...] = (200, 303)) -> tuple[int, dict, str]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if hx:
            headers["HX-Request"] = "true"
        data = None
        if body is not None:
            data = urlencode(body, doseq=True)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        t0 = time.perf_counter()
        try:
            self.conn.request(method, path, body=data, headers=headers)
            resp = self.conn.getresponse()
            text = resp.read().decode()
        except (OSError, http.client.HTTPException) as e:
            if self.stats:
                self.stats.error(f"{route_of(method, path)}: {type(e).__name__}: {e}")
            self.conn.close()
            self.conn = self._connect()
            raise
        ms = (time.perf_counter() - t0) * 1000
        for header in resp.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        if self.stats:
            timing = SERVER_TIMING_RE.search(resp.getheader("Server-Timing") or "")
            self.stats.add(route_of(method, path), ms, resp.status, float(timing.group(1)) if timing else float("nan"))
            if resp.status not in expect:
                self.stats.error(f"{route_of(method, path)}: {resp.status}")
                if os.environ.get("LOAD_DUMP"):  # debugging the script: keep the page that surprised it
                    Path(os.environ["LOAD_DUMP"], f"{resp.status}-{time.time():.3f}.html").write_text(text)
        m = CSRF_RE.search(text)
        if m:
            self.csrf = m.group(1)
        return resp.status, dict(resp.headers), text

    def submit(self, action: str, fields: dict, expect=(303,)) -> tuple[int, str]:
        """POST a card form as htmx does and follow the answer like the browser (303 → GET)."""
        status, headers, text = self.request("POST", action, {**fields, "csrf_token": self.csrf}, hx=True,
                                             expect=expect + (303, 204))
        if status == 303:
            status, _h, text = self.request("GET", headers["Location"], hx=True)
        elif status == 204 and headers.get("HX-Redirect"):
            status, _h, text = self.request("GET", headers["HX-Redirect"])
        return status, text


def forms(page: str, action_re: str) -> list[tuple[str, dict]]:
    """The card's forms whose action matches, with their hidden fields (the one-tap forms)."""
    found = []
    for m in FORM_RE.finditer(page):
        attrs = dict(ATTR_RE.findall(m.group(1)))
        action = attrs.get("action", "")
        if not re.search(action_re, action):
            continue
        fields, visible = {}, False
        for tag in INPUT_RE.findall(m.group(2)):
            a = dict(ATTR_RE.findall(tag))
            if a.get("type") == "hidden" and "name" in a:
                fields[a["name"]] = a.get("value", "")
            elif a.get("type") not in ("hidden", None):
                visible = True
        if "<select" in m.group(2):
            visible = True
        found.append((action, fields, visible))
    return [(a, f) for a, f, vis in found if not vis] or [(a, f) for a, f, _v in found]


class Run:
    def __init__(self, port, ctx, stats, seconds, seed, pin, pool):
        self.port, self.ctx, self.stats, self.seconds, self.seed, self.pin = port, ctx, stats, seconds, seed, pin
        self.pool, self.pool_lock = pool, threading.Lock()
        self.encounters = 0
        self.reads = {"ready": 0, "too_early": 0, "tray_full": 0}
        self.deadline = 0.0

    def take_ready(self) -> str | None:
        with self.pool_lock:
            return self.pool.pop() if self.pool else None

    def count(self, key: str) -> None:
        with self.pool_lock:
            if key == "encounter":
                self.encounters += 1
            else:
                self.reads[key] += 1


class Stop(Exception):
    pass


def tablet_loop(run: Run, tab: Tablet, n: int) -> None:
    rng = tab.rng
    next_poll = time.monotonic() + rng.uniform(0, 5)

    def tap():
        """Think 1–3 s before the next tap; the board polls on its own 5 s beat meanwhile."""
        nonlocal next_poll
        wake = time.monotonic() + rng.uniform(1.0, 3.0)
        while True:
            now = time.monotonic()
            if now >= run.deadline:
                raise Stop
            if next_poll <= min(wake, run.deadline):
                time.sleep(max(0.0, next_poll - now))
                if time.monotonic() >= run.deadline:
                    raise Stop
                tab.request("GET", "/board", hx=True)
                next_poll += 5.0
                continue
            time.sleep(max(0.0, min(wake, run.deadline) - now))
            if time.monotonic() >= run.deadline:
                raise Stop
            return

    def one(page, action_re):
        found = forms(page, action_re)
        if not found:
            raise RuntimeError(f"tablet {n}: no form {action_re}")
        return found[0]

    try:
        time.sleep(rng.uniform(0, 2))
        _s, _h, page = tab.request("GET", "/login")
        _s, _h, page = tab.request("POST", "/login", {"csrf_token": tab.csrf, "code": STAFF, "pin": run.pin})
        while True:
            tap()
            _s, _h, page = tab.request("GET", "/visits/new")
            tap()
            action, fields = one(page, r"^/visits$")
            fields["age_band"] = rng.choice(["20-24", "25-29", "30-34", "35-39"])
            _s, page = tab.submit(action, fields)
            tap()
            _s, page = tab.submit(*one(page, r"/consent$"))
            tap()
            _s, page = tab.submit(*one(page, r"/counseling/pre/start$"))
            tap()
            action, fields = one(page, r"/counseling/pre$")
            _s, page = tab.submit(action, {**fields, "topics": ["window_period", "prep"]})
            for action, fields in forms(page, r"/visits/[^/]+/screenings$"):
                if "lot" not in fields:
                    continue
                tap()
                status, page = tab.submit(action, fields, expect=(422,))
                if status == 422:
                    if "charola" not in page:  # anything but "the tray is full" is a failure
                        run.stats.error(f"tablet {n}: start answered 422")
                    run.count("tray_full")
            # the read of this visit's device: too early for 15 minutes, the app says so (422)
            tap()
            results = forms(page, r"^/screenings/[^/]+/result$")
            if results:
                action, fields = results[0]
                tab.submit(action, {**fields, "outcome": "non_reactive"}, expect=(422,))
                run.count("too_early")
            # meanwhile a device of an earlier visit is ready: read it, counsel, close
            ready = run.take_ready()
            if ready:
                tap()
                _s, _h, page = tab.request("GET", f"/visits/{ready}")
                for action, fields in forms(page, r"^/screenings/[^/]+/result$"):
                    tap()
                    _s, page = tab.submit(action, {**fields, "outcome": "non_reactive"})
                    run.count("ready")
                tap()
                _s, page = tab.submit(*one(page, r"/counseling/post/start$"))
                tap()
                action, fields = one(page, r"/counseling/post$")
                _s, page = tab.submit(action, {**fields, "result_given": "yes", "topics": ["condoms"],
                                               "supply_condom": "2"})
                tap()
                action, fields = next((a, f) for a, f in forms(page, r"/close$") if f.get("final_state") == "done")
                _s, page = tab.submit(action, fields)
                run.count("encounter")
    except Stop:
        return
    except (OSError, http.client.HTTPException):
        return  # counted as an error where it happened
    except Exception as e:  # a missing form: the flow broke, count it
        run.stats.error(f"tablet {n}: {type(e).__name__}: {e}")


def baseline_loop(port, ctx, deadline, out: list[float], errors: list[str]) -> None:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        try:
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            resp.read()
            out.append((time.perf_counter() - t0) * 1000)
            if resp.status != 200:
                errors.append(f"GET /healthz: {resp.status}")
        except (OSError, http.client.HTTPException) as e:
            errors.append(f"GET /healthz: {e}")
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
        time.sleep(0.25)


def enroll(tab: Tablet, code: str, name: str) -> None:
    for _ in range(30):
        tab.request("GET", f"/enroll?code={code}")
        status, headers, _t = tab.request("POST", "/enroll", {"csrf_token": tab.csrf, "code": code, "name": name},
                                          expect=(303, 429))
        if status == 303:
            return
        time.sleep(3)  # 30 enrollments a minute from one address: wait for the limit
    raise RuntimeError(f"could not enroll {name}")


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
        log = open(folder / "serve.log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "booth.serve"], cwd=ROOT, env=node_env(instance, db_url, port),
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            up = time.monotonic() + 60
            ctx = None
            while True:
                try:
                    if ctx is None and (instance / "server.pem").exists():
                        # the node makes its CA and server certificate when it starts
                        ctx = ssl.create_default_context(cafile=str(instance / "ca.pem"))
                    if ctx is None:
                        raise OSError("no certificate yet")
                    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=2)
                    c.request("GET", "/healthz")
                    if c.getresponse().status == 200:
                        break
                except (OSError, http.client.HTTPException):
                    pass
                if time.monotonic() > up or proc.poll() is not None:
                    raise RuntimeError("the node did not start: " + (folder / "serve.log").read_text())
                time.sleep(0.1)
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
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
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
