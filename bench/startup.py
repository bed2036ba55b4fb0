"""Foundation figures of a booth node: cold start, idle memory, PIN login time.

Run from the repository root with the project's virtualenv::

    .venv/bin/python bench/startup.py [--logins 30] [--starts 3]

What it does, on a temporary instance folder and SQLite file (nothing in ``instance/`` is touched):

1. creates the instance (``python -m booth.instance``), migrates it (``flask --app wsgi db upgrade``)
   and runs first-run setup through the services (event, booth, coordinator C01, first device) and
   enrolls more devices, all with the production argon2 cost from ``booth/config.py``;
2. **cold start**: spawns ``python -m booth.serve`` (plain HTTP on loopback: waitress) ``--starts`` times
   and times each from spawn to the first ``GET /healthz`` answering 200; reports the median;
3. **idle memory**: after a few requests (health, enrollment, login page), the node's ``VmRSS`` from
   ``/proc/PID/status``; the goal is < 80 MB;
4. **PIN login**: ``--logins`` times ``POST /login`` (staff code + PIN + CSRF token, with an enrolled
   device's cookie) timed on the client, median and p95 in milliseconds. The login limit is 30 per
   minute per device, so the logins rotate over enough devices (20 each at most); the configuration is
   production's.

It ends by printing one JSON line of its figures.
"""
from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CSRF_RE = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
CODE, PIN = "C01", "482913"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_env(instance: Path, db_url: str, port: int | None = None) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("VINCULO_") and k not in ("DATABASE_URL", "HOST", "PORT")}
    env.update(VINCULO_INSTANCE_DIR=str(instance), DATABASE_URL=db_url, HOST="127.0.0.1", VINCULO_TLS="off")
    if port:
        env["PORT"] = str(port)
    return env


def prepare(folder: Path, devices: int) -> tuple[Path, str, list[str], dict]:
    """A migrated, set-up node with ``devices`` enrolled devices; returns their tokens and the argon2 cost."""
    instance, db_url = folder / "instance", f"sqlite:///{folder / 'node.sqlite3'}"
    env = node_env(instance, db_url)
    subprocess.run([sys.executable, "-m", "booth.instance", str(instance)], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env,
                   check=True, capture_output=True)

    from booth import create_app
    from booth.auth import services as auth
    from booth.events import services as events
    from booth.extensions import db

    app = create_app({"INSTANCE_DIR": str(instance), "SQLALCHEMY_DATABASE_URI": db_url})
    now = datetime.now(timezone.utc)
    with app.app_context():
        setup = events.first_run_setup(db.session, event_name="Marcha del Orgullo", event_day=date.today(),
                                       place="CDMX", timezone="America/Mexico_City", booth_name="Módulo 1",
                                       coordinator_code=CODE, pin=PIN, now=now)
        tokens = [setup.device_token]
        for n in range(2, devices + 1):
            _row, code = auth.create_enrollment_code(db.session, now=now, minutes=10, actor=setup.coordinator)
            _device, token = auth.enroll_device(db.session, code=code, name=f"Tablet {n}", now=now)
            tokens.append(token)
        db.session.commit()
        db.engine.dispose()
    cost = {"m_kib": app.config["ARGON2_MEMORY_COST_KIB"], "t": app.config["ARGON2_TIME_COST"],
            "p": app.config["ARGON2_PARALLELISM"]}
    return instance, db_url, tokens, cost


class Browser:
    """A tablet's browser: one keep-alive connection and a cookie jar."""

    def __init__(self, port: int, device_token: str):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookies = {"vinculo_device": device_token}

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, str]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        data = None
        if body is not None:
            data = urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        text = resp.read().decode()
        for header in resp.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return resp.status, text

    def login_form(self) -> dict:
        status, page = self.request("GET", "/login")
        m = CSRF_RE.search(page)
        if status != 200 or not m:
            raise RuntimeError(f"GET /login answered {status} without a CSRF token")
        return {"csrf_token": m.group(1), "code": CODE, "pin": PIN}


def get_status(port: int, path: str) -> int | None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
        return status
    except OSError:
        return None


def spawn(env: dict, log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "booth.serve"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def cold_start(env: dict, port: int, log, timeout: float = 60) -> tuple[float, subprocess.Popen]:
    t0 = time.perf_counter()
    proc = spawn(env, log)
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the node exited with {proc.returncode}")
        if get_status(port, "/healthz") == 200:
            return time.perf_counter() - t0, proc
        time.sleep(0.01)
    stop(proc)
    raise RuntimeError(f"no /healthz 200 within {timeout} s")


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for {pid}")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--logins", type=int, default=30)
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vinculo-bench-") as tmp:
        folder = Path(tmp)
        # the login limit is 30 per minute per device: 20 timed logins per device at most
        _instance, _db_url, devices, cost = prepare(folder, max(2, math.ceil(args.logins / 20)))
        port = free_port()
        env = node_env(folder / "instance", _db_url, port)
        with open(folder / "server.log", "wb") as log:
            starts = []
            for _ in range(args.starts - 1):
                seconds, proc = cold_start(env, port, log)
                starts.append(seconds)
                stop(proc)
            seconds, proc = cold_start(env, port, log)
            starts.append(seconds)
            try:
                tablets = [Browser(port, token) for token in devices]
                for path in ("/healthz", "/enroll", "/login", "/static/css/app.css"):
                    for tablet in tablets:
                        tablet.request("GET", path)
                time.sleep(1)
                idle_rss = rss_mb(proc.pid)

                # one untimed login per device first (first argon2 hash, first session row)
                for tablet in tablets:
                    status, _ = tablet.request("POST", "/login", tablet.login_form())
                    if status != 303:
                        raise RuntimeError(f"warm-up login answered {status}")
                timings = []
                for i in range(args.logins):
                    tablet = tablets[i % len(tablets)]
                    form = tablet.login_form()
                    t0 = time.perf_counter()
                    status, _ = tablet.request("POST", "/login", form)
                    timings.append((time.perf_counter() - t0) * 1000)
                    if status != 303:
                        raise RuntimeError(f"login {i} answered {status}")
                time.sleep(1)
                after_rss, peak_rss = rss_mb(proc.pid), rss_mb(proc.pid, "VmHWM")
            finally:
                stop(proc)

    figures = {
        "cold_start_s": round(statistics.median(starts), 2),
        "cold_start_runs_s": [round(s, 2) for s in starts],
        "rss_mb": round(idle_rss, 1),
        "rss_after_logins_mb": round(after_rss, 1),
        "rss_peak_mb": round(peak_rss, 1),
        "login_p50_ms": round(statistics.median(timings), 1),
        "login_p95_ms": round(percentile(timings, 0.95), 1),
        "logins": args.logins,
        "argon2": f"argon2id m={cost['m_kib'] // 1024} MiB, t={cost['t']}, p={cost['p']}",
    }
    print(json.dumps(figures, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
