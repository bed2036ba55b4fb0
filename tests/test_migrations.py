"""Migrations: `flask db upgrade` from empty on SQLite and PostgreSQL gives the schema the models
describe; downgrade to base and upgrade again; the audit log's append-only triggers on both."""
from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Uuid, bindparam, inspect, text
from sqlalchemy.exc import DatabaseError

from booth import create_app
from booth.audit import services as audit
from booth.extensions import db
from tests.conftest import base_config

NOW = datetime(2026, 6, 27, 16, 0, tzinfo=timezone.utc)


@pytest.fixture
def sqlite_app(tmp_path):
    (tmp_path / "instance").mkdir()
    app = create_app(base_config(tmp_path, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'fresh.sqlite3'}"))
    assert not (tmp_path / "fresh.sqlite3").exists() or (tmp_path / "fresh.sqlite3").stat().st_size == 0
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def postgres_app(tmp_path):
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("TEST_DATABASE_URL not set: the PostgreSQL migration test needs it")
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(url)
    name = f"vinculo_migrations_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    (tmp_path / "instance").mkdir()
    app = create_app(base_config(tmp_path, ROLE="central",
                                 SQLALCHEMY_DATABASE_URI=base.set(database=name).render_as_string(hide_password=False)))
    yield app
    with app.app_context():
        db.engine.dispose()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_app(request):
    return request.getfixturevalue("sqlite_app" if request.param == "sqlite" else "postgres_app")


def flask_db(app, *args):
    result = app.test_cli_runner().invoke(args=["db", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def tables(app) -> set[str]:
    with app.app_context():
        return set(inspect(db.engine).get_table_names())


def schema_differences(app) -> list:
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(context, db.metadata)


def head_revision(app) -> str:
    from alembic.script import ScriptDirectory

    with app.app_context():
        config = app.extensions["migrate"].migrate.get_config(app.extensions["migrate"].directory)
        return ScriptDirectory.from_config(config).get_current_head()


def test_upgrade_from_empty_matches_the_models(fresh_app):
    assert tables(fresh_app) == set()
    flask_db(fresh_app, "upgrade")
    model_tables = set(db.metadata.tables)
    assert tables(fresh_app) == model_tables | {"alembic_version"}
    assert schema_differences(fresh_app) == []
    # healthz reports the revision now in place
    body = fresh_app.test_client().get("/healthz").get_json()
    assert body["db"] == "ok" and body["schema"] == head_revision(fresh_app)
    # the comparison does notice a schema that drifts from the models
    with fresh_app.app_context():
        db.session.execute(text("DROP INDEX ix_audit_entries_at"))
        db.session.commit()
    assert [d[0] for d in schema_differences(fresh_app)] == ["add_index"]


def test_downgrade_to_base_and_upgrade_again(fresh_app):
    flask_db(fresh_app, "upgrade")
    flask_db(fresh_app, "downgrade", "base")
    assert tables(fresh_app) <= {"alembic_version"}
    with fresh_app.app_context():
        assert db.session.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 0
        if db.engine.dialect.name == "sqlite":
            triggers = db.session.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).all()
        else:
            triggers = db.session.execute(text("SELECT proname FROM pg_proc WHERE proname = 'audit_entries_guard'")).all()
        assert triggers == []
    flask_db(fresh_app, "upgrade")
    assert schema_differences(fresh_app) == []
    assert_audit_is_append_only(fresh_app)


def by_id(sql: str):
    return text(sql).bindparams(bindparam("id", type_=Uuid()))


def assert_audit_is_append_only(app) -> None:
    with app.app_context():
        entry_id = audit.record(db.session, "staff.add", now=NOW, staff_code="C01", record_id=uuid.uuid4()).id
        db.session.commit()
        params = {"id": entry_id}

        for statement in ("UPDATE audit_entries SET action = 'staff.remove' WHERE id = :id",
                          "UPDATE audit_entries SET staff_code = 'X99' WHERE id = :id",
                          "UPDATE audit_entries SET record_id = 'h:abc', action = 'x' WHERE id = :id",
                          "DELETE FROM audit_entries WHERE id = :id"):
            with pytest.raises(DatabaseError, match="never (edited|deleted)"):
                db.session.execute(by_id(statement), params)
            db.session.rollback()

        # a purge replaces the record id by its keyed hash: allowed
        result = db.session.execute(by_id("UPDATE audit_entries SET record_id = 'hmac:3f2a' WHERE id = :id"), params)
        assert result.rowcount == 1
        db.session.commit()
        row = db.session.execute(text("SELECT action, record_id FROM audit_entries")).one()
        assert tuple(row) == ("staff.add", "hmac:3f2a")


def test_audit_entries_are_append_only(fresh_app):
    flask_db(fresh_app, "upgrade")
    assert_audit_is_append_only(fresh_app)
