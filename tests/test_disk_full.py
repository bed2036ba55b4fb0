"""Disk full (issue 9, point 4): SQLite's SQLITE_FULL, simulated with ``PRAGMA max_page_count`` on every
connection the app checks out, gives a 507 page in the user's language, leaves nothing half-written, and
the same action succeeds once there is space again — on the same connections, without a restart."""
from __future__ import annotations

import re

from sqlalchemy import event, func, select, text

from booth.audit.models import AuditEntry
from booth.extensions import db
from booth.visits.models import Visit
from tests.workflow.conftest import build_ctx

ROOMY = 1073741823  # SQLite's default maximum


def counts():
    return db.session.scalar(select(func.count(Visit.id))), db.session.scalar(select(func.count(AuditEntry.id)))


def test_visit_registration_at_full_disk_is_refused_whole_and_works_when_space_returns(node, clock, login):
    app = node.app
    with app.app_context():
        build_ctx(app, node, clock)
        db.session.execute(text("VACUUM"))   # no free pages left: the next growth hits the limit
        db.session.commit()
        engine = db.engine
    limit = {"pages": None}

    @event.listens_for(engine, "checkout")
    def cap(dbapi_connection, _record, _proxy):
        cur = dbapi_connection.cursor()
        if limit["pages"] is None:
            cur.execute(f"PRAGMA max_page_count = {ROOMY}")
        else:  # as small as SQLite allows: the pages the file has now
            cur.execute(f"PRAGMA max_page_count = {limit['pages']}")
        cur.close()

    t = login("tester")
    t.client.set_cookie("vinculo_lang", "en")
    with app.app_context():
        limit["pages"] = db.session.execute(text("PRAGMA page_count")).scalar()
    try:
        for _ in range(400):   # fill the last free bytes of the pages until a registration needs a new page
            html = t.get("/visits/new").get_data(as_text=True)
            nonce = re.search(r'name="nonce" value="([^"]+)"', html).group(1)
            with app.app_context():
                before = counts()
            form = {"age_band": "25-29", "gender_identity": "man", "nonce": nonce}
            r = t.post("/visits", form, csrf_page="/visits/new")
            if r.status_code != 303:
                break
        assert r.status_code == 507, r.get_data(as_text=True)[:300]
        body = r.get_data(as_text=True)
        assert "disk is full" in body and "NOT saved" in body and "coordinator" in body
        with app.app_context():
            assert counts() == before                          # no visit, no audit entry
            assert db.session.scalar(text("PRAGMA integrity_check")) == "ok"
        assert t.get("/visits").status_code == 200 and t.get("/board").status_code == 200   # reads go on
        # htmx asks for the partial, Spanish by default for a device that chose nothing
        t.client.delete_cookie("vinculo_lang")
        es = t.post("/visits", form, csrf_page="/visits/new", headers={"HX-Request": "true"})
        assert es.status_code == 507
        partial = es.get_data(as_text=True)
        assert 'id="error"' in partial and "<html" not in partial and "NO se guardó" in partial
        # space returns: the very same POST (same nonce) now succeeds, on the same pooled connections
        limit["pages"] = None
        ok = t.post("/visits", form, csrf_page="/visits/new")
        assert ok.status_code == 303, ok.get_data(as_text=True)[:300]
        with app.app_context():
            assert counts()[0] == before[0] + 1 and counts()[1] > before[1]
    finally:
        event.remove(engine, "checkout", cap)


def test_other_operational_errors_stay_500(app):
    from sqlalchemy.exc import OperationalError

    def boom():
        raise OperationalError("SELECT 1", {}, Exception("database is locked"))

    app.view_functions["core.healthz"] = boom
    r = app.test_client().get("/healthz")
    assert r.status_code == 500 and "disk is full" not in r.get_data(as_text=True)
