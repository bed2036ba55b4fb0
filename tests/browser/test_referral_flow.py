"""A referral from the booth to the clinic and back, in Debian's Chromium on a tablet held in portrait (800×1280).

The counselor issues a referral for a visit with a reactive HIV result and gets the slip; the QR printed on
the slip (decoded from a 203 dpi render, a thermal printer's resolution) opens, on a second browser that is
not logged in, the neutral page for the person holding the slip; clinic staff sign in from there and record
arrival → confirmatory result → treatment start → closed, after which the referral offers no form and the
node refuses any further change. Every screen on the way is checked with axe-core (no serious or critical
violation) and for console errors. Set ``VINCULO_SCREENSHOTS=/some/dir`` to keep a screenshot of each.

No central server address is set: the QR points to the node's own address. Each browser switches to English
with the header button (one tap) so that the test does not depend on the Spanish catalogue.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import TABLET
from tests.conftest import new_device, setup_node

pytest.importorskip("playwright")
from axe_playwright_python.sync_playwright import Axe  # noqa: E402
from playwright.sync_api import Page, expect  # noqa: E402

COUNSELOR = ("K01", "582931")
CLINIC = ("L01", "604172")
TOOLS = ("pdftoppm", "zbarimg")
SHOTS = os.environ.get("VINCULO_SCREENSHOTS")  # a directory outside the repository: a screenshot per screen

_axe = None


def check(page: Page, name: str) -> None:
    """axe-core finds no serious or critical violation on the screen as it is."""
    global _axe
    _axe = _axe or Axe()
    violations = [v for v in _axe.run(page).response["violations"] if v["impact"] in ("serious", "critical")]
    assert not violations, f"{name}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} → {[n['target'] for n in v['nodes']][:5]}" for v in violations)
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


def open_browser(new_context, errors: list, clock):
    context = new_context(viewport=TABLET)
    context.clock.install(time=clock.now())
    page = context.new_page()
    page.on("console", lambda m: errors.append(f"{m.text} at {m.location.get('url')}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return context, page


def tap_english(page: Page) -> None:
    button = page.get_by_role("button", name="English", exact=True)
    if button.count():
        button.click()
        expect(page.locator("html")).to_have_attribute("lang", "en")


def log_in(page: Page, staff) -> None:
    page.get_by_label("Staff code").fill(staff[0])
    page.get_by_label("PIN (6 digits)").fill(staff[1])
    page.get_by_role("button", name="Log in").click()


def decode_qr(pdf: bytes, tmp_path) -> list[str]:
    """The slip as a thermal printer prints it (203 dpi), read back with zbarimg: every code found."""
    (tmp_path / "slip.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "203", "-png", "-singlefile", str(tmp_path / "slip.pdf"),
                    str(tmp_path / "slip")], check=True, capture_output=True, timeout=30)
    out = subprocess.run(["zbarimg", "--raw", "-q", str(tmp_path / "slip.png")], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    return [line for line in out.stdout.splitlines() if line.strip()]


@pytest.fixture
def booth(live_server, clock):
    """A ready booth with the example destinations, a visit with a reactive HIV result, and clinic staff
    member L01 linked to the specialised clinic the rules suggest for it."""
    from booth.auth import services as auth
    from booth.auth.models import Role
    from booth.extensions import db
    from booth.referrals import services
    from tests.referrals.test_referrals import reactive_visit
    from tests.workflow.conftest import build_ctx

    for tool in TOOLS:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is missing (poppler-utils, zbar-tools)")
    app = live_server.app
    node = setup_node(app, clock)
    with app.app_context():
        ctx = build_ctx(app, node, clock)
        _family, special, _hep, _pep = services.add_examples(db.session, now=clock.now(), actor=ctx.coordinator)
        visit = reactive_visit(ctx)
        assert services.suggest(db.session, reason="hiv_confirmation", visit=visit, today=ctx.today).id == special.id
        clinic = auth.create_staff(db.session, code=CLINIC[0], roles=[Role.CLINIC], pin=CLINIC[1], now=clock.now())
        services.link_staff(db.session, staff=clinic, destination=special, now=clock.now(), actor=ctx.coordinator)
        db.session.commit()
        info = {"visit_id": str(visit.id), "special": special.name, "slip_name": special.slip_name,
                "today": ctx.today.isoformat()}
        db.session.remove()
    return live_server, info


def test_issue_slip_scan_qr_and_close_the_loop_at_the_clinic(booth, new_context, clock, tmp_path):
    server, info = booth
    errors: list[str] = []

    # ---- tablet A at the booth: the counselor, on an enrolled tablet
    a_context, a = open_browser(new_context, errors, clock)
    a_context.add_cookies([{"name": "vinculo_device", "value": new_device(server.app, clock, name="Counseling"),
                            "url": server.url}])
    a.goto(server.url + "/login")
    tap_english(a)
    log_in(a, COUNSELOR)
    expect(a.get_by_role("heading", name=f"Hello, {COUNSELOR[0]}")).to_be_visible()

    # ---- the visit's referral screen: the reactive HIV result suggests the reason, the rules the destination
    a.goto(f"{server.url}/visits/{info['visit_id']}/referrals/new")
    expect(a.get_by_role("heading", name=re.compile(r"^Referral for "))).to_be_visible()
    expect(a.get_by_role("status").filter(has_text="No central server address")).to_be_visible()
    suggested_reason = a.get_by_role("button", name=re.compile(r"★$"))
    expect(suggested_reason).to_have_count(1)
    expect(suggested_reason).to_have_text(re.compile(r"^HIV confirmation"))
    suggested_reason.click()
    expect(a.get_by_role("button", name=re.compile(r"^HIV confirmation"))).to_have_attribute("aria-pressed", "true")
    destination = a.get_by_role("radio", name=re.compile(re.escape(info["special"])))
    expect(destination).to_be_checked()
    expect(a.get_by_role("radio", name="30 days")).to_be_checked()
    check(a, "referral-new")
    a.get_by_role("button", name="Issue referral and slip").click()

    # ---- the slip page: folio, the PDF embedded for the browser's print dialog, the one-tap print button
    expect(a.get_by_role("heading", name=re.compile(r"^Referral slip"))).to_be_visible()
    folio = a.locator("h1 .callnum").inner_text().strip()
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]", folio), folio
    expect(a.get_by_text(info["special"])).to_be_visible()
    expect(a.get_by_role("button", name="Print the slip")).to_be_visible()
    slip = a.locator("object.slip")
    expect(slip).to_have_attribute("type", "application/pdf")
    slip_url = server.url + slip.get_attribute("data")
    assert re.search(r"/referrals/[0-9a-f-]{36}/slip\.pdf$", slip_url), slip_url
    check(a, "referral-slip")
    slip_page = a.url

    # ---- the slip PDF, and the QR on it: the node's address (no central URL set) and a token, nothing else
    r = a_context.request.get(slip_url)
    assert r.ok and r.headers["content-type"] == "application/pdf", r.status
    assert 'filename="hoja.pdf"' in r.headers.get("content-disposition", "")
    pdf = r.body()
    assert pdf.startswith(b"%PDF")
    codes_found = decode_qr(pdf, tmp_path)
    assert len(codes_found) == 1, codes_found
    qr_url = codes_found[0]
    m = re.fullmatch(re.escape(server.url) + r"/r/([A-Za-z0-9_-]+)", qr_url)
    assert m, qr_url
    token = m.group(1)
    parts = urlsplit(qr_url)
    assert not parts.query and not parts.fragment
    for leak in (info["visit_id"], folio, folio.replace("-", ""), "hiv", "vih", "reactiv", "25-29"):
        assert leak.lower() not in qr_url.lower(), leak
    with server.app.app_context():
        from booth.extensions import db
        from booth.referrals import codes, services
        ref = services.by_folio(db.session, folio)
        assert ref is not None and ref.destination.name == info["special"]
        assert codes.token_for(services.referral_key(server.app.instance_path), ref.id) == token
        referral_id = str(ref.id)
        db.session.remove()
    assert slip_page.endswith(f"/referrals/{referral_id}")

    # ---- browser B, not logged in and not enrolled (the phone of whoever scans the slip): the neutral page
    b_context, b = open_browser(new_context, errors, clock)
    b.goto(qr_url)
    tap_english(b)
    expect(b).to_have_url(qr_url)
    expect(b.get_by_role("heading", name=info["slip_name"], exact=True)).to_be_visible()
    expect(b.get_by_text(re.compile(r"valid until " + info["today"][:4]))).to_be_visible()
    text = b.locator("body").inner_text() + " " + b.title()
    for word in ("VIH", "HIV", "reactiv", "confirm", "hepatit", "positiv", info["special"], "Clínica especializada"):
        assert word.lower() not in text.lower(), f"the neutral page shows {word!r}: {text}"
    check(b, "neutral")

    # ---- "Staff sign-in" on a clinic tablet enrolled at this node → PIN login → back to this referral
    b_context.add_cookies([{"name": "vinculo_device", "value": new_device(server.app, clock, name="Clinic"),
                            "url": server.url}])
    b.get_by_role("link", name="Staff sign-in").click()
    expect(b).to_have_url(re.compile(r"/login\?next=%2Fclinic%2Fr%2F" + re.escape(token) + "$"))
    log_in(b, CLINIC)
    clinic_url = f"{server.url}/clinic/referrals/{referral_id}"
    expect(b).to_have_url(clinic_url)
    expect(b.get_by_role("heading", name=re.compile(r"^Referral " + re.escape(folio)))).to_be_visible()
    expect(b.locator("dl.facts")).to_contain_text("HIV confirmation")
    expect(b.locator("dl.facts")).to_contain_text("Issued")
    check(b, "clinic-referral")

    # arrival today
    arrival = b.get_by_label("Arrival date")
    expect(arrival).to_have_value(info["today"])
    b.get_by_role("button", name="Record arrival").click()
    expect(b.locator("dl.facts")).to_contain_text("Arrived")
    expect(b.locator(".badge")).to_have_text("Arrived")
    # confirmatory result: only the results that fit an HIV referral are offered
    results = b.get_by_role("group", name="Confirmatory result").get_by_role("radio")
    expect(results).to_have_count(3)
    expect(b.get_by_role("radio", name=re.compile("HCV|Syphilis"))).to_have_count(0)
    check(b, "clinic-referral-arrived")
    b.get_by_role("radio", name="HIV confirmed", exact=True).check()
    b.get_by_role("button", name="Record the result").click()
    expect(b.locator("dl.facts")).to_contain_text("HIV confirmed")
    check(b, "clinic-referral-confirmed")
    # treatment start
    b.get_by_label("Treatment or PrEP start date").fill(info["today"])
    b.get_by_role("button", name="Record treatment start").click()
    expect(b.locator("dl.facts")).to_contain_text("Treatment started")
    # closed, completed
    b.get_by_text("Close this referral").click()
    b.get_by_role("radio", name="Completed", exact=True).check()
    b.get_by_role("button", name="Close", exact=True).click()
    expect(b.locator(".badge")).to_have_text("Closed")
    expect(b.get_by_text("This referral is closed and cannot be changed.")).to_be_visible()
    expect(b.locator("main form")).to_have_count(0)
    expect(b.get_by_role("button", name=re.compile("Record|Close"))).to_have_count(0)
    check(b, "clinic-referral-closed")

    # ---- any further change is refused
    csrf = b.locator("input[name=csrf_token]").first.get_attribute("value")
    r = b_context.request.post(clinic_url + "/arrival", form={"csrf_token": csrf, "day": info["today"]},
                               max_redirects=0)
    assert r.status == 422, (r.status, r.text()[:300])
    assert "closed and cannot be changed" in r.text()
    expect(b.locator(".badge")).to_have_text("Closed")

    # the booth sees the loop closed too
    a.goto(slip_page)
    expect(a.locator(".badge")).to_have_text("Closed")
    assert not errors, errors
