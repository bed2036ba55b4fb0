"""Encrypted backups: nothing readable in the file, a full restore on a fresh node, wrong keys and
tampered files refused, the CLI's confirmations, and the periodic thread that never raises."""
from __future__ import annotations

import logging
import os
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from booth import create_app
from booth.backup import crypto, periodic, services
from tests.conftest import base_config

TABLES = ("visits", "screenings", "referrals", "audit_entries", "consents", "screening_results")


def filled(app, runner, visits=30):
    """A demo day (open; it issues referrals of its own) plus a few more, so every kind of record is there."""
    result = runner.invoke(args=["demo", "--visits", str(visits), "--open"])
    assert result.exit_code == 0, result.output
    from booth.auth.models import Staff
    from booth.extensions import db
    from booth.referrals import services as referrals
    from booth.referrals.models import Destination
    from booth.visits.models import Visit

    with app.app_context():
        now = app.config["CLOCK"].now()
        coordinator = db.session.scalar(select(Staff).where(Staff.code == "C01"))
        dest = next(d for d in db.session.scalars(select(Destination)) if "hiv_confirmation" in d.reasons)
        key = referrals.referral_key(app.instance_path)
        from booth.referrals.models import Referral

        referred = select(Referral.visit_id).where(Referral.reason == "hiv_confirmation")
        for v in db.session.scalars(select(Visit).where(Visit.id.not_in(referred)).order_by(Visit.seq).limit(3)):
            referrals.issue(db.session, visit=v, reason="hiv_confirmation", destination=dest, key=key,
                            valid_until=v.day + timedelta(days=7), today=v.day, now=now, actor=coordinator)
        db.session.commit()


def ids(db_file: Path) -> dict[str, list]:
    con = sqlite3.connect(db_file)
    try:
        return {t: sorted(r[0] for r in con.execute(f"SELECT id FROM {t}")) for t in TABLES}
    finally:
        con.close()


def db_file_of(app) -> Path:
    return services.sqlite_path(app.config["SQLALCHEMY_DATABASE_URI"])


@pytest.fixture
def backed_up(app, runner, tmp_path):
    """(app, key text, backup path, records) after init-recovery + demo + backup now."""
    out_dir = tmp_path / "stick"
    app.config["BACKUP_DIR"] = str(out_dir)
    r = runner.invoke(args=["backup", "init-recovery"])
    assert r.exit_code == 0, r.output
    key = next(line.strip() for line in r.output.splitlines() if line.startswith("    "))
    filled(app, runner)
    r = runner.invoke(args=["backup", "now"])
    assert r.exit_code == 0, r.output
    files = list(out_dir.iterdir())
    assert len(files) == 1
    return app, key, files[0], ids(db_file_of(app))


def test_only_the_public_key_is_on_the_node_and_the_private_one_is_printed_once(app, runner):
    r = runner.invoke(args=["backup", "init-recovery"])
    assert r.exit_code == 0 and "OFF this node" in r.output
    key = next(line.strip() for line in r.output.splitlines() if line.startswith("    "))
    private = crypto.key_from_text(key)
    pub = Path(app.instance_path) / services.RECOVERY_PUB
    assert crypto.public_from_text(pub.read_text()) == crypto.public_of(private)
    assert pub.stat().st_mode & 0o777 == 0o600
    every_file = b"".join(p.read_bytes() for p in Path(app.instance_path).rglob("*") if p.is_file())
    assert private not in every_file and key.encode() not in every_file
    again = runner.invoke(args=["backup", "init-recovery"])
    assert again.exit_code != 0 and "already has a recovery key" in again.output
    # a typo in a group is caught by the check bytes
    typo = ("B" if key[0] != "B" else "C") + key[1:]
    with pytest.raises(crypto.BackupCryptoError):
        crypto.key_from_text(typo)
    assert crypto.key_from_text(key.lower().replace("-", " ")) == private


def test_backup_needs_a_recovery_key(app, runner, tmp_path):
    app.config["BACKUP_DIR"] = str(tmp_path / "stick")
    r = runner.invoke(args=["backup", "now"])
    assert r.exit_code != 0 and "init-recovery" in r.output
    assert not (tmp_path / "stick").exists()


def test_backup_file_is_neutral_private_and_holds_nothing_in_clear(backed_up):
    app, _key, path, records = backed_up
    assert services.NAME_RE.match(path.name)
    assert path.stat().st_mode & 0o777 == 0o600
    blob = path.read_bytes()
    from booth.extensions import db
    from booth.visits.models import Visit

    with app.app_context():
        visits = db.session.execute(select(Visit.id, Visit.call_number)).all()
    assert len(visits) == 30
    needles = {b"SQLite format 3", b"Marcha", b"C01"}
    for vid, call in visits:
        needles |= {vid.hex.encode(), str(vid).encode(), call.encode()}
    for table in ("referrals", "audit_entries"):
        needles |= {str(i).encode() for i in records[table]}
    found = [n for n in needles if n in blob]
    assert not found, f"in clear in the backup: {found[:5]}"
    header, _raw, _rest = crypto.read_header(blob)
    assert [r["to"] for r in header["recipients"]] == ["recovery"]


def test_restore_on_a_fresh_node_brings_back_every_record(backed_up, tmp_path, clock):
    app, key, path, records = backed_up
    assert all(records[t] for t in ("visits", "screenings", "referrals", "audit_entries"))
    fresh = tmp_path / "fresh"
    (fresh / "instance").mkdir(parents=True)
    new = create_app(base_config(fresh, CLOCK=clock))   # a new node: no database file at all
    r = new.test_cli_runner().invoke(args=["backup", "restore", str(path), "--key", key, "--yes"])
    assert r.exit_code == 0, r.output
    assert "integrity_check: ok" in r.output
    restored = db_file_of(new)
    assert restored.stat().st_mode & 0o777 == 0o600
    assert ids(restored) == records
    con = sqlite3.connect(restored)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    # the restored node starts and serves
    again = create_app(base_config(fresh, CLOCK=clock))
    assert again.test_client().get("/healthz").status_code == 200


def test_restore_reads_the_key_from_stdin_and_asks_the_coordinator(backed_up, tmp_path, clock):
    _app, key, path, records = backed_up
    fresh = tmp_path / "fresh2"
    (fresh / "instance").mkdir(parents=True)
    new = create_app(base_config(fresh, CLOCK=clock))
    runner = new.test_cli_runner()
    # stdin holds the key then the answer to the confirmation
    no = runner.invoke(args=["backup", "restore", str(path)], input=f"{key}\nn\n")
    assert no.exit_code != 0 and "Aborted" in no.output
    assert not db_file_of(new).exists()
    yes = runner.invoke(args=["backup", "restore", str(path)], input=f"{key}\ny\n")
    assert yes.exit_code == 0, yes.output
    assert ids(db_file_of(new)) == records


def test_restore_refuses_a_node_with_data_unless_forced(backed_up):
    app, key, path, records = backed_up
    runner = app.test_cli_runner()
    r = runner.invoke(args=["backup", "restore", str(path), "--key", key, "--yes"])
    assert r.exit_code != 0 and "already holds data" in r.output
    forced = runner.invoke(args=["backup", "restore", str(path), "--key", key, "--yes", "--force"])
    assert forced.exit_code == 0, forced.output
    assert ids(db_file_of(app)) == records


def test_a_wrong_key_fails_clearly_and_changes_nothing(backed_up, tmp_path, clock):
    _app, _key, path, _records = backed_up
    other = crypto.key_to_text(crypto.new_private_key())
    fresh = tmp_path / "fresh3"
    (fresh / "instance").mkdir(parents=True)
    new = create_app(base_config(fresh, CLOCK=clock))
    r = new.test_cli_runner().invoke(args=["backup", "restore", str(path), "--key", other, "--yes"])
    assert r.exit_code != 0 and "does not open this backup" in r.output
    assert not db_file_of(new).exists()
    bad = new.test_cli_runner().invoke(args=["backup", "restore", str(path), "--key", "ABCD-EFGH", "--yes"])
    assert bad.exit_code != 0 and "key is not valid" in bad.output


@pytest.mark.parametrize("where", ["body", "tag", "header", "wrapped key"])
def test_a_tampered_backup_is_refused(backed_up, tmp_path, where):
    _app, key, path, _records = backed_up
    blob = bytearray(path.read_bytes())
    header, raw, _rest = crypto.read_header(bytes(blob))
    start = len(crypto.MAGIC) + 4
    if where == "body":
        blob[start + len(raw) + 40] ^= 0x01
    elif where == "tag":
        blob[-1] ^= 0x80
    elif where == "header":
        changed = raw.replace(header["created"].encode(), b"2020-01-01T00:00:00+00:00")
        assert len(changed) == len(raw)
        blob[start:start + len(raw)] = changed
    else:
        wrapped = header["recipients"][0]["key"].encode()
        i = raw.index(wrapped) + 5
        blob[start + i] = ord("A") if blob[start + i] != ord("A") else ord("B")
    bad = tmp_path / "backup-20260627T160000Z.enc"
    bad.write_bytes(bytes(blob))
    with pytest.raises(services.BackupError, match="damaged or was modified"):
        services.decrypt_file(bad, crypto.key_from_text(key))
    target = tmp_path / "never.sqlite3"
    with pytest.raises(services.BackupError):
        services.restore(path=bad, private=crypto.key_from_text(key), db_file=target)
    assert not target.exists()


def test_central_key_opens_it_too(app, runner, tmp_path):
    central = crypto.new_private_key()
    app.config.update(BACKUP_DIR=str(tmp_path / "stick"),
                      BACKUP_CENTRAL_PUBLIC_KEY=crypto.public_to_text(crypto.public_of(central)))
    assert runner.invoke(args=["backup", "init-recovery"]).exit_code == 0
    filled(app, runner, visits=5)
    assert runner.invoke(args=["backup", "now"]).exit_code == 0
    (path,) = (tmp_path / "stick").iterdir()
    data = services.decrypt_file(path, central)
    mem = sqlite3.connect(":memory:")
    mem.deserialize(data)
    assert mem.execute("SELECT count(*) FROM visits").fetchone()[0] == 5


def test_list_shows_time_and_size(backed_up, clock):
    app, _key, path, _records = backed_up
    clock.advance(minutes=10)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["backup", "now"]).exit_code == 0
    r = runner.invoke(args=["backup", "list"])
    lines = r.output.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("2026-06-27 16:00:00Z") and lines[1].startswith("2026-06-27 16:10:00Z")
    assert f"{path.stat().st_size} bytes" in lines[0]


def test_periodic_backup_never_raises_and_logs_nothing_personal(backed_up, tmp_path, caplog):
    app, _key, _path, records = backed_up
    caplog.set_level(logging.INFO, logger=app.logger.name)
    assert periodic.run_once(app) is True
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    app.config["BACKUP_DIR"] = str(blocker / "sub")    # cannot be created: OSError
    assert periodic.run_once(app) is False
    os.remove(Path(app.instance_path) / services.RECOVERY_PUB)
    assert periodic.run_once(app) is False             # no key: skipped with a hint
    text = caplog.text
    assert "failed" in text and "skipped" in text
    for t in records.values():
        assert not any(str(i) in text for i in t)
    assert "Marcha" not in text


def test_periodic_thread_only_where_asked(app):
    assert periodic.start(app.__class__(__name__)) is None   # no role: not a booth
    app.config["BACKUP_EVERY_MINUTES"] = 0
    assert periodic.start(app) is None
    import threading

    stop = threading.Event()
    app.config["BACKUP_EVERY_MINUTES"] = 10
    thread = periodic.start(app, stop)
    assert thread is not None and thread.daemon and thread.is_alive()
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_serve_starts_the_periodic_thread():
    source = (Path(__file__).resolve().parents[2] / "booth" / "serve.py").read_text()
    assert "start_backups(app)" in source
