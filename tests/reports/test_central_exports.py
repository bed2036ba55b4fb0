"""Central: the dashboard's exports of a filtered range — the same suppressed booth-day tables as
``flask export`` at central, booths linked to a central event included; coordinators only."""
from __future__ import annotations

import csv
import io
import json
import re
import subprocess

from sqlalchemy import select

from booth.events import services as events
from booth.extensions import db
from tests.conftest import START
from tests.sync.conftest import central, make_booth, sync  # noqa: F401  (fixtures)
from tests.test_central import signed_in

SMALL = re.compile(r"^[1-9]$")


def test_central_downloads_agree_with_the_cli_and_count_linked_booths(central, make_booth, clock, tmp_path):  # noqa: F811
    with central.app_context():
        ev = events.create_event(db.session, name="Marcha central", day=START.date(), place="Reforma",
                                 timezone="America/Mexico_City", now=START)
        db.session.commit()
        event_id = str(ev.id)
    for i, seed in enumerate((71, 72)):
        booth = make_booth(f"b{i}", visits=60, seed=seed)
        args = ["register-node", f"Módulo {i}", "--json"] + (["--event", event_id] if i == 0 else [])
        code = json.loads(sync(central, *args).output)["code"]
        r = sync(booth, "enroll", central.url, code)
        assert r.exit_code == 0, r.output
        r = sync(booth, "push")
        assert r.exit_code == 0, r.output
    browser = signed_in(central, clock)
    # the second node was set up offline and not linked: its booth-days are outside the event
    r = browser.get(f"/central/dashboard/export.csv?event={event_id}")
    assert r.status_code == 200 and r.headers["Content-Disposition"].endswith('.csv"')
    one = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    with central.app_context():
        from booth.sync.models import SyncNode

        second = db.session.scalars(select(SyncNode).where(SyncNode.name == "Módulo 1")).one()
    page = browser.get("/central/sync").get_data(as_text=True)
    assert "Módulo 1" in page
    r = browser.post(f"/central/nodes/{second.id}/link", {"event": event_id}, page="/central/sync")
    assert r.status_code == 303
    r = browser.get(f"/central/dashboard/export.csv?event={event_id}")
    both = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert both != one                                   # the linked booth's days now count
    out = tmp_path / "cli.csv"
    res = central.test_cli_runner().invoke(args=["export", "csv", "--out", str(out), "--event", event_id])
    assert res.exit_code == 0, res.output
    assert list(csv.reader(io.StringIO(out.read_text(encoding="utf-8")))) == both
    assert not [row for row in both[1:] if row and SMALL.match(row[-1])]      # no count 1–9
    pdf = browser.get(f"/central/dashboard/export.pdf?event={event_id}")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    (tmp_path / "r.pdf").write_bytes(pdf.data)
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "r.pdf"), "-"], capture_output=True, text=True).stdout
    assert "Marcha central" in text and "· Módulo 0" in text and "· Módulo 1" in text
    fhir = browser.get(f"/central/dashboard/export.fhir.json?event={event_id}")
    assert fhir.status_code == 200 and json.loads(fhir.data)["resourceType"] == "Bundle"
    dhis2 = browser.get(f"/central/dashboard/export.dhis2.json?event={event_id}")
    assert dhis2.status_code == 200 and "dataValues" in json.loads(dhis2.data)
    assert browser.get("/central/dashboard/export.xls").status_code == 404
    assert browser.get("/central/dashboard/export.csv?from=yesterday").status_code == 400
