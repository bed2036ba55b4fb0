"""The sync as the two coordinators do it, in Debian's Chromium: at central, sign in (password + TOTP),
create the event and register a booth node (the one-time code is shown once); at the booth, enroll with
that code, send with the progress bar, read and print the receipt. axe-core finds nothing serious and no
screen scrolls sideways on a tablet or a phone. Central runs on PostgreSQL."""
from __future__ import annotations

import os
import re
import threading

import pyotp
import pytest
from werkzeug.serving import make_server

from tests.browser.conftest import PHONE, TABLET
from tests.conftest import add_staff, new_device
from tests.sync.conftest import central, make_booth  # noqa: F401  (fixtures)
from tests.test_central import PASSWORD, add_coordinator

pytest.importorskip("playwright")
from axe_playwright_python.sync_playwright import Axe  # noqa: E402
from playwright.sync_api import Page, expect  # noqa: E402

SHOTS = os.environ.get("VINCULO_SCREENSHOTS")
_axe = None


def check(page: Page, name: str) -> None:
    global _axe
    _axe = _axe or Axe()
    violations = [v for v in _axe.run(page).response["violations"] if v["impact"] in ("serious", "critical")]
    assert not violations, f"{name}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} → {[n['target'] for n in v['nodes']][:5]}" for v in violations)
    for size_name, size in (("tablet", TABLET), ("phone", PHONE)):
        page.set_viewport_size(size)
        if SHOTS:
            page.screenshot(path=f"{SHOTS}/{name}-{size_name}.png", full_page=True)
        scroll, width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll <= width, f"{name} ({size_name}): horizontal scroll ({scroll}px > {width}px)"
    page.set_viewport_size(TABLET)


def english(page: Page) -> None:
    button = page.get_by_role("button", name="English", exact=True)
    if button.count():
        button.click()
        expect(page.locator("html")).to_have_attribute("lang", "en")


@pytest.fixture
def served_booth(make_booth):  # noqa: F811
    app = make_booth(visits=25, seed=61)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.url = f"http://127.0.0.1:{server.server_port}"
    yield app
    server.shutdown()
    thread.join(timeout=5)


def test_register_enroll_send_and_print_the_receipt(central, served_booth, new_context, clock):  # noqa: F811
    errors: list[str] = []

    def watch(page):
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        return page

    # ---- central: sign in, create the event, register the node
    secret = add_coordinator(central, clock)
    c = watch(new_context(viewport=TABLET).new_page())
    c.goto(central.url + "/signin")
    english(c)
    c.get_by_label("Staff code").fill("C01")
    c.get_by_label("Password").fill(PASSWORD)
    c.get_by_label(re.compile("code", re.I)).last.fill(pyotp.TOTP(secret).at(clock.now()))
    c.get_by_role("button", name=re.compile("Sign in", re.I)).click()
    c.get_by_role("link", name=re.compile("Booth nodes and sync")).click()
    c.get_by_label("Event name").fill("Marcha del Orgullo 2026")
    c.get_by_label("Date").fill("2026-06-27")
    c.get_by_label("Place").fill("Paseo de la Reforma")
    c.get_by_role("button", name="Create the event").click()
    c.get_by_label("Name (e.g. Booth 1)").fill("Módulo 1")
    c.get_by_label("Event", exact=True).select_option(label="Marcha del Orgullo 2026 · 2026-06-27")
    c.get_by_role("button", name="Register and show the one-time code").click()
    code = c.locator(".alert code").inner_text().strip()
    assert re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", code)
    check(c, "central-sync")

    # ---- booth: the coordinator enrolls the node with the code and sends
    booth = served_booth
    add_staff(booth, booth.clock, "C77", ["coordinator"])
    ctx = new_context(viewport=TABLET)
    ctx.add_cookies([{"name": "vinculo_device", "value": new_device(booth, booth.clock), "url": booth.url}])
    b = watch(ctx.new_page())
    b.goto(booth.url + "/login")
    english(b)
    b.get_by_label("Staff code").fill("C77")
    b.get_by_label("PIN (6 digits)").fill("731945")
    b.get_by_role("button", name="Log in").click()
    b.get_by_role("link", name=re.compile("Sync with central")).click()
    check(b, "booth-sync-not-enrolled")
    b.get_by_label("Central server address").fill(central.url)
    b.get_by_label("One-time code").fill(code.lower().replace("-", " "))    # typed loosely: still accepted
    b.get_by_role("button", name="Enroll this node").click()
    expect(b.get_by_text(re.compile(r"records not yet acknowledged by central"))).to_be_visible()
    b.get_by_role("button", name="Send now").click()
    expect(b.get_by_text(re.compile(r"^✔ Sent \d+ records"))).to_be_visible(timeout=60000)
    b.reload()
    expect(b.get_by_text("0 records not yet acknowledged by central.")).to_be_visible()
    expect(b.get_by_text(re.compile("all match"))).to_be_visible()
    check(b, "booth-sync-sent")
    b.get_by_role("link", name="Receipt to print").click()
    expect(b.get_by_role("heading", name="Sync receipt")).to_be_visible()
    check(b, "booth-receipt")
    assert not errors, errors
