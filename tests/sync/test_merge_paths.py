"""Central's merge on PostgreSQL, the paths a clean push never takes: new records go in one statement per
kind, and whatever that statement does not insert is decided record by record — a parent not at central
yet (deferred, applied when it comes), a shift whose staff member is not there yet, a unique value
another record already holds (quarantined), and a batch mixing new records with copies central holds."""
from __future__ import annotations

import uuid

from sqlalchemy import func, select

from booth.db import new_id
from booth.extensions import db
from booth.sync import outbox, services
from booth.sync.models import SyncQuarantine, SyncRecord


def records_of(booth) -> list[dict]:
    """Every record the booth would push, as on the wire."""
    with booth.app_context():
        batch = outbox.next_batch(db.session, db.metadata, {}, size=100_000)
        db.session.rollback()
    return batch


def a_node(central):
    now = central.config["CLOCK"].now()
    with central.app_context():
        node, code = services.register_node(db.session, name="Módulo M", now=now)
        services.enroll_node(db.session, code=code, node_id=None, referral_key="ab" * 32, now=now)
        db.session.commit()
        return node.id


def push(central, node_id, records) -> dict:
    from booth.sync.models import SyncNode

    with central.app_context():
        node = db.session.get(SyncNode, node_id)
        reply = services.push(db.session, db.metadata, node, {"records": records}, now=central.config["CLOCK"].now())
        db.session.commit()
    return reply


def statuses(reply) -> dict:
    out: dict = {}
    for group in ("acked", "quarantined", "deferred"):
        for kind, _id, _version, status in reply[group]:
            out[(kind, status)] = out.get((kind, status), 0) + 1
    return out


def count(central, table, **where) -> int:
    with central.app_context():
        t = db.metadata.tables[table]
        q = select(func.count()).select_from(t)
        for k, v in where.items():
            q = q.where(t.c[k] == v)
        return db.session.scalar(q)


def of(records, *kinds):
    return [r for r in records if r["kind"] in kinds]


def test_records_whose_parents_are_missing_are_deferred_and_go_in_once_the_parents_came(pg_app, make_booth):
    booth = make_booth(visits=4, seed=31)
    node = a_node(pg_app)
    records = records_of(booth)
    children = of(records, "consent", "screening")
    audit = of(records, "audit_entry")
    assert children and audit

    reply = push(pg_app, node, children + audit)      # visits, lots, settings not at central yet
    got = statuses(reply)
    assert got == {("consent", "missing_parent"): len(of(records, "consent")),
                   ("screening", "missing_parent"): len(of(records, "screening")),
                   ("audit_entry", "inserted"): len(audit)}
    assert count(pg_app, "consents") == count(pg_app, "screenings") == 0
    assert count(pg_app, "sync_records") == len(audit)

    reply = push(pg_app, node, records)               # everything: the parents first, then the children
    got = statuses(reply)
    assert got[("audit_entry", "duplicate")] == len(audit)
    assert got[("consent", "inserted")] == len(of(records, "consent"))
    assert not reply["deferred"] and not reply["quarantined"]
    assert count(pg_app, "sync_records") == len(records)
    assert count(pg_app, "visits") == 4


def test_a_shift_whose_staff_member_is_not_at_central_waits_for_it(pg_app, make_booth):
    booth = make_booth(visits=1, seed=32)
    node = a_node(pg_app)
    records = records_of(booth)
    shifts = of(records, "shift")
    assert shifts

    reply = push(pg_app, node, of(records, "event", "booth", "shift"))   # no staff: no foreign key catches it
    got = statuses(reply)
    assert got[("shift", "missing_parent")] == len(shifts) and ("shift", "inserted") not in got
    assert got[("booth", "inserted")] == len(of(records, "booth"))
    assert count(pg_app, "shifts") == 0

    reply = push(pg_app, node, of(records, "event", "booth", "staff", "shift"))
    assert statuses(reply)[("shift", "inserted")] == len(shifts)
    assert count(pg_app, "shifts") == len(shifts)


def test_a_taken_unique_value_is_quarantined_and_the_rest_of_a_mixed_batch_applies(pg_app, make_booth):
    booth = make_booth(visits=12, seed=33)
    node = a_node(pg_app)
    records = records_of(booth)
    referrals = of(records, "referral")
    assert referrals, "the demo day issued no referral"
    audit = of(records, "audit_entry")
    first, held_back = records[:-1], records[-1]       # the last audit entry comes later, in the mixed batch
    assert held_back["kind"] == "audit_entry"
    reply = push(pg_app, node, first)
    assert not reply["deferred"] and not reply["quarantined"]

    # another id with a folio (and token) central already holds: the database refuses that row only
    copy = {"kind": "referral", "row": {**referrals[0]["row"], "id": str(new_id())}}
    visit = of(records, "visit")[0]                    # already at central, identical
    reply = push(pg_app, node, [visit, copy, held_back])
    got = statuses(reply)
    assert got == {("visit", "duplicate"): 1, ("referral", "integrity"): 1, ("audit_entry", "inserted"): 1}
    with pg_app.app_context():
        q = db.session.scalars(select(SyncQuarantine)).one()
        assert (q.kind, str(q.record_id), q.reason) == ("referral", copy["row"]["id"], "integrity")
        assert q.payload["folio"] == referrals[0]["row"]["folio"]
        owned = db.session.scalar(select(func.count()).select_from(SyncRecord)
                                  .where(SyncRecord.record_id == uuid.UUID(copy["row"]["id"])))
        assert owned == 0
    assert count(pg_app, "referrals") == len(referrals)
    assert count(pg_app, "sync_records", kind="audit_entry") == len(audit)
    assert count(pg_app, "sync_records") == len(records)
