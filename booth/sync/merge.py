"""Central side of a push: apply a batch of records from one node, exactly once (plain module, no Flask).

For each record (kind, id, version, content):

* a new id → inserted, and the ledger (``sync_records``) notes the node that owns it;
* an id this node owns, with a **higher** version → replaces the row (booth-owned columns only);
* the **same** version and the same digest → acknowledged again (``duplicate``), nothing written;
* a **lower** version → acknowledged (``stale``): central already holds a newer one (a clinic's arrival
  survives a later booth push of the same referral this way; the booth's referral row never holds it);
* the same version with a different digest → **conflict**: the incoming copy goes to the quarantine for
  the central coordinator, the row stays as it is;
* an id owned by another node or by central itself, with other content → ``foreign`` (quarantine);
* a row the database refuses (a unique folio already taken …) → ``integrity`` (quarantine);
* a record whose parent row is not at central yet → ``deferred`` (not acknowledged; sent again later).

The rest of the batch is applied whatever happens to one record. The caller commits once: a crash in the
middle of a batch leaves nothing of it, and the node's retry applies it whole.

On PostgreSQL (central) the common case is one statement per kind and batch: the records go in as column
arrays (``unnest``), ``ON CONFLICT DO NOTHING`` skips ids that are already there and the same statement
writes their ledger rows; the database checks the parents. Only what that statement did not insert (ids
already at central, a missing parent, a unique value taken) takes the record-by-record path below, which
decides as listed above (bench/sync.py: 5 × 2,000 visits).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from booth.sync import records as R

MAX_BATCH = 2000


@dataclass
class Outcome:
    acked: list = field(default_factory=list)        # [kind, id, version, inserted|updated|duplicate|stale]
    quarantined: list = field(default_factory=list)  # [kind, id, version, conflict|foreign|integrity]
    deferred: list = field(default_factory=list)     # [kind, id, version, "missing_parent"]

    def as_dict(self) -> dict:
        return {"acked": self.acked, "quarantined": self.quarantined, "deferred": self.deferred}

    def counts(self) -> dict:
        out: dict = {}
        for status in (a[3] for a in self.acked + self.quarantined + self.deferred):
            out[status] = out.get(status, 0) + 1
        return out


class BatchError(ValueError):
    """The batch is malformed (status 400): nothing of it is applied."""


def decode_batch(metadata, payload) -> list[tuple[R.Kind, dict, dict | None]]:
    """Validate the whole batch first: [(kind, decoded row, canonical record)] in push order, or BatchError.
    The canonical record (what digests compare) is left ``None`` here: ``apply`` encodes it only for the
    records it has to compare with a copy central already holds."""
    if not isinstance(payload, dict) or not isinstance(payload.get("records"), list) \
            or not set(payload) <= {"records", "last"} or not isinstance(payload.get("last", False), bool):
        raise BatchError('Send a JSON object {"records": [{"kind": …, "row": {…}}, …], "last": true|false}.')
    items = payload["records"]
    if len(items) > MAX_BATCH:
        raise BatchError(f"At most {MAX_BATCH} records per batch.")
    decs = _decoders(metadata)
    # the common case: every item well formed, each kind's records decoded a column at a time
    groups: dict[str, list] = {}
    try:
        for item in items:
            groups.setdefault(item["kind"], []).append(item["row"])
        if not all(type(item) is dict and len(item) == 2 for item in items) or not set(groups) <= set(decs):
            raise BatchError
        out = []
        for name in sorted(groups, key=R.ORDER.__getitem__):
            rows = decs[name].decode_many(groups[name])
            if len({row["id"].int for row in rows}) < len(rows):
                raise BatchError
            kind = R.BY_NAME[name]
            out.extend((kind, row, None) for row in rows)
        return out
    except (BatchError, R.RecordError, TypeError, KeyError):
        pass
    # something is wrong: item by item, to say which record and why
    out, seen = [], set()
    for i, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != {"kind", "row"}:
            raise BatchError(f"records[{i}]: an object with exactly kind and row")
        kind = R.BY_NAME.get(item["kind"]) if isinstance(item["kind"], str) else None
        if kind is None:
            raise BatchError(f"records[{i}]: unknown kind")
        try:
            row = decs[kind.name].decode(item["row"])
        except R.RecordError as e:
            raise BatchError(f"records[{i}] ({kind.name}): {e}") from None
        if (kind.name, row["id"]) in seen:
            raise BatchError(f"records[{i}] ({kind.name}): the same id twice in one batch")
        seen.add((kind.name, row["id"]))
        out.append((kind, row, None))
    out.sort(key=lambda t: R.ORDER[t[0].name])   # stable: keeps the node's order within a kind
    return out


_DECODERS: dict = {}


def _decoders(metadata):
    key = id(metadata)
    if key not in _DECODERS:
        _DECODERS[key] = R.decoders(metadata)
    return _DECODERS[key]


def apply(session, metadata, node, decoded, *, now: datetime) -> Outcome:
    """Apply a decoded batch for ``node`` (a SyncNode) inside the caller's transaction."""
    from booth.reports.central import mark_pending

    out = Outcome()
    conn = session.connection()
    by_kind: dict[str, list] = {}
    for kind, row, raw in decoded:
        by_kind.setdefault(kind.name, []).append((row, raw))
    touched: set = set()
    for name in sorted(by_kind, key=R.ORDER.__getitem__):
        touched |= _apply_kind(conn, metadata, node, R.BY_NAME[name], by_kind[name], now, out)
    # the central dashboard's summary of each booth-day the batch touched: noted here, recomputed once when the
    # node's push is over (booth.sync.services: its last batch, its receipt, the end of a bundle)
    if touched:
        mark_pending(conn, touched, now=now)
    return out


def _apply_kind(conn, metadata, node, kind: R.Kind, items, now, out: Outcome) -> set:
    """Apply one kind's records; returns the booth-days whose dashboard summary they change."""
    table = metadata.tables[kind.target]
    inserted: list = []
    if conn.dialect.name == "postgresql":
        items = _defer(kind, items, _missing_staff(conn, metadata, kind, items), out)
        inserted, items = _insert_new(conn, metadata, node, kind, table, items, now, out)
    updates: list = []
    if items:
        inserted += _apply_one_by_one(conn, metadata, node, kind, table, items, now, out, updates)
    return _after(conn, metadata, node, kind, inserted + updates, now)


def _apply_one_by_one(conn, metadata, node, kind: R.Kind, table, items, now, out: Outcome, updated: list) -> list:
    """Decide each record against what central holds (see the module's docstring). Returns the rows
    inserted; appends the rows updated to ``updated``."""
    ledger = metadata.tables["sync_records"]
    cols = [c.name for c in R.columns(metadata, kind)]
    items = [(row, R.encode(row) if raw is None else raw) for row, raw in items]
    ids = [row["id"] for row, _ in items]
    owners = dict(conn.execute(sa.select(ledger.c.record_id, ledger.c.node_id)
                               .where(ledger.c.kind == kind.name, ledger.c.record_id.in_(ids))).all())
    existing = {r["id"]: R.encode(r) for r in conn.execute(
        sa.select(*[table.c[c] for c in cols]).where(table.c.id.in_(ids))).mappings()}

    inserts, updates = [], []
    for row, raw in items:
        rid, version = row["id"], R.version_of(row)
        record = [kind.name, str(rid), version]
        current = existing.get(rid)
        if current is None:
            inserts.append((row, raw))
            continue
        same = R.digest(current) == R.digest(raw)
        if owners.get(rid) != node.id:
            if same:
                out.acked.append(record + ["duplicate"])
            else:
                _quarantine(conn, metadata, node, kind, row, raw, "foreign", now, out)
            continue
        have = R.version_of(current)
        if version > have:
            updates.append((row, raw))
        elif version < have:
            out.acked.append(record + ["stale"])
        elif same:
            out.acked.append(record + ["duplicate"])
        else:
            _quarantine(conn, metadata, node, kind, row, raw, "conflict", now, out)

    inserts = _with_parents(conn, metadata, kind, table, inserts, out)
    updates = _with_parents(conn, metadata, kind, table, updates, out)
    inserted = _insert(conn, metadata, node, kind, table, inserts, now, out) if inserts else []
    if updates:
        pk = table.c.id
        values = {c: sa.bindparam("v_" + c) for c in cols if c != "id"}
        conn.execute(sa.update(table).where(pk == sa.bindparam("v_id")).values(values),
                     [{"v_" + k: v for k, v in row.items()} for row, _ in updates])
        out.acked.extend([kind.name, str(row["id"]), R.version_of(row), "updated"] for row, _ in updates)
        updated.extend(row for row, _ in updates)
    return inserted


# ---------------------------------------------------------------- PostgreSQL: new ids in one statement

_INSERT_SQL: dict = {}


def _insert_sql(conn, metadata, kind: R.Kind) -> tuple[str, list[str], frozenset]:
    """``INSERT … SELECT * FROM unnest(column arrays) ON CONFLICT DO NOTHING`` and the ledger rows of what it
    inserted, in one statement that answers the ids it did *not* insert (none, as a rule: fewer rows back);
    the column names in order, and the JSON ones."""
    key = (id(metadata), kind.name)
    if key not in _INSERT_SQL:
        quote = conn.dialect.identifier_preparer.quote
        cols = R.columns(metadata, kind)
        names = ", ".join(quote(c.name) for c in cols)
        # strings go in as text: the cast to varchar(n) on insert refuses (never cuts) a value too long;
        # the arrays travel in binary (%b): psycopg dumps them ~5× faster than as text
        types = ["TEXT" if isinstance(c.type, sa.String) else c.type.compile(dialect=conn.dialect) for c in cols]
        ledger = metadata.tables["sync_records"]
        pk = quote("id")
        sql = (f"WITH batch AS (SELECT * FROM unnest({', '.join(f'%b::{t}[]' for t in types)}) AS x({names})), "
               f"new AS (INSERT INTO {quote(kind.target)} ({names}) SELECT * FROM batch "
               f"ON CONFLICT DO NOTHING RETURNING {pk}), "
               f"owned AS (INSERT INTO {quote(ledger.name)} (kind, record_id, node_id, received_at) "
               f"SELECT %s, {pk}, %s, %s FROM new) "
               f"SELECT {pk} FROM batch WHERE {pk} NOT IN (SELECT {pk} FROM new)")
        json_cols = frozenset(c.name for c in cols if isinstance(c.type, sa.JSON))
        _INSERT_SQL[key] = (sql, [c.name for c in cols], json_cols)
    return _INSERT_SQL[key]


def _insert_new(conn, metadata, node, kind: R.Kind, table, items, now, out: Outcome):
    """Insert, with their ledger rows, the records whose id central does not hold yet (one statement).
    Returns (the rows inserted, the other items) — the others go one by one: ids already here or a
    unique value taken (the statement skips them), or every item when the database refused the statement
    (a parent not here yet)."""
    if not items:
        return [], items
    from psycopg.types.json import Json

    sql, names, json_cols = _insert_sql(conn, metadata, kind)
    arrays = []
    for name in names:
        values = [row[name] for row, _ in items]
        if name in json_cols:
            values = [None if v is None else Json(v) for v in values]
        arrays.append(values)
    try:
        with conn.begin_nested():
            skipped = set(conn.exec_driver_sql(sql, (*arrays, kind.name, node.id, now)).scalars())
    except IntegrityError:
        return [], items
    if skipped:
        inserted = [row for row, _ in items if row["id"] not in skipped]
        items = [(row, raw) for row, raw in items if row["id"] in skipped]
    else:
        inserted, items = [row for row, _ in items], []
    out.acked.extend([kind.name, str(row["id"]), R.version_of(row), "inserted"] for row in inserted)
    return inserted, items


def _with_parents(conn, metadata, kind, table, items, out: Outcome):
    """Keep the records whose referenced rows exist at central (or earlier in this batch); defer the rest."""
    if not items:
        return items
    missing: set = set()
    for col in table.columns:
        for fk in col.foreign_keys:
            target = fk.column.table
            wanted = {row[col.name] for row, _ in items if row.get(col.name) is not None}
            if not wanted:
                continue
            found = set(conn.execute(sa.select(fk.column).where(fk.column.in_(wanted))).scalars())
            if target is table:   # a correction pointing at an earlier row of the same kind, maybe in this batch
                found |= {row["id"] for row, _ in items}
            missing |= {row["id"] for row, _ in items if row.get(col.name) is not None
                        and row[col.name] not in found}
    missing |= _missing_staff(conn, metadata, kind, items)
    return _defer(kind, items, missing, out)


def _missing_staff(conn, metadata, kind, items) -> set:
    """Shifts whose staff member is not at central yet: staff references live in node_staff at central,
    with no foreign key there for the database to check."""
    if kind.name != "shift" or not items:
        return set()
    staff = metadata.tables["node_staff"]
    wanted = {row["staff_id"] for row, _ in items}
    found = set(conn.execute(sa.select(staff.c.id).where(staff.c.id.in_(wanted))).scalars())
    return {row["id"] for row, _ in items if row["staff_id"] not in found}


def _defer(kind, items, missing: set, out: Outcome):
    if not missing:
        return items
    for row, _ in items:
        if row["id"] in missing:
            out.deferred.append([kind.name, str(row["id"]), R.version_of(row), "missing_parent"])
    return [(row, raw) for row, raw in items if row["id"] not in missing]


def _insert(conn, metadata, node, kind, table, items, now, out: Outcome) -> list:
    """Insert new records with their ledger rows; returns the rows inserted."""
    ledger = metadata.tables["sync_records"]
    rows = [row for row, _ in items]
    owned = [{"kind": kind.name, "record_id": row["id"], "node_id": node.id, "received_at": now} for row in rows]
    try:
        with conn.begin_nested():
            conn.execute(sa.insert(table), rows)
            conn.execute(sa.insert(ledger), owned)
        out.acked.extend([kind.name, str(row["id"]), R.version_of(row), "inserted"] for row in rows)
        return rows
    except IntegrityError:
        pass
    inserted = []
    # one at a time, to find the row(s) the database refuses (or that a concurrent copy inserted first)
    for (row, raw), own in zip(items, owned):
        try:
            with conn.begin_nested():
                conn.execute(sa.insert(table), [row])
                conn.execute(sa.insert(ledger), [own])
            out.acked.append([kind.name, str(row["id"]), R.version_of(row), "inserted"])
            inserted.append(row)
        except IntegrityError:
            cols = [c.name for c in R.columns(metadata, kind)]
            current = conn.execute(sa.select(*[table.c[c] for c in cols]).where(table.c.id == row["id"])) \
                .mappings().first()
            if current is not None and R.digest(R.encode(current)) == R.digest(raw):
                out.acked.append([kind.name, str(row["id"]), R.version_of(row), "duplicate"])
            else:
                _quarantine(conn, metadata, node, kind, row, raw, "integrity", now, out)
    return inserted


def _quarantine(conn, metadata, node, kind, row, raw, reason, now, out: Outcome) -> None:
    from booth.db import new_id

    q = metadata.tables["sync_quarantine"]
    d = R.digest(raw)
    version = R.version_of(row)
    exists = conn.execute(sa.select(q.c.id).where(q.c.node_id == node.id, q.c.kind == kind.name,
                                                  q.c.record_id == row["id"], q.c.version == version,
                                                  q.c.digest == d)).first()
    if exists is None:
        try:
            with conn.begin_nested():
                conn.execute(sa.insert(q), [{"id": new_id(), "node_id": node.id, "kind": kind.name,
                                             "record_id": row["id"], "version": version, "digest": d,
                                             "reason": reason, "payload": raw, "received_at": now}])
        except IntegrityError:   # the same copy quarantined by a concurrent duplicate request
            pass
    out.quarantined.append([kind.name, str(row["id"]), version, reason])


def _after(conn, metadata, node, kind, rows, now) -> set:
    """What a kind's arrival sets off at central; returns the booth-days whose summary it changes."""
    if not rows:
        return set()
    if kind.name == "event" and node.event_id is not None:
        events = metadata.tables["events"]
        conn.execute(sa.update(events).where(events.c.id.in_([r["id"] for r in rows]),
                                             events.c.id != node.event_id)
                     .values(central_event_id=node.event_id))
    if kind.name == "referral":
        from booth.referrals.services import match_provisional

        match_provisional(conn, metadata, rows, now=now)
    from booth.reports.central import touched_days

    return touched_days(conn, kind.name, rows)
