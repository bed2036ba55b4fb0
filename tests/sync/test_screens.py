"""The sync screens as coordinators use them: at central, create an event, register a node (the code is
shown once), link and revoke it, resolve quarantine; at the booth, enroll with the code, send with the
progress bar, see the receipt and the clock offset, and purge."""
from __future__ import annotations

import io
import re
import time

import sqlalchemy as sa
from sqlalchemy import func, select

from booth.extensions import db
from booth.sync.models import SyncNode, SyncQuarantine
from tests.conftest import Tablet, add_staff, new_device
from tests.sync.conftest import sync
from tests.test_central import signed_in

CODE_RE = re.compile(r"<code>([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})</code>")


def coordinator_tablet(booth) -> Tablet:
    add_staff(booth, booth.clock, "C77", ["coordinator"])
    t = Tablet(booth, new_device(booth, booth.clock))
    t.client.set_cookie("vinculo_lang", "en")
    t.login("C77", "731945")
    return t


def wait_for_send(tablet, seconds=60) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        html = tablet.client.get("/sync/progress", headers={"HX-Request": "true"}).get_data(as_text=True)
        if "data-hx-get" not in html:       # the bar stops polling once the send is over
            return html
        time.sleep(0.1)
    raise AssertionError("the send did not finish")


def test_central_registers_a_node_and_the_booth_enrolls_sends_and_purges_from_its_screen(central, make_booth, clock):
    browser = signed_in(central, clock)
    r = browser.post("/central/events", {"name": "Marcha 2026", "day": "2026-06-27", "place": "Reforma",
                                         "timezone": "America/Mexico_City"}, page="/central/sync")
    assert r.status_code == 303
    page = browser.get("/central/sync").get_data(as_text=True)
    event_id = re.search(r'<option value="([0-9a-f-]{36})">Marcha 2026', page).group(1)
    r = browser.post("/central/nodes", {"name": "Módulo 1", "event": event_id}, page="/central/sync")
    assert r.status_code == 200
    code = CODE_RE.search(r.get_data(as_text=True)).group(1)
    assert code not in browser.get("/central/sync").get_data(as_text=True)      # shown once only

    booth = make_booth(visits=12, seed=41)
    booth.clock.advance(minutes=-10)        # the booth's clock is 10 minutes behind central's
    tablet = coordinator_tablet(booth)
    assert "not enrolled yet" in tablet.client.get("/sync").get_data(as_text=True)
    r = tablet.post("/sync/enroll", {"central_url": central.url, "code": code}, csrf_page="/sync")
    assert r.status_code == 303, r.get_data(as_text=True)[:800]
    page = tablet.client.get("/sync").get_data(as_text=True)
    assert "records not yet acknowledged by central" in page

    r = tablet.post("/sync/push", {}, csrf_page="/sync")
    assert r.status_code == 303
    done = wait_for_send(tablet)
    assert "acknowledged" in done and "Clock offset +600 s" in done, done
    page = tablet.client.get("/sync").get_data(as_text=True)
    assert "0 records not yet acknowledged" in page and "all match" in page
    assert "Clock offset +600 s" in page
    receipt = tablet.client.get("/sync/receipt").get_data(as_text=True)
    assert "data-print" in receipt and "Visits" in receipt and "✔" in receipt
    with central.app_context():
        node = db.session.scalars(select(SyncNode)).one()
        assert node.clock_offset_s == -600 and str(node.event_id) == event_id

    r = tablet.post("/sync/purge", {}, csrf_page="/sync")                     # not confirmed: nothing happens
    assert r.status_code == 422
    r = tablet.post("/sync/purge", {"confirm": "yes"}, csrf_page="/sync")
    assert r.status_code == 200 and "Purged 12 visits" in r.get_data(as_text=True)
    with booth.app_context():
        assert db.session.scalar(select(func.count()).select_from(db.metadata.tables["visits"])) == 0

    # the central coordinator revokes the node: the booth's next send is refused
    r = browser.post(f"/central/nodes/{node.id}/revoke", {"confirm": "yes"}, page="/central/sync")
    assert r.status_code == 303
    r = sync(booth, "push")
    assert r.exit_code != 0 and "revoked" in r.output


def test_central_coordinator_resolves_quarantine_and_links_an_offline_node(central, make_booth, clock):
    from booth.visits.models import Visit

    browser = signed_in(central, clock)
    booth = make_booth(visits=3, seed=42)
    r = browser.post("/central/nodes", {"name": "Offline"}, page="/central/sync")
    code = CODE_RE.search(r.get_data(as_text=True)).group(1)
    assert sync(booth, "enroll", central.url, code).exit_code == 0
    assert sync(booth, "push").exit_code == 0
    with booth.app_context():
        vid = db.session.scalars(select(Visit.id).order_by(Visit.id)).first()
        visits = db.metadata.tables["visits"]
        for value in ("prefer_not", "woman"):   # two different unversioned edits → two conflicts
            db.session.execute(sa.update(visits).where(visits.c.id == vid).values(gender_identity=value))
            db.session.execute(sa.delete(db.metadata.tables["sync_acks"]))
            db.session.commit()
            assert sync(booth, "push").exit_code == 0
    page = browser.get("/central/sync").get_data(as_text=True)
    assert "Quarantine (2)" in page and "conflict" in page
    with central.app_context():
        ids = {q.payload["gender_identity"]: q.id for q in db.session.scalars(select(SyncQuarantine))}
        assert set(ids) == {"prefer_not", "woman"}
    r = browser.post(f"/central/quarantine/{ids['woman']}", {"action": "apply"}, page="/central/sync")
    assert r.status_code == 303
    r = browser.post(f"/central/quarantine/{ids['prefer_not']}", {"action": "keep"}, page="/central/sync")
    assert r.status_code == 303
    with central.app_context():
        assert db.session.get(Visit, vid).gender_identity == "woman"
        assert db.session.scalar(select(func.count()).select_from(SyncQuarantine)
                                 .where(SyncQuarantine.resolved_at.is_(None))) == 0
    r = browser.post(f"/central/quarantine/{ids['woman']}", {"action": "keep"}, page="/central/sync")
    assert r.status_code == 409

    # the node was set up offline with its own event: link it to a central event
    browser.post("/central/events", {"name": "Marcha central", "day": "2026-06-27", "place": "Reforma",
                                     "timezone": "America/Mexico_City"}, page="/central/sync")
    with central.app_context():
        events = db.metadata.tables["events"]
        central_event = db.session.execute(select(events.c.id).where(events.c.name == "Marcha central")).scalar_one()
        node_id = db.session.scalars(select(SyncNode.id)).one()
    r = browser.post(f"/central/nodes/{node_id}/link", {"event": str(central_event)}, page="/central/sync")
    assert r.status_code == 303
    with central.app_context():
        linked = db.session.execute(select(events.c.central_event_id).where(events.c.id != central_event)).scalars().all()
        assert linked == [central_event]


def test_no_network_file_from_the_screen_and_its_receipt_back(central, make_booth, clock, tmp_path):
    booth = make_booth(visits=6, seed=43)
    from tests.sync.conftest import enrolled

    enrolled(central, booth)
    tablet = coordinator_tablet(booth)
    r = tablet.post("/sync/bundle", {}, csrf_page="/sync")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/octet-stream"
    name = re.search(r'filename="([^"]+)"', r.headers["Content-Disposition"]).group(1)
    assert re.fullmatch(r"vinculo-envio-\d{8}-\d{4}\.bundle", name)
    (tmp_path / name).write_bytes(r.data)
    out = sync(central, "import", str(tmp_path / name))
    assert out.exit_code == 0, out.output
    receipt = (tmp_path / (name + ".receipt")).read_bytes()
    bad = tablet.post("/sync/bundle-receipt", {"receipt": (io.BytesIO(receipt[:-3] + b"xyz"), "r.receipt")},
                      csrf_page="/sync", content_type="multipart/form-data")
    assert bad.status_code == 422 and "refused" in bad.get_data(as_text=True)
    ok = tablet.post("/sync/bundle-receipt", {"receipt": (io.BytesIO(receipt), "r.receipt")},
                     csrf_page="/sync", content_type="multipart/form-data")
    assert ok.status_code == 200 and "Receipt imported" in ok.get_data(as_text=True)
    assert "0 records not yet acknowledged" in tablet.client.get("/sync").get_data(as_text=True)
