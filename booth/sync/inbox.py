"""Booth side of a pull: central's catalogue and the linkage of this node's referrals (plain module).

* Catalogue rows (kit products; destinations and routing rules that central made) are inserted or, when
  central's version is newer, replaced; they are marked ``pulled`` so a push never sends them back. A
  destination or rule made on this booth is the booth's own: a pull never changes it.
* Linkage and matched provisional arrivals of this node's referrals are read-only copies of central's
  records: a newer version replaces the local one (a referral purged here is skipped).
"""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from booth.sync import records as R


class PullError(ValueError):
    pass


def apply_pull(session, metadata, payload: dict, *, now: datetime) -> dict:
    if not isinstance(payload, dict):
        raise PullError("central's answer is not a JSON object")
    decs = R.decoders(metadata, R.PULL_KINDS)
    acks = metadata.tables["sync_acks"]
    counts = {}
    for kind in R.PULL_KINDS:
        table = metadata.tables[kind.table]
        rows = payload.get(kind.name, [])
        if not isinstance(rows, list):
            raise PullError(f"{kind.name}: a list expected")
        try:
            rows = [decs[kind.name].decode(r) for r in rows]
        except R.RecordError as e:
            raise PullError(f"{kind.name}: {e}") from None
        ids = [r["id"] for r in rows]
        local = dict(session.execute(sa.select(table.c.id, table.c.version).where(table.c.id.in_(ids))).all())
        marks = dict(session.execute(sa.select(acks.c.record_id, acks.c.status)
                                     .where(acks.c.kind == kind.name, acks.c.record_id.in_(ids))).all())
        parents = _parents(session, metadata, kind, rows)
        changed = 0
        for row in rows:
            rid = row["id"]
            if parents is not None and row[parents[0]] not in parents[1]:
                continue   # a referral this node no longer holds (purged)
            if rid in local:
                own = marks.get(rid) in ("acked", "conflict", "refused") or (
                    marks.get(rid) is None and kind.name in ("destination", "routing_rule"))
                if own and kind.name in R.CATALOGUE:
                    continue   # the booth's own destination or rule: a pull never changes it
                if local[rid] >= R.version_of(row):
                    continue
                session.execute(table.update().where(table.c.id == rid).values(
                    {k: v for k, v in row.items() if k != "id"}))
            else:
                session.execute(table.insert().values(row))
            status = "acked" if marks.get(rid) in ("acked", "conflict") else "pulled"
            session.execute(acks.delete().where(acks.c.kind == kind.name, acks.c.record_id == rid))
            session.execute(acks.insert().values(kind=kind.name, record_id=rid, version=R.version_of(row),
                                                 status=status, at=now))
            changed += 1
        counts[kind.name] = changed
    return counts


def _parents(session, metadata, kind, rows):
    """For linkage and provisional arrivals: (column, ids of referrals held here)."""
    if kind.name not in ("linkage", "provisional_arrival"):
        return None
    col = "referral_id" if kind.name == "linkage" else "matched_referral_id"
    refs = metadata.tables["referrals"]
    wanted = {r[col] for r in rows if r[col] is not None}
    held = set(session.execute(sa.select(refs.c.id).where(refs.c.id.in_(wanted))).scalars()) if wanted else set()
    return col, held
