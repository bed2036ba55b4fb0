"""The command line: staff add/list/unlock/disable, device enroll/list/revoke, demo.

Messages are checked against the catalogue (``gettext`` in the CLI's locale) so that they read the
same as the web pages, whatever the translation says.
"""
from __future__ import annotations

import json
from datetime import date, datetime, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
from flask_babel import gettext
from sqlalchemy import func, select

from booth.auth.models import Staff
from booth.events.models import Booth, Event
from booth.extensions import db
from tests.conftest import Tablet, add_staff, new_device


def message(app, text: str, **kw) -> str:
    with app.app_context():
        return gettext(text, **kw)


def staff_list(runner) -> list[dict]:
    result = runner.invoke(args=["staff", "list", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def device_list(runner) -> list[dict]:
    result = runner.invoke(args=["device", "list", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def staff_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Staff))


# ---------------------------------------------------------------- staff

def test_staff_add_with_pin_from_stdin_then_list(runner):
    result = runner.invoke(args=["staff", "add", "--code", "T09", "--role", "tester", "--role", "counselor",
                                 "--pin-stdin"], input="294817\n")
    assert result.exit_code == 0, result.output
    assert "T09" in result.output and "294817" not in result.output
    assert staff_list(runner) == [{"code": "T09", "roles": ["counselor", "tester"], "clinical_lead": False,
                                   "disabled": False, "locked": False}]


def test_staff_add_asks_the_pin_twice_without_stdin(runner):
    result = runner.invoke(args=["staff", "add", "--code", "k03", "--role", "counselor"], input="294817\n294817\n")
    assert result.exit_code == 0, result.output
    assert [s["code"] for s in staff_list(runner)] == ["K03"]


def test_staff_added_on_the_command_line_logs_in(runner, node):
    runner.invoke(args=["staff", "add", "--code", "T09", "--role", "tester", "--pin-stdin"], input="294817\n")
    tablet = Tablet(node.app, new_device(node.app, node.app.config["CLOCK"]))
    tablet.login("T09", "294817")
    assert tablet.get("/").status_code == 200


@pytest.mark.parametrize("pin, text", [
    ("2948", "The PIN must be exactly 6 digits."),
    ("29481a", "The PIN must be exactly 6 digits."),
    ("", "The PIN must be exactly 6 digits."),
    ("123456", "This PIN is too easy to guess (repeated or consecutive digits). Choose another."),
    ("777777", "This PIN is too easy to guess (repeated or consecutive digits). Choose another."),
])
def test_staff_add_bad_pin_fails_and_creates_nothing(app, runner, pin, text):
    result = runner.invoke(args=["staff", "add", "--code", "T09", "--role", "tester", "--pin-stdin"],
                           input=pin + "\n")
    assert result.exit_code != 0
    assert message(app, text) in result.output
    assert staff_count(app) == 0


def test_staff_add_unknown_role_fails_and_creates_nothing(app, runner):
    result = runner.invoke(args=["staff", "add", "--code", "T09", "--role", "doctor", "--pin-stdin"],
                           input="294817\n")
    assert result.exit_code != 0
    assert "'doctor' is not one of" in result.output and "tester" in result.output
    assert staff_count(app) == 0


def test_staff_add_bad_code_fails(app, runner):
    result = runner.invoke(args=["staff", "add", "--code", "Ana María", "--role", "tester", "--pin-stdin"],
                           input="294817\n")
    assert result.exit_code != 0
    assert message(app, "The staff code must be 2 to 12 letters, digits or hyphens (for example T07).") in result.output
    assert staff_count(app) == 0


def test_staff_add_duplicate_code_fails_and_creates_nothing(app, runner):
    args = ["staff", "add", "--code", "T09", "--role", "tester", "--pin-stdin"]
    assert runner.invoke(args=args, input="294817\n").exit_code == 0
    result = runner.invoke(args=[*args[:3], "t09", *args[4:]], input="582931\n")
    assert result.exit_code != 0
    assert message(app, "The staff code %(code)s is already in use.", code="T09") in result.output
    assert [s["code"] for s in staff_list(runner)] == ["T09"]
    # the first PIN still works, the second was not stored
    with app.app_context():
        from booth.auth.hashing import verify_secret
        pin_hash = db.session.scalar(select(Staff.pin_hash))
        assert verify_secret(pin_hash, "294817") and not verify_secret(pin_hash, "582931")


def test_staff_unlock(runner, node, clock):
    add_staff(node.app, clock, "T09", ["tester"], pin="294817")
    tablet = Tablet(node.app, new_device(node.app, clock))
    for _ in range(5):
        assert tablet.post("/login", {"code": "T09", "pin": "999990"}).status_code == 401
    assert tablet.post("/login", {"code": "T09", "pin": "294817"}).status_code == 401
    assert {s["code"]: s["locked"] for s in staff_list(runner)}["T09"] is True

    result = runner.invoke(args=["staff", "unlock", "t09"])
    assert result.exit_code == 0 and "T09" in result.output
    assert {s["code"]: s["locked"] for s in staff_list(runner)}["T09"] is False
    tablet.login("T09", "294817")


def test_staff_disable_ends_open_sessions(runner, node, clock):
    add_staff(node.app, clock, "T09", ["tester"], pin="294817")
    tablet = Tablet(node.app, new_device(node.app, clock))
    tablet.login("T09", "294817")
    assert tablet.get("/").status_code == 200

    result = runner.invoke(args=["staff", "disable", "T09"])
    assert result.exit_code == 0, result.output
    r = tablet.get("/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert tablet.post("/login", {"code": "T09", "pin": "294817"}).status_code == 401
    assert {s["code"]: s["disabled"] for s in staff_list(runner)}["T09"] is True


def test_staff_unlock_or_disable_unknown_code_fails(runner):
    for command in ("unlock", "disable"):
        result = runner.invoke(args=["staff", command, "Z99"])
        assert result.exit_code != 0 and "Z99" in result.output


# ---------------------------------------------------------------- staff at central

def test_central_staff_add_with_password_from_stdin(pg_app, clock):
    from tests.test_central import Browser

    runner = pg_app.test_cli_runner()
    password = "jacaranda-insurgentes-26"
    for code, role in (("C01", "coordinator"), ("L01", "clinic")):
        result = runner.invoke(args=["staff", "add", "--code", code, "--role", role, "--password-stdin"],
                               input=password + "\n")
        assert result.exit_code == 0, result.output
        assert password not in result.output
    assert [(s["code"], s["roles"]) for s in staff_list(runner)] == [("C01", ["coordinator"]), ("L01", ["clinic"])]
    with pg_app.app_context():
        staff = db.session.scalar(select(Staff).where(Staff.code == "L01"))
        assert staff.password_hash.startswith("$argon2id$") and staff.pin_hash is None
    # a coordinator added on the command line completes central's first run: the web setup is closed,
    # and the first sign-in goes on to set up the authenticator app
    assert Browser(pg_app).get("/central/setup").headers["Location"].endswith("/signin")
    for code in ("C01", "L01"):
        r = Browser(pg_app).signin(code, password)
        assert r.status_code == 303 and r.headers["Location"].endswith("/signin/totp")


def test_central_staff_add_short_password_fails(pg_app):
    runner = pg_app.test_cli_runner()
    result = runner.invoke(args=["staff", "add", "--code", "L01", "--role", "clinic", "--password-stdin"],
                           input="short-pass1\n")
    assert result.exit_code != 0
    assert message(pg_app, "The password must have at least 12 characters.") in result.output
    assert staff_list(runner) == []


# ---------------------------------------------------------------- devices

def enroll_url(runner) -> tuple[str, str]:
    result = runner.invoke(args=["device", "enroll"])
    assert result.exit_code == 0, result.output
    url = result.stdout.strip()
    assert len(url.splitlines()) == 1
    parts = urlsplit(url)
    assert parts.scheme in ("http", "https") and parts.path == "/enroll"
    return f"{parts.path}?{parts.query}", parse_qs(parts.query)["code"][0]


def test_device_enroll_prints_a_one_time_url_that_enrollment_accepts(app, runner, node):
    path, code = enroll_url(runner)
    tablet = Tablet(app)
    page = tablet.get(path)
    assert page.status_code == 200 and code in page.get_data(as_text=True)  # the form is filled in
    r = tablet.post("/enroll", {"code": code, "name": "Tablet 7"}, csrf_page=path)
    assert r.status_code == 303 and r.headers["Location"].endswith("/login")
    tablet.login(node.coordinator_code, node.coordinator_pin)
    assert tablet.get("/").status_code == 200

    # one time only
    again = Tablet(app)
    r = again.post("/enroll", {"code": code, "name": "Tablet 8"}, csrf_page=path)
    assert r.status_code == 422
    assert message(app, "This enrollment code has already been used. Ask a coordinator for a new one.") \
        in r.get_data(as_text=True)
    assert [d["name"] for d in device_list(runner)].count("Tablet 8") == 0


def test_device_enroll_code_expires_after_ten_minutes(app, runner, node, clock):
    path, code = enroll_url(runner)
    clock.advance(minutes=10)
    tablet = Tablet(app)
    r = tablet.post("/enroll", {"code": code}, csrf_page=path)
    assert r.status_code == 422
    assert message(app, "This enrollment code has expired (codes last %(minutes)s minutes). "
                        "Ask a coordinator for a new one.", minutes=10) in r.get_data(as_text=True)


def test_device_list_and_revoke(app, runner, node, clock):
    token = new_device(app, clock, name="Tablet 2")
    devices = device_list(runner)
    assert [(d["name"], d["revoked"]) for d in devices][-1] == ("Tablet 2", False)
    assert len(devices) == 2  # the one that ran setup, and this one
    tablet = Tablet(app, token)
    tablet.login(node.coordinator_code, node.coordinator_pin)

    device_id = devices[-1]["id"]
    result = runner.invoke(args=["device", "revoke", device_id])
    assert result.exit_code == 0 and "Tablet 2" in result.output
    assert [d["revoked"] for d in device_list(runner)] == [False, True]
    r = tablet.get("/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/enroll")

    result = runner.invoke(args=["device", "revoke", device_id])
    assert result.exit_code != 0 and message(app, "This device is already revoked.") in result.output
    for bad in ("not-a-uuid", "01a2184a-1e12-7d14-89bf-4c86240f5019"):
        result = runner.invoke(args=["device", "revoke", bad])
        assert result.exit_code != 0 and bad in result.output


# ---------------------------------------------------------------- demo

def test_demo_fills_an_empty_node_and_prints_one_json_line(app, runner, clock):
    # 21:00 on Saturday in Mexico City is already Sunday in UTC: the demo's day is the event's
    clock.set(datetime(2026, 6, 28, 3, 0, tzinfo=timezone.utc))
    result = runner.invoke(args=["demo", "--visits", "30"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert set(out) == {"event", "date", "staff"}
    assert out["date"] == "2026-06-27"
    assert out["staff"] and all(set(s) == {"code", "roles", "pin"} for s in out["staff"])
    roles = {r for s in out["staff"] for r in s["roles"]}
    assert roles == {"tester", "counselor", "coordinator", "clinic"}
    with app.app_context():
        event = db.session.scalar(select(Event))
        assert str(event.id) == out["event"]
        assert event.day == date(2026, 6, 27) and event.timezone == "America/Mexico_City"
        assert db.session.scalar(select(func.count()).select_from(Booth)) == 1
    assert sorted(s["code"] for s in staff_list(runner)) == sorted(s["code"] for s in out["staff"])

    tablet = Tablet(app, new_device(app, clock))
    for s in out["staff"]:
        tablet.login(s["code"], s["pin"])
        assert tablet.get("/").status_code == 200


def test_demo_date_is_today_in_the_event_time_zone(runner, clock):
    clock.set(datetime(2026, 6, 27, 14, 0, tzinfo=timezone.utc))  # 08:00 in Mexico City
    out = json.loads(runner.invoke(args=["demo", "--visits", "0"]).stdout)
    assert out["date"] == "2026-06-27"


def test_demo_on_a_set_up_node_fails_clearly(app, runner, node):
    before = staff_list(runner)
    result = runner.invoke(args=["demo"])
    assert result.exit_code != 0
    assert "already set up" in result.output
    assert staff_list(runner) == before
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Event)) == 1


def test_demo_day_has_realistic_visits_and_same_seed_gives_same_data(make_app, clock):
    from booth.cli import demo
    from booth.screening.models import ScreeningResult
    from booth.visits.models import Consent, DayClosure, Visit

    assert next(p for p in demo.params if p.name == "visits_n").default == 800

    def run(seed, *extra):
        app = make_app()
        r = app.test_cli_runner().invoke(args=["demo", "--visits", "120", "--seed", str(seed), *extra])
        assert r.exit_code == 0, r.output
        with app.app_context():
            visits = db.session.scalars(select(Visit).order_by(Visit.seq)).all()
            shape = [(v.age_band, v.gender_identity, v.first_time, v.final_state) for v in visits]
            outcomes = sorted(db.session.scalars(select(ScreeningResult.outcome)))
            refused = db.session.scalar(select(func.count()).select_from(Consent).where(Consent.given.is_(False)))
            closed = db.session.scalar(select(func.count()).select_from(DayClosure))
            hours = {v.arrived_at.astimezone(__import__("zoneinfo").ZoneInfo("America/Mexico_City")).hour
                     for v in visits}
        db_engine_dispose(app)
        return shape, outcomes, refused, closed, hours

    a, b = run(7), run(7)
    assert a[:3] == b[:3]                      # same seed → same data
    shape, outcomes, _refused, closed, hours = a
    assert len(shape) == 120 and closed == 1   # a closed day
    assert min(hours) >= 10 and max(hours) < 16
    assert "non_reactive" in outcomes and any(s[3] == "done" for s in shape)
    assert sum(1 for s in shape if s[2]) > 10  # first-time testers
    c = run(8, "--open")
    assert c[3] == 0 and any(s[3] is None for s in c[0])   # --open leaves the day (and some visits) open
    assert c[0] != shape


def db_engine_dispose(app):
    with app.app_context():
        db.engine.dispose()
