"""Issue 9 point 3: a node restored from its encrypted backup has every record and still syncs without
duplicates. The laptop is lost after the backup and after pushing more; the coordinator registers the
replacement with ``--replaces`` (the lost node is revoked, its records become the new node's)."""
from __future__ import annotations

import json

from sqlalchemy import func, select

from booth import create_app
from booth.clock import FrozenClock
from booth.extensions import db
from booth.sync import records as R
from booth.sync.models import SyncNode, SyncRecord
from tests.conftest import START, base_config
from tests.sync.conftest import enrolled, sync

def central_counts(central) -> dict:
    """Rows per kind at central (audit entries: the nodes' ones only; central audits its own actions too)."""
    with central.app_context():
        out = {k.name: db.session.scalar(select(func.count()).select_from(db.metadata.tables[k.target]))
               for k in R.KINDS if k.name != "audit_entry"}
        out["audit_entry"] = db.session.scalar(select(func.count()).select_from(SyncRecord)
                                               .where(SyncRecord.kind == "audit_entry"))
        return out


def test_restored_node_has_every_record_and_syncs_without_duplicates(central, make_booth, tmp_path):
    from booth.visits.models import Visit

    booth = make_booth("lost", visits=40, seed=51)
    reg = enrolled(central, booth)
    assert sync(booth, "push").exit_code == 0
    r = booth.test_cli_runner().invoke(args=["backup", "init-recovery"])
    assert r.exit_code == 0, r.output
    key = next(line.strip() for line in r.output.splitlines() if line.startswith("    "))
    with booth.app_context():                      # the day goes on: a correction, not pushed yet
        v = db.session.scalars(select(Visit).order_by(Visit.id)).first()
        v.first_time = not v.first_time
        db.session.commit()
    booth.config["BACKUP_DIR"] = str(tmp_path / "usb")
    r = booth.test_cli_runner().invoke(args=["backup", "now"])
    assert r.exit_code == 0, r.output
    backup = next((tmp_path / "usb").iterdir())
    with booth.app_context():
        held = {t.name: sorted(map(str, db.session.execute(select(t.c.id)).scalars()))
                for t in db.metadata.sorted_tables if t.name in {k.table for k in R.KINDS}}
    assert sync(booth, "push").exit_code == 0       # pushed after the backup, then the laptop is lost
    before = central_counts(central)

    fresh = tmp_path / "replacement"
    (fresh / "instance").mkdir(parents=True)
    new = create_app(base_config(fresh, CLOCK=FrozenClock(START)))
    r = new.test_cli_runner().invoke(args=["backup", "restore", str(backup), "--key", key, "--yes"])
    assert r.exit_code == 0 and "integrity_check: ok" in r.output, r.output
    new = create_app(base_config(fresh, CLOCK=FrozenClock(START)))
    with new.app_context():                        # every record of the backup is there
        for table, ids in held.items():
            assert sorted(map(str, db.session.execute(select(db.metadata.tables[table].c.id)).scalars())) == ids
    r = sync(central, "register-node", "Módulo 1 (reemplazo)", "--replaces", reg["node"], "--json")
    assert r.exit_code == 0, r.output
    code = json.loads(r.output)["code"]
    assert sync(new, "enroll", central.url, code).exit_code == 0
    r = sync(new, "push", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output.strip().splitlines()[-1])
    assert report["sent"] >= 1 and report["quarantined"] == 0 and report["deferred"] == 0, report
    with new.app_context():                        # what the replacement wrote itself (its enrollment's audit entry)
        audit_ids = set(map(str, db.session.execute(select(db.metadata.tables["audit_entries"].c.id)).scalars()))
    with central.app_context():
        ledger = set(map(str, db.session.execute(select(SyncRecord.record_id)
                                                 .where(SyncRecord.kind == "audit_entry")).scalars()))
    new_entries = audit_ids - set(held["audit_entries"])
    assert len(new_entries) == 1 and new_entries <= ledger
    after = central_counts(central)
    assert after == {**before, "audit_entry": before["audit_entry"] + 1}     # nothing doubled
    status = json.loads(sync(new, "status", "--json").output)
    assert status["receipt"]["match"] is True
    with central.app_context():
        nodes = {n.name: n for n in db.session.scalars(select(SyncNode))}
        assert nodes["Módulo 1"].revoked_at is not None
        owners = db.session.execute(select(SyncRecord.node_id).distinct()).scalars().all()
        assert owners == [nodes["Módulo 1 (reemplazo)"].id]
    assert "revoked" in sync(booth, "ping").output   # the lost laptop, if found, can no longer sync
