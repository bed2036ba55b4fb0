"""Booth side of a push: what is not acknowledged yet, in batches, oldest first; the acknowledgements;
the retry loop; the reconciliation receipt (plain module: the CLI and the sync screen share it).

A record is *pending* while ``sync_acks`` has no row for it or its version grew after the acknowledged
one. The booth writes an acknowledgement only when central's answer arrives, in the same transaction
for the whole batch: a push killed at any moment leaves every record either acknowledged or pending.
While central works on one batch the booth writes the acknowledgements of the previous one and reads the
next (the request waits in a thread of its own), so the two sides work at the same time.
"""
from __future__ import annotations

import contextvars
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

import sqlalchemy as sa

from booth.sync import records as R

# records per push request. Each request costs central a fixed share (signature, commit, the dashboard summaries
# of the booth-days it touches), so fewer, larger requests push faster (bench/sync.py); 1,000 records of a demo
# day are at most 0.8 MB of JSON: well under central's 2 MB request limit, ~25 s at 256 kbit/s (timeout 30 s)
BATCH = 1000
RETRYABLE = {0, 408, 425, 429, 500, 502, 503, 504}


def _pending_filter(metadata, kind: R.Kind):
    table = metadata.tables[kind.table]
    acks = metadata.tables["sync_acks"]
    join = table.outerjoin(acks, sa.and_(acks.c.kind == kind.name, acks.c.record_id == table.c.id))
    if kind.versioned:
        cond = sa.or_(acks.c.record_id.is_(None),
                      sa.and_(acks.c.status != "pulled", acks.c.version < table.c.version))
    else:
        cond = acks.c.record_id.is_(None)
    return table, join, cond


def pending_counts(session, metadata) -> dict[str, int]:
    out = {}
    for kind in R.KINDS:
        table, join, cond = _pending_filter(metadata, kind)
        out[kind.name] = session.execute(sa.select(sa.func.count()).select_from(join).where(cond)).scalar_one()
    return out


_PLAIN = (sa.String, sa.Integer, sa.Boolean, sa.Float, sa.JSON)   # their values are already JSON


def _encoder(metadata, kind: R.Kind):
    """``R.encode`` for one kind's row tuples: ``encode_value`` only where a column holds ids, times or days."""
    cols = R.columns(metadata, kind)
    names = [c.name for c in cols]
    plain = [isinstance(c.type, _PLAIN) for c in cols]
    encode_value = R.encode_value

    def encode(row) -> dict:
        return {n: v if p else encode_value(v) for n, p, v in zip(names, plain, row)}

    return cols, names.index("id"), encode


def next_batch(session, metadata, cursors: dict, size: int = BATCH) -> list[dict]:
    """Up to ``size`` pending records, kinds in push order, ids in order within a kind. ``cursors`` (kind →
    last id sent in this push) makes one pass: a deferred record waits for the next push."""
    batch: list[dict] = []
    for kind in R.KINDS:
        if len(batch) >= size:
            break
        if cursors.get(kind.name) == "done":
            continue
        table, join, cond = _pending_filter(metadata, kind)
        cols, id_at, encode = _encoder(metadata, kind)
        q = sa.select(*cols).select_from(join).where(cond)
        if cursors.get(kind.name) is not None:
            q = q.where(table.c.id > cursors[kind.name])
        want = size - len(batch)
        rows = session.execute(q.order_by(table.c.id).limit(want)).all()
        batch.extend({"kind": kind.name, "row": encode(r)} for r in rows)
        if rows:
            cursors[kind.name] = rows[-1][id_at]
        if len(rows) < want:
            cursors[kind.name] = "done"
    return batch


def record_reply(session, metadata, reply: dict, *, now: datetime) -> dict:
    """Write central's acknowledgements (one transaction with the caller's commit). Returns counts."""
    acks = metadata.tables["sync_acks"]
    rows = []
    for kind, rid, version, status in reply.get("acked", []):
        rows.append({"kind": kind, "record_id": uuid.UUID(rid), "version": int(version), "status": "acked", "at": now})
    for kind, rid, version, reason in reply.get("quarantined", []):
        # conflict: the id is ours at central (an older copy is there); foreign/integrity: it is not
        rows.append({"kind": kind, "record_id": uuid.UUID(rid), "version": int(version),
                     "status": "conflict" if reason == "conflict" else "refused", "at": now})
    if rows:
        by_kind: dict[str, list] = {}
        for r in rows:
            by_kind.setdefault(r["kind"], []).append(r["record_id"])
        for kind, ids in by_kind.items():
            session.execute(acks.delete().where(acks.c.kind == kind, acks.c.record_id.in_(ids)))
        session.execute(acks.insert(), rows)
    return {"acked": len(reply.get("acked", [])), "quarantined": len(reply.get("quarantined", [])),
            "deferred": len(reply.get("deferred", []))}


@dataclass
class PushReport:
    total: int = 0          # pending when the push started
    sent: int = 0
    acked: int = 0
    quarantined: int = 0
    deferred: int = 0
    batches: int = 0
    retries: int = 0
    clock_offset_s: int = 0
    resigned: bool = False
    by_status: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class PushFailed(Exception):
    def __init__(self, message: str, report: PushReport):
        super().__init__(message)
        self.report = report


def backoff(attempt: int, rng: random.Random, base: float = 0.5, cap: float = 30.0) -> float:
    """Exponential back-off with jitter: half to all of min(cap, base·2^attempt) seconds."""
    ceiling = min(cap, base * (2 ** attempt))
    return ceiling * (0.5 + rng.random() / 2)


def send(transport, endpoint: str, payload: dict, *, sleep: Callable[[float], None], rng: random.Random,
         attempts: int, report: PushReport | None = None):
    """POST with retries: no answer, a 5xx, 429, or a replay refusal (a duplicated request answered
    twice) are tried again with a fresh signature, after a back-off; any other refusal is final."""
    from booth.sync.client import SyncFailed

    for attempt in range(attempts):
        try:
            return transport.post(endpoint, payload)
        except SyncFailed as e:
            retry = e.status in RETRYABLE or (e.status == 401 and e.body.get("error") == "replay")
            if not retry or attempt == attempts - 1:
                raise
            if report is not None:
                report.retries += 1
            sleep(backoff(attempt, rng))
    raise AssertionError("unreachable")


def push(session, metadata, transport, *, now: Callable[[], datetime], batch_size: int = BATCH,
         sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None, attempts: int = 8,
         progress: Callable[[PushReport], None] | None = None) -> PushReport:
    """Send every pending record, batch after batch; each batch's acknowledgements are committed in one
    transaction, so an interrupted push resumes where it stopped. One request at a time: while it is
    out (in a thread, so the wait costs the booth nothing), the acknowledgements of the previous batch
    are written and the next batch is read."""
    from booth.sync.client import SyncFailed

    rng = rng or random.Random()
    report = PushReport(total=sum(pending_counts(session, metadata).values()))
    session.rollback()
    cursors: dict = {}
    if progress:
        progress(report)
    batch = next_batch(session, metadata, cursors, batch_size)
    session.rollback()   # no read transaction held while waiting for the network
    answered = None      # (the previous batch, central's reply): its acknowledgements are not written yet
    while batch or answered:
        reply = None
        following = []
        if batch:
            # read the next batch first, so this one can say whether it is the last (central then recomputes
            # its dashboard summaries once, not after every batch)
            following = next_batch(session, metadata, cursors, batch_size)
            session.rollback()
            reply = _in_background(send, transport, "push", {"records": batch, "last": not following},
                                   sleep=sleep, rng=rng, attempts=attempts, report=report)
        if answered:
            _acknowledge(session, metadata, *answered, now=now(), report=report, progress=progress)
            answered = None
        if reply is None:
            break
        try:
            answered = (batch, reply())
        except SyncFailed as e:
            raise PushFailed(str(e), report) from e
        batch = following
    return report


def _in_background(fn, *args, **kwargs) -> Callable[[], object]:
    """Start ``fn`` in a daemon thread, in the caller's context (the transport may read the app's clock);
    returns a function that waits for its result or raises its exception. A daemon, so an interrupted
    push does not wait for the request in flight."""
    context = contextvars.copy_context()
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = context.run(fn, *args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - handed to the waiting caller
            outcome["error"] = e

    thread = threading.Thread(target=run, name="sync-push", daemon=True)
    thread.start()

    def result():
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    return result


def _acknowledge(session, metadata, batch, reply, *, now, report: PushReport, progress) -> None:
    counts = record_reply(session, metadata, reply.body, now=now)
    session.commit()
    report.batches += 1
    report.sent += len(batch)
    report.acked += counts["acked"]
    report.quarantined += counts["quarantined"]
    report.deferred += counts["deferred"]
    report.clock_offset_s, report.resigned = reply.clock_offset_s, report.resigned or reply.resigned
    for group in ("acked", "quarantined", "deferred"):
        for item in reply.body.get(group, []):
            report.by_status[item[3]] = report.by_status.get(item[3], 0) + 1
    if progress:
        progress(report)


# ---------------------------------------------------------------- reconciliation receipt

def local_receipt(session, metadata) -> dict:
    """Per kind: rows held here, records acknowledged, and the digest of the acknowledged ids (those
    central keeps as this node's: acked, or in conflict with an older copy it holds), purged ones included."""
    acks = metadata.tables["sync_acks"]
    purged = {k: (n, int(acc, 16)) for k, n, acc in session.execute(sa.select(metadata.tables["sync_purged"]))}
    out = {}
    for kind in R.KINDS:
        table = metadata.tables[kind.table]
        held = session.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        pulled = session.execute(sa.select(sa.func.count()).select_from(acks)
                                 .where(acks.c.kind == kind.name, acks.c.status == "pulled")).scalar_one()
        ids = session.execute(sa.select(acks.c.record_id).where(
            acks.c.kind == kind.name, acks.c.status.in_(("acked", "conflict")))).scalars().all()
        gone, acc = purged.get(kind.name, (0, 0))
        out[kind.name] = {"held": held - pulled, "acknowledged": len(ids) + gone, "purged": gone,
                          "digest": R.ids_digest(ids, acc)}
    return out


def compare(local: dict, central: dict) -> dict:
    """The receipt: local counts beside central's count and digest of this node's ids, per kind."""
    rows, ok = [], True
    for kind in R.KINDS:
        mine = local.get(kind.name, {"held": 0, "acknowledged": 0, "digest": R.ids_digest([])})
        theirs = central.get(kind.name, {"count": 0, "digest": R.ids_digest([])})
        match = mine["acknowledged"] == theirs["count"] and mine["digest"] == theirs["digest"]
        ok = ok and match
        rows.append({"kind": kind.name, "held": mine["held"], "acknowledged": mine["acknowledged"],
                     "purged": mine.get("purged", 0),
                     "central_count": theirs["count"], "digest": theirs["digest"],
                     "local_digest": mine["digest"], "match": match})
    return {"kinds": rows, "match": ok}
