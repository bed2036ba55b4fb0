"""Shared by the sync tests: a central server on PostgreSQL served over real HTTP, booth nodes with their
own folders and clocks, and the CLI helpers."""
from __future__ import annotations

import json
import shutil
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from booth import create_app
from booth.clock import FrozenClock
from booth.events.models import Event
from booth.extensions import db
from booth.sync.models import SyncNode
from tests.conftest import START, base_config, setup_node

# ---------------------------------------------------------------- a central server and booth nodes

@pytest.fixture
def central(pg_app):
    """The central app served over real HTTP on a free loopback port (a thread, stopped afterwards)."""
    server = make_server("127.0.0.1", 0, pg_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    pg_app.url = f"http://127.0.0.1:{server.server_port}"
    yield pg_app
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def make_booth(template_db, tmp_path):
    """A set-up booth node with its own folder, instance/ and clock (not central's)."""
    apps = []

    def build(name="booth", start=START, visits=None, seed=1):
        """Set up like an operator does; with ``visits``, filled by ``flask demo`` (a closed demo day)."""
        folder = tmp_path / name
        (folder / "instance").mkdir(parents=True)
        shutil.copy(template_db, folder / "node.sqlite3")
        booth_clock = FrozenClock(start)
        app = create_app(base_config(folder, CLOCK=booth_clock))
        if visits is None:
            setup_node(app, booth_clock)
        else:
            r = app.test_cli_runner().invoke(args=["demo", "--visits", str(visits), "--seed", str(seed)])
            assert r.exit_code == 0, r.output
        app.clock = booth_clock
        apps.append(app)
        return app

    yield build
    for app in apps:
        with app.app_context():
            db.engine.dispose()


def sync(app, *args):
    return app.test_cli_runner().invoke(args=["sync", *args])


def register(central, name="Módulo 1") -> dict:
    r = sync(central, "register-node", name, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def enrolled(central, booth, name="Módulo 1") -> dict:
    reg = register(central, name)
    r = sync(booth, "enroll", central.url, reg["code"])
    assert r.exit_code == 0, r.output
    return reg


def state_of(booth) -> dict:
    return json.loads((Path(booth.instance_path) / "sync.json").read_text())


def central_node(central, node_id) -> SyncNode:
    with central.app_context():
        node = db.session.get(SyncNode, uuid.UUID(node_id))
        db.session.expunge(node)
        return node


def event_base_url(booth):
    with booth.app_context():
        return db.session.scalar(select(Event.central_base_url))


