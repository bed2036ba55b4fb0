"""What the central benches can share (``bench/central_load.py`` uses it; not a bench itself): a scratch
PostgreSQL database next to ``TEST_DATABASE_URL``'s, the central server as a real ``python -m booth.serve``
process on it, booth nodes filled by ``flask --app wsgi demo`` in folders of their own, and the ``flask``
commands run against either. Nothing in ``instance/`` is touched.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra) -> dict:
    """This process's environment without any node setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("VINCULO_") and k not in ("DATABASE_URL", "HOST", "PORT")}
    env.update(extra)
    return env


def run(args: list[str], env: dict) -> str:
    """``python ARGS`` from the repository root; its standard output, or SystemExit with both outputs."""
    out = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return out.stdout


def flask(args: list[str], env: dict) -> str:
    return run(["-m", "flask", "--app", "wsgi", *args], env)


# ---------------------------------------------------------------- PostgreSQL

class Scratch:
    """A scratch database beside ``TEST_DATABASE_URL``'s: dropped and created empty; ``drop()`` at the end."""

    def __init__(self, base_url: str, name: str):
        base = make_url(base_url)
        self.name = name
        self.admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
        self.url = base.set(database=name).render_as_string(hide_password=False)             # SQLAlchemy
        self.dsn = base.set(drivername="postgresql", database=name).render_as_string(hide_password=False)
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')

    def scalar(self, sql: str, *params):
        with psycopg.connect(self.dsn) as conn:
            return conn.execute(sql, params).fetchone()[0]

    def drop(self) -> None:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# ---------------------------------------------------------------- central

class Central:
    """The central server on ``db_url``: instance folder in ``folder``, migrated with ``flask db upgrade``
    (``VINCULO_ROLE=central``) and served by ``python -m booth.serve`` on a free loopback port — what
    ``make central`` runs (waitress, plain HTTP on loopback). ``extra_env`` adds ``VINCULO_*`` settings."""

    def __init__(self, folder: Path, db_url: str, extra_env: dict | None = None):
        self.folder, self.db_url, self.port = folder, db_url, free_port()
        self.instance = folder / "instance"
        self.env = clean_env(VINCULO_ROLE="central", VINCULO_INSTANCE_DIR=str(self.instance), DATABASE_URL=db_url,
                             HOST="127.0.0.1", PORT=str(self.port), VINCULO_TLS="off", **(extra_env or {}))
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log_path = folder / "central.log"
        self.serve = ["-m", "booth.serve"]   # the arguments of the server process's ``python``

    def migrate(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        run(["-m", "booth.instance", str(self.instance)], self.env)
        flask(["db", "upgrade"], self.env)

    def start(self, timeout: float = 60) -> None:
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, *self.serve], cwd=ROOT, env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("central did not start: " + self.log_path.read_text()[-2000:])

    def app(self):
        """Central's app in this process (services: register nodes, add staff); the server runs beside it."""
        from booth import create_app

        return create_app({"ROLE": "central", "INSTANCE_DIR": str(self.instance),
                           "SQLALCHEMY_DATABASE_URI": self.db_url})

    def register_cli(self, name: str) -> dict:
        """``flask sync register-node NAME --json`` → ``{"node": …, "code": …}``."""
        return json.loads(flask(["sync", "register-node", name, "--json"], self.env))

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self.log.close()


# ---------------------------------------------------------------- booth nodes

def node_env(folder: Path) -> dict:
    """The environment of the booth node in ``folder`` (``instance/`` and ``node.sqlite3``)."""
    return clean_env(VINCULO_INSTANCE_DIR=str(folder / "instance"), DATABASE_URL=f"sqlite:///{folder / 'node.sqlite3'}")


def filled_node(folder: Path, visits: int, seed: int) -> dict:
    """A new booth node in ``folder``: instance, migrations, ``demo --visits N --seed S`` (a closed demo day).
    Returns what ``demo`` printed (event id, staff codes and PINs)."""
    env = node_env(folder)
    run(["-m", "booth.instance", str(folder / "instance")], env)
    flask(["db", "upgrade"], env)
    out = flask(["demo", "--visits", str(visits), "--seed", str(seed)], env)
    return json.loads(out.strip().splitlines()[-1])


def demo_nodes(into: Path, seeds: list[int], visits: int, cache: Path | None = None, log=print) -> list[Path]:
    """One filled, never-enrolled node per seed in ``into``: made with ``demo``, or copied from ``cache``
    when it holds them (and kept there for next time when it does not). Copies never share an enrollment:
    they are made before any node is enrolled, and enrolling writes ``instance/sync.json`` per copy."""
    out = []
    for seed in seeds:
        name = f"v{visits}-seed{seed}"
        dst = into / name
        src = cache / name if cache is not None else None
        if src is None or not (src / "done").exists():
            made = src or dst
            shutil.rmtree(made, ignore_errors=True)
            made.mkdir(parents=True)
            t0 = time.perf_counter()
            filled_node(made, visits, seed)
            (made / "done").write_text("")
            log(f"  node seed {seed}: demo --visits {visits} in {time.perf_counter() - t0:.1f} s")
        if src is not None:
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("done", "*-wal", "*-shm", "sync*.json"))
        out.append(dst)
    return out


def enroll(folder: Path, central_url: str, code: str) -> None:
    """``flask sync enroll CENTRAL_URL CODE`` on the booth node in ``folder``."""
    flask(["sync", "enroll", central_url, code], node_env(folder))
