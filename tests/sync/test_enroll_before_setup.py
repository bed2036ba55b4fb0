"""A node enrolled before its setup takes central's event: setup creates the event with central's id and
details, the event is never pushed back (it is central's record), and the booth's records count under it."""
from __future__ import annotations

import json
import shutil

from sqlalchemy import func, select

from booth import create_app
from booth.clock import FrozenClock
from booth.events import services as events
from booth.events.models import Booth, Event
from booth.extensions import db
from booth.sync.models import SyncAck, SyncQuarantine
from tests.conftest import CSRF_RE, START, base_config
from tests.sync.conftest import sync


def test_setup_after_enrollment_takes_the_central_event(central, template_db, tmp_path):
    with central.app_context():
        ev = events.create_event(db.session, name="Marcha del Orgullo 2026", day=START.date(), place="Reforma",
                                 timezone="America/Mexico_City", now=START)
        db.session.commit()
        event_id = ev.id
    r = sync(central, "register-node", "Módulo 3", "--event", str(event_id), "--json")
    code = json.loads(r.output)["code"]

    folder = tmp_path / "fresh"
    (folder / "instance").mkdir(parents=True)
    shutil.copy(template_db, folder / "node.sqlite3")
    booth = create_app(base_config(folder, CLOCK=FrozenClock(START)))
    r = sync(booth, "enroll", central.url, code)
    assert r.exit_code == 0 and "setup will take central's event: Marcha del Orgullo 2026" in r.output, r.output

    client = booth.test_client()
    page = client.get("/setup").get_data(as_text=True)
    assert "Marcha del Orgullo 2026" in page and 'name="event_name"' not in page
    token = [g for g in CSRF_RE.search(page).groups() if g][0]
    r = client.post("/setup", data={"csrf_token": token, "event_name": "ignored", "event_day": "2020-01-01",
                                    "place": "ignored", "timezone": "UTC", "booth_name": "Módulo 3",
                                    "coordinator_code": "C01", "pin": "482913", "pin_confirm": "482913"})
    assert r.status_code == 303, r.get_data(as_text=True)[:1000]
    with booth.app_context():
        booth_row = db.session.scalars(select(Booth)).one()
        assert booth_row.event_id == event_id
        e = db.session.get(Event, event_id)
        assert (e.name, e.place, e.timezone) == ("Marcha del Orgullo 2026", "Reforma", "America/Mexico_City")
        assert e.central_base_url == central.url
        assert db.session.get(SyncAck, ("event", event_id)).status == "pulled"

    r = sync(booth, "push", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output.strip().splitlines()[-1])
    assert report["quarantined"] == 0 and report["deferred"] == 0
    with central.app_context():
        assert db.session.scalar(select(func.count()).select_from(Event)) == 1      # no second event row
        assert db.session.scalars(select(Booth.event_id)).all() == [event_id]
        assert db.session.scalar(select(func.count()).select_from(SyncQuarantine)) == 0
