"""The foundation as a user lives it, in Debian's Chromium on a 10-inch tablet held in portrait.

Setup → add a tester → enroll a second tablet → PIN login → 6 idle minutes → PIN-only unlock → back on
the same page. Every screen on the way is checked with axe-core (no serious or critical violation) and
at tablet and phone sizes, with its texts as they are and 30 % longer (as Spanish ones are): no
horizontal scroll, nothing off screen or spilling out of its box, touch targets ≥ 48 px, text ≥ 16 px.

The test switches each tablet to English with the language button (one tap, as a volunteer would) so
that it does not depend on the Spanish catalogue. Set ``VINCULO_SCREENSHOTS=/some/dir`` to keep a
screenshot of every screen at both sizes (never inside the repository).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.browser.conftest import PHONE, TABLET
from tests.conftest import START

pytest.importorskip("playwright")
from axe_playwright_python.sync_playwright import Axe  # noqa: E402
from playwright.sync_api import Page, expect  # noqa: E402

SHOTS = os.environ.get("VINCULO_SCREENSHOTS")
COORDINATOR, COORDINATOR_PIN = "C01", "482913"
TESTER, TESTER_PIN = "T07", "731945"

# Measured in the page: what a user would notice on a small screen.
LAYOUT_PROBLEMS_JS = """
() => {
  const problems = [];
  const vw = window.innerWidth;
  const root = document.documentElement;
  if (root.scrollWidth > vw) problems.push(`horizontal scroll: ${root.scrollWidth}px > ${vw}px`);
  const shown = el => {
    const r = el.getBoundingClientRect(), s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && !el.closest(".visually-hidden, .skip");
  };
  const label = el => `<${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}${el.name ? " name=" + el.name : ""}> `
    + JSON.stringify((el.innerText || el.value || el.getAttribute("aria-label") || "").trim().slice(0, 40));
  for (const el of document.querySelectorAll("body *")) {
    if (!shown(el)) continue;
    const r = el.getBoundingClientRect();
    if (r.left < -0.5 || r.right > vw + 0.5) problems.push(`off screen (${Math.round(r.left)}..${Math.round(r.right)}px): ${label(el)}`);
    if (el.clientWidth && el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX === "visible")
      problems.push(`text spills out of its box (${el.scrollWidth} > ${el.clientWidth}px): ${label(el)}`);
    const text = [...el.childNodes].some(n => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
    const size = parseFloat(getComputedStyle(el).fontSize);
    if (text && size < 16) problems.push(`text ${size}px < 16px: ${label(el)}`);
  }
  for (const el of document.querySelectorAll("main a, main button, main input:not([type=hidden]), main select, main textarea")) {
    if (!shown(el)) continue;
    const target = ["checkbox", "radio"].includes(el.type) ? (el.closest("label") || el) : el;
    const r = target.getBoundingClientRect();
    if (r.width < 48 || r.height < 48) problems.push(`touch target ${Math.round(r.width)}×${Math.round(r.height)}px < 48px: ${label(el)}`);
  }
  return problems;
}
"""

# Spanish strings run ~30 % longer than English: lengthen every text by 30 % (words, not one long token),
# measure again, then put the texts back. Codes, addresses and select options are left alone.
LENGTHEN_JS = """
(on) => {
  if (!on) { for (const [node, text] of window.__originalTexts || []) node.textContent = text; return; }
  window.__originalTexts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent, core = text.trim();
    if (!core || node.parentElement.closest("code, .break, option, script, style")) continue;
    const words = core.split(/\\s+/), target = Math.ceil(core.length * 1.3);
    let longer = words.length === 1 ? core + core.slice(0, Math.ceil(core.length * 0.3)) : core;
    for (let i = 0; longer.length < target; i++) longer += " " + words[i % words.length];
    window.__originalTexts.push([node, text]);
    node.textContent = text.replace(core, longer);
  }
}
"""

_axe = None


def check_screen(page: Page, name: str) -> None:
    """axe-core finds nothing serious; the screen fits a tablet and a phone."""
    global _axe
    _axe = _axe or Axe()
    violations = [v for v in _axe.run(page).response["violations"] if v["impact"] in ("serious", "critical")]
    assert not violations, f"{name}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} → {[n['target'] for n in v['nodes']][:5]}" for v in violations)
    problems = {}
    for longer in (False, True):
        page.evaluate(LENGTHEN_JS, longer)
        for size_name, size in (("tablet", TABLET), ("phone", PHONE)):
            shot = f"{name}-{size_name}{'-longer' if longer else ''}"
            page.set_viewport_size(size)
            if SHOTS:
                Path(SHOTS).mkdir(parents=True, exist_ok=True)
                page.screenshot(path=f"{SHOTS}/{shot}.png", full_page=True)
            found = page.evaluate(LAYOUT_PROBLEMS_JS)
            if found:
                problems[shot] = found
    page.evaluate(LENGTHEN_JS, False)
    page.set_viewport_size(TABLET)
    assert not problems, f"{name}: {problems}"


def tap_english(page: Page) -> None:
    """The language button in the top bar; a no-op when the page is already in English."""
    button = page.get_by_role("button", name="English", exact=True)
    if button.count():
        button.click()
        expect(page.locator("html")).to_have_attribute("lang", "en")


def open_tablet(new_context, errors: list) -> Page:
    """A new tablet whose own clock agrees with the node's frozen clock; console errors (a CSP refusal,
    a script error) go to ``errors``."""
    context = new_context(viewport=TABLET)
    context.clock.install(time=START)
    page = context.new_page()
    page.on("console", lambda m: errors.append(f"{m.text} at {m.location.get('url')}")
            if m.type == "error" and "favicon.ico" not in m.location.get("url", "") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page


def test_setup_add_tester_enroll_login_idle_lock_unlock(live_server, new_context, clock):
    # ---- tablet A: the first visit to an empty node is the first-run setup
    errors: list[str] = []
    a = open_tablet(new_context, errors)
    a.goto(live_server.url + "/")
    expect(a).to_have_url(re.compile(r"/setup$"))
    tap_english(a)
    check_screen(a, "setup")
    a.get_by_label("Event name").fill("Marcha del Orgullo 2026")
    a.get_by_label("Event date").fill("2026-06-27")
    a.get_by_label("Place").fill("CDMX, Reforma")
    a.get_by_label("Time zone").select_option("America/Mexico_City")
    a.get_by_label("Booth name").fill("Módulo 3")
    a.get_by_label("Your staff code").fill(COORDINATOR)
    a.get_by_label("PIN (6 digits)").fill(COORDINATOR_PIN)
    a.get_by_label("PIN again").fill(COORDINATOR_PIN)
    a.get_by_role("button", name="Finish setup").click()
    expect(a.get_by_role("heading", name=f"Hello, {COORDINATOR}")).to_be_visible()
    check_screen(a, "home-coordinator")

    # ---- the coordinator adds a tester
    a.get_by_role("link", name=re.compile(r"^Staff")).click()
    expect(a.get_by_role("heading", name="Staff", exact=True)).to_be_visible()
    check_screen(a, "staff")
    a.get_by_label("Staff code").fill(TESTER)
    a.get_by_role("checkbox", name="Tester", exact=True).check()
    a.get_by_label("PIN (6 digits)").fill(TESTER_PIN)
    a.get_by_label("PIN again").fill(TESTER_PIN)
    a.get_by_role("button", name="Add", exact=True).click()
    expect(a.get_by_role("row", name=re.compile(rf"^{TESTER}\b.*Tester"))).to_be_visible()

    # ---- … and creates an enrollment code on the Devices screen
    a.get_by_role("link", name="Vínculo").click()
    a.get_by_role("link", name=re.compile(r"^Devices")).click()
    expect(a.get_by_role("heading", name="Devices", exact=True)).to_be_visible()
    a.get_by_role("button", name="Create an enrollment code").click()
    expect(a.get_by_role("heading", name="Enrollment code")).to_be_visible()
    check_screen(a, "devices")
    enroll_url = a.get_by_text(re.compile(r"^https?://\S+/enroll\?code=\S+$")).inner_text().strip()
    # back to the list (a GET page: the code above is the answer to a POST), where the new tablet will appear
    a.get_by_role("link", name="Vínculo").click()
    a.get_by_role("link", name=re.compile(r"^Devices")).click()

    # ---- tablet B: opens the address shown on screen, enrolls, logs in with the PIN
    b = open_tablet(new_context, errors)
    b.goto(enroll_url)
    expect(b.get_by_role("heading", name=re.compile("Enroll|Registrar|Inscribir", re.I))).to_be_visible()
    tap_english(b)
    check_screen(b, "enroll")
    expect(b.get_by_label("Enrollment code")).not_to_have_value("")
    b.get_by_label("Name for this device").fill("Tablet 2")
    b.get_by_role("button", name="Enroll this device").click()
    expect(b).to_have_url(re.compile(r"/login"))
    check_screen(b, "login")
    b.get_by_label("Staff code").fill(TESTER)
    b.get_by_label("PIN (6 digits)").fill(TESTER_PIN)
    b.get_by_role("button", name="Log in").click()
    expect(b.get_by_role("heading", name=f"Hello, {TESTER}")).to_be_visible()
    check_screen(b, "home-tester")
    expect(b).to_have_url(live_server.url + "/")

    # ---- both tablets lie idle for 6 minutes: the node's clock and the tablets' clocks move on
    clock.advance(minutes=6)
    a.clock.fast_forward("06:00")
    b.clock.fast_forward("06:00")  # app.js reloads an idle page; the node answers with the PIN screen
    expect(b).to_have_url(re.compile(r"/unlock\?next=%2F$"))
    expect(b.get_by_label("Staff code")).to_have_count(0)  # only the PIN is asked
    check_screen(b, "unlock")
    b.get_by_label("PIN (6 digits)").fill(TESTER_PIN)
    b.get_by_role("button", name="Unlock", exact=True).click()
    expect(b).to_have_url(live_server.url + "/")
    expect(b.get_by_role("heading", name=f"Hello, {TESTER}")).to_be_visible()

    # the coordinator's tablet locked too, and comes back to the Devices screen it showed
    expect(a).to_have_url(re.compile(r"/unlock\?next=%2Fdevices$"))
    a.get_by_label("PIN (6 digits)").fill(COORDINATOR_PIN)
    a.get_by_role("button", name="Unlock", exact=True).click()
    expect(a).to_have_url(live_server.url + "/devices")
    expect(a.get_by_role("cell", name=re.compile("Tablet 2"))).to_be_visible()
    assert not errors, errors
