"""Device enrollment with one-time codes valid 10 minutes."""
from sqlalchemy import func, select

from booth.auth.models import Device
from booth.extensions import db
from tests.conftest import Tablet


def new_code(coord) -> str:
    r = coord.post("/devices/codes", {"kind": "tablet"}, csrf_page="/devices")
    assert r.status_code == 303 and r.headers["Location"] == "/devices"
    html = coord.get("/devices").get_data(as_text=True)
    assert "bigcode" not in coord.get("/devices").get_data(as_text=True)  # shown once: a reload makes no new code
    import re
    m = re.search(r'<p class="bigcode"><code>([0-9A-Z]{4}-[0-9A-Z]{4})</code>', html)
    assert m, html[:2000]
    assert "data:image/svg+xml;base64," in html  # the QR of the enrollment URL
    return m.group(1)


def device_count(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Device))


def test_enroll_with_code_then_login(node, login):
    coord = login("coordinator")
    code = new_code(coord)
    t = Tablet(node.app)
    page = t.get(f"/enroll?code={code}").get_data(as_text=True)
    assert code in page
    r = t.post("/enroll", {"code": code.lower().replace("-", " "), "name": "Tableta 4"}, csrf_page="/enroll")
    assert r.status_code == 303 and r.headers["Location"] == "/login"
    assert t.get("/login").status_code == 200
    cookie = t.client.get_cookie("vinculo_device")
    assert cookie.http_only and cookie.same_site == "Strict"


def test_reused_code_refused(node, login):
    coord = login("coordinator")
    code = new_code(coord)
    assert Tablet(node.app).post("/enroll", {"code": code}, csrf_page="/enroll").status_code == 303
    before = device_count(node.app)
    r = Tablet(node.app).post("/enroll", {"code": code}, csrf_page="/enroll")
    assert r.status_code == 422 and "ya se usó" in r.get_data(as_text=True)
    assert device_count(node.app) == before


def test_expired_code_refused(node, login, clock):
    coord = login("coordinator")
    code = new_code(coord)
    clock.advance(minutes=10, seconds=1)
    before = device_count(node.app)
    r = Tablet(node.app).post("/enroll", {"code": code}, csrf_page="/enroll")
    assert r.status_code == 422 and "venció" in r.get_data(as_text=True)
    assert device_count(node.app) == before


def test_unknown_code_refused(node):
    r = Tablet(node.app).post("/enroll", {"code": "ZZZZ-ZZZZ"}, csrf_page="/enroll")
    assert r.status_code == 422 and "no es válido" in r.get_data(as_text=True)


def test_after_enrolling_the_tablet_returns_to_where_it_was_going(node, login):
    coord = login("coordinator")
    code = new_code(coord)
    t = Tablet(node.app)
    assert t.get("/staff").headers["Location"].endswith("/enroll")
    r = t.post("/enroll", {"code": code}, csrf_page="/enroll")
    from urllib.parse import unquote
    assert r.status_code == 303 and unquote(r.headers["Location"]) == "/login?next=/staff"
