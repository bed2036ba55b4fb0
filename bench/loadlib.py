"""What ``bench/load.py``, ``bench/crash.py`` and ``tests/test_crash.py`` share: a node filled the way an
operator fills one, served by ``python -m booth.serve`` over TLS, and the simulated tablets (one keep-alive
HTTPS connection and a cookie jar each) running the encounter with a human think time.

``bench/load.py``'s docstring describes the node and the encounter; this module only holds the code.
A tablet given an :class:`AckLog` writes down every write the node acknowledged (a ``303`` — or the
``204`` + ``HX-Redirect`` htmx gets when a visit closes — after a ``POST``), so that a crash test can look
for each of them in the SQLite file.
"""
from __future__ import annotations

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
import threading
import time
from datetime import datetime, timedelta, timezone
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CSRF_RE = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
FORM_RE = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S)
INPUT_RE = re.compile(r"<input\b([^>]*)>")
ATTR_RE = re.compile(r'([\w-]+)="([^"]*)"')
SERVER_TIMING_RE = re.compile(r"app;dur=([0-9.]+)")
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
STAFF = "K02"  # counselor + tester: one tablet can run the whole encounter
HIV = "determine-hiv"  # the product of the pool of devices ready to read


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


def node_env(instance: Path, db_url: str, port: int | None = None, extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("VINCULO_") and k not in ("DATABASE_URL", "HOST", "PORT")}
    env.update(VINCULO_INSTANCE_DIR=str(instance), DATABASE_URL=db_url, HOST="127.0.0.1", VINCULO_TLS="on")
    env.update(extra or {})
    if port:
        env["PORT"] = str(port)
    return env


# ------------------------------------------------------------------ the node

def prepare(folder: Path, visits: int, tablets: int, ready: int,
            extra_env: dict | None = None) -> tuple[Path, str, dict, list[str], list[str]]:
    """A node in ``folder`` filled by ``demo --open``, ``tablets`` enrollment codes and ``ready`` visits whose
    HIV device can be read now. Returns (instance, database URL, PINs by staff code, codes, ready visit ids)."""
    instance, db_url = folder / "instance", f"sqlite:///{folder / 'node.sqlite3'}"
    env = node_env(instance, db_url, extra=extra_env)

    def run(*args):
        return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, check=True, capture_output=True,
                              text=True).stdout

    run("-m", "booth.instance", str(instance))
    run("-m", "flask", "--app", "wsgi", "db", "upgrade")
    out = run("-m", "flask", "--app", "wsgi", "demo", "--open", "--visits", str(visits))
    demo = json.loads(out.strip().splitlines()[-1])
    pins = {s["code"]: s["pin"] for s in demo["staff"]}

    from booth.auth import services as auth
    from booth.extensions import db

    app = node_app(instance, db_url)
    now = datetime.now(timezone.utc)
    with app.app_context():
        codes = []
        for _ in range(tablets):
            _row, code = auth.create_enrollment_code(db.session, now=now, minutes=30, actor=None)
            codes.append(code)
        db.session.commit()
        ready_ids = seed_ready(ready, now)
        db.engine.dispose()
    return instance, db_url, pins, codes, ready_ids


def node_app(instance: Path, db_url: str):
    """The node's app in this process, for the services (only while nothing else writes, or between runs)."""
    from booth import create_app

    return create_app({"INSTANCE_DIR": str(instance), "SQLALCHEMY_DATABASE_URI": db_url})


def seed_ready(n: int, now: datetime) -> list[str]:
    """``n`` visits whose HIV device was started a minute more than its read window ago (inside an app
    context): the real read window is 15+ minutes, so tablets need devices that are ready to read."""
    from sqlalchemy import select

    from booth.auth.models import Staff
    from booth.events.models import Booth
    from booth.extensions import db
    from booth.screening import services as screening
    from booth.settings import services as settings_services
    from booth.stock.models import KitLot
    from booth.visits import services as visit_services

    booth = db.session.scalar(select(Booth).limit(1))
    tester = db.session.scalar(select(Staff).where(Staff.code == "T01"))
    settings = settings_services.signed(db.session, booth.event.id)
    products = settings_services.products_by_code(db.session)
    lot = db.session.scalar(select(KitLot).where(KitLot.product_id == products[HIV].id))
    today = visit_services.local_day(booth.event, now)
    read_from = lot.read_from_s if lot.read_from_s is not None else settings.product(HIV)["read_from_s"]
    started = now - timedelta(seconds=read_from + 60)  # ready to read during the run
    ready_ids = []
    for _ in range(n):
        v = visit_services.register_visit(db.session, booth=booth, intake=visit_services.Intake(age_band="25-29"),
                                          now=started - timedelta(minutes=2), actor=tester)
        for disease in settings.diseases:  # HIV only: one tray slot per waiting person
            visit_services.record_consent(db.session, v, disease=disease, given=disease == "hiv",
                                          settings=settings, language="es", now=started - timedelta(minutes=1),
                                          actor=tester)
        screening.start(db.session, visit=v, product=products[HIV], lot=lot, sample_type="fingerstick",
                        slot=None, settings=settings, today=today, now=started, actor=tester)
        ready_ids.append(str(v.id))
    db.session.commit()
    return ready_ids


def start_node(folder: Path, instance: Path, db_url: str, port: int, extra_env: dict | None = None,
               log_name: str = "serve.log", timeout: float = 60) -> tuple[subprocess.Popen, ssl.SSLContext]:
    """``python -m booth.serve`` with TLS on ``port``, once its ``/healthz`` answers 200; the node's output goes
    to ``folder / log_name`` (appended). Returns the process and a context trusting the node's CA."""
    with open(folder / log_name, "a") as log:
        proc = subprocess.Popen([sys.executable, "-m", "booth.serve"], cwd=ROOT,
                                env=node_env(instance, db_url, port, extra_env), stdout=log, stderr=subprocess.STDOUT)
    up = time.monotonic() + timeout
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
                c.close()
                return proc, ctx
        except (OSError, http.client.HTTPException):
            pass
        if time.monotonic() > up or proc.poll() is not None:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            raise RuntimeError("the node did not start: " + (folder / log_name).read_text()[-4000:])
        time.sleep(0.1)


def stop_node(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ------------------------------------------------------------------ the clients

class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.samples: list[tuple[str, float, int, float]] = []  # (route, ms, status, server ms)
        self.errors: list[str] = []      # everything load.py counts as an error, made of:
        self.broken: list[str] = []      # broken connections (a crash test expects those) …
        self.unexpected: list[str] = []  # … and everything else

    def add(self, route: str, ms: float, status: int, server_ms: float) -> None:
        with self.lock:
            self.samples.append((route, ms, status, server_ms))

    def error(self, what: str, connection: bool = False) -> None:
        with self.lock:
            self.errors.append(what)
            (self.broken if connection else self.unexpected).append(what)


def route_of(method: str, path: str) -> str:
    path = path.split("?")[0]
    return method + " " + UUID_RE.sub("<id>", path)


class AckLog:
    """Every write the node acknowledged to a tablet: (what, id, detail) with the ids from the form's action
    (and the ``Location`` of a new visit). Kept by the client, checked against the SQLite file."""

    KINDS = ((re.compile(r"^/visits$"), "visit"),
             (re.compile(rf"^/visits/({UUID_RE.pattern})/consent$"), "consent"),
             (re.compile(rf"^/visits/({UUID_RE.pattern})/counseling/(pre|post)/start$"), "counseling_start"),
             (re.compile(rf"^/visits/({UUID_RE.pattern})/counseling/(pre|post)$"), "counseling"),
             (re.compile(rf"^/visits/({UUID_RE.pattern})/screenings$"), "screening"),
             (re.compile(rf"^/screenings/({UUID_RE.pattern})/result$"), "result"),
             (re.compile(rf"^/visits/({UUID_RE.pattern})/close$"), "close"))

    def __init__(self):
        self.lock = threading.Lock()
        self.acked: list[tuple[str, str, str]] = []

    def add(self, action: str, fields: dict, location: str) -> None:
        for pattern, kind in self.KINDS:
            m = pattern.match(action)
            if not m:
                continue
            if kind == "visit":
                ident, detail = UUID_RE.search(location or "").group(0), ""
            elif kind.startswith("counseling"):
                ident, detail = m.group(1), m.group(2)
            elif kind == "screening":
                ident, detail = m.group(1), fields.get("lot", "")
            elif kind == "close":
                ident, detail = m.group(1), fields.get("final_state", "")
            else:
                ident, detail = m.group(1), ""
            with self.lock:
                self.acked.append((kind, ident, detail))
            return
        raise ValueError(f"an acknowledged POST the log does not know: {route_of('POST', action)}")


class Tablet:
    """A tablet's browser: one keep-alive HTTPS connection and a cookie jar."""

    def __init__(self, port: int, ctx: ssl.SSLContext, stats: Stats | None, rng: random.Random,
                 acks: AckLog | None = None):
        self.port, self.ctx, self.stats, self.rng, self.acks = port, ctx, stats, rng, acks
        self.conn = self._connect()
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def _connect(self):
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=30)

    def reconnect(self, port: int, ctx: ssl.SSLContext) -> None:
        """A new connection to a restarted node (the cookie jar stays, as in a real tablet's browser)."""
        self.conn.close()
        self.port, self.ctx = port, ctx
        self.conn = self._connect()

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
                self.stats.error(f"{route_of(method, path)}: {type(e).__name__}: {e}", connection=True)
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
        if self.acks is not None and (status == 303 or (status == 204 and headers.get("HX-Redirect"))):
            self.acks.add(action, fields, headers.get("Location", ""))  # the node said it is written
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
    def __init__(self, port, ctx, stats, seconds, seed, pin, pool, think=(1.0, 3.0)):
        self.port, self.ctx, self.stats, self.seconds, self.seed, self.pin = port, ctx, stats, seconds, seed, pin
        self.think = think  # seconds between two taps: a human's, unless a test wants more taps in less time
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
        wake = time.monotonic() + rng.uniform(*run.think)
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
