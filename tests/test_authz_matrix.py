"""The authorization matrix: every endpoint of ``app.url_map`` × every actor → the expected status.

The table below is the one place that says who may reach what. A route that is in ``url_map`` but not
in the table fails ``test_every_route_has_an_entry`` (add it here, with its expected statuses); a
route that is exempt from the staff login (public or device-only) says why.

Each expected status is either an int or ``"302 /path"``: a redirect to that path (query ignored).
POSTs carry a valid CSRF token for the actor and an otherwise empty body.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pyotp
import pytest
from flask import url_for
from sqlalchemy import select

from booth.auth import services
from booth.auth.models import Device, Staff
from booth.extensions import db
from tests.conftest import CSRF_RE, Tablet, add_staff, new_device

# ---------------------------------------------------------------- actors

BOOTH_ACTORS = ("not_enrolled", "enrolled", "display", "idle_locked",
                "tester", "counselor", "coordinator", "clinic", "lead")
CENTRAL_ACTORS = ("anonymous", "tester", "counselor", "coordinator", "clinic")

# Short names for redirects
TO_ENROLL, TO_LOGIN, TO_UNLOCK, TO_HOME, TO_SIGNIN = "302 /enroll", "302 /login", "302 /unlock", "302 /", "302 /signin"

# URL arguments that the test replaces with a real id of the world it builds
STAFF_ID, DEVICE_ID, LOT_ID = "<a staff id>", "<a device id>", "<a kit lot id>"
VISIT_ID, CONSENT_ID, COUNSELING_ID = "<a visit id>", "<a consent id>", "<a counseling id>"
RUNNING_ID, RESULT_ID = "<a running screening id>", "<a screening result id>"


@dataclass(frozen=True)
class Route:
    access: str                    # "static" | "public" | "device" | "display" | "roles"
    why: str = ""                  # required for every exemption (anything but "roles")
    roles: tuple = ()              # for "roles": the roles the view declares
    get: tuple | None = None       # expected status per actor (column order of the actors above)
    post: tuple | None = None
    args: dict = field(default_factory=dict)


def every(status, n):
    return (status,) * n


B, C = len(BOOTH_ACTORS), len(CENTRAL_ACTORS)
ALL_ROLES = ("tester", "counselor", "coordinator", "clinic")
WORKFLOW = ("tester", "counselor", "coordinator")      # the people at the booth (clinic staff are not)
TESTERS, COUNSELORS = ("tester", "coordinator"), ("counselor", "coordinator")
# A staff route refuses the first four actors the same way: enroll first, log in first, unlock first.
NO_STAFF = (TO_ENROLL, TO_LOGIN, TO_LOGIN, TO_UNLOCK)


def staff(tester, counselor, coordinator, clinic, lead):
    """Expected statuses of a staff-only route: the four refusals above, then one per role."""
    return NO_STAFF + (tester, counselor, coordinator, clinic, lead)


# ================================================================= THE TABLE: booth node
# columns: not_enrolled, enrolled, display, idle_locked | tester, counselor, coordinator, clinic, lead (a coordinator
# who is the clinical lead). Every POST carries the actor's CSRF token and nothing else: an allowed actor gets 422
# (or the view's answer to an empty form), which shows it got past the access check.
BOOTH: dict[str, Route] = {
    "static": Route(
        "static", "CSS, htmx and app.js: no data, needed by the login and enrollment pages themselves",
        get=every(200, B), args={"filename": "css/app.css"}),
    "core.healthz": Route(
        "public", "monitoring: says only whether the node and its database answer, shows no data",
        get=every(200, B)),
    "core.home": Route("roles", roles=ALL_ROLES, get=staff(200, 200, 200, 200, 200)),
    "core.set_language": Route(
        "public", "the language switch works before enrollment, login and setup (remembered per device)",
        post=every("303 /", B), args={"code": "en"}),
    "setup.setup": Route(
        "public", "first-run setup of an empty node; once done it only redirects home",
        get=every(TO_HOME, B), post=every(TO_HOME, B)),
    "auth.enroll": Route(
        "public", "a tablet that is not enrolled yet can only reach this page; an enrolled one is sent to login",
        get=(200,) + every(TO_LOGIN, B - 1), post=(422,) + every(TO_LOGIN, B - 1)),
    "auth.ca_certificate": Route(
        "public", "the node's CA certificate, which a tablet installs before it can trust the node's HTTPS",
        get=every(200, B)),
    "auth.login": Route(
        "device", "PIN login: an enrolled device, nobody logged in yet",
        get=(TO_ENROLL,) + every(200, B - 1), post=(TO_ENROLL,) + every(422, B - 1)),
    "auth.unlock": Route(
        "device", "idle unlock asks only for the PIN of the locked session (no live session needed)",
        get=(TO_ENROLL, TO_LOGIN, TO_LOGIN, 200) + every(TO_HOME, 5),
        post=(TO_ENROLL, TO_LOGIN, TO_LOGIN, 422) + every(TO_HOME, 5)),
    "auth.logout": Route(
        "device", "switch user: one tap ends whatever session this device holds, even a locked one",
        post=(TO_ENROLL,) + every("303 /login", B - 1)),
    "auth.staff_index": Route("roles", roles=("coordinator",), get=staff(403, 403, 200, 403, 200)),
    "auth.staff_add": Route("roles", roles=("coordinator",), post=staff(403, 403, 422, 403, 422)),
    "auth.staff_action": Route(
        "roles", roles=("coordinator",), args={"staff_id": STAFF_ID, "action": "unlock"},
        post=staff(403, 403, "303 /staff", 403, "303 /staff")),
    "auth.staff_pin": Route(
        "roles", roles=("coordinator",), args={"staff_id": STAFF_ID},
        get=staff(403, 403, 200, 403, 200), post=staff(403, 403, 422, 403, 422)),
    "auth.devices_index": Route("roles", roles=("coordinator",), get=staff(403, 403, 200, 403, 200)),
    # an empty body is a valid form here (kind defaults to tablet): the new code is shown once, 200
    "auth.devices_new_code": Route("roles", roles=("coordinator",), post=staff(403, 403, 200, 403, 200)),
    "auth.devices_revoke": Route(
        "roles", roles=("coordinator",), args={"device_id": DEVICE_ID},
        post=staff(403, 403, "303 /devices", 403, "303 /devices")),
    # ------------------------------------------------------------- booth workflow
    "visits.queue": Route("roles", roles=WORKFLOW, get=staff("?", "?", "?", "?", "?")),
    "visits.new": Route("roles", roles=WORKFLOW, get=staff("?", "?", "?", "?", "?")),
    "visits.create": Route("roles", roles=WORKFLOW, post=staff("?", "?", "?", "?", "?")),
    "visits.show": Route("roles", roles=WORKFLOW, args={"visit_id": VISIT_ID}, get=staff("?", "?", "?", "?", "?")),
    "visits.update_intake": Route("roles", roles=WORKFLOW, args={"visit_id": VISIT_ID},
                                  post=staff("?", "?", "?", "?", "?")),
    "visits.consent": Route("roles", roles=WORKFLOW, args={"visit_id": VISIT_ID}, post=staff("?", "?", "?", "?", "?")),
    "visits.correct_consent": Route("roles", roles=WORKFLOW, args={"consent_id": CONSENT_ID},
                                    post=staff("?", "?", "?", "?", "?")),
    "visits.close": Route("roles", roles=WORKFLOW, args={"visit_id": VISIT_ID}, post=staff("?", "?", "?", "?", "?")),
    "screening.start": Route("roles", roles=TESTERS, args={"visit_id": VISIT_ID}, post=staff("?", "?", "?", "?", "?")),
    "screening.result": Route("roles", roles=TESTERS, args={"screening_id": RUNNING_ID},
                              post=staff("?", "?", "?", "?", "?")),
    "screening.close_out": Route("roles", roles=TESTERS, args={"screening_id": RUNNING_ID},
                                 post=staff("?", "?", "?", "?", "?")),
    "screening.correct": Route("roles", roles=WORKFLOW, args={"result_id": RESULT_ID},
                               post=staff("?", "?", "?", "?", "?")),
    "screening.board": Route("roles", roles=WORKFLOW, get=staff("?", "?", "?", "?", "?")),
    "screening.display_board": Route(
        "display", "the tray screen: a device enrolled as a display, no staff login; slots and call numbers only",
        get=("?",) * B),
    "screening.display_queue": Route(
        "display", "the waiting-room screen: a device enrolled as a display, no staff login; call numbers only",
        get=("?",) * B),
    "counseling.start": Route("roles", roles=COUNSELORS, args={"visit_id": VISIT_ID, "kind": "post"},
                              post=staff("?", "?", "?", "?", "?")),
    "counseling.finish": Route("roles", roles=COUNSELORS, args={"visit_id": VISIT_ID, "kind": "post"},
                               post=staff("?", "?", "?", "?", "?")),
    "counseling.correct": Route("roles", roles=COUNSELORS, args={"counseling_id": COUNSELING_ID},
                                post=staff("?", "?", "?", "?", "?")),
    "settings.index": Route("roles", roles=("coordinator",), get=staff("?", "?", "?", "?", "?")),
    "settings.update": Route("roles", roles=("coordinator",), post=staff("?", "?", "?", "?", "?")),
    "settings.sign_off": Route("roles", roles=("coordinator",), post=staff("?", "?", "?", "?", "?")),
    "stock.index": Route("roles", roles=WORKFLOW, get=staff("?", "?", "?", "?", "?")),
    "stock.receive": Route("roles", roles=("coordinator",), post=staff("?", "?", "?", "?", "?")),
    "stock.adjust": Route("roles", roles=("coordinator",), args={"lot_id": LOT_ID}, post=staff("?", "?", "?", "?", "?")),
    "stock.quarantine": Route("roles", roles=("coordinator",), args={"lot_id": LOT_ID},
                              post=staff("?", "?", "?", "?", "?")),
    "stock.release": Route("roles", roles=("coordinator",), args={"lot_id": LOT_ID}, post=staff("?", "?", "?", "?", "?")),
    "stock.qc": Route("roles", roles=TESTERS, args={"lot_id": LOT_ID}, post=staff("?", "?", "?", "?", "?")),
    "stock.receive_supply": Route("roles", roles=("coordinator",), post=staff("?", "?", "?", "?", "?")),
    "stock.adjust_supply": Route("roles", roles=("coordinator",), post=staff("?", "?", "?", "?", "?")),
    "stock.temperature": Route("roles", roles=WORKFLOW, post=staff("?", "?", "?", "?", "?")),
    "stock.shift": Route("roles", roles=WORKFLOW, post=staff("?", "?", "?", "?", "?")),
    "day.close_form": Route("roles", roles=("coordinator",), get=staff("?", "?", "?", "?", "?")),
    "day.close": Route("roles", roles=("coordinator",), post=staff("?", "?", "?", "?", "?")),
}

# ================================================================= THE TABLE: central server
#                     columns: anonymous, tester, counselor, coordinator, clinic
CENTRAL: dict[str, Route] = {
    "static": Route(
        "static", "CSS, htmx and app.js: no data, needed by the sign-in page itself",
        get=every(200, C), args={"filename": "css/app.css"}),
    "core.healthz": Route(
        "public", "monitoring: says only whether the server and its database answer, shows no data",
        get=every(200, C)),
    "core.home": Route(
        "roles", roles=ALL_ROLES, get=(TO_SIGNIN,) + every(200, C - 1)),
    "core.set_language": Route(
        "public", "the language switch works before sign-in (remembered in a cookie)",
        post=every("303 /", C), args={"code": "en"}),
    "central.setup": Route(
        "public", "first-run setup of an empty central server; closed once a coordinator exists",
        get=every(TO_SIGNIN, C), post=every(TO_SIGNIN, C)),
    "central.signin": Route(
        "public", "central sign-in: staff code + password + TOTP",
        get=every(200, C), post=every(422, C)),
    "central.totp_setup": Route(
        "public", "TOTP set-up on first sign-in, reachable only right after a correct password",
        get=every(TO_SIGNIN, C), post=every(TO_SIGNIN, C)),
    "central.signout": Route(
        "roles", roles=ALL_ROLES, post=(TO_SIGNIN,) + every("303 /signin", C - 1)),
}
# ================================================================= end of the table


def cases(table, actors):
    out = []
    for endpoint, route in table.items():
        for method in ("GET", "POST"):
            expected = route.get if method == "GET" else route.post
            if expected is not None:
                out += [pytest.param(endpoint, method, actor, want, id=f"{endpoint}-{method}-{actor}")
                        for actor, want in zip(actors, expected, strict=True)]
    return out


def check(response, want, what: str) -> None:
    if want == "?":
        print("OBSERVED", what, response.status_code, response.headers.get("Location", ""))
        return
    status, _, path = str(want).partition(" ")
    got = response.status_code
    location = response.headers.get("Location", "")
    assert got == int(status), f"{what}: expected {want}, got {got} {location}"
    if path:
        assert urlsplit(location).path == path, f"{what}: expected a redirect to {path}, got {location}"


def build_url(app, rule_endpoint: str, route: Route, ids: dict) -> str:
    args = {k: ids.get(v, v) for k, v in route.args.items()}
    with app.test_request_context():
        return url_for(rule_endpoint, **args)


def methods_of(app, endpoint: str) -> set[str]:
    return set().union(*(r.methods for r in app.url_map.iter_rules() if r.endpoint == endpoint))


def csrf_token(client, page: str) -> str:
    r = client.get(page)
    m = CSRF_RE.search(r.get_data(as_text=True))
    assert m, f"no CSRF token on {page} ({r.status_code})"
    return m.group(1) or m.group(2)


# ---------------------------------------------------------------- the table covers the app, and only the app

def assert_table_matches(app, table: dict, where: str) -> None:
    routes = {}
    for rule in app.url_map.iter_rules():
        routes.setdefault(rule.endpoint, set()).update(rule.methods & {"GET", "POST"})
    missing = sorted(set(routes) - set(table))
    assert not missing, (f"{where}: route(s) {missing} are in app.url_map but not in the authorization matrix: "
                         f"add an entry to {where} in tests/test_authz_matrix.py with the expected status "
                         "for every actor (and why, if it is exempt from the staff login)")
    stale = sorted(set(table) - set(routes))
    assert not stale, f"{where}: {stale} are in the matrix but no longer in app.url_map: remove them"
    for endpoint, methods in routes.items():
        route = table[endpoint]
        listed = {m for m, exp in (("GET", route.get), ("POST", route.post)) if exp is not None}
        assert listed == methods, (f"{where}[{endpoint!r}]: the route answers {sorted(methods)} but the matrix "
                                   f"lists {sorted(listed)}: give the expected statuses for each method")


def assert_declarations_match(app, table: dict, where: str) -> None:
    for endpoint, view in app.view_functions.items():
        route = table[endpoint]
        if endpoint == "static":  # Flask's own view; guard() lets it through by name
            assert route.access == "static" and route.why
            continue
        access = getattr(view, "_access", None)
        assert access is not None, (f"{endpoint} declares no access: decorate it with @public(\"why\"), "
                                    "@device_required or @role_required(...)")
        assert access[0] == route.access, f"{where}[{endpoint!r}]: the view declares {access[0]}, matrix says {route.access}"
        if access[0] != "roles":
            assert route.why, f"{where}[{endpoint!r}] is exempt from the staff login: say why in the matrix"
        if access[0] == "public":
            assert access[1], f"{endpoint}: @public needs a reason"
        if access[0] == "roles":
            assert {r.value for r in access[1]} == set(route.roles), (
                f"{where}[{endpoint!r}]: the view allows {sorted(r.value for r in access[1])}, "
                f"the matrix says {sorted(route.roles)}")


def test_every_booth_route_has_an_entry_and_a_declaration(app):
    assert_table_matches(app, BOOTH, "BOOTH")
    assert_declarations_match(app, BOOTH, "BOOTH")


def test_every_central_route_has_an_entry_and_a_declaration(pg_app):
    assert_table_matches(pg_app, CENTRAL, "CENTRAL")
    assert_declarations_match(pg_app, CENTRAL, "CENTRAL")


def test_undeclared_view_is_closed(make_app, clock):
    """A view without a declaration gets 403 for everybody, the coordinator included."""
    from tests.conftest import setup_node

    app = make_app()
    app.add_url_rule("/undeclared", "undeclared", lambda: "open")
    node = setup_node(app, clock)
    t = Tablet(app, node.device_token)
    t.login(node.coordinator_code, node.coordinator_pin)
    assert t.get("/undeclared").status_code == 403
    assert Tablet(app).get("/undeclared").status_code == 403


def test_booth_only_routes_are_absent_at_central_and_the_reverse(app, pg_app):
    booth_rules = {r.rule for r in app.url_map.iter_rules()}
    central_rules = {r.rule for r in pg_app.url_map.iter_rules()}
    for rule in sorted(booth_rules - central_rules):
        path = rule.replace("<staff_id>", str(uuid.uuid4())).replace("<device_id>", str(uuid.uuid4())) \
                   .replace("<action>", "unlock")
        assert pg_app.test_client().get(path).status_code in (404, 405), path
    for rule in sorted(central_rules - booth_rules):
        assert app.test_client().get(rule).status_code in (404, 405), rule


# ---------------------------------------------------------------- booth actors

@dataclass
class BoothWorld:
    app: object
    client: object        # the actor's test client
    csrf_page: str | None
    ids: dict


def display_device(app, clock) -> str:
    with app.app_context():
        _row, code = services.create_enrollment_code(db.session, now=clock.now(), minutes=10, actor=None,
                                                     kind="display")
        _dev, token = services.enroll_device(db.session, code=code, name="Tray", now=clock.now())
        db.session.commit()
        return token


def workflow_ids(app, node, clock) -> dict:
    """A booth ready to test, with one visit: consents, a device read, a device running, a counseling."""
    from booth.counseling import services as counseling
    from booth.screening import services as screening
    from booth.visits.models import Consent
    from tests.workflow.conftest import build_ctx

    with app.app_context():
        ctx = build_ctx(app, node, clock)
        visit = ctx.visit()
        ctx.consent_all(visit)

        def start(code):
            return screening.start(db.session, visit=visit, product=ctx.products[code], lot=ctx.lots[code],
                                   sample_type=ctx.settings.product(code)["samples"][0], slot=None,
                                   settings=ctx.settings, today=ctx.today, now=clock.now(), actor=ctx.tester)
        read, running = start("determine-hiv"), start("oraquick-hcv")
        clock.advance(seconds=read.read_from_s + 1)
        screening.record_result(db.session, read, {"hiv": ("non_reactive", None)}, now=clock.now(), actor=ctx.tester)
        c = counseling.finish(db.session, visit, kind="pre", now=clock.now(), actor=ctx.counselor,
                              preset_minutes=counseling.PRESET_MINUTES[0])
        db.session.commit()
        return {VISIT_ID: str(visit.id), LOT_ID: str(ctx.lots["determine-hiv"].id), RUNNING_ID: str(running.id),
                RESULT_ID: str(read.results[0].id),
                CONSENT_ID: str(db.session.scalar(select(Consent.id).where(Consent.visit_id == visit.id).limit(1))),
                COUNSELING_ID: str(c.id)}


def booth_world(node, clock, login, actor: str) -> BoothWorld:
    app = node.app
    from booth import tls

    tls.ensure_ca(app.instance_path)
    add_staff(app, clock, "T99", ["tester"])
    new_device(app, clock, name="Spare")
    ids = workflow_ids(app, node, clock)
    with app.app_context():
        ids[STAFF_ID] = str(db.session.scalar(select(Staff.id).where(Staff.code == "T99")))
        ids[DEVICE_ID] = str(db.session.scalar(select(Device.id).where(Device.name == "Spare")))
    if actor == "not_enrolled":
        return BoothWorld(app, Tablet(app).client, "/enroll", ids)
    if actor == "enrolled":
        return BoothWorld(app, Tablet(app, new_device(app, clock)).client, "/login", ids)
    if actor == "display":
        return BoothWorld(app, Tablet(app, display_device(app, clock)).client, "/login", ids)
    if actor == "idle_locked":
        t = login("coordinator")
        clock.advance(minutes=5, seconds=1)
        return BoothWorld(app, t.client, "/unlock", ids)
    if actor == "lead":
        return BoothWorld(app, login("coordinator", clinical_lead=True).client, "/", ids)
    return BoothWorld(app, login(actor).client, "/", ids)


@pytest.mark.parametrize("endpoint,method,actor,want", cases(BOOTH, BOOTH_ACTORS))
def test_booth_matrix(node, clock, login, endpoint, method, actor, want):
    world = booth_world(node, clock, login, actor)
    route = BOOTH[endpoint]
    assert method in methods_of(world.app, endpoint)
    url = build_url(world.app, endpoint, route, world.ids)
    if method == "GET":
        r = world.client.get(url)
    else:
        token = csrf_token(world.client, world.csrf_page)
        r = world.client.post(url, data={"csrf_token": token})
    check(r, want, f"{actor} {method} {url}")


def test_unknown_ids_are_404_for_coordinators_and_403_for_others(node, clock, login):
    """A random UUID: the coordinator learns it does not exist, other roles learn nothing."""
    coord, tester = login("coordinator"), login("tester")
    for path in (f"/staff/{uuid.uuid4()}/pin", f"/staff/{uuid.uuid4()}/unlock", f"/devices/{uuid.uuid4()}/revoke",
                 "/staff/not-a-uuid/pin"):
        for t, want in ((coord, 404), (tester, 403)):
            r = t.post(path, {}, csrf_page="/")
            assert r.status_code == want, (t.code, path, r.status_code)


# ---------------------------------------------------------------- central actors

CENTRAL_PASSWORD = "correct horse battery staple"


def central_staff(app, clock, code: str, roles) -> str:
    """A staff member at central with a password and a confirmed TOTP; returns the TOTP secret."""
    with app.app_context():
        staff = services.create_staff(db.session, code=code, roles=roles, password=CENTRAL_PASSWORD, now=clock.now())
        services.begin_totp_setup(db.session, staff)
        services.confirm_totp(db.session, staff, pyotp.TOTP(staff.totp_secret).at(clock.now()), now=clock.now(),
                              policy=services.LockoutPolicy())
        db.session.commit()
        return staff.totp_secret


def central_signin(app, clock, code: str, secret: str):
    client = app.test_client()
    r = client.post("/signin", data={"code": code, "password": CENTRAL_PASSWORD,
                                     "totp": pyotp.TOTP(secret).at(clock.now()),
                                     "csrf_token": csrf_token(client, "/signin")})
    assert r.status_code == 303, r.get_data(as_text=True)[:500]
    return client


def central_world(app, clock, actor: str):
    secret = central_staff(app, clock, "C01", ["coordinator"])
    if actor == "anonymous":
        return app.test_client(), "/signin"
    if actor == "coordinator":
        return central_signin(app, clock, "C01", secret), "/"
    code = actor[:3].upper() + "1"
    return central_signin(app, clock, code, central_staff(app, clock, code, [actor])), "/"


@pytest.mark.parametrize("endpoint,method,actor,want", cases(CENTRAL, CENTRAL_ACTORS))
def test_central_matrix(pg_app, clock, endpoint, method, actor, want):
    client, csrf_page = central_world(pg_app, clock, actor)
    route = CENTRAL[endpoint]
    assert method in methods_of(pg_app, endpoint)
    url = build_url(pg_app, endpoint, route, {})
    if method == "GET":
        r = client.get(url)
    else:
        r = client.post(url, data={"csrf_token": csrf_token(client, csrf_page)})
    check(r, want, f"{actor} {method} {url}")
