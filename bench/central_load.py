"""Issue 9 point 1, central part: 20 booths × 200 visits push at once while 10 coordinators load the
central dashboard → no error, dashboard p95 < 1 s.

Run from the repository root with the project's virtualenv (PostgreSQL needed)::

    TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/central_load.py [--nodes 20] [--visits 200] [--coordinators 10] \\
        [--think 0.5,1.5] [--after 15] [--cache DIR] [--keep]

Nothing in ``instance/`` is touched; ``TEST_DATABASE_URL`` only says where PostgreSQL is: the script drops and
creates its own database ``vinculo_bench_central_load`` and drops it at the end (unless ``--keep``).

1. **Booth nodes**: ``--nodes`` folders, each its own instance and SQLite file, filled by ``flask --app wsgi demo
   --visits N --seed S`` with seeds 1…nodes (20 different closed demo days, each its own event, booth, staff
   and record ids). With ``--cache DIR`` the filled, never-enrolled nodes are kept there and copied on later
   runs (each copy is enrolled on its own).
2. **Central**: the scratch database migrated with ``flask db upgrade`` (``VINCULO_ROLE=central``) and served
   by ``python -m booth.serve`` — what ``make central`` runs: waitress with ``CENTRAL_THREADS`` (32) threads
   and as many PostgreSQL connections, plain HTTP on loopback.
   One setting differs: ``VINCULO_SYNC_ENROLL_RATE_LIMIT`` is raised, since 20 enrollments from one address
   within a minute would hit the 10-per-minute limit meant for guessed codes. Each node is registered at
   central (``sync.services.register_node``, what ``flask sync register-node`` calls) and enrolled with
   ``flask --app wsgi sync enroll URL CODE`` on the booth, its own code each.
3. **Coordinators**: ``--coordinators`` staff with the coordinator role and a password (``create_staff``, what
   ``flask staff add --password-stdin`` calls). Each one signs in over HTTP the first time like a person
   does: code + password, then the TOTP set-up page, whose key (the text under the QR code) goes into
   pyotp for the 6-digit code. One keep-alive connection and a cookie jar each.
4. **Load**: 20 push processes are started first, each with the booth app loaded and waiting (``--worker``
   mode of this script: it runs the real ``flask sync push --json`` command through Flask's CLI runner when
   told to), so that 20 interpreter start-ups do not count as push work. The coordinators start loading
   ``GET /central/dashboard`` with filters chosen from the page's own select boxes (all events, one event,
   one booth, one test, one event and one test, the day's date range), with a think time drawn from
   ``--think`` seconds between two loads; then every push is told to go at the same moment. Latency is the
   client's: from sending the request to the last byte of the page. ``central_p95_ms`` covers the requests
   started while at least one push was running; with ``--after S`` the coordinators go on for S seconds
   with every visit at central (``after_p95_ms``). For comparison, one more client asks ``GET /healthz``
   every half second (``healthz_p95_ms``, while pushing): what any request waits for at that moment.
5. **Checks** — every one counts into ``central_errors``: a dashboard or ``/healthz`` answer other than 200
   (5xx also counted apart), a connection error, a push that failed or whose report has quarantined or deferred records, then
   per booth ``flask sync status --json``: the receipt must match for every kind and nothing be pending;
   at central exactly ``nodes × visits`` visits, nothing in quarantine, no traceback in the server's log.

It ends with one JSON line: ``{"central_p95_ms": …, "central_errors": …, …}``.
"""
from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synclib import ROOT, Central, Scratch, demo_nodes, enroll, node_env  # noqa: E402

SCRATCH = "vinculo_bench_central_load"
PASSWORD = "bench-coordinadora-2026"
CSRF_RE = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
KEY_RE = re.compile(r'<code class="break">([A-Z2-7]+)</code>')
SELECT_RE = re.compile(r'<select id="f-(event|booth)" name="\1">(.*?)</select>', re.S)
OPTION_RE = re.compile(r'<option value="([0-9a-f-]{36})"')
DISEASES = ("hiv", "hcv", "syphilis")


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


# ---------------------------------------------------------------- a booth's push, waiting for the signal

def worker(folder: Path, batch: int | None) -> int:
    """``--worker FOLDER``: load the booth app, print ``ready``; on a line ``push`` run ``flask sync push
    --json`` and print ``push RC SECONDS OUTPUT``; on ``status`` run ``flask sync status --json`` and print
    ``status RC OUTPUT``; on end of input, exit. (The environment comes from the parent: node_env.)"""
    from booth import create_app

    app = create_app()
    runner = app.test_cli_runner()
    print("ready", flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "push":
            t0 = time.perf_counter()
            with app.app_context():     # what the ``flask`` command pushes around every command
                r = runner.invoke(args=["sync", "push", "--json", *(["--batch", str(batch)] if batch else [])])
            took = time.perf_counter() - t0
            out = (r.output or "").strip().replace("\n", " ")
            if r.exception and not isinstance(r.exception, SystemExit):
                out += f" {r.exception!r}"
                traceback.print_exception(r.exception)      # into the node's push.log
            print(f"push {r.exit_code} {took:.3f} {out}", flush=True)
        elif cmd == "status":
            with app.app_context():
                r = runner.invoke(args=["sync", "status", "--json"])
            print(f"status {r.exit_code} {(r.output or '').strip().replace(chr(10), ' ')}", flush=True)
    return 0


class Booth:
    """A push process of one booth node (``--worker`` mode), driven over its stdin/stdout."""

    def __init__(self, folder: Path, batch: int | None):
        self.folder = folder
        self.log = open(folder / "push.log", "w")
        extra = ["--batch", str(batch)] if batch else []
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker", str(folder), *extra],
                                     cwd=ROOT, env=node_env(folder), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, bufsize=1)

    def ready(self) -> None:
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            raise SystemExit(f"booth {self.folder.name} did not start: {line} "
                             f"{(self.folder / 'push.log').read_text()[-2000:]}")

    def send(self, cmd: str) -> None:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def answer(self, cmd: str) -> str:
        line = self.proc.stdout.readline()
        if not line.startswith(cmd + " "):
            raise RuntimeError(f"booth {self.folder.name}: {line!r}")
        return line[len(cmd) + 1:].strip()

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# ---------------------------------------------------------------- a coordinator's browser

class Browser:
    """One keep-alive HTTP connection and a cookie jar: a coordinator at central."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, dict, str]:
        headers = {"Accept-Language": "es"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            self.conn.request(method, path, body=body, headers=headers)
            r = self.conn.getresponse()
            text = r.read().decode()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            raise
        for value in r.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(value).items():
                self.cookies[name] = morsel.value
        return r.status, dict(r.headers), text

    def csrf(self, path: str) -> tuple[str, str]:
        status, _h, page = self.request("GET", path)
        m = CSRF_RE.search(page)
        if status != 200 or not m:
            raise SystemExit(f"GET {path}: {status}, no CSRF token")
        return m.group(1), page

    def sign_in_first_time(self, code: str) -> None:
        """Code + password, then the TOTP set-up page: its key into pyotp, the 6-digit code back."""
        import pyotp

        token, _page = self.csrf("/signin")
        status, headers, _ = self.request("POST", "/signin", {"csrf_token": token, "code": code,
                                                               "password": PASSWORD, "totp": ""})
        if status != 303 or not headers.get("Location", "").endswith("/signin/totp"):
            raise SystemExit(f"{code}: sign-in answered {status} {headers.get('Location')}")
        token, page = self.csrf("/signin/totp")
        key = KEY_RE.search(page)
        if not key:
            raise SystemExit(f"{code}: no TOTP key on the set-up page")
        status, headers, _ = self.request("POST", "/signin/totp", {"csrf_token": token,
                                                                    "totp": pyotp.TOTP(key.group(1)).now()})
        if status != 303:
            raise SystemExit(f"{code}: TOTP confirmation answered {status}")


class Load:
    """What the coordinators share: the phase, the samples, the errors."""

    def __init__(self, think: tuple[float, float], day: str):
        self.think, self.day = think, day
        self.phase = "before"          # before → push → after → stop
        self.lock = threading.Lock()
        self.samples: dict[str, list[float]] = {"before": [], "push": [], "after": []}
        self.healthz: dict[str, list[float]] = {"before": [], "push": [], "after": []}
        self.kinds: Counter = Counter()
        self.errors: list[str] = []
        self.status: Counter = Counter()
        self.stop = threading.Event()

    def record(self, phase: str, kind: str, ms: float) -> None:
        with self.lock:
            self.samples[phase].append(ms)
            if phase == "push":
                self.kinds[kind] += 1

    def error(self, what: str) -> None:
        with self.lock:
            self.errors.append(what)


def choose(rng: random.Random, events: list[str], booths: list[str], day: str) -> tuple[str, dict]:
    """A filter a coordinator would pick from the page's select boxes."""
    options = [("all", {})]
    options += [("disease", {"disease": rng.choice(DISEASES)}), ("dates", {"from": day, "to": day})]
    if events:
        e = rng.choice(events)
        options += [("event", {"event": e}), ("event+disease", {"event": e, "disease": rng.choice(DISEASES)})]
    if booths:
        options.append(("booth", {"booth": rng.choice(booths)}))
    return rng.choice(options)


def coordinator(load: Load, browser: Browser, rng: random.Random) -> None:
    events: list[str] = []
    booths: list[str] = []
    while not load.stop.is_set():
        phase = load.phase
        kind, args = choose(rng, events, booths, load.day)
        path = "/central/dashboard" + ("?" + urlencode(args) if args else "")
        t0 = time.perf_counter()
        try:
            status, _h, page = browser.request("GET", path)
        except (OSError, http.client.HTTPException) as e:
            load.error(f"{kind}: connection {type(e).__name__}")
            load.stop.wait(rng.uniform(*load.think))
            continue
        ms = (time.perf_counter() - t0) * 1000
        with load.lock:
            load.status[status] += 1
        if status != 200 or "</html>" not in page:
            load.error(f"{kind}: {status}")
        else:
            load.record(phase, kind, ms)
            for name, body in SELECT_RE.findall(page):
                (events if name == "event" else booths)[:] = OPTION_RE.findall(body)
        load.stop.wait(rng.uniform(*load.think))


def baseline(load: Load, port: int) -> None:
    """``GET /healthz`` every half second: what any request waits for at central at the same moment."""
    browser = Browser(port)
    while not load.stop.is_set():
        phase = load.phase
        t0 = time.perf_counter()
        try:
            status, _h, _page = browser.request("GET", "/healthz")
        except (OSError, http.client.HTTPException) as e:
            load.error(f"healthz: connection {type(e).__name__}")
        else:
            with load.lock:
                load.status[status] += 1
            if status != 200:
                load.error(f"healthz: {status}")
            else:
                with load.lock:
                    load.healthz[phase].append((time.perf_counter() - t0) * 1000)
        load.stop.wait(0.5)


# ---------------------------------------------------------------- the run

def setup_central(central: Central, nodes: list[Path], coordinators: int) -> tuple[list[str], list[str]]:
    """Register one sync node per booth and add the coordinators; returns (enrollment codes, staff codes)."""
    from booth import clock
    from booth.auth import services as auth
    from booth.auth.models import Role
    from booth.extensions import db
    from booth.sync import services as sync

    app = central.app()
    with app.app_context():
        codes = []
        for i, _folder in enumerate(nodes):
            _node, code = sync.register_node(db.session, name=f"Módulo {i + 1:02d}", now=clock.now())
            codes.append(code)
        staff = [f"C{i + 1:02d}" for i in range(coordinators)]
        for code in staff:
            auth.create_staff(db.session, code=code, roles=[Role.COORDINATOR], password=PASSWORD, now=clock.now())
        db.session.commit()
        db.engine.dispose()
    return codes, staff


def demo_day(folder: Path) -> str:
    import sqlite3

    with sqlite3.connect(folder / "node.sqlite3") as conn:
        return conn.execute("SELECT day FROM events LIMIT 1").fetchone()[0]


def run_load(central: Central, scratch: Scratch, nodes: list[Path], args) -> dict:
    codes, staff = setup_central(central, nodes, args.coordinators)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda fc: enroll(fc[0], central.url, fc[1]), zip(nodes, codes)))
    print(f"central on {central.url}: {len(nodes)} nodes enrolled, {len(staff)} coordinators", flush=True)

    browsers = []
    for code in staff:
        b = Browser(central.port)
        b.sign_in_first_time(code)
        browsers.append(b)
    print(f"{len(browsers)} coordinators signed in (password + TOTP over HTTP)", flush=True)

    booths = [Booth(folder, args.batch) for folder in nodes]
    for b in booths:
        b.ready()
    print(f"{len(booths)} push processes loaded and waiting", flush=True)

    load = Load(args.think, demo_day(nodes[0]))
    threads = [threading.Thread(target=coordinator, args=(load, b, random.Random(i)), daemon=True)
               for i, b in enumerate(browsers)]
    threads.append(threading.Thread(target=baseline, args=(load, central.port), daemon=True))
    for t in threads:
        t.start()
    time.sleep(max(args.think))          # every coordinator has its page open before the pushes

    pushes: dict[int, dict] = {}

    def push(i: int, booth: Booth) -> None:
        try:
            rc, took, out = booth.answer("push").split(" ", 2)
        except (RuntimeError, ValueError, OSError) as e:     # the process died or said something else
            pushes[i] = {"rc": -1, "s": time.perf_counter() - t0, "report": None, "output": repr(e)}
            return
        report = None
        try:
            report = json.loads(out)
        except ValueError:
            pass
        pushes[i] = {"rc": int(rc), "s": float(took), "report": report, "output": out}

    waiters = [threading.Thread(target=push, args=(i, b)) for i, b in enumerate(booths)]
    t0 = time.perf_counter()
    for w in waiters:
        w.start()
    load.phase = "push"
    for b in booths:
        b.send("push")
    for w in waiters:
        w.join()
    push_wall = time.perf_counter() - t0
    load.phase = "after"
    print(f"pushes: {len(pushes)} booths in {push_wall:.1f} s wall "
          f"(each {min(p['s'] for p in pushes.values()):.1f}–{max(p['s'] for p in pushes.values()):.1f} s)",
          flush=True)
    if args.after > 0:
        time.sleep(args.after)
    load.phase = "stop"
    load.stop.set()
    for t in threads:
        t.join(timeout=120)

    # ------------------------------------------------------------ checks
    errors = list(load.errors)
    for i, p in sorted(pushes.items()):
        r = p["report"]
        if p["rc"] != 0 or r is None:
            errors.append(f"push {nodes[i].name}: exit {p['rc']} {p['output'][:300]}")
        elif r.get("quarantined") or r.get("deferred"):
            errors.append(f"push {nodes[i].name}: quarantined {r.get('quarantined')}, deferred {r.get('deferred')}")
    receipts_match = 0
    for i, b in enumerate(booths):
        try:
            b.send("status")
        except OSError:
            pass
    for i, b in enumerate(booths):
        try:
            rc, out = (b.answer("status").split(" ", 1) + [""])[:2]
        except (RuntimeError, OSError) as e:
            rc, out = "-1", repr(e)
        try:
            status = json.loads(out)
        except ValueError:
            errors.append(f"status {nodes[i].name}: exit {rc} {out[:300]}")
            continue
        receipt = status.get("receipt") or {}
        pending = sum((status.get("pending") or {}).values())
        if rc != "0" or status.get("error") or not receipt.get("match") or pending:
            errors.append(f"status {nodes[i].name}: match {receipt.get('match')}, pending {pending}, "
                          f"{status.get('error') or ''}")
        else:
            receipts_match += 1
        b.close()
    visits = scratch.scalar("SELECT count(*) FROM visits")
    quarantine = scratch.scalar("SELECT count(*) FROM sync_quarantine")
    records = scratch.scalar("SELECT count(*) FROM sync_records")
    if visits != len(nodes) * args.visits:
        errors.append(f"central holds {visits} visits, not {len(nodes) * args.visits}")
    if quarantine:
        errors.append(f"{quarantine} records in quarantine at central")
    log = central.log_text()
    tracebacks = log.count("Traceback")
    if tracebacks:
        errors.append(f"{tracebacks} tracebacks in central's log")
        print("central's log, first traceback:\n" + log[max(0, log.index("Traceback") - 300):][:6000], flush=True)

    during, after = load.samples["push"], load.samples["after"]
    return {
        "push_wall_s": push_wall, "per_push_s": [round(pushes[i]["s"], 2) for i in sorted(pushes)],
        "during": during, "after": after, "before": load.samples["before"], "kinds": dict(load.kinds),
        "healthz": load.healthz["push"], "healthz_after": load.healthz["after"],
        "status": dict(load.status), "errors": errors, "receipts_match": receipts_match,
        "visits": visits, "records": records, "quarantine": quarantine,
        "server_errors": sum(n for s, n in load.status.items() if s >= 500),
        "sent": sum((p["report"] or {}).get("sent", 0) for p in pushes.values()),
        "batches": sum((p["report"] or {}).get("batches", 0) for p in pushes.values()),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--nodes", type=int, default=20)
    p.add_argument("--visits", type=int, default=200, help="visits per booth node (demo day)")
    p.add_argument("--coordinators", type=int, default=10)
    p.add_argument("--think", default="0.5,1.5", help="seconds between two dashboard loads: MIN,MAX")
    p.add_argument("--after", type=float, default=15, help="seconds of dashboard load after the last push")
    p.add_argument("--batch", type=int, default=None, help="records per push request (default: the CLI's)")
    p.add_argument("--cache", type=Path, default=None, help="keep/reuse the filled (never enrolled) nodes here")
    p.add_argument("--keep", action="store_true", help="keep the scratch database and the temporary folder")
    args = p.parse_args()
    if args.worker is not None:
        return worker(args.worker, args.batch)
    args.think = tuple(float(x) for x in args.think.split(","))
    base_url = os.environ.get("TEST_DATABASE_URL")
    if not base_url:
        print("TEST_DATABASE_URL is not set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="vinculo-bench-central-load-"))
    scratch = None
    central = None
    try:
        print(f"booth nodes: {args.nodes} × demo --visits {args.visits}", flush=True)
        t0 = time.perf_counter()
        nodes = demo_nodes(work / "nodes", list(range(1, args.nodes + 1)), args.visits, args.cache,
                           log=lambda s: print(s, flush=True))
        print(f"  ready in {time.perf_counter() - t0:.0f} s", flush=True)
        scratch = Scratch(base_url, SCRATCH)
        central = Central(work / "central", scratch.url, {"VINCULO_SYNC_ENROLL_RATE_LIMIT": "1000 per minute"})
        central.migrate()
        central.start()
        r = run_load(central, scratch, nodes, args)
    finally:
        if central is not None:
            central.stop()
        if scratch is not None and not args.keep:
            scratch.drop()
        if args.keep:
            print(f"kept {work} and database {SCRATCH}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)

    during, after = r["during"], r["after"]
    print(f"dashboard while pushing: {len(during)} loads by {args.coordinators} coordinators, "
          f"p50 {pct(during, 50) or 0:.0f} ms, p95 {pct(during, 95) or 0:.0f} ms, max {max(during or [0]):.0f} ms "
          f"(filters: {', '.join(f'{k} {n}' for k, n in sorted(r['kinds'].items()))})", flush=True)
    hz = r["healthz"]
    print(f"GET /healthz meanwhile (every 0.5 s): {len(hz)} requests, p50 {pct(hz, 50) or 0:.0f} ms, "
          f"p95 {pct(hz, 95) or 0:.0f} ms", flush=True)
    if after:
        print(f"dashboard after the pushes ({args.after:.0f} s, {r['visits']:,} visits at central): "
              f"{len(after)} loads, "
              f"p50 {pct(after, 50):.0f} ms, p95 {pct(after, 95):.0f} ms, max {max(after):.0f} ms", flush=True)
    print(f"central: {r['visits']:,} visits, {r['records']:,} records, quarantine {r['quarantine']}; "
          f"receipts matching {r['receipts_match']}/{args.nodes}; {r['sent']:,} records sent in {r['batches']} batches",
          flush=True)
    print(f"errors: {len(r['errors'])}" + "".join(f"\n  {e}" for e in r["errors"][:20]), flush=True)
    out = {"central_p95_ms": round(pct(during, 95), 1) if during else None, "central_errors": len(r["errors"]),
           "central_p50_ms": round(pct(during, 50), 1) if during else None,
           "dashboard_requests": len(during), "server_errors": r["server_errors"],
           "healthz_p95_ms": round(pct(hz, 95), 1) if hz else None,
           "after_p95_ms": round(pct(after, 95), 1) if after else None, "after_requests": len(after),
           "pushes_s": round(r["push_wall_s"], 2), "push_max_s": max(r["per_push_s"]),
           "nodes": args.nodes, "visits_at_central": r["visits"], "expected_visits": args.nodes * args.visits,
           "records_at_central": r["records"], "receipts_match": r["receipts_match"],
           "coordinators": args.coordinators, "think_s": list(args.think)}
    print(json.dumps(out))
    return 0 if out["central_errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
