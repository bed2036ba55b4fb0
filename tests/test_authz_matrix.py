"""The authorization matrix: every endpoint of ``app.url_map`` × every actor → the expected status.

The table below (BOOTH and CENTRAL) is the one place that says who may reach what. A route that is in
``url_map`` but not in the table fails ``test_every_*_route_has_an_entry_and_a_declaration`` (add it
here, with its expected statuses); a route exempt from the staff login (static, public, device, display)
says why, and the table must agree with the view's own declaration (``@public``, ``@role_required`` …).

Each expected status is an int or ``"30x /path"`` (a redirect to that path, query ignored); a path may
hold an id placeholder such as ``<a visit id>``, replaced by the real id of the world the test builds.
GETs carry nothing; POSTs carry the actor's valid CSRF token and an otherwise empty body.
The booth world (a set-up node with a day of work and one browser per actor) is built once per run
and copied for each case; the clock is moved, never slept on.
"""
from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

import pyotp
import pytest
from flask import url_for
from sqlalchemy import select

from booth import create_app
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
TO_VISIT = f"303 /visits/{VISIT_ID}"
REFERRAL_ID, DESTINATION_ID, TOKEN = "<a referral id>", "<a destination id>", "<a slip token>"
TO_REFERRAL = f"303 /referrals/{REFERRAL_ID}"
CLINIC = ("clinic",)


@dataclass(frozen=True)
class Route:
    access: str                    # "static" | "public" | "device" | "display" | "roles" | "signed"
    why: str = ""                  # required for every exemption (anything but "roles")
    roles: tuple = ()              # for "roles": the roles the view declares
    get: tuple | None = None       # expected status per actor (column order of the actors above)
    post: tuple | None = None
    args: dict = field(default_factory=dict)


UNKNOWN_ID = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"   # a well-formed id of nothing


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
    # a display (tray screen) is read-only: nobody logs in on it
    "auth.login": Route(
        "device", "PIN login: an enrolled device, nobody logged in yet",
        get=(TO_ENROLL, 200, 403) + every(200, B - 3), post=(TO_ENROLL, 422, 403) + every(422, B - 3)),
    "auth.unlock": Route(
        "device", "idle unlock asks only for the PIN of the locked session (no live session needed)",
        get=(TO_ENROLL, TO_LOGIN, 403, 200) + every(TO_HOME, 5),
        post=(TO_ENROLL, TO_LOGIN, 403, 422) + every(TO_HOME, 5)),
    "auth.logout": Route(
        "device", "switch user: one tap ends whatever session this device holds, even a locked one",
        post=(TO_ENROLL, "303 /login", 403) + every("303 /login", B - 3)),
    "auth.staff_index": Route("roles", roles=("coordinator",), get=staff(403, 403, 200, 403, 200)),
    "auth.staff_add": Route("roles", roles=("coordinator",), post=staff(403, 403, 422, 403, 422)),
    "auth.staff_action": Route(
        "roles", roles=("coordinator",), args={"staff_id": STAFF_ID, "action": "unlock"},
        post=staff(403, 403, "303 /staff", 403, "303 /staff")),
    "auth.staff_pin": Route(
        "roles", roles=("coordinator",), args={"staff_id": STAFF_ID},
        get=staff(403, 403, 200, 403, 200), post=staff(403, 403, 422, 403, 422)),
    "auth.devices_index": Route("roles", roles=("coordinator",), get=staff(403, 403, 200, 403, 200)),
    # an empty body is a valid form here (kind defaults to tablet); the new code is shown once on /devices
    "auth.devices_new_code": Route("roles", roles=("coordinator",),
                                   post=staff(403, 403, "303 /devices", 403, "303 /devices")),
    "auth.devices_revoke": Route(
        "roles", roles=("coordinator",), args={"device_id": DEVICE_ID},
        post=staff(403, 403, "303 /devices", 403, "303 /devices")),
    # ------------------------------------------------------------- booth workflow (clinic staff are not part of it)
    "visits.queue": Route("roles", roles=WORKFLOW, get=staff(200, 200, 200, 403, 200)),
    "visits.new": Route("roles", roles=WORKFLOW, get=staff(200, 200, 200, 403, 200)),
    "visits.create": Route("roles", roles=WORKFLOW, post=staff(422, 422, 422, 403, 422)),
    "visits.show": Route("roles", roles=WORKFLOW, args={"visit_id": VISIT_ID}, get=staff(200, 200, 200, 403, 200)),
    "visits.update_intake": Route("roles", roles=WORKFLOW, args={"visit_id": VISIT_ID},
                                  post=staff(422, 422, 422, 403, 422)),
    "visits.consent": Route("roles", roles=WORKFLOW, args={"visit_id": VISIT_ID}, post=staff(422, 422, 422, 403, 422)),
    "visits.correct_consent": Route("roles", roles=WORKFLOW, args={"consent_id": CONSENT_ID},
                                    post=staff(422, 422, 422, 403, 422)),
    "visits.close": Route("roles", roles=WORKFLOW, args={"visit_id": VISIT_ID}, post=staff(422, 422, 422, 403, 422)),
    "screening.start": Route("roles", roles=TESTERS, args={"visit_id": VISIT_ID}, post=staff(422, 403, 422, 403, 422)),
    "screening.result": Route("roles", roles=TESTERS, args={"screening_id": RUNNING_ID},
                              post=staff(422, 403, 422, 403, 422)),
    # one tap: the reason defaults to a procedure error
    "screening.close_out": Route("roles", roles=TESTERS, args={"screening_id": RUNNING_ID},
                                 post=staff(TO_VISIT, 403, TO_VISIT, 403, TO_VISIT)),
    "screening.correct": Route("roles", roles=WORKFLOW, args={"result_id": RESULT_ID},
                               post=staff(422, 422, 422, 403, 422)),
    "screening.board": Route("roles", roles=WORKFLOW, get=staff(200, 200, 200, 403, 200)),
    "screening.display_board": Route(
        "display", "the tray screen: a device enrolled as a display, no staff login; slots and call numbers only",
        get=(TO_ENROLL, 403, 200) + every(403, B - 3)),
    "screening.display_queue": Route(
        "display", "the waiting-room screen: a device enrolled as a display, no staff login; call numbers only",
        get=(TO_ENROLL, 403, 200) + every(403, B - 3)),
    "counseling.start": Route("roles", roles=COUNSELORS, args={"visit_id": VISIT_ID, "kind": "post"},
                              post=staff(403, TO_VISIT, TO_VISIT, 403, TO_VISIT)),
    "counseling.finish": Route("roles", roles=COUNSELORS, args={"visit_id": VISIT_ID, "kind": "post"},
                               post=staff(403, 422, 422, 403, 422)),
    "counseling.correct": Route("roles", roles=COUNSELORS, args={"counseling_id": COUNSELING_ID},
                                post=staff(403, 422, 422, 403, 422)),
    "settings.index": Route("roles", roles=("coordinator",), get=staff(403, 403, 200, 403, 200)),
    "settings.update": Route("roles", roles=("coordinator",), post=staff(403, 403, 422, 403, 422)),
    # only the clinical lead signs clinical settings off (422 here: the settings in force are already signed)
    "settings.sign_off": Route("roles", roles=("coordinator",), post=staff(403, 403, 403, 403, 422)),
    "stock.index": Route("roles", roles=WORKFLOW, get=staff(200, 200, 200, 403, 200)),
    "stock.receive": Route("roles", roles=("coordinator",), post=staff(403, 403, 422, 403, 422)),
    "stock.adjust": Route("roles", roles=("coordinator",), args={"lot_id": LOT_ID},
                          post=staff(403, 403, 422, 403, 422)),
    "stock.quarantine": Route("roles", roles=("coordinator",), args={"lot_id": LOT_ID},
                              post=staff(403, 403, 422, 403, 422)),
    "stock.release": Route("roles", roles=("coordinator",), args={"lot_id": LOT_ID},
                           post=staff(403, 403, 422, 403, 422)),
    "stock.qc": Route("roles", roles=TESTERS, args={"lot_id": LOT_ID}, post=staff(422, 403, 422, 403, 422)),
    "stock.receive_supply": Route("roles", roles=("coordinator",), post=staff(403, 403, 422, 403, 422)),
    "stock.adjust_supply": Route("roles", roles=("coordinator",), post=staff(403, 403, 422, 403, 422)),
    "stock.temperature": Route("roles", roles=WORKFLOW, post=staff(422, 422, 422, 403, 422)),
    # one tap signs on (or off)
    "stock.shift": Route("roles", roles=WORKFLOW, post=staff("303 /", "303 /", "303 /", 403, "303 /")),
    "day.close_form": Route("roles", roles=("coordinator",), get=staff(403, 403, 200, 403, 200)),
    "day.close": Route("roles", roles=("coordinator",), post=staff(403, 403, 422, 403, 422)),
    # today's totals with exact counts: coordinators only (polled by htmx; the same route answers the partial)
    "reports.dashboard": Route("roles", roles=("coordinator",), get=staff(403, 403, 200, 403, 200)),
    # ------------------------------------------------------------- sync with central (the booth coordinator's screen)
    "sync.index": Route("roles", roles=("coordinator",), get=staff(403, 403, 200, 403, 200)),
    "sync.progress": Route("roles", roles=("coordinator",), get=staff(403, 403, 200, 403, 200)),
    "sync.receipt": Route("roles", roles=("coordinator",), get=staff(403, 403, 200, 403, 200)),
    # the matrix's node is not enrolled: an empty form is refused (422), the rest need an enrolled node (409)
    "sync.enroll": Route("roles", roles=("coordinator",), post=staff(403, 403, 422, 403, 422)),
    "sync.push": Route("roles", roles=("coordinator",), post=staff(403, 403, 409, 403, 409)),
    "sync.pull": Route("roles", roles=("coordinator",), post=staff(403, 403, 409, 403, 409)),
    "sync.check_receipt": Route("roles", roles=("coordinator",), post=staff(403, 403, 409, 403, 409)),
    "sync.bundle": Route("roles", roles=("coordinator",), post=staff(403, 403, 409, 403, 409)),
    "sync.bundle_receipt": Route("roles", roles=("coordinator",), post=staff(403, 403, 409, 403, 409)),
    "sync.purge": Route("roles", roles=("coordinator",), post=staff(403, 403, 422, 403, 422)),
    "reports.export_csv": Route("roles", roles=("coordinator",), get=staff(403, 403, 200, 403, 200)),
    "reports.export_pdf": Route("roles", roles=("coordinator",), get=staff(403, 403, 200, 403, 200)),
    "reports.export_dhis2": Route("roles", roles=("coordinator",), get=staff(403, 403, 200, 403, 200)),
    "reports.export_fhir": Route("roles", roles=("coordinator",), get=staff(403, 403, 200, 403, 200)),
    # ------------------------------------------------------------- referrals (counselors issue them)
    "referrals.new": Route("roles", roles=COUNSELORS, args={"visit_id": VISIT_ID},
                           get=staff(403, 200, 200, 403, 200)),
    "referrals.issue": Route("roles", roles=COUNSELORS, args={"visit_id": VISIT_ID},
                             post=staff(403, 422, 422, 403, 422)),
    "referrals.show": Route("roles", roles=COUNSELORS, args={"referral_id": REFERRAL_ID},
                            get=staff(403, 200, 200, 403, 200)),
    "referrals.slip": Route("roles", roles=COUNSELORS, args={"referral_id": REFERRAL_ID},
                            get=staff(403, 200, 200, 403, 200)),
    # no printer configured: back to the page that embeds the PDF for the browser's print dialog
    "referrals.print_slip": Route("roles", roles=COUNSELORS, args={"referral_id": REFERRAL_ID},
                                  post=staff(403, TO_REFERRAL, TO_REFERRAL, 403, TO_REFERRAL)),
    "referrals.cancel": Route("roles", roles=COUNSELORS, args={"referral_id": REFERRAL_ID},
                              post=staff(403, TO_REFERRAL, TO_REFERRAL, 403, TO_REFERRAL)),
    "referrals.destinations_index": Route("roles", roles=("coordinator",), get=staff(403, 403, 200, 403, 200)),
    "referrals.destinations_save": Route("roles", roles=("coordinator",), post=staff(403, 403, 422, 403, 422)),
    "referrals.destinations_rule": Route("roles", roles=("coordinator",), post=staff(403, 403, 422, 403, 422)),
    "referrals.destinations_link_staff": Route("roles", roles=("coordinator",),
                                               args={"destination_id": DESTINATION_ID},
                                               post=staff(403, 403, 422, 403, 422)),
    "referrals.printing": Route("roles", roles=("coordinator",), post=staff(403, 403, 422, 403, 422)),
    # ------------------------------------------------------------- the clinic side (also on a booth, to try it out)
    "clinic.neutral": Route(
        "public", "the neutral page a scanned QR opens for the person holding the slip: destination only",
        get=every(200, B), args={"token": TOKEN}),
    "clinic.index": Route("roles", roles=CLINIC, get=staff(403, 403, 403, 200, 403)),
    # an empty folio: the generic "not found" answer
    "clinic.lookup": Route("roles", roles=CLINIC, post=staff(403, 403, 403, 404, 403)),
    "clinic.by_token": Route("roles", roles=CLINIC, args={"token": TOKEN},
                             get=staff(403, 403, 403, f"303 /clinic/referrals/{REFERRAL_ID}", 403)),
    "clinic.show": Route("roles", roles=CLINIC, args={"referral_id": REFERRAL_ID}, get=staff(403, 403, 403, 200, 403)),
    "clinic.act": Route("roles", roles=CLINIC, args={"referral_id": REFERRAL_ID, "action": "arrival"},
                        post=staff(403, 403, 403, 422, 403)),
    "clinic.provisional": Route("roles", roles=CLINIC, post=staff(403, 403, 403, 422, 403)),
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
    # the central dashboard: exact counts and the shareable (suppressed) view, coordinators only
    # ------------------------------------------------------------- sync: the central coordinator's screen
    "sync_admin.central_index": Route("roles", roles=("coordinator",), get=(TO_SIGNIN, 403, 403, 200, 403)),
    "sync_admin.create_event": Route("roles", roles=("coordinator",), post=(TO_SIGNIN, 403, 403, 422, 403)),
    "sync_admin.register_node": Route("roles", roles=("coordinator",), post=(TO_SIGNIN, 403, 403, 422, 403)),
    "sync_admin.link_node": Route("roles", roles=("coordinator",), args={"node_id": UNKNOWN_ID},
                                  post=(TO_SIGNIN, 403, 403, 404, 403)),
    "sync_admin.revoke_node": Route("roles", roles=("coordinator",), args={"node_id": UNKNOWN_ID},
                                    post=(TO_SIGNIN, 403, 403, 404, 403)),
    "sync_admin.resolve": Route("roles", roles=("coordinator",), args={"entry_id": UNKNOWN_ID},
                                post=(TO_SIGNIN, 403, 403, 404, 403)),
    "central_reports.dashboard": Route("roles", roles=("coordinator",), get=(TO_SIGNIN, 403, 403, 200, 403)),
    "central_reports.shareable": Route("roles", roles=("coordinator",), get=(TO_SIGNIN, 403, 403, 200, 403)),
    "central_exports.export": Route("roles", roles=("coordinator",), args={"fmt": "csv"},
                                    get=(TO_SIGNIN, 403, 403, 200, 403)),
    # the clinic side; central holds no referral yet in this world (they arrive with sync)
    "clinic.neutral": Route(
        "public", "the neutral page a scanned QR opens for the person holding the slip: destination only",
        get=every(404, C), args={"token": TOKEN}),
    "clinic.index": Route("roles", roles=CLINIC, get=(TO_SIGNIN, 403, 403, 403, 200)),
    "clinic.lookup": Route("roles", roles=CLINIC, post=(TO_SIGNIN, 403, 403, 403, 404)),
    "clinic.by_token": Route("roles", roles=CLINIC, args={"token": TOKEN}, get=(TO_SIGNIN, 403, 403, 403, 404)),
    "clinic.show": Route("roles", roles=CLINIC, args={"referral_id": REFERRAL_ID},
                         get=(TO_SIGNIN, 403, 403, 403, 404)),
    "clinic.act": Route("roles", roles=CLINIC, args={"referral_id": REFERRAL_ID, "action": "arrival"},
                        post=(TO_SIGNIN, 403, 403, 403, 404)),
    "clinic.provisional": Route("roles", roles=CLINIC, post=(TO_SIGNIN, 403, 403, 403, 422)),
    # ------------------------------------------------------------- the sync API (JSON, no sessions, no CSRF tokens)
    # a form body is not the JSON the API takes: 400 whoever sends it (the rest is in tests/sync)
    "sync_api.enroll": Route(
        "public", "a booth node's enrollment: authenticated by the one-time code in its JSON body, rate-limited",
        post=every(400, C)),
    "sync_api.ping": Route(
        "signed", "the sync API: each request is signed with an enrolled node's secret (HMAC), checked by the view; "
                  "a staff session counts for nothing",
        post=every(401, C)),
    "sync_api.push": Route("signed", "the sync API: a batch of a node's records, signed (HMAC)", post=every(401, C)),
    "sync_api.receipt": Route("signed", "the sync API: the node's reconciliation receipt, signed (HMAC)",
                              post=every(401, C)),
    "sync_api.pull": Route("signed", "the sync API: catalogue and linkage for the node, signed (HMAC)",
                           post=every(401, C)),
    "sync_api.openapi": Route("public", "the OpenAPI description of the sync API: no data, nothing secret",
                              get=every(200, C)),
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


def check(response, want, what: str, ids: dict | None = None) -> None:
    status, _, path = str(want).partition(" ")
    for placeholder, value in (ids or {}).items():
        path = path.replace(placeholder, value)
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
                                    "@device_required, @role_required(...) or @signed_node")
        assert access[0] == route.access, (f"{where}[{endpoint!r}]: the view declares {access[0]}, "
                                           f"the matrix says {route.access}")
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


def test_a_new_route_without_an_entry_fails(app):
    from booth.auth.access import role_required
    from booth.auth.models import Role

    app.add_url_rule("/brand-new", "brand_new", role_required(Role.TESTER)(lambda: "new"))
    with pytest.raises(AssertionError, match="add an entry"):
        assert_table_matches(app, BOOTH, "BOOTH")


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
        from booth.referrals import codes as referral_codes
        from booth.referrals import services as referrals
        _family, special, _hep, _pep = referrals.add_examples(db.session, now=clock.now())
        key = referrals.referral_key(app.instance_path)
        ref, token = referrals.issue(db.session, visit=visit, reason="hiv_confirmation", destination=special,
                                     valid_until=ctx.today + timedelta(days=30), key=key, today=ctx.today,
                                     now=clock.now(), actor=ctx.counselor)
        db.session.commit()
        assert referral_codes.token_verifies(token, key)
        return {VISIT_ID: str(visit.id), REFERRAL_ID: str(ref.id), DESTINATION_ID: str(special.id), TOKEN: token, LOT_ID: str(ctx.lots["determine-hiv"].id), RUNNING_ID: str(running.id),
                RESULT_ID: str(read.results[0].id), COUNSELING_ID: str(c.id),
                CONSENT_ID: str(db.session.scalar(select(Consent.id).where(Consent.visit_id == visit.id).limit(1)))}


@dataclass
class WorldFile:
    """A set-up booth with a day of work and one browser per actor, built once and copied for each test."""
    db_path: object
    now: object
    ids: dict
    cookies: dict          # actor → {cookie name: value}


@pytest.fixture(scope="session")
def booth_world_file(template_db, tmp_path_factory) -> WorldFile:
    from booth.clock import FrozenClock
    from tests.conftest import START, base_config, setup_node

    folder = tmp_path_factory.mktemp("matrix-world")
    (folder / "instance").mkdir()
    shutil.copy(template_db, folder / "node.sqlite3")
    clock = FrozenClock(START)
    app = create_app(base_config(folder, CLOCK=clock))
    node = setup_node(app, clock)
    add_staff(app, clock, "T99", ["tester"])
    new_device(app, clock, name="Spare")
    ids = workflow_ids(app, node, clock)
    with app.app_context():
        ids[STAFF_ID] = str(db.session.scalar(select(Staff.id).where(Staff.code == "T99")))
        ids[DEVICE_ID] = str(db.session.scalar(select(Device.id).where(Device.name == "Spare")))
    cookies = {"not_enrolled": {}, "enrolled": {"vinculo_device": new_device(app, clock)},
               "display": {"vinculo_device": display_device(app, clock)}}
    logins = {"idle_locked": ("coordinator",), "tester": ("tester",), "counselor": ("counselor",),
              "coordinator": ("coordinator",), "clinic": ("clinic",), "lead": ("coordinator",)}
    for n, (actor, roles) in enumerate(logins.items()):
        code = f"A{n:02d}"
        add_staff(app, clock, code, roles, clinical_lead=actor == "lead")
        t = Tablet(app, new_device(app, clock))
        t.login(code, "731945")  # through /login, as a person would
        cookies[actor] = {name: t.client.get_cookie(name).value for name in ("vinculo_device", "vinculo_session")}
        if actor == "clinic":  # clinic staff work for the destination the world's referral is addressed to
            from booth.referrals import services as referrals
            from booth.referrals.models import Destination
            with app.app_context():
                referrals.link_staff(db.session, staff=services.staff_by_code(db.session, code),
                                     destination=db.session.get(Destination, uuid.UUID(ids[DESTINATION_ID])),
                                     now=clock.now(), actor=None)
                db.session.commit()
    with app.app_context():
        db.engine.dispose()
    return WorldFile(folder / "node.sqlite3", clock.now(), ids, cookies)


CSRF_PAGES = {"not_enrolled": "/enroll", "enrolled": "/login", "display": "/display/board", "idle_locked": "/unlock"}


@dataclass
class BoothWorld:
    app: object
    ids: dict
    cookies: dict

    def client(self, actor: str):
        client = self.app.test_client()
        for name, value in self.cookies[actor].items():
            client.set_cookie(name, value)
        return client

    @staticmethod
    def csrf_page(actor: str) -> str:
        return CSRF_PAGES.get(actor, "/")


@pytest.fixture
def booth_world(booth_world_file, tmp_path, clock):
    """A fresh copy of the world for one test; the clock stands where the world's day left it."""
    from tests.conftest import base_config

    (tmp_path / "instance").mkdir(exist_ok=True)
    shutil.copy(booth_world_file.db_path, tmp_path / "node.sqlite3")
    key = booth_world_file.db_path.parent / "instance" / "referral_key"
    if key.exists():  # the node's referral key: the world's QR tokens verify on the copy too
        shutil.copy(key, tmp_path / "instance" / "referral_key")
    clock.set(booth_world_file.now)
    app = create_app(base_config(tmp_path, CLOCK=clock))
    from booth import tls

    tls.ensure_ca(app.instance_path)
    yield BoothWorld(app, booth_world_file.ids, booth_world_file.cookies)
    with app.app_context():
        db.engine.dispose()


def actor_client(world: BoothWorld, clock, actor: str):
    client = world.client(actor)
    if actor == "idle_locked":
        clock.advance(minutes=5, seconds=1)  # no sleeping: the clock moves
    return client


@pytest.mark.parametrize("endpoint,method,actor,want", cases(BOOTH, BOOTH_ACTORS))
def test_booth_matrix(booth_world, clock, endpoint, method, actor, want):
    app, route = booth_world.app, BOOTH[endpoint]
    client = actor_client(booth_world, clock, actor)
    assert method in methods_of(app, endpoint)
    url = build_url(app, endpoint, route, booth_world.ids)
    if method == "GET":
        r = client.get(url)
    else:
        r = client.post(url, data={"csrf_token": csrf_token(client, booth_world.csrf_page(actor))})
    check(r, want, f"{actor} {method} {url}", booth_world.ids)


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
        # set up with the previous step's code: the current one is left for the sign-in (codes are single-use)
        earlier = clock.now() - timedelta(seconds=30)
        services.confirm_totp(db.session, staff, pyotp.TOTP(staff.totp_secret).at(earlier), now=clock.now(),
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
