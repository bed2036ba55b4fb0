"""Reads about sync nodes (central)."""
from __future__ import annotations

from sqlalchemy import select

from booth.db import get_by_id
from booth.sync.models import SyncNode


def nodes(session) -> list[SyncNode]:
    return list(session.scalars(select(SyncNode).order_by(SyncNode.created_at, SyncNode.id)))


def node(session, raw_id) -> SyncNode | None:
    return get_by_id(session, SyncNode, raw_id)


def enrolled_referral_keys(session) -> list[bytes]:
    """The referral keys of every enrolled, non-revoked node: central verifies their QR tokens with them."""
    rows = session.scalars(select(SyncNode.referral_key).where(SyncNode.enrolled_at.is_not(None),
                                                               SyncNode.revoked_at.is_(None),
                                                               SyncNode.referral_key.is_not(None)))
    return [bytes.fromhex(k) for k in rows]
