"""Issue 7: SIGKILL in the middle of a push. Central killed while it applies a batch and restarted: the
push resumes, nothing lost or doubled. The booth's push process killed between batches: its outbox is
intact (every record acknowledged or still pending), and the next push completes it."""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from booth.extensions import db
from booth.sync import client, node, records as R
from booth.sync.models import SyncAck, SyncRecord
from tests.sync.conftest import enrolled, sync

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("VINCULO_") and k not in ("DATABASE_URL", "HOST", "PORT")}
    env.update(extra)
    return env


def held_counts(booth) -> dict:
    with booth.app_context():
        return {k.name: db.session.scalar(select(func.count()).select_from(db.metadata.tables[k.table]))
                for k in R.KINDS}


def ledger_counts(central) -> dict:
    with central.app_context():
        rows = db.session.execute(select(SyncRecord.kind, func.count()).group_by(SyncRecord.kind)).all()
    return {k.name: dict(rows).get(k.name, 0) for k in R.KINDS}


class CentralProcess:
    """``python -m booth.serve`` as central (VINCULO_ROLE=central) on PostgreSQL, on a fixed port."""

    def __init__(self, folder: Path, db_url: str):
        self.folder, self.port = folder, free_port()
        self.instance = folder / "instance"
        subprocess.run([sys.executable, "-m", "booth.instance", str(self.instance)], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
        self.env = clean_env(VINCULO_ROLE="central", VINCULO_INSTANCE_DIR=str(self.instance), DATABASE_URL=db_url,
                             HOST="127.0.0.1", PORT=str(self.port))
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self):
        self.log = open(self.folder / "central.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "booth.serve"], cwd=ROOT, env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("central did not start: " + (self.folder / "central.log").read_text()[-2000:])

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def test_central_killed_in_the_middle_of_a_batch_then_restarted(pg_app, make_booth, tmp_path):
    url = pg_app.config["SQLALCHEMY_DATABASE_URI"]
    central = CentralProcess(tmp_path / "central", url)
    central.start()
    try:
        booth = make_booth(visits=200, seed=21)
        out = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "sync", "register-node", "Módulo K",
                              "--json"], cwd=ROOT, env=central.env, check=True, capture_output=True, text=True)
        reg = json.loads(out.stdout)
        r = sync(booth, "enroll", central.url, reg["code"])
        assert r.exit_code == 0, r.output
        held = held_counts(booth)

        pg = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        killed = threading.Event()

        def killer():
            # kill central while one of its connections is inside a transaction that is writing the batch
            with psycopg.connect(pg, autocommit=True) as conn:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    busy = conn.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL "
                        "AND query ILIKE 'INSERT INTO%'").fetchone()[0]
                    if busy:
                        central.kill()
                        killed.set()
                        return
                    time.sleep(0.002)

        k = threading.Thread(target=killer)
        k.start()
        restarted = threading.Event()

        def sleep(seconds):   # the retry clock: restart central during the first back-off after the kill
            if killed.is_set() and not restarted.is_set():
                central.start()
                restarted.set()
            time.sleep(min(seconds, 0.2))

        with booth.app_context():
            state = client.load_state(booth.instance_path)
            t = client.Transport(state, lambda: booth.clock.now().timestamp(), timeout=60)
            report = node.push(db.session, t, sleep=sleep, rng=random.Random(1), batch_size=2000, attempts=30)
        k.join(timeout=60)
        assert killed.is_set() and restarted.is_set(), "central was not caught inside a batch"
        assert report.retries >= 1 and report.deferred == 0 and report.quarantined == 0, report.as_dict()
        assert ledger_counts(pg_app) == held
        with pg_app.app_context():
            assert db.session.scalar(select(func.count()).select_from(db.metadata.tables["visits"])) == 200
        with booth.app_context():
            receipt = node.receipt(db.session, client.Transport(client.load_state(booth.instance_path),
                                                                lambda: booth.clock.now().timestamp()))
            assert receipt["match"]
    finally:
        central.stop()


def test_booth_push_killed_between_batches_leaves_its_outbox_intact(central, make_booth):
    booth = make_booth(visits=120, seed=22)
    enrolled(central, booth)
    held = held_counts(booth)
    folder = Path(booth.instance_path).parent
    env = clean_env(VINCULO_INSTANCE_DIR=booth.instance_path, DATABASE_URL=f"sqlite:///{folder / 'node.sqlite3'}",
                    VINCULO_SECRET_KEY=booth.config["SECRET_KEY"])
    subprocess.run([sys.executable, "-m", "booth.instance", booth.instance_path], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, env=env)
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "sync", "push", "--batch", "25"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    db_file = folder / "node.sqlite3"
    deadline = time.monotonic() + 120
    acked_at_kill = 0
    while time.monotonic() < deadline and proc.poll() is None:
        with sqlite3.connect(db_file, timeout=5) as c:
            acked_at_kill = c.execute("SELECT count(*) FROM sync_acks").fetchone()[0]
        if acked_at_kill >= 100:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stdout.read().decode()[-2000:]
    total = sum(held.values())
    assert 0 < acked_at_kill < total

    with sqlite3.connect(db_file) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with booth.app_context():
        acked = db.session.scalar(select(func.count()).select_from(SyncAck))
        pending = sum(node.outbox.pending_counts(db.session, db.metadata).values())
        assert acked >= acked_at_kill and acked + pending == total     # every record acknowledged or pending
    # central may hold a batch the booth never heard back about: the next push acknowledges it again
    r = sync(booth, "push", "--json")
    assert r.exit_code == 0, r.output
    assert ledger_counts(central) == held
    with booth.app_context():
        assert db.session.scalar(select(func.count()).select_from(SyncAck)) == total
    r = sync(booth, "status", "--json")
    assert '"match": true' in r.output


@pytest.fixture(autouse=True)
def _quiet_werkzeug(caplog):
    caplog.set_level("WARNING", logger="werkzeug")
