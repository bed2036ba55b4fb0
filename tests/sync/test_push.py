"""Sync push: a booth's records reach central (PostgreSQL) exactly once, later changes replace older
versions, a conflicting copy goes to quarantine, a clinic's arrival survives a later booth push, and
the receipt's digests match. Real HTTP to a central server on a loopback port."""
from __future__ import annotations

import json
import uuid

import sqlalchemy as sa
from sqlalchemy import func, select

from booth.extensions import db
from booth.sync import records as R
from booth.sync.models import SyncAck, SyncQuarantine, SyncRecord
from tests.sync.conftest import enrolled, sync


def central_count(central, table: str) -> int:
    with central.app_context():
        return db.session.scalar(select(func.count()).select_from(db.metadata.tables[table]))


def local_count(booth, table: str) -> int:
    with booth.app_context():
        return db.session.scalar(select(func.count()).select_from(db.metadata.tables[table]))


def push(booth) -> dict:
    r = sync(booth, "push", "--json", "--batch", "150")
    assert r.exit_code == 0, r.output
    return json.loads(r.output.strip().splitlines()[-1])


def status(booth) -> dict:
    r = sync(booth, "status", "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_push_twice_sends_every_record_once_and_the_receipt_matches(central, make_booth):
    booth = make_booth(visits=30, seed=3)
    enrolled(central, booth)
    first = push(booth)
    held = {k.name: local_count(booth, k.table) for k in R.KINDS}
    assert first["total"] == first["sent"] == first["acked"] == sum(held.values()), json.dumps(first)
    assert first["quarantined"] == first["deferred"] == 0
    assert first["batches"] >= 2            # batches of 150
    for kind in R.KINDS:
        assert central_count(central, kind.target) >= held[kind.name], kind.name
    assert central_count(central, "visits") == 30
    with central.app_context():
        assert db.session.scalar(select(func.count()).select_from(SyncRecord)) == sum(held.values())

    again = push(booth)                       # nothing pending: nothing sent, nothing written
    assert again["total"] == again["sent"] == 0
    assert central_count(central, "visits") == 30

    s = status(booth)
    assert s["receipt"]["match"] is True
    by_kind = {k["kind"]: k for k in s["receipt"]["kinds"]}
    assert by_kind["visit"]["held"] == by_kind["visit"]["acknowledged"] == by_kind["visit"]["central_count"] == 30
    assert by_kind["visit"]["digest"] == by_kind["visit"]["local_digest"]
    assert sum(s["pending"].values()) == 0
    # what never leaves the node
    with central.app_context():
        staff_cols = set(db.metadata.tables["node_staff"].c.keys())
    assert not staff_cols & {"pin_hash", "alias", "password_hash", "totp_secret"}


def test_a_resent_batch_is_acknowledged_again_without_a_second_row(central, make_booth):
    booth = make_booth(visits=5, seed=4)
    enrolled(central, booth)
    push(booth)
    visits_before = central_count(central, "visits")
    # forget the acknowledgements: the booth sends everything again, as after a lost answer
    with booth.app_context():
        db.session.execute(sa.delete(SyncAck))
        db.session.commit()
    report = push(booth)
    assert report["sent"] == report["acked"] > 0
    assert report["by_status"] == {"duplicate": report["sent"]}
    assert central_count(central, "visits") == visits_before


def test_a_correction_and_a_closed_day_pushed_later_replace_the_older_version(central, make_booth):
    from booth.screening.models import ScreeningResult
    from booth.visits.models import DayClosure, Visit

    booth = make_booth(visits=8, seed=5)
    enrolled(central, booth)
    push(booth)
    with booth.app_context():
        visit = db.session.scalars(select(Visit).order_by(Visit.id)).first()
        visit_id, v0 = visit.id, visit.version
        visit.age_band = "50-54" if visit.age_band != "50-54" else "45-49"   # a correction of the intake
        result = db.session.scalars(select(ScreeningResult).where(ScreeningResult.voided_at.is_(None))).first()
        result_id, r0 = result.id, result.version
        result.void_reason = "wrong_entry"
        result.voided_at = booth.clock.now()
        db.session.commit()
        assert db.session.get(Visit, visit_id).version == v0 + 1
        assert db.session.get(ScreeningResult, result_id).version == r0 + 1   # bumped by the flush hook
        closures = db.session.scalar(select(func.count()).select_from(DayClosure))
    report = push(booth)
    assert report["by_status"].get("updated", 0) >= 2, report
    with central.app_context():
        v = db.session.get(Visit, visit_id)
        assert v.version == v0 + 1 and v.age_band in ("50-54", "45-49")
        r = db.session.get(ScreeningResult, result_id)
        assert r.voided_at is not None and r.version == r0 + 1
        assert db.session.scalar(select(func.count()).select_from(DayClosure)) == closures


def test_same_version_with_other_content_goes_to_quarantine_and_the_rest_is_accepted(central, make_booth):
    from booth.visits.models import Visit

    booth = make_booth(visits=6, seed=6)
    enrolled(central, booth)
    push(booth)
    with booth.app_context():
        ids = db.session.scalars(select(Visit.id).order_by(Visit.id)).all()
        # alter a visit without a new version (as a tampered or broken node would) and change another properly
        db.session.execute(sa.update(db.metadata.tables["visits"]).where(db.metadata.tables["visits"].c.id == ids[0])
                           .values(gender_identity="prefer_not", version=db.metadata.tables["visits"].c.version))
        db.session.execute(sa.update(db.metadata.tables["sync_acks"]).where(
            db.metadata.tables["sync_acks"].c.record_id == ids[0]).values(version=0))
        other = db.session.get(Visit, ids[1])
        other.first_time = not other.first_time
        db.session.commit()
    report = push(booth)
    assert report["quarantined"] == 1 and report["by_status"].get("updated") == 1, report
    with central.app_context():
        q = db.session.scalars(select(SyncQuarantine)).all()
        assert [(x.kind, x.record_id, x.reason) for x in q] == [("visit", ids[0], "conflict")]
        assert q[0].payload["gender_identity"] == "prefer_not"
        assert db.session.get(Visit, ids[0]).gender_identity != "prefer_not"   # central's row unchanged
    with booth.app_context():
        assert db.session.get(SyncAck, ("visit", ids[0])).status == "conflict"
    assert push(booth)["sent"] == 0           # not sent again until it changes
    assert status(booth)["receipt"]["match"] is True


def test_a_clinic_arrival_survives_a_later_booth_push_of_the_same_referral(central, make_booth):
    from booth.referrals.models import Linkage, Referral

    booth = make_booth(visits=40, seed=7)
    enrolled(central, booth)
    push(booth)
    with booth.app_context():
        ref = db.session.scalars(select(Referral).order_by(Referral.id)).first()
        assert ref is not None, "the demo day issues referrals"
        ref_id = ref.id
    with central.app_context():
        cref = db.session.get(Referral, ref_id)
        link = Linkage(referral_id=ref_id, status="arrived", arrived_on=cref.issued_at.date(), recorded_by="CL1",
                       created_at=central.config["CLOCK"].now(), updated_at=central.config["CLOCK"].now())
        db.session.add(link)
        db.session.commit()
        link_id = link.id
    with booth.app_context():                 # the booth reprints the slip: the referral row changes
        r = db.session.get(Referral, ref_id)
        r.printed_count += 1
        db.session.commit()
    report = push(booth)
    assert report["by_status"].get("updated", 0) >= 1
    with central.app_context():
        assert db.session.get(Linkage, link_id).status == "arrived"
        assert db.session.get(Referral, ref_id).printed_count >= 1
    # and the booth sees the arrival after a pull (read-only copy)
    r = sync(booth, "pull")
    assert r.exit_code == 0, r.output
    with booth.app_context():
        assert db.session.get(Linkage, link_id).status == "arrived"
        assert db.session.get(SyncAck, ("linkage", link_id)).status == "pulled"
    assert push(booth)["sent"] == 0           # a pulled record is never pushed back


def test_an_id_owned_by_another_node_is_refused_into_quarantine(central, make_booth):
    a = make_booth("a", visits=3, seed=8)
    enrolled(central, a, "A")
    push(a)
    b = make_booth("b", visits=3, seed=9)
    enrolled(central, b, "B")
    with a.app_context():
        ev = db.session.execute(select(db.metadata.tables["events"])).mappings().first()
    with b.app_context():       # B claims A's event id (a copied database, or a forged record)
        events = db.metadata.tables["events"]
        db.session.execute(events.insert().values({**ev, "name": "otro"}))
        db.session.commit()
    report = push(b)
    assert report["quarantined"] == 1
    with central.app_context():
        q = db.session.scalars(select(SyncQuarantine)).one()
        assert (q.kind, q.record_id, q.reason) == ("event", ev["id"], "foreign")
        assert db.session.execute(select(db.metadata.tables["events"].c.name)
                                  .where(db.metadata.tables["events"].c.id == ev["id"])).scalar_one() != "otro"


def test_pull_brings_central_consent_texts_into_an_unsigned_draft_only(central, make_booth):
    from booth.settings import services as settings

    central.config["CONSENT_TEXTS"] = {"es": "Texto de consentimiento de la institución (v2).",
                                       "en": "The institution's consent text (v2)."}
    fresh = make_booth("fresh")                     # set up, no settings signed yet
    enrolled(central, fresh, "Fresh")
    r = sync(fresh, "pull")
    assert r.exit_code == 0 and "consent_texts 1" in r.output, r.output
    with fresh.app_context():
        from booth.events.queries import this_booth

        d = settings.latest(db.session, this_booth(db.session).event_id)
        assert d.status == "draft" and d.content["consent"]["es"].endswith("(v2).")
    signed = make_booth("signed", visits=2, seed=9)  # the demo day's settings are signed off: never changed
    enrolled(central, signed, "Signed")
    r = sync(signed, "pull")
    assert r.exit_code == 0 and "consent_texts 0" in r.output, r.output
    with signed.app_context():
        from booth.events.queries import this_booth

        s = settings.signed(db.session, this_booth(db.session).event_id)
        assert "(v2)" not in s.content["consent"]["es"]


def test_dashboard_summaries_are_recomputed_once_the_push_is_over(central, make_booth):
    from booth.reports.models import ReportDay, ReportPending
    from booth.sync import client, outbox

    booth = make_booth(visits=20, seed=12)
    enrolled(central, booth)
    with booth.app_context():
        transport = client.Transport(client.load_state(booth.instance_path), lambda: booth.clock.now().timestamp())
        batch = outbox.next_batch(db.session, db.metadata, {}, size=400)
        reply = transport.post("push", {"records": batch, "last": False})     # a push cut short
        assert reply.body["acked"]
    with central.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReportPending)) >= 1
        assert db.session.scalar(select(func.count()).select_from(ReportDay)) == 0   # not recomputed per batch
    with booth.app_context():
        transport.post("receipt")                   # asked once a push is over: the summaries catch up
    with central.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReportPending)) == 0
        assert db.session.scalar(select(func.count()).select_from(ReportDay)) == 1
    push(booth)                                     # the rest, in batches: the last one says so
    with central.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReportPending)) == 0
        assert db.session.scalar(select(ReportDay.visits)) == 20
    r = central.test_client().post("/api/sync/push", data=b'{"records": [], "last": "yes"}')
    assert r.status_code == 401                     # unsigned; a signed one with a non-boolean "last" is a 400:
    with booth.app_context():
        try:
            transport.post("push", {"records": [], "last": "yes"})
        except client.SyncFailed as e:
            assert e.status == 400 and "last" in e.body["message"]
        else:
            raise AssertionError("a non-boolean last was accepted")
