"""Browser fixtures: a live booth node on a free port and Debian's Chromium driven by Playwright.

The node runs in a background thread (werkzeug ``make_server``, threaded) on a copy of the migrated
template database, with the test's ``FrozenClock``: a test moves ``clock`` instead of sleeping.
Chromium is Debian's (``/usr/bin/chromium``); Playwright never downloads a browser here.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import pytest
from werkzeug.serving import make_server

CHROMIUM = os.environ.get("VINCULO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TABLET = {"width": 800, "height": 1280}
PHONE = {"width": 390, "height": 844}


@dataclass
class LiveServer:
    app: object
    url: str


@pytest.fixture
def live_server(make_app):
    """The booth node served on 127.0.0.1 (a free port) while the test runs."""
    app = make_app()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(app, f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()
        with app.app_context():
            from booth.extensions import db
            db.engine.dispose()


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (make system-packages)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def new_context(browser):
    """new_context(viewport=TABLET) → a fresh browser context (its own cookies: another tablet)."""
    contexts = []

    def _new(viewport=TABLET, **kw):
        ctx = browser.new_context(viewport=viewport, **kw)
        ctx.set_default_timeout(5000)
        contexts.append(ctx)
        return ctx

    yield _new
    for ctx in contexts:
        ctx.close()
