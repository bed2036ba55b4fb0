"""Double taps create one record, not two.

Every form that creates something carries a random ``nonce`` (rendered with the form). The first
POST with a nonce stores it with the id of what it created; a second POST with the same nonce gets
that same record back instead of a new one. Nonces live on the node only.
"""
from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from booth.extensions import db


class FormSubmission(db.Model):
    __tablename__ = "form_submissions"
    nonce: Mapped[str] = mapped_column(String(48), primary_key=True)
    action: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime]


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def seen(session, nonce: str | None, action: str) -> str | None:
    """The record id a previous submission with this nonce created, if any."""
    if not nonce:
        return None
    row = session.get(FormSubmission, nonce[:48])
    if row is None or row.action != action:
        return None
    return row.record_id


def remember(session, nonce: str | None, action: str, record_id, now: datetime) -> None:
    if not nonce:
        return
    session.add(FormSubmission(nonce=nonce[:48], action=action, record_id=str(record_id), created_at=now))
    session.flush()
