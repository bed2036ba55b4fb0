"""Declarative base, SQLite pragmas and the shared column types.

Rows that travel to the central server carry a node-generated UUIDv7 (``new_id``) and UTC
timestamps; integer keys never leave the node.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import uuid6
from sqlalchemy import DateTime, MetaData, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import DeclarativeBase, registry
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> uuid.UUID:
    """A time-ordered UUIDv7 generated on this node (the id a record keeps everywhere)."""
    return uuid.UUID(str(uuid6.uuid7()))


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in Python; naive UTC in SQLite, timestamptz in PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    registry = registry(metadata=MetaData(naming_convention=NAMING), type_annotation_map={datetime: UTCDateTime()})


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):  # pragma: no cover - trivial
    module = type(dbapi_connection).__module__
    if not module.startswith("sqlite3"):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class DamagedDatabaseError(RuntimeError):
    pass


def check_integrity(engine) -> None:
    """Refuse to serve a damaged SQLite file (a quick_check is cheap at start-up)."""
    if engine.dialect.name != "sqlite":
        return
    try:
        # connecting already runs the pragmas, which fail first on a file that is not a database
        with engine.connect() as conn:
            rows = [r[0] for r in conn.execute(text("PRAGMA quick_check")).fetchall()]
    except DatabaseError as exc:  # file is not a database, database disk image is malformed
        raise DamagedDatabaseError(f"The database file is damaged or not a database ({exc.orig}). "
                                   "Restore it from a backup; the node will not start on it.") from exc
    if rows != ["ok"]:
        raise DamagedDatabaseError("The database failed PRAGMA quick_check: " + "; ".join(rows[:5]) +
                                   ". Restore it from a backup; the node will not start on it.")


def get_by_id(session, model, raw):
    """The row whose UUID is ``raw`` (text from a URL or a form), or None — malformed ids included."""
    import uuid as _uuid

    try:
        return session.get(model, _uuid.UUID(str(raw or "")))
    except ValueError:
        return None
