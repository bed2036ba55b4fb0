"""No network (bundle → import → receipt) and purge after acknowledgement."""
from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import func, select

from booth.extensions import db
from booth.sync import records as R
from booth.sync.models import SyncAck, SyncRecord
from tests.sync.conftest import enrolled, sync


def counts(app, tables) -> dict:
    with app.app_context():
        return {t: db.session.scalar(select(func.count()).select_from(db.metadata.tables[t])) for t in tables}


def all_rows(app) -> dict:
    with app.app_context():
        return {t.name: db.session.scalar(select(func.count()).select_from(t)) for t in db.metadata.sorted_tables}


def test_bundle_export_import_receipt_and_twice_changes_nothing(central, make_booth, tmp_path):
    booth = make_booth(visits=20, seed=31)
    enrolled(central, booth)
    held = {k.name: counts(booth, [k.table])[k.table] for k in R.KINDS}
    bundle = tmp_path / "stick" / "vinculo.bundle"
    bundle.parent.mkdir()
    r = sync(booth, "export", str(bundle))
    assert r.exit_code == 0, r.output
    blob = bundle.read_bytes()
    assert (bundle.stat().st_mode & 0o777) == 0o600
    with booth.app_context():            # nothing readable on the stick: no id, no staff code, no value in clear
        from booth.visits.models import Visit

        some = db.session.scalars(select(Visit.id).limit(5)).all()
    for rid in some:
        assert str(rid).encode() not in blob and rid.hex.encode() not in blob
    assert b"C01" not in blob and b"Marcha" not in blob

    r = sync(central, "import", str(bundle))
    assert r.exit_code == 0, r.output
    receipt = Path(str(bundle) + ".receipt")
    assert receipt.exists()
    with central.app_context():
        ledger = db.session.scalar(select(func.count()).select_from(SyncRecord))
    assert ledger == sum(held.values())
    before = all_rows(central)
    r = sync(central, "import", str(bundle), "--receipt", str(tmp_path / "again.receipt"))   # twice
    assert r.exit_code == 0, r.output
    after = all_rows(central)
    assert {k: v for k, v in after.items() if k not in ("audit_entries", "sync_nonces")} == \
        {k: v for k, v in before.items() if k not in ("audit_entries", "sync_nonces")}

    with booth.app_context():
        assert db.session.scalar(select(func.count()).select_from(SyncAck)) == 0
    r = sync(booth, "import-receipt", str(receipt))
    assert r.exit_code == 0, r.output
    with booth.app_context():
        assert db.session.scalar(select(func.count()).select_from(SyncAck)) == sum(held.values())
    r = sync(booth, "import-receipt", str(receipt))       # twice: the same marks
    assert r.exit_code == 0, r.output
    r = sync(booth, "status", "--json")
    data = json.loads(r.output)
    assert data["receipt"]["match"] is True and sum(data["pending"].values()) == 0


def test_a_tampered_bundle_or_receipt_is_refused_and_nothing_is_written(central, make_booth, tmp_path):
    booth = make_booth(visits=3, seed=32)
    enrolled(central, booth)
    bundle = tmp_path / "b.bundle"
    assert sync(booth, "export", str(bundle)).exit_code == 0
    blob = bytearray(bundle.read_bytes())
    before = all_rows(central)
    for pos in (len(blob) - 5, 200, 60):         # the ciphertext, the sealed header, the MAC
        bad = bytearray(blob)
        bad[pos] ^= 0x01
        (tmp_path / "bad.bundle").write_bytes(bytes(bad))
        r = sync(central, "import", str(tmp_path / "bad.bundle"))
        assert r.exit_code != 0 and "refused" in r.output, r.output
    assert all_rows(central) == before
    # a genuine import, then a tampered receipt is refused on the booth
    assert sync(central, "import", str(bundle)).exit_code == 0
    rec = bytearray(Path(str(bundle) + ".receipt").read_bytes())
    rec[-10] ^= 0x01
    (tmp_path / "bad.receipt").write_bytes(bytes(rec))
    r = sync(booth, "import-receipt", str(tmp_path / "bad.receipt"))
    assert r.exit_code != 0 and "refused" in r.output
    with booth.app_context():
        assert db.session.scalar(select(func.count()).select_from(SyncAck)) == 0


def test_purge_removes_acknowledged_visits_only_and_their_bytes(central, make_booth):
    from booth.visits.models import Visit

    booth = make_booth(visits=25, seed=33)
    enrolled(central, booth)
    assert sync(booth, "push").exit_code == 0
    with booth.app_context():
        ids = db.session.scalars(select(Visit.id).order_by(Visit.id)).all()
        # one visit changed after the push (not acknowledged at its new version): it must stay
        kept = db.session.get(Visit, ids[0])
        kept.first_time = not kept.first_time
        db.session.commit()
    r = sync(booth, "purge", "--yes")
    assert r.exit_code == 0, r.output
    with booth.app_context():
        left = db.session.scalars(select(Visit.id)).all()
        assert left == [ids[0]]
        assert db.session.scalar(select(func.count()).select_from(db.metadata.tables["consents"])) > 0  # ids[0]'s
        assert db.session.scalar(select(func.count()).select_from(db.metadata.tables["kit_lots"])) > 0   # not visit data
        actions = db.session.scalars(select(db.metadata.tables["audit_entries"].c.action)).all()
        assert "sync.purge" in actions
    folder = Path(booth.instance_path).parent
    raw = (folder / "node.sqlite3").read_bytes()
    wal = folder / "node.sqlite3-wal"
    raw += wal.read_bytes() if wal.exists() else b""
    for rid in ids[1:]:
        assert rid.hex.encode() not in raw and str(rid).encode() not in raw, rid
    assert ids[0].hex.encode() in raw
    # the receipt still matches central (purged ids kept as a count and a XOR of hashes)
    assert sync(booth, "push").exit_code == 0
    data = json.loads(sync(booth, "status", "--json").output)
    assert data["receipt"]["match"] is True, [k for k in data["receipt"]["kinds"] if not k["match"]]
    visit_row = next(k for k in data["receipt"]["kinds"] if k["kind"] == "visit")
    assert visit_row["purged"] == 24 and visit_row["held"] == 1 and visit_row["central_count"] == 25
