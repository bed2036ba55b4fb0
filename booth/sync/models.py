"""Central's view of the booth nodes it syncs with (central only; the tables exist on a booth but stay empty).

A booth keeps its own node id and secret in ``instance/sync.json`` (0600), never in its database.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booth.db import new_id
from booth.events.models import Event
from booth.extensions import db


class SyncNode(db.Model):
    """A booth node registered at central: a one-time enrollment code, then a per-node secret."""

    __tablename__ = "sync_nodes"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(80))
    event_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("events.id"))
    # SHA-256 of the one-time enrollment code (the code itself is printed once)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    code_expires_at: Mapped[datetime]
    code_used_at: Mapped[datetime | None]
    # hex of the 256-bit HMAC key shared with the node, issued once at enrollment and never shown again
    secret: Mapped[str | None] = mapped_column(String(64))
    # hex of the node's referral key, so central can verify the QR tokens the booth prints
    referral_key: Mapped[str | None] = mapped_column(String(64))
    enrolled_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # node clock − central clock, in seconds, as last measured on a signed request
    clock_offset_s: Mapped[int | None]
    last_seen_at: Mapped[datetime | None]
    created_at: Mapped[datetime]

    event: Mapped[Event | None] = relationship()

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "enrolled" if self.enrolled_at is not None else "registered"


class SyncNonce(db.Model):
    """Nonces of signed requests seen in the last minutes (a replay is refused); older ones are purged."""

    __tablename__ = "sync_nonces"
    node_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sync_nodes.id", ondelete="CASCADE"), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime]

    __table_args__ = (Index("ix_sync_nonces_seen_at", "seen_at"),)
