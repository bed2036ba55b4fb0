"""Log scan (issue 9, point 5): plant canary values in every field of a visit, run a full encounter over
HTTP, and fail if a log line, a file name, the QR payload or a URL carries one.

What counts as a canary
  * The visit's personal values: its call number (``A-001``), the referral's folio (raw and display
    form), the referral's QR token, and the person's answers, each one chosen to be distinctive
    (age band 45-49, gender ``trans_woman``, sex at birth ``intersex``, last test ``3to12m``, key
    populations ``sex_work``/``pwid``/``chemsex``).
  * Record ids: the visit, consents, screenings, results, counseling and referral ids (UUIDv7).
  * Every free text a person types anywhere in the flow, filled with ``CANARY-…`` strings: event name and
    place, booth name, staff alias, lot numbers, destination name/slip name/address/hours/what to bring.

The rules
  * Log records (every logger, DEBUG and up, message and exception text): no canary at all, ids included.
  * File names written under the instance folder and the backups directory, the slip PDF's and the CSV
    export's file names (Content-Disposition): no canary at all, ids included.
  * The QR payload is exactly ``<central base URL>/r/<token>``: the token is allowed there and only there.
  * URLs (every request URL, every ``Location`` header, every href/src/action/hx-get/hx-post in the HTML
    served): record ids ARE allowed — a UUID in a path such as ``/visits/<uuid>`` is the app's routing,
    not a personal value, and it means nothing without the database. The call number, the folio, the
    answers and the free-text canaries are forbidden. The token is allowed only as the path of the QR's
    own pages (``/r/<token>`` and the clinic's ``/clinic/r/<token>``, which is what a clinic's scanner
    opens). Exempt: the coordinators' aggregate-filter URLs (``/dashboard…``, ``/reports…``,
    ``/central/dashboard…``), which filter totals by design.
  * Audit rows hold only codes and ids: no free-text canary, call number, folio, token or answer.

Logging is captured at DEBUG on the root logger (so every propagating logger) and on ``werkzeug``,
``booth`` and the Flask app logger. SQLAlchemy keeps its own default (WARNING on ``sqlalchemy``): an
operator who turns ``sqlalchemy.engine`` up to INFO/DEBUG asks for SQL parameters and rows, which is a
deliberate debugging step outside this rule. The test client emits no werkzeug access line, and the
servers ``make run`` uses (waitress, cheroot) write no access log.
"""
from __future__ import annotations

import logging
import re
import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import unquote_plus

import pytest
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select

from booth.extensions import db
from booth.referrals import codes
from tests.conftest import CSRF_RE, Tablet, new_device

TOOLS = ("pdftoppm", "zbarimg")
pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                                 reason="needs poppler-utils and zbar-tools (pdftoppm, zbarimg)")

CENTRAL = "https://central.example.org"
FREE_TEXT = {
    "event name": "CANARY-EVENT-3K", "place": "CANARY-PLACE-8M", "booth name": "CANARY-BOOTH-5T",
    "staff alias": "CANARY-ALIAS-7Q", "destination name": "CANARY-DEST-2W",
    "slip name": "CANARY-SLIPNAME-4R", "destination address": "CANARY-ADDR-9P",
    "destination hours": "CANARY-HOURS-6J", "what to bring": "CANARY-BRING-1Z",
    "lot number (Determine)": "CANARYLOTDET7Q", "lot number (OraQuick HCV)": "CANARYLOTHCV5X",
}
ANSWERS = {"age_band": "45-49", "gender_identity": "trans_woman", "sex_at_birth": "intersex",
           "last_test": "3to12m"}
KEY_POPS = ("sex_work", "pwid", "chemsex")
URL_ATTR_RE = re.compile(r'(?:href|src|action|data-hx-get|data-hx-post|hx-get|hx-post)="([^"]*)"')
EXEMPT_PREFIXES = ("/dashboard", "/reports", "/central/dashboard")


class Recorder:
    """Wraps FlaskClient.open: every request URL, Location header, Content-Disposition and HTML URL."""

    def __init__(self):
        self.urls: list[tuple[str, str]] = []        # (where it was seen, url)
        self.dispositions: list[str] = []

    def wrap(self, original):
        rec = self

        def open(client, *args, **kw):
            resp = original(client, *args, **kw)
            req_url = resp.request.url
            rec.urls.append(("request", req_url))
            if resp.headers.get("Location"):
                rec.urls.append((f"Location of {req_url}", resp.headers["Location"]))
            if resp.headers.get("Content-Disposition"):
                rec.dispositions.append(resp.headers["Content-Disposition"])
            if resp.mimetype == "text/html":
                for u in URL_ATTR_RE.findall(resp.get_data(as_text=True)):
                    rec.urls.append((f"HTML of {req_url}", u.replace("&amp;", "&")))
            return resp
        return open


def tree_names(*folders: Path) -> set[str]:
    out = set()
    for folder in folders:
        if folder.exists():
            out |= {str(p.relative_to(folder)) for p in folder.rglob("*")}
    return out


def csrf_of(t: Tablet, page: str) -> str:
    m = CSRF_RE.search(t.get(page).get_data(as_text=True))
    assert m, page
    return m.group(1) or m.group(2)


def ok(r, what):
    assert r.status_code in (200, 302, 303), f"{what}: {r.status_code} {r.get_data(as_text=True)[:800]}"
    return r


def decode_qr(pdf: bytes, folder: Path) -> list[str]:
    path = folder / "slip.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "203", "-png", "-singlefile", str(path), str(folder / "slip-203")],
                   check=True, capture_output=True, timeout=60)
    Image.open(folder / "slip-203.png").convert("L").reduce(2).save(folder / "slip-half.png")
    out = subprocess.run(["zbarimg", "--raw", "-q", str(folder / "slip-half.png")], capture_output=True,
                         text=True, timeout=60)
    return out.stdout.splitlines()


def hits(text: str, canaries: dict[str, str]) -> list[str]:
    low = text.lower()
    return [f"{label}={value!r}" for label, value in canaries.items() if value.lower() in low]


def test_no_canary_in_logs_file_names_qr_or_urls(make_app, clock, tmp_path, tmp_path_factory, caplog,
                                                 monkeypatch):
    caplog.set_level(logging.DEBUG)  # the root logger: every logger that propagates
    for name in ("werkzeug", "booth", "flask.app"):
        caplog.set_level(logging.DEBUG, logger=name)
    rec = Recorder()
    monkeypatch.setattr(FlaskClient, "open", rec.wrap(FlaskClient.open))
    backups = tmp_path / "usb-stick"
    app = make_app(BACKUP_DIR=str(backups))
    app.logger.setLevel(logging.DEBUG)
    instance = Path(app.instance_path)

    # ---------------------------------------------------------------- setup over HTTP, with canaries
    coord = Tablet(app)
    r = coord.post("/setup", {
        "event_name": FREE_TEXT["event name"], "event_day": "2026-06-27", "place": FREE_TEXT["place"],
        "timezone": "America/Mexico_City", "booth_name": FREE_TEXT["booth name"], "central_base_url": CENTRAL,
        "coordinator_code": "C01", "pin": "482913", "pin_confirm": "482913", "confirm_clock": "y"},
        csrf_page="/setup")
    ok(r, "setup")
    assert r.status_code == 303, r.get_data(as_text=True)[:800]

    from booth.auth import services as auth
    from booth.settings import services as settings_services
    with app.app_context():
        from booth.events.models import Event
        c01 = auth.staff_by_code(db.session, "C01")
        c01.clinical_lead = True
        event = db.session.scalar(select(Event))
        settings_services.sign_off_defaults(db.session, event.id, now=clock.now(), actor=c01)
        products = {code: str(p.id) for code, p in settings_services.products_by_code(db.session).items()}
        db.session.commit()

    # staff with a canary alias; lots with canary lot numbers; a destination full of canaries
    ok(coord.post("/staff", {"code": "B01", "alias": FREE_TEXT["staff alias"], "roles": ["tester", "counselor"],
                             "pin": "731945", "pin_confirm": "731945"}, csrf_page="/staff"), "staff")
    with app.app_context():
        assert auth.staff_by_code(db.session, "B01").alias == FREE_TEXT["staff alias"]
    expires = (date(2026, 6, 27) + timedelta(days=90)).isoformat()
    for product, label in (("determine-hiv", "lot number (Determine)"),
                           ("oraquick-hcv", "lot number (OraQuick HCV)")):
        ok(coord.post("/stock/lots", {"product": products[product], "lot_number": FREE_TEXT[label],
                                      "expires_on": expires, "quantity": "20"}, csrf_page="/stock"), label)
    with app.app_context():
        from booth.stock import services as stock
        for item in ("condom", "lubricant"):
            stock.receive_supply(db.session, booth_id=event_booth_id(), item=item, quantity=50, now=clock.now(),
                                 actor=auth.staff_by_code(db.session, "C01"))
        db.session.commit()
    ok(coord.post("/destinations", {
        "name": FREE_TEXT["destination name"], "slip_name": FREE_TEXT["slip name"], "kind": "hiv_clinic",
        "address": FREE_TEXT["destination address"], "hours": FREE_TEXT["destination hours"],
        "phone": "55 1234 5678", "what_to_bring": FREE_TEXT["what to bring"], "serves": "everyone",
        "reasons": ["hiv_confirmation"], "open_days": [str(d) for d in range(1, 8)]},
        csrf_page="/destinations"), "destination")
    from booth.referrals.models import Destination
    with app.app_context():
        dest_id = str(db.session.scalar(select(Destination.id).where(Destination.name == FREE_TEXT["destination name"])))
    ok(coord.post("/destinations/rules", {"reason": "hiv_confirmation", "beneficiary": "any",
                                          "destination": dest_id, "priority": "1"}, csrf_page="/destinations"),
       "rule")

    # ---------------------------------------------------------------- the encounter, every answer distinctive
    t = Tablet(app, new_device(app, clock))
    t.login("B01", "731945")
    html = t.get("/visits/new").get_data(as_text=True)
    nonce = re.search(r'name="nonce" value="([^"]+)"', html).group(1)
    r = ok(t.post("/visits", {"nonce": nonce, **ANSWERS, "beneficiary": "no", "first_time": "no",
                              "known_hiv_positive": "no", "previous_hcv_treatment": "no",
                              "treated_syphilis_before": "no", "exposure_72h": "no", "key_populations_asked": "yes",
                              "key_populations": list(KEY_POPS)}, csrf_page="/visits/new"), "visit")
    url = r.headers["Location"]
    from booth.visits.models import Visit
    with app.app_context():
        v = db.session.scalar(select(Visit))
        assert (v.age_band, v.gender_identity, v.sex_at_birth, v.last_test) == tuple(ANSWERS.values()), \
            "the answers did not reach the visit: the canaries would prove nothing"
        assert sorted(v.key_populations) == sorted(KEY_POPS)
    ok(t.post(url + "/consent", {"all": "yes", "given": "yes"}, csrf_page=url), "consent")
    forms = re.findall(r'action="(/visits/[^"]+/screenings)".*?name="nonce" value="([^"]+)".*?name="lot" '
                       r'value="([^"]+)".*?name="sample_type" value="([^"]+)"', t.get(url).get_data(as_text=True),
                       re.S)
    assert forms, "no screening could start"
    for action, n, lot, sample in forms:
        ok(t.post(action, {"nonce": n, "lot": lot, "sample_type": sample}, csrf_page=url), "start")
    ids = sorted(set(re.findall(r'action="/screenings/([^/]+)/result"', t.get(url).get_data(as_text=True))))
    for _ in range(25):
        clock.advance(minutes=1)
        t.get("/board", headers={"HX-Request": "true"})  # the timer board, polled like a real screen
        assert t.get("/visits").status_code == 200       # a tap a minute keeps the tablet unlocked
    from booth.screening.models import Screening
    from booth.settings.models import KitProduct
    with app.app_context():
        determine = {str(sid) for sid in db.session.scalars(
            select(Screening.id).join(KitProduct, KitProduct.id == Screening.product_id)
            .where(KitProduct.code == "determine-hiv"))}
    assert determine, "no Determine screening started"
    for sid in ids:
        outcome = "reactive" if sid in determine else "non_reactive"
        ok(t.post(f"/screenings/{sid}/result", {"outcome": outcome}, csrf_page=url), f"result {sid}")
    ok(t.post(url + "/counseling/post/start", {}, csrf_page=url), "counseling start")
    for _ in range(4):
        clock.advance(minutes=1)
        assert t.get("/visits").status_code == 200
    ok(t.post(url + "/counseling/post", {"result_given": "yes", "supply_condom": "4", "topics": ["prep"]},
              csrf_page=url), "counseling")

    # ---------------------------------------------------------------- the referral: page, slip, QR, neutral page
    new_page = t.get(f"{url}/referrals/new").get_data(as_text=True)
    assert "hiv_confirmation" in new_page, "the HIV screening did not come out reactive"
    r = ok(t.post(f"{url}/referrals", {"reason": "hiv_confirmation", "destination": dest_id, "valid_days": "30"},
                  csrf_page=f"{url}/referrals/new?reason=hiv_confirmation"), "referral")
    ref_url = r.headers["Location"]
    t.get(ref_url)
    from booth.referrals import services as referrals
    from booth.referrals.models import Referral
    with app.app_context():
        ref = db.session.scalar(select(Referral))
        ref_id, folio = str(ref.id), ref.folio
        token = codes.token_for(referrals.referral_key(app.instance_path), ref.id)
    pdf = t.get(f"/referrals/{ref_id}/slip.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    qr = decode_qr(pdf.data, tmp_path_factory.mktemp("qr"))
    assert qr == [f"{CENTRAL}/r/{token}"], f"QR payload must be exactly the base URL + /r/<token>: {qr}"
    ok(app.test_client().get(f"/r/{token}"), "neutral page")
    ok(t.post(f"/referrals/{ref_id}/print", {}, csrf_page=ref_url), "print")
    ok(t.post(url + "/close", {"final_state": "done"}, csrf_page=url), "close")

    # the clinic finds it by folio (typed: a form body, never a URL) and by scanning the QR
    with app.app_context():
        auth.create_staff(db.session, code="L01", roles=["clinic"], pin="731945", now=clock.now())
        db.session.commit()
    coord.login("C01", "482913")  # the coordinator's tablet locked while the visit went on
    ok(coord.post(f"/destinations/{dest_id}/staff", {"code": "L01"}, csrf_page="/destinations"), "link clinic")
    clinic = Tablet(app, new_device(app, clock))
    clinic.login("L01", "731945")
    ok(clinic.post("/clinic/lookup", {"folio": codes.display(folio)}, csrf_page="/clinic"), "lookup")
    ok(clinic.get(f"/clinic/r/{token}"), "clinic scan")
    ok(clinic.get(f"/clinic/referrals/{ref_id}"), "clinic page")

    # ---------------------------------------------------------------- coordinator: dashboard, export, backup
    ok(coord.get("/dashboard"), "dashboard")
    csv_resp = ok(coord.get("/dashboard/export.csv"), "export")
    downloads = [csv_resp] + [ok(coord.get(f"/dashboard/export.{ext}"), f"export {ext}")
                              for ext in ("pdf", "dhis2.json", "fhir.json")]
    ok(coord.get("/sync"), "sync screen")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["backup", "init-recovery"]).exit_code == 0
    r = runner.invoke(args=["backup", "now"])
    assert r.exit_code == 0, r.output

    # ---------------------------------------------------------------- the canaries
    from booth.counseling.models import Counseling
    from booth.screening.models import ScreeningResult
    from booth.visits.models import Consent
    with app.app_context():
        record_ids = {"visit id": str(v.id), "referral id": ref_id}
        for model, label in ((Consent, "consent id"), (Screening, "screening id"), (ScreeningResult, "result id"),
                             (Counseling, "counseling id")):
            for i, rid in enumerate(db.session.scalars(select(model.id))):
                record_ids[f"{label} {i}"] = str(rid)
                record_ids[f"{label} {i} (hex)"] = rid.hex
        record_ids["visit id (hex)"] = v.id.hex
        call_number = db.session.scalar(select(Visit.call_number))
    assert call_number == "A-001"
    personal = {"call number": call_number, "folio": folio, "folio (display)": codes.display(folio),
                **{f"answer {k}": val for k, val in ANSWERS.items()},
                **{f"key population {k}": k for k in KEY_POPS}}
    free = {f"free text: {k}": val for k, val in FREE_TEXT.items()}
    everything = {**record_ids, **personal, "QR token": token, **free}

    problems = []
    for r_ in caplog.records:
        try:
            line = r_.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string is still a line to scan
            line = f"{r_.msg} {r_.args}"
        if r_.exc_text:
            line += "\n" + r_.exc_text
        if found := hits(line, everything):
            problems.append(f"LOG {r_.name}:{r_.levelname} {found}: {line[:300]!r}")
    for name in tree_names(instance, backups):
        if found := hits(name, everything):
            problems.append(f"FILE NAME {found}: {name!r}")
    for disposition in rec.dispositions + [pdf.headers["Content-Disposition"]] + \
            [d.headers["Content-Disposition"] for d in downloads]:
        if found := hits(disposition, everything):
            problems.append(f"DOWNLOAD NAME {found}: {disposition!r}")
    token_pages = (f"/r/{token}", f"/clinic/r/{token}")
    for where, u in rec.urls:
        path = re.sub(r"^https?://[^/]+", "", u)
        if path.startswith(EXEMPT_PREFIXES):
            continue
        found = hits(unquote_plus(u), {**personal, **free})
        if token in u and path.split("?")[0] not in token_pages:
            found.append("QR token outside /r/<token>")
        if found:
            problems.append(f"URL {found}: {u!r} ({where})")

    from booth.audit.models import AuditEntry
    with app.app_context():
        for row in db.session.scalars(select(AuditEntry)):
            line = " ".join(str(getattr(row, c.name)) for c in AuditEntry.__table__.columns)
            if found := hits(line, {**personal, "QR token": token, **free}):
                problems.append(f"AUDIT {found}: {line!r}")
        assert db.session.scalar(select(AuditEntry.id)) is not None, "no audit rows: nothing was checked"

    # the scan saw something: the flow's URLs, the HTML's URLs, the canaries reached pages and files
    assert len(rec.urls) > 100 and any(w.startswith("HTML") for w, _u in rec.urls)
    assert any(n.endswith(".sqlite3") for n in tree_names(instance)) or (tmp_path / "node.sqlite3").exists()
    assert tree_names(backups), "no backup file was written: its name was not checked"
    assert not problems, "personal values leaked:\n" + "\n".join(problems)


def event_booth_id():
    from booth.events.models import Booth
    return db.session.scalar(select(Booth.id))
