"""Central's view of the booth nodes it syncs with (central only; the tables exist on a booth but stay empty).

A booth keeps its own node id and secret in ``instance/sync.json`` (0600), never in its database.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, UniqueConstraint
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


class SyncRecord(db.Model):
    """Central's ledger of pushed records: which node owns each (kind, id). The row itself lives in the
    table of its kind; ownership decides who may change it (another node's push of the same id is refused
    into quarantine) and gives the receipt its count and digest of ids per node and kind."""

    __tablename__ = "sync_records"
    kind: Mapped[str] = mapped_column(String(24), primary_key=True)
    record_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    node_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sync_nodes.id"))
    received_at: Mapped[datetime]

    __table_args__ = (Index("ix_sync_records_node_kind", "node_id", "kind"),)


class SyncQuarantine(db.Model):
    """A pushed record central did not apply: the same id and version with different content (``conflict``),
    an id owned by another node or by central (``foreign``), or a row the database refused (``integrity``).
    The central coordinator resolves it: take the incoming copy or keep central's."""

    __tablename__ = "sync_quarantine"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    node_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sync_nodes.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    record_id: Mapped[uuid.UUID]
    version: Mapped[int]
    digest: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict] = mapped_column(JSON)
    received_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(16))
    resolution: Mapped[str | None] = mapped_column(String(16))   # applied | kept

    node: Mapped[SyncNode] = relationship()

    __table_args__ = (UniqueConstraint("node_id", "kind", "record_id", "version", "digest"),)


class SyncAck(db.Model):
    """Booth side: what central acknowledged of each record (its version), or that the record came from
    central (``pulled``: never pushed back) or sits in central's quarantine (``quarantined``). A record is
    pending while it has no row here or its version grew after the acknowledged one."""

    __tablename__ = "sync_acks"
    kind: Mapped[str] = mapped_column(String(24), primary_key=True)
    record_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    version: Mapped[int]
    status: Mapped[str] = mapped_column(String(12))   # acked | quarantined | pulled
    at: Mapped[datetime]


class NodeStaff(db.Model):
    """Central: a booth's staff member as a reference only (node-generated id, code, roles). No PIN hash,
    no alias; never a central sign-in account (those are ``staff``). Shifts at central point here."""

    __tablename__ = "node_staff"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16))
    roles: Mapped[str] = mapped_column(String(80))
    clinical_lead: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SyncPurged(db.Model):
    """Booth side: what a purge removed, per kind, so the receipt still adds up without keeping the ids:
    how many acknowledged records were purged and the XOR of their id hashes (see ``records.ids_digest``)."""

    __tablename__ = "sync_purged"
    kind: Mapped[str] = mapped_column(String(24), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)
    acc: Mapped[str] = mapped_column(String(64))
