"""PIN login, lockout, rate limit, idle lock, session ids, revoked devices and disabled staff."""
from sqlalchemy import select

from booth.audit.models import AuditEntry
from booth.auth.models import Staff
from booth.extensions import db
from tests.conftest import Tablet, add_staff, new_device


def test_not_enrolled_browser_sees_only_enrollment(node):
    stranger = node.app.test_client()
    for path in ("/", "/login", "/staff", "/devices", "/unlock"):
        r = stranger.get(path)
        assert r.status_code == 302 and r.headers["Location"].endswith("/enroll"), path
    assert stranger.get("/enroll").status_code == 200


def test_login_with_pin_then_home(tablet, node):
    r = tablet.login("c01", node.coordinator_pin)  # code is case-insensitive
    assert r.headers["Location"] == "/"
    assert tablet.get("/").status_code == 200


def test_wrong_pin_message_and_no_session(tablet):
    r = tablet.post("/login", {"code": "C01", "pin": "000001"})
    assert r.status_code == 401
    assert "incorrectos" in r.get_data(as_text=True)
    assert tablet.get("/").status_code == 302


def test_lockout_after_five_failures_across_devices_and_unlock(node, clock):
    add_staff(node.app, clock, "T07", ["tester"], pin="582931")
    a = Tablet(node.app, new_device(node.app, clock))
    b = Tablet(node.app, new_device(node.app, clock))
    for i in range(5):
        (a if i % 2 else b).post("/login", {"code": "T07", "pin": "999990"})
    # the right PIN is now refused on any device
    r = a.post("/login", {"code": "T07", "pin": "582931"})
    assert r.status_code == 401 and "bloque" in r.get_data(as_text=True)
    # a coordinator unlocks
    coord = Tablet(node.app, node.device_token)
    coord.login("C01", node.coordinator_pin)
    with node.app.app_context():
        staff_id = db.session.scalar(select(Staff.id).where(Staff.code == "T07"))
    r = coord.post(f"/staff/{staff_id}/unlock", {}, csrf_page="/staff")
    assert r.status_code == 303
    assert b.post("/login", {"code": "T07", "pin": "582931"}).status_code == 303


def test_lockout_expires_after_fifteen_minutes(node, clock):
    add_staff(node.app, clock, "T08", ["tester"], pin="582931")
    t = Tablet(node.app, new_device(node.app, clock))
    for _ in range(5):
        t.post("/login", {"code": "T08", "pin": "999990"})
    clock.advance(minutes=14)
    assert t.post("/login", {"code": "T08", "pin": "582931"}).status_code == 401
    clock.advance(minutes=2)
    assert t.post("/login", {"code": "T08", "pin": "582931"}).status_code == 303


def test_login_rate_limited_per_device(make_app, clock):
    from tests.conftest import setup_node
    app = make_app(LOGIN_RATE_LIMIT="3 per minute")
    n = setup_node(app, clock)
    t = Tablet(app, n.device_token)
    codes = [t.post("/login", {"code": f"X{i}9", "pin": "999990"}).status_code for i in range(4)]
    assert codes[:3] == [401, 401, 401] and codes[3] == 429
    # another device is not limited by the first one's attempts
    other = Tablet(app, new_device(app, clock))
    assert other.post("/login", {"code": "C01", "pin": n.coordinator_pin}).status_code == 303


def test_idle_lock_asks_only_for_pin_and_returns_to_same_page(tablet, node, clock):
    tablet.login("C01", node.coordinator_pin)
    assert tablet.get("/staff").status_code == 200
    clock.advance(minutes=5, seconds=1)
    r = tablet.get("/devices")
    from urllib.parse import unquote
    assert r.status_code == 302 and "/unlock?next=/devices" in unquote(r.headers["Location"])
    page = tablet.get("/unlock?next=/devices").get_data(as_text=True)
    assert "C01" in page and 'name="code"' not in page
    old = tablet.client.get_cookie("vinculo_session").value
    r = tablet.post("/unlock", {"pin": node.coordinator_pin, "next": "/devices"}, csrf_page="/unlock?next=/devices")
    assert r.status_code == 303 and r.headers["Location"] == "/devices"
    assert tablet.client.get_cookie("vinculo_session").value != old
    assert tablet.get("/devices").status_code == 200


def test_activity_keeps_session_open(tablet, node, clock):
    tablet.login("C01", node.coordinator_pin)
    for _ in range(5):
        clock.advance(minutes=4)
        assert tablet.get("/").status_code == 200


def test_idle_lock_counts_every_tap_though_the_session_row_is_written_at_most_every_30_s(tablet, node, clock):
    from booth.auth.models import StaffSession

    def row_last_seen():
        with node.app.app_context():
            return db.session.scalar(select(StaffSession.last_seen_at).join(Staff)
                                     .where(Staff.code == "C01", StaffSession.ended_at.is_(None)))

    tablet.login("C01", node.coordinator_pin)
    logged_in = clock.now()
    assert row_last_seen() == logged_in
    clock.advance(seconds=20)
    assert tablet.get("/").status_code == 200
    assert row_last_seen() == logged_in  # a tap 20 s after the row was written: no write (no commit, no fsync) …
    clock.advance(minutes=4, seconds=50)
    assert tablet.get("/").status_code == 200  # … yet the idle lock counted it: 5 min 10 s after the login
    assert row_last_seen() == clock.now()      # the row was 30 s old or more: written
    clock.advance(minutes=5, seconds=1)
    r = tablet.get("/")
    assert r.status_code == 302 and "/unlock" in r.headers["Location"]


def test_absolute_limit_ten_hours(tablet, node, clock):
    tablet.login("C01", node.coordinator_pin)
    for _ in range(10 * 15):
        clock.advance(minutes=4)
        if tablet.get("/").status_code != 200:
            break
    r = tablet.get("/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert clock.now() - __import__("tests.conftest", fromlist=["START"]).START <= __import__("datetime").timedelta(hours=10, minutes=4)


def test_new_session_id_at_every_login(tablet, node):
    tablet.client.set_cookie("vinculo_session", "attacker-chosen-value")
    tablet.login("C01", node.coordinator_pin)
    first = tablet.client.get_cookie("vinculo_session").value
    assert first != "attacker-chosen-value"
    tablet.post("/logout", {}, csrf_page="/")
    tablet.login("C01", node.coordinator_pin)
    assert tablet.client.get_cookie("vinculo_session").value != first


def test_switch_user_is_one_post(tablet, node):
    tablet.login("C01", node.coordinator_pin)
    r = tablet.post("/logout", {}, csrf_page="/")
    assert r.status_code == 303 and r.headers["Location"] == "/login"
    assert tablet.get("/").status_code == 302


def test_revoked_device_is_out_at_next_request(node, login):
    coord = login("coordinator")
    victim = login("tester")
    assert victim.get("/").status_code == 200
    from booth.auth.models import Device
    from booth.auth.hashing import token_hash
    with node.app.app_context():
        token = victim.client.get_cookie("vinculo_device").value
        dev_id = db.session.scalar(select(Device.id).where(Device.token_hash == token_hash(token)))
    assert coord.post(f"/devices/{dev_id}/revoke", {}, csrf_page="/devices").status_code == 303
    r = victim.get("/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/enroll")


def test_disabled_staff_is_out_at_next_request(node, login):
    coord = login("coordinator")
    tester = login("tester")
    with node.app.app_context():
        staff_id = db.session.scalar(select(Staff.id).where(Staff.code == tester.code))
    assert coord.post(f"/staff/{staff_id}/disable", {}, csrf_page="/staff").status_code == 303
    r = tester.get("/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert tester.post("/login", {"code": tester.code, "pin": "731945"}).status_code == 401


def test_add_staff_through_the_screen(node, login):
    coord = login("coordinator")
    r = coord.post("/staff", {"code": "k05", "roles": ["counselor", "tester"], "pin": "284617",
                              "pin_confirm": "284617"}, csrf_page="/staff")
    assert r.status_code == 303
    with node.app.app_context():
        s = db.session.scalar(select(Staff).where(Staff.code == "K05"))
        assert {r.value for r in s.roles} == {"counselor", "tester"}
        assert s.pin_hash.startswith("$argon2id$")
    # duplicate and bad input: clear message, nothing changes
    r = coord.post("/staff", {"code": "K05", "roles": ["tester"], "pin": "284617", "pin_confirm": "284617"},
                   csrf_page="/staff")
    assert r.status_code == 422 and "K05" in r.get_data(as_text=True)
    r = coord.post("/staff", {"code": "K06", "roles": [], "pin": "28461", "pin_confirm": "28461"}, csrf_page="/staff")
    assert r.status_code == 422
    with node.app.app_context():
        assert db.session.scalar(select(Staff).where(Staff.code == "K06")) is None


def test_wrong_role_gets_403(login):
    tester = login("tester")
    assert tester.get("/staff").status_code == 403
    assert tester.get("/devices").status_code == 403


def test_audit_log_records_logins_without_personal_data(tablet, node):
    tablet.login("C01", node.coordinator_pin)
    tablet.post("/login", {"code": "C01", "pin": "999990"})
    with node.app.app_context():
        actions = [a.action for a in db.session.scalars(select(AuditEntry).order_by(AuditEntry.at))]
        assert "login" in actions and "login.failed" in actions and "setup" in actions
        for e in db.session.scalars(select(AuditEntry)):
            assert e.record_id is None or "482913" not in e.record_id


def test_audit_entries_cannot_be_edited_or_deleted(node):
    import pytest
    from sqlalchemy import text
    with node.app.app_context():
        with pytest.raises(Exception):
            db.session.execute(text("DELETE FROM audit_entries"))
        db.session.rollback()
        with pytest.raises(Exception):
            db.session.execute(text("UPDATE audit_entries SET action='x'"))
        db.session.rollback()
