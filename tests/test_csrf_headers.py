"""CSRF on every POST route (form field or htmx header), security headers on every response, cookie flags.

Every POST route in ``app.url_map`` needs a case in ``BOOTH_POSTS`` / ``CENTRAL_POSTS``: an actor that is
allowed to send it and a body that succeeds with a token. Without the token (or with a wrong one) the
same request is refused with 400 and leaves every table, the audit log included, exactly as it was.
"""
from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pyotp
import pytest
from sqlalchemy import select

from booth.auth import services
from booth.auth.models import Device, Staff
from booth.extensions import db
from tests.conftest import CSRF_RE, Tablet, add_staff, new_device, setup_node
from tests.test_authz_matrix import (BOOTH, BOOTH_ACTORS, CENTRAL, CENTRAL_ACTORS, CENTRAL_PASSWORD, booth_world,
                                     build_url, central_signin, central_staff, central_world)

HTTPS = "https://localhost"


def token_from(client, page: str, **kw) -> str:
    r = client.get(page, **kw)
    m = CSRF_RE.search(r.get_data(as_text=True))
    assert m, f"no CSRF token on {page} ({r.status_code})"
    return m.group(1) or m.group(2)


def foreign_token(app) -> str:
    """A valid token of another browser's session."""
    for page in ("/enroll", "/setup", "/signin", "/central/setup"):
        m = CSRF_RE.search(app.test_client().get(page).get_data(as_text=True))
        if m:
            return m.group(1) or m.group(2)
    raise AssertionError("no page gives an anonymous browser a CSRF token")


def snapshot(app) -> dict:
    """Every row of every table (audit_entries included), to prove that nothing changed."""
    with app.app_context():
        return {t.name: sorted(map(repr, db.session.execute(t.select()).all())) for t in db.metadata.sorted_tables}


def post_routes(app) -> set[str]:
    return {r.endpoint for r in app.url_map.iter_rules() if "POST" in r.methods}


# ---------------------------------------------------------------- one allowed, valid POST per route

def staff_id(app, code):
    with app.app_context():
        return db.session.scalar(select(Staff.id).where(Staff.code == code))


def coordinator(app, clock, node):
    t = Tablet(app, node.device_token)
    t.login(node.coordinator_code, node.coordinator_pin)
    return t.client


def booth_post(endpoint: str, make_app, clock):
    """→ (app, client, url, body, csrf_page, changes): a request the client may send and that succeeds."""
    app = make_app()
    if endpoint == "setup.setup":
        body = {"event_name": "Marcha", "event_day": "2026-06-27", "place": "CDMX", "timezone": "America/Mexico_City",
                "booth_name": "Módulo 1", "coordinator_code": "C01", "pin": "482913", "pin_confirm": "482913",
                "browser_time_ms": str(int(clock.now().timestamp() * 1000))}
        return app, app.test_client(), "/setup", body, "/setup", True
    node = setup_node(app, clock)
    if endpoint == "core.set_language":  # an enrolled device remembers its language
        return app, Tablet(app, node.device_token).client, "/lang/en", {"next": "/"}, "/login", True
    if endpoint == "auth.enroll":
        with app.app_context():
            _row, code = services.create_enrollment_code(db.session, now=clock.now(), minutes=10, actor=None)
            db.session.commit()
        return app, app.test_client(), "/enroll", {"code": code, "name": "Tableta 2"}, "/enroll", True
    if endpoint == "auth.login":
        return (app, Tablet(app, node.device_token).client, "/login",
                {"code": node.coordinator_code, "pin": node.coordinator_pin}, "/login", True)
    if endpoint == "auth.unlock":
        client = coordinator(app, clock, node)
        clock.advance(minutes=6)
        return app, client, "/unlock", {"pin": node.coordinator_pin}, "/unlock", True
    if endpoint == "auth.logout":
        return app, coordinator(app, clock, node), "/logout", {}, "/", True
    add_staff(app, clock, "T99", ["tester"])
    target = staff_id(app, "T99")
    client = coordinator(app, clock, node)
    if endpoint == "auth.staff_add":
        body = {"code": "T55", "roles": "tester", "pin": "582931", "pin_confirm": "582931"}
        return app, client, "/staff", body, "/staff", True
    if endpoint == "auth.staff_action":
        return app, client, f"/staff/{target}/disable", {}, "/staff", True
    if endpoint == "auth.staff_pin":
        return app, client, f"/staff/{target}/pin", {"pin": "692581", "pin_confirm": "692581"}, "/staff", True
    if endpoint == "auth.devices_new_code":
        return app, client, "/devices/codes", {"kind": "tablet"}, "/devices", True
    if endpoint == "auth.devices_revoke":
        new_device(app, clock, name="Spare")
        with app.app_context():
            spare = db.session.scalar(select(Device.id).where(Device.name == "Spare"))
        return app, client, f"/devices/{spare}/revoke", {}, "/devices", True
    raise LookupError(endpoint)


def central_post(endpoint: str, app, clock):
    if endpoint == "central.setup":  # an empty central server
        body = {"code": "C01", "password": CENTRAL_PASSWORD, "password_confirm": CENTRAL_PASSWORD}
        return app.test_client(), "/central/setup", body, "/central/setup", True
    secret = central_staff(app, clock, "C01", ["coordinator"])
    if endpoint == "core.set_language":  # nothing to store at central: the cookie remembers it
        return app.test_client(), "/lang/en", {"next": "/signin"}, "/signin", False
    if endpoint == "central.signin":
        body = {"code": "C01", "password": CENTRAL_PASSWORD, "totp": pyotp.TOTP(secret).at(clock.now())}
        return app.test_client(), "/signin", body, "/signin", True
    if endpoint == "central.totp_setup":  # a correct password, TOTP not set up yet
        with app.app_context():
            services.create_staff(db.session, code="K01", roles=["clinic"], password=CENTRAL_PASSWORD, now=clock.now())
            db.session.commit()
        client = app.test_client()
        r = client.post("/signin", data={"code": "K01", "password": CENTRAL_PASSWORD,
                                         "csrf_token": token_from(client, "/signin")})
        assert r.status_code == 303 and r.headers["Location"] == "/signin/totp"
        token_from(client, "/signin/totp")  # shows the QR, stores the secret
        with app.app_context():
            secret = db.session.scalar(select(Staff.totp_secret).where(Staff.code == "K01"))
        return client, "/signin/totp", {"totp": pyotp.TOTP(secret).at(clock.now())}, "/signin/totp", True
    if endpoint == "central.signout":
        return central_signin(app, clock, "C01", secret), "/signout", {}, "/", True
    raise LookupError(endpoint)


BOOTH_POSTS = sorted(e for e, r in BOOTH.items() if r.post is not None)
CENTRAL_POSTS = sorted(e for e, r in CENTRAL.items() if r.post is not None)


def test_every_booth_post_route_has_a_csrf_case(app):
    missing = post_routes(app) - set(BOOTH_POSTS)
    assert not missing, f"POST route(s) {sorted(missing)} need a case in booth_post() and the matrix"


def test_every_central_post_route_has_a_csrf_case(pg_app):
    missing = post_routes(pg_app) - set(CENTRAL_POSTS)
    assert not missing, f"POST route(s) {sorted(missing)} need a case in central_post() and the matrix"


def refused_then_accepted(app, client, url, body, csrf_page, changes):
    token = token_from(client, csrf_page)  # the session holds a token; the request does not carry it
    before = snapshot(app)
    for label, extra in (("no token", {}), ("wrong token", {"csrf_token": "x" + token[1:]}),
                         ("token of another session", {"csrf_token": foreign_token(app)})):
        r = client.post(url, data={**body, **extra})
        assert r.status_code == 400, f"{url} with {label}: {r.status_code}"
        assert snapshot(app) == before, f"{url} with {label} changed the database"
    # the same request with the token goes through: the refusal was about the token only
    r = client.post(url, data={**body, "csrf_token": token})
    assert r.status_code in (200, 303), f"{url} with its token: {r.status_code} {r.get_data(as_text=True)[:300]}"
    assert (snapshot(app) != before) == changes


@pytest.mark.parametrize("endpoint", BOOTH_POSTS)
def test_booth_post_without_csrf_token_is_refused_and_changes_nothing(endpoint, make_app, clock):
    app, client, url, body, csrf_page, changes = booth_post(endpoint, make_app, clock)
    assert app.url_map.bind("localhost").match(url, method="POST")[0] == endpoint
    refused_then_accepted(app, client, url, body, csrf_page, changes)


@pytest.mark.parametrize("endpoint", CENTRAL_POSTS)
def test_central_post_without_csrf_token_is_refused_and_changes_nothing(endpoint, pg_app, clock):
    client, url, body, csrf_page, changes = central_post(endpoint, pg_app, clock)
    assert pg_app.url_map.bind("localhost").match(url, method="POST")[0] == endpoint
    refused_then_accepted(pg_app, client, url, body, csrf_page, changes)


def test_htmx_request_with_token_in_header(node, clock, login):
    t = login("tester")
    token = token_from(t.client, "/")
    r = t.client.post("/lang/en", headers={"X-CSRFToken": token, "HX-Request": "true"})
    assert r.status_code == 303
    r = t.client.post("/logout", headers={"X-CSRFToken": "x" + token[1:], "HX-Request": "true"})
    assert r.status_code == 400 and t.get("/").status_code == 200  # a wrong header token ends nothing
    r = t.client.post("/logout", headers={"X-CSRFToken": token, "HX-Request": "true"})
    assert r.status_code == 303
    assert urlsplit(t.get("/").headers["Location"]).path == "/login"


def test_htmx_header_token_over_https_without_referer(node, clock):
    """Browsers send no Referer here (Referrer-Policy: no-referrer): HTTPS posts must still work."""
    client = node.app.test_client()
    client.set_cookie("vinculo_device", node.device_token, secure=True)
    token = token_from(client, "/login", base_url=HTTPS)
    r = client.post("/login", base_url=HTTPS,
                    data={"code": node.coordinator_code, "pin": node.coordinator_pin, "csrf_token": token})
    assert r.status_code == 303, r.get_data(as_text=True)[:300]
    token = token_from(client, "/", base_url=HTTPS)
    r = client.post("/lang/en", base_url=HTTPS, headers={"X-CSRFToken": token, "HX-Request": "true"})
    assert r.status_code == 303
    assert client.post("/lang/es", base_url=HTTPS).status_code == 400


# ---------------------------------------------------------------- security headers on every response

def assert_security_headers(r, what: str, static: bool = False) -> None:
    h = r.headers
    csp = h.get("Content-Security-Policy", "")
    assert csp, f"{what}: no Content-Security-Policy"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, f"{what}: {csp}"
    directives = {d.strip().split()[0]: d.strip().split()[1:] for d in csp.split(";") if d.strip()}
    assert directives.get("frame-ancestors") == ["'self'"], f"{what}: {csp}"
    assert directives.get("script-src", directives.get("default-src")) == ["'self'"], f"{what}: {csp}"
    assert h.get("X-Content-Type-Options") == "nosniff", what
    assert h.get("Referrer-Policy") == "no-referrer", what
    if not static:
        assert "no-store" in h.get("Cache-Control", ""), f"{what}: Cache-Control {h.get('Cache-Control')!r}"


def get_every_page(app, client, table, ids):
    urls = [(e, build_url(app, e, route, ids)) for e, route in table.items() if route.get is not None]
    urls += [("404", "/no-such-page"), ("404", f"/staff/{uuid.uuid4()}/pin"), ("405", "/logout")]
    for endpoint, url in urls:
        yield endpoint, url, client.get(url)


@pytest.mark.parametrize("actor", BOOTH_ACTORS)
def test_booth_headers_on_every_get(node, clock, login, actor):
    world = booth_world(node, clock, login, actor)
    seen = set()
    for endpoint, url, r in get_every_page(world.app, world.client, BOOTH, world.ids):
        seen.add(r.status_code)
        assert_security_headers(r, f"{actor} GET {url} → {r.status_code}", static=endpoint == "static")
    assert 200 in seen


@pytest.mark.parametrize("actor", CENTRAL_ACTORS)
def test_central_headers_on_every_get(pg_app, clock, actor):
    client, _page = central_world(pg_app, clock, actor)
    for endpoint, url, r in get_every_page(pg_app, client, CENTRAL, {}):
        assert_security_headers(r, f"{actor} GET {url} → {r.status_code}", static=endpoint == "static")


def test_headers_on_empty_node_and_error_responses(app):
    client = app.test_client()
    for url in ("/", "/setup", "/healthz", "/enroll"):
        assert_security_headers(client.get(url), f"empty node GET {url}")
    r = client.post("/setup", data={})  # no CSRF token
    assert r.status_code == 400
    assert_security_headers(r, "CSRF refusal")


# ---------------------------------------------------------------- cookies

def cookie_flags(response) -> list[tuple[str, set[str]]]:
    out = []
    for header in response.headers.getlist("Set-Cookie"):
        parts = [p.strip() for p in header.split(";")]
        out.append((parts[0].split("=", 1)[0], {p.lower() for p in parts[1:]}))
    return out


class CookieWatch:
    """A client that checks every cookie the node sets."""

    def __init__(self, app, base_url: str):
        self.client = app.test_client()
        self.base_url = base_url
        self.names: set[str] = set()

    def _check(self, r, what):
        for name, flags in cookie_flags(r):
            self.names.add(name)
            assert "httponly" in flags, f"{what}: cookie {name} is not HttpOnly"
            assert "samesite=strict" in flags, f"{what}: cookie {name} is not SameSite=Strict"
            if self.base_url.startswith("https"):
                assert "secure" in flags, f"{what}: cookie {name} is not Secure over HTTPS"
        return r

    def get(self, url):
        return self._check(self.client.get(url, base_url=self.base_url), f"GET {url}")

    def post(self, url, data, page):
        r = self.get(page)
        m = CSRF_RE.search(r.get_data(as_text=True))
        assert m, f"no CSRF token on {page}"
        token = m.group(1) or m.group(2)
        return self._check(self.client.post(url, base_url=self.base_url, data={**data, "csrf_token": token}),
                           f"POST {url}")


@pytest.mark.parametrize("base_url", ["http://localhost", HTTPS])
def test_booth_cookies_from_setup_enroll_login(app, clock, base_url):
    first = CookieWatch(app, base_url)
    first.get("/setup")
    r = first.post("/setup", {"event_name": "Marcha", "event_day": "2026-06-27", "place": "CDMX",
                              "timezone": "America/Mexico_City", "booth_name": "Módulo 1", "coordinator_code": "C01",
                              "pin": "482913", "pin_confirm": "482913",
                              "browser_time_ms": str(int(clock.now().timestamp() * 1000))}, "/setup")
    assert r.status_code == 303, r.get_data(as_text=True)[:500]
    assert {"vinculo_device", "vinculo_session"} <= first.names
    assert first.get("/").status_code == 200
    r = first.post("/devices/codes", {"kind": "tablet"}, "/devices")
    code = r.get_data(as_text=True).split('<p class="bigcode"><code>')[1][:9]

    second = CookieWatch(app, base_url)
    assert second.post("/enroll", {"code": code}, "/enroll").status_code == 303
    assert "vinculo_device" in second.names
    r = second.post("/login", {"code": "C01", "pin": "482913"}, "/login")
    assert r.status_code == 303 and "vinculo_session" in second.names
    assert second.post("/lang/en", {}, "/").status_code == 303
    assert second.post("/logout", {}, "/").status_code == 303
    assert {"vinculo_lang", "vinculo_flask"} <= second.names
    # a revoked device's cookie is deleted with the same flags
    with app.app_context():
        dev = services.device_by_token(db.session, second.client.get_cookie("vinculo_device").value)
        services.revoke_device(db.session, dev, now=clock.now(), actor=None)
        db.session.commit()
    r = second.get("/login")
    assert r.status_code == 302 and "vinculo_device" in dict(cookie_flags(r)), "a revoked device's cookie is cleared"


@pytest.mark.parametrize("base_url", ["http://localhost", HTTPS])
def test_central_cookies_from_setup_and_signin(pg_app, clock, base_url):
    c = CookieWatch(pg_app, base_url)
    r = c.post("/central/setup", {"code": "C01", "password": CENTRAL_PASSWORD, "password_confirm": CENTRAL_PASSWORD},
               "/central/setup")
    assert r.status_code == 303 and r.headers["Location"] == "/signin/totp", r.get_data(as_text=True)[:500]
    c.get("/signin/totp")
    with pg_app.app_context():
        secret = db.session.scalar(select(Staff.totp_secret).where(Staff.code == "C01"))
    r = c.post("/signin/totp", {"totp": pyotp.TOTP(secret).at(clock.now())}, "/signin/totp")
    assert r.status_code == 303 and "vinculo_session" in c.names
    assert c.post("/signout", {}, "/").status_code == 303
    other = CookieWatch(pg_app, base_url)
    r = other.post("/signin", {"code": "C01", "password": CENTRAL_PASSWORD,
                               "totp": pyotp.TOTP(secret).at(clock.now())}, "/signin")
    assert r.status_code == 303 and {"vinculo_session", "vinculo_flask"} <= other.names
