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
import json
import random
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

import sqlalchemy as sa

from booth.db import UTCDateTime
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


# ---------------------------------------------------------------- records as JSON text, written by SQLite

def _sqlite_json(col: sa.Column, ref: str) -> str | None:
    """An SQLite expression giving the column's value as ``R.encode`` would put it in JSON (a value central
    decodes to the same thing), or None when only Python can (a float keeps its exact repr that way).
    How the booth stores them: ids as 32 hex digits, times as naive UTC text, booleans as 0/1, JSON as text."""
    t = col.type
    if isinstance(t, sa.Uuid):
        return (f"substr({ref},1,8)||'-'||substr({ref},9,4)||'-'||substr({ref},13,4)||'-'||substr({ref},17,4)"
                f"||'-'||substr({ref},21)")
    if isinstance(t, UTCDateTime):
        return f"replace({ref},' ','T')||'+00:00'"
    if isinstance(t, sa.Boolean):
        return f"json(CASE {ref} WHEN 1 THEN 'true' WHEN 0 THEN 'false' END)"
    if isinstance(t, sa.JSON):
        return f"json({ref})"
    if isinstance(t, (sa.Date, sa.String, sa.Integer)):   # days as YYYY-MM-DD text, as they are
        return ref
    return None


_JSON_SQL: dict = {}


def _json_sql(conn, metadata, kind: R.Kind) -> tuple[str, str] | None:
    """The pending-records query of a kind that has SQLite write each item as JSON text
    (``{"kind": …, "row": {…}}``): without and with the cursor condition. None: the kind needs Python."""
    key = (id(metadata), kind.name)
    if key not in _JSON_SQL:
        _JSON_SQL[key] = None
        cols = R.columns(metadata, kind)
        quote = conn.dialect.identifier_preparer.quote
        exprs = [_sqlite_json(c, "t." + quote(c.name)) for c in cols]
        if conn.dialect.name == "sqlite" and None not in exprs and len(cols) <= 60:
            pairs = ", ".join(f"'{c.name}', {e}" for c, e in zip(cols, exprs))
            table = metadata.tables[kind.table]
            versioned = "OR (a.status != 'pulled' AND a.version < t.version)" if kind.versioned else ""
            base = (f"SELECT t.id, json_object('kind', '{kind.name}', 'row', json_object({pairs})) "
                    f"FROM {quote(table.name)} AS t LEFT OUTER JOIN sync_acks AS a "
                    f"ON a.kind = '{kind.name}' AND a.record_id = t.id "
                    f"WHERE (a.record_id IS NULL {versioned})")
            _JSON_SQL[key] = (base + " ORDER BY t.id LIMIT ?", base + " AND t.id > ? ORDER BY t.id LIMIT ?")
    return _JSON_SQL[key]


def next_batch_json(session, metadata, cursors: dict, size: int = BATCH) -> list[str]:
    """``next_batch`` with each item as its JSON text, for the request body: on the booth's SQLite the
    database writes it (3–4 times faster than Python reading, converting and dumping every value: 0.4 s
    instead of 1.4 s for a 2,000-visit day); a kind it cannot write (a float column) is encoded by Python."""
    out: list[str] = []
    conn = session.connection()
    for kind in R.KINDS:
        if len(out) >= size:
            break
        if cursors.get(kind.name) == "done":
            continue
        want = size - len(out)
        sql = _json_sql(conn, metadata, kind)
        cursor = cursors.get(kind.name)
        try:
            rows = None if sql is None else (conn.exec_driver_sql(sql[0], (want,)) if cursor is None else
                                             conn.exec_driver_sql(sql[1], (cursor, want))).all()
        except sa.exc.OperationalError:   # a JSON column SQLite cannot read back (a NaN in it): Python can
            rows = None
        if rows is None:
            part = _batch_of_kind(session, metadata, kind, cursors, want)
            out.extend(json.dumps(item, ensure_ascii=False, separators=(",", ":")) for item in part)
            continue
        out.extend(text for _id, text in rows)
        if rows:
            cursors[kind.name] = rows[-1][0]
        if len(rows) < want:
            cursors[kind.name] = "done"
    return out


def _batch_of_kind(session, metadata, kind: R.Kind, cursors: dict, want: int) -> list[dict]:
    table, join, cond = _pending_filter(metadata, kind)
    cols, id_at, encode = _encoder(metadata, kind)
    q = sa.select(*cols).select_from(join).where(cond)
    if cursors.get(kind.name) is not None:
        q = q.where(table.c.id > cursors[kind.name])
    rows = session.execute(q.order_by(table.c.id).limit(want)).all()
    if rows:
        cursors[kind.name] = rows[-1][id_at]
    if len(rows) < want:
        cursors[kind.name] = "done"
    return [{"kind": kind.name, "row": encode(r)} for r in rows]


def next_batch(session, metadata, cursors: dict, size: int = BATCH) -> list[dict]:
    """Up to ``size`` pending records, kinds in push order, ids in order within a kind. ``cursors`` (kind →
    last id sent in this push) makes one pass: a deferred record waits for the next push."""
    batch: list[dict] = []
    for kind in R.KINDS:
        if len(batch) >= size:
            break
        if cursors.get(kind.name) == "done":
            continue
        batch.extend(_batch_of_kind(session, metadata, kind, cursors, size - len(batch)))
    return batch


def record_reply(session, metadata, reply: dict, *, now: datetime) -> dict:
    """Write central's acknowledgements (one transaction with the caller's commit). Returns counts."""
    acks = metadata.tables["sync_acks"]
    rows = [(kind, uuid.UUID(rid), int(version), "acked") for kind, rid, version, _status in reply.get("acked", [])]
    # conflict: the id is ours at central (an older copy is there); foreign/integrity: it is not
    rows += [(kind, uuid.UUID(rid), int(version), "conflict" if reason == "conflict" else "refused")
             for kind, rid, version, reason in reply.get("quarantined", [])]
    if rows:
        # one upsert per record, values as SQLAlchemy stores them on the booth's SQLite (ids as 32 hex digits,
        # times as naive UTC text): a thousand acknowledgements a batch without a bind conversion per value
        conn = session.connection()
        at = acks.c.at.type.bind_processor(conn.dialect)(now)
        uid = acks.c.record_id.type.bind_processor(conn.dialect)
        conn.exec_driver_sql(
            "INSERT INTO sync_acks (kind, record_id, version, status, at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (kind, record_id) DO UPDATE SET version = excluded.version, "
            "status = excluded.status, at = excluded.at",
            [(kind, uid(rid), version, status, at) for kind, rid, version, status in rows])
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
    passes: int = 0         # over the outbox: a second one sends what the first left deferred
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


def send(transport, endpoint: str, payload: dict | bytes, *, sleep: Callable[[float], None], rng: random.Random,
         attempts: int, report: PushReport | None = None, stop: threading.Event | None = None):
    """POST with retries: no answer, a 5xx, 429, or a replay refusal (a duplicated request answered
    twice) are tried again with a fresh signature, after a back-off; any other refusal is final. ``stop``
    set: no further try (the push this request belongs to has stopped)."""
    from booth.sync.client import SyncFailed

    for attempt in range(attempts):
        if attempt and stop is not None and stop.is_set():
            raise SyncFailed(0, {"error": "stopped", "message": "the push stopped"})
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
    transaction, so an interrupted push resumes where it stopped.

    Two requests are in flight (each in a thread of its own, so the wait costs the booth nothing): central
    decodes the second while it applies the first, and applies a node's batches one at a time in the order
    they arrive (``services.push``). Meanwhile the booth writes the acknowledgements of the answered batch
    and reads the next. A batch that overtook the one before it (that one's request was lost and sent again)
    finds parents missing: those records are deferred, and a second pass sends them once the parents are
    there. ``report.deferred`` counts what the last pass still left deferred."""
    rng = rng or random.Random()
    report = PushReport(total=sum(pending_counts(session, metadata).values()))
    session.rollback()
    if progress:
        progress(report)
    for _ in range(PASSES):
        acked = report.acked
        # a record deferred in one pass is sent again in the next: counted as sent once, and as deferred
        # only if the last pass still leaves it so
        report.deferred = 0
        report.by_status.pop("missing_parent", None)
        report.passes += 1
        _push_pass(session, metadata, transport, report, now=now, batch_size=batch_size, sleep=sleep, rng=rng,
                   attempts=attempts, progress=progress)
        if not report.deferred or report.acked == acked:
            break
    return report


WINDOW = 2   # push requests in flight
PASSES = 3   # passes over the outbox while some records are deferred and others are still acknowledged


def _push_pass(session, metadata, transport, report: PushReport, *, now, batch_size, sleep, rng, attempts,
               progress) -> None:
    from booth.sync.client import SyncFailed

    cursors: dict = {}

    def read() -> list[str]:
        items = next_batch_json(session, metadata, cursors, batch_size)
        session.rollback()   # no read transaction held while waiting for the network
        return items

    # one batch read ahead, so each request can say whether it is the last (central then recomputes its
    # dashboard summaries once, not after every batch); the last is sent once every other is answered
    batch = read()
    following = read() if batch else []
    inflight: deque = deque()   # (records in the batch, its reply), oldest first
    stop = threading.Event()    # set when this pass ends: a request still out is not tried again
    try:
        while batch or inflight:
            while batch and len(inflight) < WINDOW and (following or not inflight):
                inflight.append((len(batch), _in_background(
                    send, transport, "push", _body(batch, last=not following), sleep=sleep, rng=rng,
                    attempts=attempts, report=report, stop=stop)))
                batch, following = following, (read() if following else [])
            sent, reply = inflight.popleft()
            try:
                answer = reply()
            except SyncFailed as e:
                raise PushFailed(str(e), report) from e
            _acknowledge(session, metadata, sent if report.passes == 1 else 0, answer, now=now(), report=report,
                         progress=progress)
    finally:
        stop.set()


def _body(items: list[str], *, last: bool) -> bytes:
    """The push request's JSON body from its items' JSON texts."""
    return ('{"records":[' + ",".join(items) + '],"last":' + ("true" if last else "false") + "}").encode()


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


def _acknowledge(session, metadata, sent: int, reply, *, now, report: PushReport, progress) -> None:
    counts = record_reply(session, metadata, reply.body, now=now)
    session.commit()
    report.batches += 1
    report.sent += sent
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
