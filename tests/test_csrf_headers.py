"""CSRF on every POST route (form field or htmx header), security headers on every response, cookie flags.

Every POST route of ``app.url_map`` is sent, without its token, by an actor the authorization matrix lets
through: 400, and every table (the audit log included) stays exactly as it was; with the token the same
request gets the matrix's status. Writes that really change something (``BOOTH_VALID``, central's
``central_post``) show that the token alone stood between the request and the write.
"""
from __future__ import annotations

import re
import uuid
from urllib.parse import urlsplit

import pyotp
import pytest
from sqlalchemy import select

from booth.auth import services
from booth.auth.models import Staff
from booth.extensions import db
from tests.conftest import CSRF_RE
from tests.test_authz_matrix import (BOOTH, BOOTH_ACTORS, CENTRAL, CENTRAL_ACTORS, CENTRAL_PASSWORD, DEVICE_ID,
                                     STAFF_ID, VISIT_ID, Route, actor_client, build_url, central_signin,
                                     central_staff, central_world, check)
from tests.test_authz_matrix import booth_world, booth_world_file  # noqa: F401 (fixtures)

ENROLLMENT_CODE = "<a fresh enrollment code>"

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

SETUP_FORM = {"event_name": "Marcha", "event_day": "2026-06-27", "place": "CDMX", "timezone": "America/Mexico_City",
              "booth_name": "Módulo 1", "coordinator_code": "C01", "pin": "482913", "pin_confirm": "482913"}

# Requests that succeed with a token, each from an actor allowed to send it, on the matrix's world.
# endpoint → (actor, URL arguments, body). The login actors' staff codes are A00… (see booth_world_file).
BOOTH_VALID = {
    "core.set_language": ("enrolled", {"code": "en"}, {"next": "/"}),  # the device remembers its language
    "auth.enroll": ("not_enrolled", {}, {"code": ENROLLMENT_CODE, "name": "Tableta 9"}),
    "auth.login": ("enrolled", {}, {"code": "A02", "pin": "731945"}),
    "auth.unlock": ("idle_locked", {}, {"pin": "731945"}),
    "auth.logout": ("coordinator", {}, {}),
    "auth.staff_add": ("coordinator", {},
                       {"code": "T55", "roles": "tester", "pin": "582931", "pin_confirm": "582931"}),
    "auth.staff_action": ("coordinator", {"staff_id": STAFF_ID, "action": "disable"}, {}),
    "auth.staff_pin": ("coordinator", {"staff_id": STAFF_ID}, {"pin": "692581", "pin_confirm": "692581"}),
    "auth.devices_new_code": ("coordinator", {}, {"kind": "tablet"}),
    "auth.devices_revoke": ("coordinator", {"device_id": DEVICE_ID}, {}),
    "visits.create": ("tester", {}, {"age_band": "25-29", "nonce": "double-tap-guard-1"}),
    "counseling.finish": ("counselor", {"visit_id": VISIT_ID, "kind": "post"},
                          {"result_given": "yes", "minutes": "10"}),
    "stock.temperature": ("tester", {}, {"celsius": "22.5"}),
    "stock.receive_supply": ("coordinator", {}, {"item": "condom", "quantity": "50"}),
    "stock.shift": ("counselor", {}, {}),
}
REFUSALS = {403, "302 /enroll", "302 /login", "302 /unlock", "302 /signin"}
PREFERENCE = ("coordinator", "lead", "clinic", "tester", "counselor", "enrolled", "display", "not_enrolled",
              "anonymous")


def allowed(route, actors=BOOTH_ACTORS) -> tuple[str, object]:
    """An actor the matrix lets through on this POST route, and its expected status."""
    expected = dict(zip(actors, route.post))
    ranked = [a for a in PREFERENCE if a in expected]
    # a route nobody may use any more (setup once done) still checks the token first
    return next(((a, expected[a]) for a in ranked if expected[a] not in REFUSALS), (ranked[0], expected[ranked[0]]))


def refused(app, client, url, body, csrf_page) -> tuple[str, dict]:
    """Without a token, with a wrong one, with another browser's: 400 and the database as it was."""
    token = token_from(client, csrf_page)  # the session holds a token; the request does not carry it
    before = snapshot(app)
    for label, extra in (("no token", {}), ("wrong token", {"csrf_token": "x" + token[1:]}),
                         ("token of another session", {"csrf_token": foreign_token(app)})):
        r = client.post(url, data={**body, **extra})
        assert r.status_code == 400, f"{url} with {label}: {r.status_code}"
        assert snapshot(app) == before, f"{url} with {label} changed the database"
    return token, before


def refused_then_accepted(app, client, url, body, csrf_page, changes):
    token, before = refused(app, client, url, body, csrf_page)
    # the same request with the token goes through: the refusal was about the token only
    r = client.post(url, data={**body, "csrf_token": token})
    assert r.status_code in (200, 303), f"{url} with its token: {r.status_code} {r.get_data(as_text=True)[:300]}"
    assert (snapshot(app) != before) == changes


# The sync API (central) has no sessions, so no CSRF tokens: enrollment is authenticated by the one-time code
# in its JSON body, every other call by the node's signature. Each exemption is named here and tested below.
CSRF_EXEMPT = {
    "sync_api.enroll": "a one-time enrollment code in the JSON body (tests/sync/test_enrollment.py)",
    "sync_api.ping": "the HMAC signature of an enrolled node (tests/sync/test_enrollment.py)",
    "sync_api.push": "the HMAC signature of an enrolled node (tests/sync/test_push.py)",
    "sync_api.receipt": "the HMAC signature of an enrolled node (tests/sync/test_push.py)",
    "sync_api.pull": "the HMAC signature of an enrolled node (tests/sync/test_push.py)",
}
BOOTH_POSTS = sorted(e for e, r in BOOTH.items() if r.post is not None)
CENTRAL_POSTS = sorted(e for e, r in CENTRAL.items() if r.post is not None and e not in CSRF_EXEMPT)


def test_every_booth_post_route_is_checked(app):
    missing = post_routes(app) - set(BOOTH_POSTS)
    assert not missing, f"POST route(s) {sorted(missing)} need an entry in the matrix (tests/test_authz_matrix.py)"
    assert set(BOOTH_VALID) <= set(BOOTH_POSTS)


@pytest.mark.parametrize("endpoint", BOOTH_POSTS)
def test_booth_post_without_token_is_refused_for_an_allowed_actor(endpoint, booth_world, clock):
    """Every POST route: the token is what stands between an allowed actor and the write."""
    route = BOOTH[endpoint]
    actor, want = allowed(route)
    client = actor_client(booth_world, clock, actor)
    url = build_url(booth_world.app, endpoint, route, booth_world.ids)
    token, _ = refused(booth_world.app, client, url, {}, booth_world.csrf_page(actor))
    check(client.post(url, data={"csrf_token": token}), want, f"{actor} POST {url} with its token", booth_world.ids)


@pytest.mark.parametrize("endpoint", sorted(BOOTH_VALID))
def test_booth_write_without_token_is_refused_and_changes_nothing(endpoint, booth_world, clock):
    """A body that writes something with the token writes nothing without it."""
    actor, args, body = BOOTH_VALID[endpoint]
    app = booth_world.app
    if body.get("code") == ENROLLMENT_CODE:
        with app.app_context():
            _row, code = services.create_enrollment_code(db.session, now=clock.now(), minutes=10, actor=None)
            db.session.commit()
        body = {**body, "code": code}
    client = actor_client(booth_world, clock, actor)
    url = build_url(app, endpoint, Route("roles", args=args), booth_world.ids)
    assert app.url_map.bind("localhost").match(url, method="POST")[0] == endpoint
    refused_then_accepted(app, client, url, body, booth_world.csrf_page(actor), True)


def test_setup_without_token_is_refused_and_changes_nothing(app, clock):
    body = {**SETUP_FORM, "browser_time_ms": str(int(clock.now().timestamp() * 1000))}
    refused_then_accepted(app, app.test_client(), "/setup", body, "/setup", True)


CENTRAL_VALID = ["core.set_language", "central.setup", "central.signin", "central.totp_setup", "central.signout"]


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


def test_every_central_post_route_is_checked(pg_app):
    missing = post_routes(pg_app) - set(CENTRAL_POSTS) - set(CSRF_EXEMPT)
    assert not missing, f"POST route(s) {sorted(missing)} need an entry in the matrix (tests/test_authz_matrix.py)"


def csrf_exempt_endpoints(app) -> set[str]:
    from booth.extensions import csrf

    assert not csrf._exempt_blueprints, "exempt views one by one, never a whole blueprint"
    return {e for e, view in app.view_functions.items() if f"{view.__module__}.{view.__name__}" in csrf._exempt_views}


def test_csrf_exemptions_are_exactly_the_named_sync_routes(app, pg_app):
    assert csrf_exempt_endpoints(app) == set()
    assert csrf_exempt_endpoints(pg_app) == set(CSRF_EXEMPT)
    for endpoint in CSRF_EXEMPT:  # signed or authenticated by the body, never open
        assert CENTRAL[endpoint].access in ("signed", "public") and CENTRAL[endpoint].why


@pytest.mark.parametrize("actor", ["anonymous", "coordinator"])
@pytest.mark.parametrize("endpoint", sorted(CSRF_EXEMPT))
def test_exempt_post_without_signature_or_code_is_refused_and_changes_nothing(endpoint, actor, pg_app, clock):
    """A signed route refuses an unsigned POST (401) and an enrollment without a valid code is refused (400/403),
    even from a signed-in coordinator with a valid CSRF token: the session and the token count for nothing."""
    client, csrf_page = central_world(pg_app, clock, actor)
    token = token_from(client, csrf_page)
    url = build_url(pg_app, endpoint, CENTRAL[endpoint], {})
    signed = CENTRAL[endpoint].access == "signed"
    before = snapshot(pg_app)
    for body in ({}, {"code": "ABCD-EFGH-JKMN", "referral_key": "ab" * 32}):
        r = client.post(url, json=body, headers={"X-CSRFToken": token})
        want = 401 if signed else (400 if not body else 403)
        assert r.status_code == want, f"{actor} {url} {body}: {r.status_code}"
        assert r.is_json and r.get_json()["error"]
    assert snapshot(pg_app) == before, f"{actor} {url} changed the database"


@pytest.mark.parametrize("endpoint", CENTRAL_POSTS)
def test_central_post_without_token_is_refused_for_an_allowed_actor(endpoint, pg_app, clock):
    route = CENTRAL[endpoint]
    actor, want = allowed(route, CENTRAL_ACTORS)
    client, csrf_page = central_world(pg_app, clock, actor)
    url = build_url(pg_app, endpoint, route, {})
    token, _ = refused(pg_app, client, url, {}, csrf_page)
    check(client.post(url, data={"csrf_token": token}), want, f"{actor} POST {url} with its token")


@pytest.mark.parametrize("endpoint", CENTRAL_VALID)
def test_central_write_without_token_is_refused_and_changes_nothing(endpoint, pg_app, clock):
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
def test_booth_headers_on_every_get(booth_world, clock, actor):
    client = actor_client(booth_world, clock, actor)
    seen = set()
    for endpoint, url, r in get_every_page(booth_world.app, client, BOOTH, booth_world.ids):
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
    assert first.post("/devices/codes", {"kind": "tablet"}, "/devices").status_code == 303
    code = re.search(r"\b([0-9A-Z]{4}-[0-9A-Z]{4})\b", first.get("/devices").get_data(as_text=True)).group(1)

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
    clock.advance(seconds=30)  # a TOTP code is accepted once: sign in again with the next one
    other = CookieWatch(pg_app, base_url)
    r = other.post("/signin", {"code": "C01", "password": CENTRAL_PASSWORD,
                               "totp": pyotp.TOTP(secret).at(clock.now())}, "/signin")
    assert r.status_code == 303 and {"vinculo_session", "vinculo_flask"} <= other.names
