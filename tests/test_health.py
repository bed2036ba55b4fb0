"""/healthz, and a node that refuses to start half-working (damaged database, missing or exposed secret)."""
from __future__ import annotations

import os
import shutil
import sqlite3

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

import booth
from booth import create_app
from booth.config import ROOT
from booth.db import DamagedDatabaseError
from booth.instance import InstanceError
from tests.conftest import Tablet, base_config

KEYS = {"status", "role", "db", "schema", "version"}


def head_revision() -> str:
    return ScriptDirectory(str(ROOT / "migrations")).get_current_head()


def healthy(r, role: str) -> None:
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.mimetype == "application/json"
    body = r.get_json()
    assert set(body) == KEYS, body
    assert body == {"status": "ok", "role": role, "db": "ok", "schema": head_revision(), "version": booth.__version__}


def failing(r, role: str) -> None:
    assert r.status_code == 503, r.get_data(as_text=True)[:300]
    body = r.get_json()
    assert set(body) == KEYS, body
    assert body["status"] == "error" and body["db"] == "error" and body["role"] == role
    assert body["version"] == booth.__version__


def test_healthz_on_an_empty_booth_without_login(client):
    healthy(client.get("/healthz"), "booth")


def test_healthz_on_a_set_up_booth_from_any_browser(node):
    healthy(node.app.test_client().get("/healthz"), "booth")  # not enrolled
    healthy(Tablet(node.app, node.device_token).get("/healthz"), "booth")  # enrolled, not logged in
    body = node.app.test_client().get("/healthz").get_data(as_text=True)
    assert "Marcha" not in body and "C01" not in body  # no data


def test_healthz_at_central(pg_app):
    healthy(pg_app.test_client().get("/healthz"), "central")


def test_healthz_503_when_the_schema_is_gone(template_db, tmp_path, clock):
    """A real failure: a copy of the database whose alembic_version table was dropped."""
    (tmp_path / "instance").mkdir()
    shutil.copy(template_db, tmp_path / "node.sqlite3")
    with sqlite3.connect(tmp_path / "node.sqlite3") as conn:
        conn.execute("DROP TABLE alembic_version")
    app = create_app(base_config(tmp_path, CLOCK=clock))
    failing(app.test_client().get("/healthz"), "booth")


def test_healthz_503_when_the_database_breaks_while_running(make_app, tmp_path, clock):
    app = make_app()
    client = app.test_client()
    healthy(client.get("/healthz"), "booth")
    from booth.extensions import db

    with app.app_context():
        db.engine.dispose()
    for name in ("node.sqlite3-wal", "node.sqlite3-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    (tmp_path / "node.sqlite3").write_bytes(b"this is not a database " * 500)
    failing(client.get("/healthz"), "booth")


def test_healthz_503_at_central_when_postgresql_does_not_answer(pg_url, tmp_path, clock):
    """The server started, but its database does not exist (dropped, wrong name, server gone)."""
    missing = make_url(pg_url).set(database=f"vinculo_missing_{os.getpid()}").render_as_string(hide_password=False)
    app = create_app(base_config(tmp_path, ROLE="central", SQLALCHEMY_DATABASE_URI=missing, CLOCK=clock))
    failing(app.test_client().get("/healthz"), "central")


# ---------------------------------------------------------------- refusing to start

def test_refuses_to_start_on_a_file_that_is_not_a_database(tmp_path):
    (tmp_path / "instance").mkdir()
    (tmp_path / "node.sqlite3").write_bytes(b"\x00garbage\xff" * 4096)
    with pytest.raises(DamagedDatabaseError) as e:
        create_app(base_config(tmp_path))
    message = str(e.value)
    assert "damaged" in message and "backup" in message


def test_refuses_to_start_on_a_database_with_damaged_pages(template_db, tmp_path):
    """The header is fine, the pages behind it are not: PRAGMA quick_check finds it."""
    (tmp_path / "instance").mkdir()
    data = bytearray(template_db.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 65536
    assert len(data) >= 4 * page
    data[page:len(data)] = b"\xa5" * (len(data) - page)  # every page after the first
    (tmp_path / "node.sqlite3").write_bytes(bytes(data))
    with pytest.raises(DamagedDatabaseError) as e:
        create_app(base_config(tmp_path))
    assert "backup" in str(e.value)


def config_without_secret(tmp_path) -> dict:
    cfg = base_config(tmp_path)
    del cfg["SECRET_KEY"]
    return cfg


def test_refuses_to_start_without_the_instance_secret(tmp_path, template_db):
    shutil.copy(template_db, tmp_path / "node.sqlite3")
    with pytest.raises(InstanceError) as e:  # no instance folder at all
        create_app(config_without_secret(tmp_path))
    (tmp_path / "instance").mkdir()
    with pytest.raises(InstanceError) as e:  # the folder, but no secret in it
        create_app(config_without_secret(tmp_path))
    assert "secret_key" in str(e.value) and "missing" in str(e.value)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604], ids=["644", "640", "604"])
def test_refuses_to_start_when_the_secret_is_readable_by_others(tmp_path, template_db, mode):
    shutil.copy(template_db, tmp_path / "node.sqlite3")
    (tmp_path / "instance").mkdir()
    secret = tmp_path / "instance" / "secret_key"
    secret.write_text("k" * 64)
    secret.chmod(mode)
    with pytest.raises(InstanceError) as e:
        create_app(config_without_secret(tmp_path))
    assert "chmod 600" in str(e.value)
    secret.chmod(0o600)
    app = create_app(config_without_secret(tmp_path))
    assert app.config["SECRET_KEY"] == "k" * 64
    healthy(app.test_client().get("/healthz"), "booth")
