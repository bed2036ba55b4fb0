"""Fixtures: a booth ``app`` on a copy of a migrated template SQLite file, ``client``, ``runner``,
``node`` (a set-up booth), ``login(role)`` and ``pg_app`` (central on PostgreSQL when
``TEST_DATABASE_URL`` is set, skipped otherwise)."""
from __future__ import annotations

import os
import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from hypothesis import settings

from booth import create_app
from booth.clock import FrozenClock

settings.register_profile("ci", max_examples=60, deadline=None)
settings.register_profile("bench", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Saturday of a Pride march, 10:00 in Mexico City.
START = datetime(2026, 6, 27, 16, 0, tzinfo=timezone.utc)
SECRET = "test-secret-key-" + "x" * 40
FAST_ARGON2 = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST_KIB": 1024}
CSRF_RE = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"|"X-CSRFToken": "([^"]+)"')


def base_config(tmp_path: Path, **extra) -> dict:
    cfg = {"TESTING": True, "SECRET_KEY": SECRET, "INSTANCE_DIR": str(tmp_path / "instance"),
           "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'node.sqlite3'}", "CLOCK": FrozenClock(START),
           "LOGIN_RATE_LIMIT": "1000 per minute", **FAST_ARGON2}
    cfg.update(extra)
    return cfg


def migrate(app) -> None:
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()


@pytest.fixture(scope="session")
def template_db(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("template")
    app = create_app(base_config(folder))
    migrate(app)
    with app.app_context():
        from booth.extensions import db
        db.engine.dispose()
    return folder / "node.sqlite3"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def make_app(template_db, tmp_path, clock):
    """Build a booth app on a fresh copy of the migrated template database."""
    def build(**extra):
        (tmp_path / "instance").mkdir(exist_ok=True)
        shutil.copy(template_db, tmp_path / "node.sqlite3")
        return create_app(base_config(tmp_path, CLOCK=clock, **extra))
    return build


@pytest.fixture
def app(make_app):
    app = make_app()
    yield app
    with app.app_context():
        from booth.extensions import db
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# ---------------------------------------------------------------- a set-up booth and its tablets

@dataclass
class Node:
    app: object
    event_id: uuid.UUID
    booth_id: uuid.UUID
    coordinator_code: str
    coordinator_pin: str
    device_token: str


def setup_node(app, clock) -> Node:
    from booth.events import services as events
    from booth.extensions import db

    with app.app_context():
        r = events.first_run_setup(db.session, event_name="Marcha del Orgullo", event_day=date(2026, 6, 27),
                                   place="CDMX", timezone="America/Mexico_City", booth_name="Módulo 1",
                                   coordinator_code="C01", pin="482913", now=clock.now())
        db.session.commit()
        return Node(app, r.event.id, r.booth.id, "C01", "482913", r.device_token)


@pytest.fixture
def node(app, clock) -> Node:
    return setup_node(app, clock)


class Tablet:
    """A browser on a tablet: a test client with the device cookie and helpers for forms."""

    def __init__(self, app, device_token: str | None = None):
        self.app = app
        self.client = app.test_client()
        if device_token:
            self.client.set_cookie("vinculo_device", device_token)

    def csrf(self, page: str = "/login") -> str:
        html = self.client.get(page).get_data(as_text=True)
        m = CSRF_RE.search(html)
        assert m, f"no CSRF token on {page}"
        return m.group(1) or m.group(2)

    def get(self, url, **kw):
        return self.client.get(url, **kw)

    def post(self, url, data=None, csrf_page="/login", **kw):
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf(csrf_page))
        return self.client.post(url, data=data, **kw)

    def login(self, code: str, pin: str):
        r = self.post("/login", {"code": code, "pin": pin})
        assert r.status_code == 303, r.get_data(as_text=True)[:500]
        return r


def new_device(app, clock, name="Tablet") -> str:
    from booth.auth import services
    from booth.extensions import db

    with app.app_context():
        _row, code = services.create_enrollment_code(db.session, now=clock.now(), minutes=10, actor=None)
        _dev, token = services.enroll_device(db.session, code=code, name=name, now=clock.now())
        db.session.commit()
        return token


def add_staff(app, clock, code: str, roles, pin: str = "731945", **kw):
    from booth.auth import services
    from booth.extensions import db

    with app.app_context():
        services.create_staff(db.session, code=code, roles=roles, pin=pin, now=clock.now(), **kw)
        db.session.commit()


@pytest.fixture
def tablet(node) -> Tablet:
    """The coordinator's tablet (the one that ran setup), not logged in."""
    return Tablet(node.app, node.device_token)


@pytest.fixture
def login(node, clock):
    """login("tester") → a Tablet on a new enrolled device, logged in as a new staff member with that role."""
    counter = {"n": 0}

    def _login(*roles: str, clinical_lead: bool = False) -> Tablet:
        counter["n"] += 1
        code = f"{roles[0][:1].upper()}{counter['n']:02d}X"
        add_staff(node.app, clock, code, roles, clinical_lead=clinical_lead)
        t = Tablet(node.app, new_device(node.app, clock))
        t.login(code, "731945")
        t.code = code
        return t

    return _login


@pytest.fixture
def ctx(node, clock):
    """A booth ready to test, inside an app context (see tests/workflow/conftest.py)."""
    from tests.workflow.conftest import build_ctx

    with node.app.app_context():
        yield build_ctx(node.app, node, clock)


# ---------------------------------------------------------------- central on PostgreSQL

@pytest.fixture(scope="session")
def pg_url():
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("TEST_DATABASE_URL not set: central tests need PostgreSQL")
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(url)
    name = f"vinculo_test_{os.getpid()}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield base.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_migrated(pg_url, tmp_path_factory):
    folder = tmp_path_factory.mktemp("central")
    app = create_app(base_config(folder, ROLE="central", SQLALCHEMY_DATABASE_URI=pg_url))
    migrate(app)
    return pg_url


@pytest.fixture
def pg_app(pg_migrated, tmp_path, clock):
    app = create_app(base_config(tmp_path, ROLE="central", SQLALCHEMY_DATABASE_URI=pg_migrated, CLOCK=clock))
    from booth.extensions import db
    from sqlalchemy import text

    with app.app_context():
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        db.session.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE"))
        db.session.commit()
    yield app
    with app.app_context():
        db.engine.dispose()
