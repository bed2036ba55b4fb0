"""The booth workflow as volunteers live it, in Debian's Chromium on a tablet (800×1280) and a phone (390×844).

A ready booth (signed-off settings: HIV two-test algorithm, HCV one test; lots and supplies received;
tester T01, counselor K01, coordinator C01) on a live node with a ``FrozenClock``. Nobody waits for a read
window: the test moves the node's clock (``clock.advance``) and each tablet's clock (``page.clock``)
together, in steps shorter than the 5-minute idle lock, the tablets in use meanwhile (a request and a
touch per step). Every screen on the way is checked: axe-core finds no serious or critical violation, and
the page does not scroll sideways at the test's screen size.

Each tablet switches to English with the header button (one tap) so the test does not depend on the
Spanish catalogue.
"""
from __future__ import annotations

import re

import pytest

from tests.browser.conftest import PHONE, TABLET
from tests.conftest import new_device, setup_node

pytest.importorskip("playwright")
from axe_playwright_python.sync_playwright import Axe  # noqa: E402
from playwright.sync_api import Page, expect  # noqa: E402

TESTER, COUNSELOR, COORDINATOR = ("T01", "582931"), ("K01", "582931"), ("C01", "482913")
SIZES = pytest.mark.parametrize("viewport", [TABLET, PHONE], ids=["tablet", "phone"])
STEP_MINUTES = 4  # < the idle lock
# Chromium logs every 4xx answer; a stale write (409) is one the card shows on purpose
EXPECTED_REFUSAL = re.compile(r"Failed to load resource: the server responded with a status of 409\b")

_axe = None


@pytest.fixture
def booth(live_server, clock):
    """The live node, set up and ready to test."""
    from booth.extensions import db
    from tests.workflow.conftest import build_ctx

    node = setup_node(live_server.app, clock)
    with live_server.app.app_context():
        build_ctx(live_server.app, node, clock)
        db.session.remove()
    return live_server


@pytest.fixture
def tablets(booth, new_context, clock):
    """tablets(staff, viewport) → a page on a newly enrolled tablet, in English, logged in; console errors
    (a CSP refusal, a script error) fail the test."""
    errors: list[str] = []

    def open_tablet(staff, viewport) -> Page:
        context = new_context(viewport=viewport)
        context.add_cookies([{"name": "vinculo_device", "value": new_device(booth.app, clock, name=staff[0]),
                              "url": booth.url}])
        context.clock.install(time=clock.now())
        page = context.new_page()
        page.on("console", lambda m: errors.append(f"{m.text} at {m.location.get('url')}")
                if m.type == "error" and not EXPECTED_REFUSAL.match(m.text) else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(booth.url + "/login")
        english = page.get_by_role("button", name="English", exact=True)
        if english.count():
            english.click()
            expect(page.locator("html")).to_have_attribute("lang", "en")
        log_in(page, staff)
        return page

    yield open_tablet
    assert not errors, errors


def log_in(page: Page, staff) -> None:
    page.get_by_label("Staff code").fill(staff[0])
    page.get_by_label("PIN (6 digits)").fill(staff[1])
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name=f"Hello, {staff[0]}")).to_be_visible()


def check(page: Page, name: str) -> None:
    """No serious or critical axe-core violation; no sideways scroll at this screen size."""
    global _axe
    _axe = _axe or Axe()
    violations = [v for v in _axe.run(page).response["violations"] if v["impact"] in ("serious", "critical")]
    assert not violations, f"{name}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} → {[n['target'] for n in v['nodes']][:5]}" for v in violations)
    scroll, width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll <= width, f"{name}: horizontal scroll ({scroll}px > {width}px)"


def let_time_pass(base: str, clock, pages: list[Page], minutes: int, tablet_clocks: bool = True) -> None:
    """The node's clock (and the tablets' clocks, unless ``tablet_clocks`` is false) move on; each tablet
    is in use meanwhile: a request per step for the node's idle lock, a touch for the tablet's."""
    while minutes > 0:
        step = min(STEP_MINUTES, minutes)
        minutes -= step
        clock.advance(minutes=step)
        for page in pages:
            assert page.request.get(base + "/visits").ok
            if tablet_clocks:
                page.evaluate("document.dispatchEvent(new Event('pointerdown'))")
                page.clock.fast_forward(step * 60_000)


def new_visit(page: Page, check_screens: bool = False) -> None:
    """Queue → New visit → age band: the visit card of A-001."""
    page.get_by_role("link", name=re.compile(r"^Visits")).click()
    expect(page.get_by_role("heading", name=re.compile("visits"))).to_be_visible()
    if check_screens:
        check(page, "queue")
    page.get_by_role("link", name="New visit").click()
    expect(page.get_by_role("heading", name="New visit")).to_be_visible()
    if check_screens:
        check(page, "intake")
    page.get_by_role("button", name="25-29", exact=True).click()
    expect(page.locator("#visit-card h1")).to_have_text("A-001")
    expect(badge(page)).to_have_text("Waiting")


def badge(page: Page):
    return page.locator("#visit-card .visit__head .badge")


def timers(page: Page):
    return page.locator("#visit-card .device .timer__label")


def icons(page: Page):
    return page.locator("#visit-card .device .timer__icon")


def read(page: Page, outcome: str) -> None:
    """Tap a result on the first running device of the card; the card comes back without it."""
    devices = page.locator("#visit-card .device")
    before = devices.count()
    devices.first.get_by_role("button", name=outcome, exact=True).click()
    expect(devices).to_have_count(before - 1)


def tap_chip(page: Page, group: str, value: str) -> None:
    page.get_by_role("group", name=group).get_by_text(value, exact=True).click()


@SIZES
def test_non_reactive_hiv_and_hcv_visit(booth, tablets, clock, viewport):
    page = tablets(TESTER, viewport)
    new_visit(page, check_screens=True)
    check(page, "card: waiting")
    page.get_by_role("button", name=re.compile(r"^Agrees to every test offered")).click()
    expect(page.locator("#consent-h ~ ul > li")).to_have_text([re.compile(r"HIV: agreed"),
                                                               re.compile(r"Hepatitis C: agreed")])
    page.get_by_role("button", name=re.compile(r"^Start HIV test")).click()
    expect(timers(page)).to_have_count(1)
    page.get_by_role("button", name=re.compile(r"^Start Hepatitis C test")).click()
    expect(timers(page)).to_have_text(["Developing", "Developing"])
    developing = icons(page).first.inner_text()
    expect(badge(page)).to_have_text("Testing")
    check(page, "card: two devices developing")

    # 21 minutes later (Determine HIV reads from 15 min, OraQuick HCV from 20): the countdowns running
    # in the browser turn to "ready", with no reload
    let_time_pass(booth.url, clock, [page], 21)
    expect(timers(page)).to_have_text(["Ready to read", "Ready to read"])
    for icon in icons(page).all():  # announced by more than colour: text and icon
        expect(icon).not_to_have_text(developing)
    check(page, "card: ready to read")
    read(page, "Non-reactive")
    read(page, "Non-reactive")
    expect(page.locator("#visit-card .results tbody tr")).to_have_text([re.compile(r"HIV\s*Non-reactive"),
                                                                       re.compile(r"Hepatitis C\s*Non-reactive")])
    expect(page.locator("#concl-h + ul > li > strong")).to_have_text(["HIV:", "Hepatitis C:"])
    expect(page.locator("#concl-h + ul")).to_contain_text("HIV: Non-reactive")
    expect(badge(page)).to_have_text("Counseling")
    check(page, "card: results read")

    # the counselor takes the tablet: switch user, queue, the call number
    page.get_by_role("button", name="Switch user").click()
    log_in(page, COUNSELOR)
    page.get_by_role("link", name=re.compile(r"^Visits")).click()
    page.get_by_role("link", name=re.compile(r"A-001")).click()
    page.get_by_role("button", name="Start post-test counseling").click()
    expect(page.get_by_role("button", name="Start post-test counseling")).to_have_count(0)
    let_time_pass(booth.url, clock, [page], 4)
    tap_chip(page, "Did the person receive the result?", "Yes")
    page.locator(".supply", has_text="Condoms").get_by_text("4", exact=True).click()
    page.locator(".supply", has_text="Lubricant").get_by_text("2", exact=True).click()
    check(page, "card: post-test counseling")
    page.get_by_role("button", name="Finish post-test counseling").click()
    expect(page.locator("#couns-h ~ p").first).to_contain_text("Post-test: 4 min, by K01 · result given")
    expect(badge(page)).to_have_text("Done")
    check(page, "card: counseled")
    page.get_by_role("button", name="Done", exact=True).click()
    expect(page).to_have_url(re.compile(r"/visits$"))
    expect(page.locator("#queue")).to_contain_text("No open visits")


@SIZES
def test_reactive_hiv_asks_for_a_second_product_then_a_referral(booth, tablets, clock, viewport):
    page = tablets(COORDINATOR, viewport)  # a coordinator both tests and counsels
    new_visit(page)
    page.get_by_role("button", name="Agrees: HIV").click()
    expect(page.get_by_role("button", name="Agrees: HIV")).to_have_count(0)
    page.get_by_role("button", name="Refuses: Hepatitis C").click()
    expect(page.locator("#consent-h ~ ul > li")).to_have_text([re.compile(r"HIV: agreed"),
                                                               re.compile(r"Hepatitis C: refused")])
    start = page.get_by_role("button", name=re.compile(r"^Start HIV test"))
    expect(start).to_contain_text("Determine")
    start.click()
    expect(timers(page)).to_have_text(["Developing"])
    let_time_pass(booth.url, clock, [page], 16)
    expect(timers(page)).to_have_text(["Ready to read"])
    read(page, "Reactive")

    # the booth asks for the second test, of a different product, preselected
    second = page.locator("#visit-card .start", has_text="HIV")
    expect(second.get_by_role("heading")).to_have_text("HIV — second test, a different product")
    start = second.get_by_role("button", name=re.compile(r"^Start HIV test"))
    expect(start).not_to_contain_text("Determine")
    expect(page.locator("#concl-h + ul")).to_contain_text("HIV: Reactive: needs a confirmatory test (in progress)")
    check(page, "card: second test asked")
    start.click()
    expect(timers(page)).to_have_text(["Developing"])
    let_time_pass(booth.url, clock, [page], 21)
    expect(timers(page)).to_have_text(["Ready to read"])
    read(page, "Reactive")
    conclusion = page.locator("#concl-h + ul > li", has_text="HIV:")
    expect(conclusion).to_contain_text("HIV: Reactive: needs a confirmatory test")
    expect(conclusion).not_to_contain_text("in progress")
    expect(conclusion.locator(".script")).not_to_contain_text(re.compile("positive", re.I))

    page.get_by_role("button", name="Start post-test counseling").click()
    expect(page.get_by_role("button", name="Start post-test counseling")).to_have_count(0)
    tap_chip(page, "Did the person receive the result?", "Yes")
    page.get_by_role("button", name="Finish post-test counseling").click()
    expect(badge(page)).to_have_text("Referral pending")
    expect(page.locator("#visit-card")).to_contain_text("This person needs a referral.")
    check(page, "card: referral pending")


@SIZES
def test_device_read_too_late_is_invalid_and_asks_for_a_new_device(booth, tablets, clock, viewport):
    page = tablets(TESTER, viewport)
    new_visit(page)
    page.get_by_role("button", name=re.compile(r"^Agrees to every test offered")).click()
    page.get_by_role("button", name=re.compile(r"^Start Hepatitis C test")).click()
    expect(timers(page)).to_have_text(["Developing"])
    developing = icons(page).first.inner_text()
    let_time_pass(booth.url, clock, [page], 41)  # OraQuick HCV: not after 40 minutes
    expect(timers(page)).to_have_text(["Too late"])
    expect(icons(page).first).not_to_have_text(developing)
    check(page, "card: too late")
    read(page, "Non-reactive")  # what the tester saw, but the window had closed
    expect(page.locator("#visit-card .results tbody tr")).to_have_text(
        [re.compile(r"Hepatitis C\s*Invalid — Read too late")])
    repeat = page.locator("#visit-card .start", has_text="Hepatitis C")
    expect(repeat.get_by_role("heading")).to_have_text("Hepatitis C — repeat with a new device")
    expect(repeat.get_by_role("button", name=re.compile(r"^Start Hepatitis C test"))).to_be_visible()
    expect(page.locator("#concl-h + ul")).to_contain_text("Hepatitis C: Invalid: not resolved (in progress)")
    check(page, "card: read too late")


@SIZES
def test_two_tablets_see_the_same_visit_and_timer_board(booth, tablets, clock, viewport):
    a = tablets(TESTER, viewport)
    b = tablets(COUNSELOR, viewport)
    new_visit(a)
    b.get_by_role("link", name=re.compile(r"^Visits")).click()
    b.get_by_role("link", name=re.compile(r"A-001")).click()
    a.get_by_role("button", name=re.compile(r"^Agrees to every test offered")).click()
    expect(a.locator("#consent-h ~ ul > li")).to_have_count(2)
    # tablet B still shows the visit as it was: its write is refused, and it gets the current state
    b.get_by_role("button", name="Left before testing").click()
    expect(b.locator("#visit-card [role=alert]")).to_contain_text("Someone else changed this visit a moment ago")
    expect(b.locator("#consent-h ~ ul > li")).to_have_count(2)
    a.get_by_role("button", name=re.compile(r"^Start HIV test")).click()
    expect(timers(a)).to_have_count(1)
    for page in (a, b):
        page.get_by_role("link", name=re.compile("Queue")).click()
        page.get_by_role("link", name="Timer board").click()
    rows = []
    for page in (a, b):
        row = page.locator("#board tbody tr")
        expect(row).to_have_count(1)
        expect(row.locator("td")).to_have_text([re.compile(r"^1$"), "A-001", "Determine HIV-1/2",
                                                re.compile(r"Developing"), re.compile("Read")])
        expect(row).to_have_class(re.compile(r"board__row--developing"))
        rows.append((row, row.locator(".timer__icon").inner_text()))
    check(a, "board")

    # the node's clock passes the window's start (15 min; the tablets' clocks stay): each board shows
    # "ready" after its next poll, 5 s later
    let_time_pass(booth.url, clock, [a, b], 16, tablet_clocks=False)
    for page in (a, b):
        page.clock.run_for(5_000)
    for row, developing in rows:
        expect(row).to_have_class(re.compile(r"board__row--ready"))  # drawn by the node: the poll came back
        expect(row.locator(".timer__label")).to_have_text("Ready to read")
        expect(row.locator(".timer__icon")).not_to_have_text(developing)
    check(b, "board: ready")


@SIZES
def test_coordinator_screens(booth, tablets, viewport):
    page = tablets(COORDINATOR, viewport)
    for tile, heading, name in (("Kits and supplies", re.compile("Kits|Stock|Lots"), "stock"),
                                ("Clinical settings", re.compile("Clinical settings"), "settings"),
                                ("Close of day", re.compile("Close of day"), "close of day")):
        page.get_by_role("link", name="Vínculo").click()
        page.get_by_role("link", name=re.compile(rf"^{tile}")).click()
        expect(page.get_by_role("heading", name=heading).first).to_be_visible()
        check(page, name)
