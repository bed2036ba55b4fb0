"""Booth: purge the visit data central has acknowledged, so a lost laptop holds as little as possible.

Only visits that are closed and whose every record (consents, devices, results, counseling, referrals
and their linkage copy, the stock movements that name them) central acknowledged at its current version
are purged; nothing else is ever deleted, and nothing at all while audit entries are still unsent (they
carry the full ids to central first). Deleting runs with SQLite's ``secure_delete`` (freed bytes are
zeroed) and ends with a WAL checkpoint that truncates the log, so the bytes are gone from the files.

What stays behind, without the ids: stock movements keep their quantities but no longer name the visit
or device; audit entries keep a keyed, non-reversible form of the purged ids (HMAC-SHA256 under a key
derived from the node's secret, ``h:`` + 32 hex); the receipt keeps per kind the count of purged records
and the XOR of their id hashes, so it still matches central's digest. The purge itself is audited.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from booth.audit import services as audit
from booth.sync import records as R


class PurgeRefused(RuntimeError):
    pass


@dataclass
class PurgePlan:
    visits: list
    blocked: int          # closed visits with something not acknowledged yet
    open_visits: int


def audit_key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), b"vinculo audit purge v1", hashlib.sha256).digest()


def hashed_id(key: bytes, rid) -> str:
    return "h:" + hmac.new(key, str(rid).encode(), hashlib.sha256).hexdigest()[:32]


def _not_current(metadata, kind_name: str, table, ok=("acked",)):
    """Rows of ``table`` that central has not acknowledged at their current version."""
    acks = metadata.tables["sync_acks"]
    j = table.outerjoin(acks, sa.and_(acks.c.kind == kind_name, acks.c.record_id == table.c.id))
    cond = sa.or_(acks.c.record_id.is_(None), acks.c.status.not_in(ok))
    if "version" in table.c:
        cond = sa.or_(cond, acks.c.version < table.c.version)
    return j, cond


def plan(session, metadata) -> PurgePlan:
    t = metadata.tables
    v, s, r = t["visits"], t["screenings"], t["referrals"]
    closed = set(session.execute(sa.select(v.c.id).where(v.c.closed_at.is_not(None))).scalars())
    open_n = session.execute(sa.select(sa.func.count()).select_from(v).where(v.c.closed_at.is_(None))).scalar_one()
    blocked: set = set()
    j, cond = _not_current(metadata, "visit", v)
    blocked |= set(session.execute(sa.select(v.c.id).select_from(j).where(cond)).scalars())
    for kind, table, visit_col, via in (
            ("consent", t["consents"], t["consents"].c.visit_id, None),
            ("screening", s, s.c.visit_id, None),
            ("counseling", t["counseling"], t["counseling"].c.visit_id, None),
            ("referral", r, r.c.visit_id, None),
            ("stock_movement", t["stock_movements"], t["stock_movements"].c.visit_id, None),
            ("screening_result", t["screening_results"], s.c.visit_id, (s, t["screening_results"].c.screening_id == s.c.id)),
            ("linkage", t["linkages"], r.c.visit_id, (r, t["linkages"].c.referral_id == r.c.id))):
        j, cond = _not_current(metadata, kind, table, ok=("acked", "pulled") if kind == "linkage" else ("acked",))
        if via is not None:
            j = j.join(via[0], via[1])
        blocked |= set(session.execute(sa.select(visit_col).select_from(j).where(cond, visit_col.is_not(None)))
                       .scalars())
    ready = sorted(closed - blocked)
    return PurgePlan(visits=ready, blocked=len(closed & blocked), open_visits=open_n)


def purge(session, metadata, *, secret_key: str, now: datetime, actor=None, limit_chunk: int = 400) -> dict:
    """Purge what ``plan`` allows; returns counts per kind. The caller commits, then calls ``scrub``."""
    t = metadata.tables
    acks = t["sync_acks"]
    j, cond = _not_current(metadata, "audit_entry", t["audit_entries"])
    if session.execute(sa.select(sa.func.count()).select_from(j).where(cond)).scalar_one():
        raise PurgeRefused("Some audit entries have not reached central yet: push first, then purge.")
    p = plan(session, metadata)
    session.connection().exec_driver_sql("PRAGMA secure_delete=ON")
    key = audit_key(secret_key)
    counts = {k: 0 for k in R.VISIT_KINDS}
    gone: dict[str, list] = {k: [] for k in R.VISIT_KINDS}
    for start in range(0, len(p.visits), limit_chunk):
        vids = p.visits[start:start + limit_chunk]
        sids = list(session.execute(sa.select(t["screenings"].c.id).where(t["screenings"].c.visit_id.in_(vids))).scalars())
        rids = list(session.execute(sa.select(t["referrals"].c.id).where(t["referrals"].c.visit_id.in_(vids))).scalars())
        ids = {
            "visit": vids,
            "consent": list(session.execute(sa.select(t["consents"].c.id).where(t["consents"].c.visit_id.in_(vids))).scalars()),
            "screening": sids,
            "screening_result": list(session.execute(sa.select(t["screening_results"].c.id)
                                                     .where(t["screening_results"].c.screening_id.in_(sids))).scalars()),
            "counseling": list(session.execute(sa.select(t["counseling"].c.id)
                                               .where(t["counseling"].c.visit_id.in_(vids))).scalars()),
            "referral": rids,
            "linkage": list(session.execute(sa.select(t["linkages"].c.id).where(t["linkages"].c.referral_id.in_(rids))).scalars()),
        }
        sm = t["stock_movements"]
        session.execute(sm.update().where(sa.or_(sm.c.visit_id.in_(vids), sm.c.screening_id.in_(sids)))
                        .values(visit_id=None, screening_id=None))   # no version bump: central keeps the link
        pa = t["provisional_arrivals"]
        session.execute(pa.delete().where(pa.c.matched_referral_id.in_(rids)))
        for kind, table, col in (("linkage", t["linkages"], t["linkages"].c.id),
                                 ("referral", t["referrals"], t["referrals"].c.id),
                                 ("screening_result", t["screening_results"], t["screening_results"].c.id),
                                 ("screening", t["screenings"], t["screenings"].c.id),
                                 ("counseling", t["counseling"], t["counseling"].c.id),
                                 ("consent", t["consents"], t["consents"].c.id),
                                 ("visit", t["visits"], t["visits"].c.id)):
            if ids[kind]:
                if kind in ("counseling", "consent", "screening_result"):
                    # corrections point at the row they replace: clear those links first
                    session.execute(table.update().where(col.in_(ids[kind])).values(replaces_id=None))
                session.execute(table.delete().where(col.in_(ids[kind])))
                counts[kind] += len(ids[kind])
                gone[kind].extend(ids[kind])
        every = [i for k in ids for i in ids[k]]
        texts = [str(i) for i in every]
        fs = t["form_submissions"]
        session.execute(fs.delete().where(fs.c.record_id.in_(texts)))
        au = t["audit_entries"]
        if texts:   # one statement for the chunk (executemany), not one per id
            session.execute(au.update().where(au.c.record_id == sa.bindparam("old"))
                            .values(record_id=sa.bindparam("new")),
                            [{"old": rid, "new": hashed_id(key, rid)} for rid in texts])
    _account(session, metadata, gone)
    for kind, rows in gone.items():
        for start in range(0, len(rows), 500):
            session.execute(acks.delete().where(acks.c.kind == kind, acks.c.record_id.in_(rows[start:start + 500])))
    audit.record(session, "sync.purge", now=now, actor=actor)
    return {"purged": counts, "blocked_visits": p.blocked, "open_visits": p.open_visits}


def _account(session, metadata, gone: dict) -> None:
    """Fold the purged ids of each kind into the receipt's running count and XOR (acknowledged ones only)."""
    sp, acks = metadata.tables["sync_purged"], metadata.tables["sync_acks"]
    for kind, rows in gone.items():
        if not rows:
            continue
        counted = []
        for start in range(0, len(rows), 500):
            counted += session.execute(sa.select(acks.c.record_id).where(
                acks.c.kind == kind, acks.c.record_id.in_(rows[start:start + 500]),
                acks.c.status.in_(("acked", "conflict")))).scalars().all()
        current = session.execute(sa.select(sp.c.count, sp.c.acc).where(sp.c.kind == kind)).first()
        n, acc = (current[0], int(current[1], 16)) if current else (0, 0)
        digest = R.ids_digest(counted, acc)
        if current:
            session.execute(sp.update().where(sp.c.kind == kind).values(count=n + len(counted), acc=digest))
        else:
            session.execute(sp.insert().values(kind=kind, count=len(counted), acc=digest))


def scrub(engine) -> None:
    """After the commit: move every page out of the WAL and truncate it (old page images held the ids)."""
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

