"""First-run setup: nothing else is reachable before it; clock comparison; bad input changes nothing."""

from sqlalchemy import func, select

from booth.auth.models import Device, Staff
from booth.events.models import Booth
from booth.extensions import db
from tests.conftest import CSRF_RE


def token(client, page="/setup"):
    m = CSRF_RE.search(client.get(page).get_data(as_text=True))
    return m.group(1) or m.group(2)


def form(client, clock, **over):
    data = {"event_name": "Marcha del Orgullo 2026", "event_day": "2026-06-27", "place": "CDMX, Reforma",
            "timezone": "America/Mexico_City", "booth_name": "Módulo 3", "coordinator_code": "c01",
            "pin": "482913", "pin_confirm": "482913", "browser_time_ms": str(int(clock.now().timestamp() * 1000)),
            "csrf_token": token(client)}
    data.update(over)
    return data


def counts(app):
    with app.app_context():
        return tuple(db.session.scalar(select(func.count()).select_from(m)) for m in (Booth, Staff, Device))


def test_empty_node_sends_everything_to_setup(client):
    for path in ("/", "/staff", "/devices", "/login", "/enroll"):
        r = client.get(path)
        assert r.status_code == 302 and r.headers["Location"].endswith("/setup"), path
    assert client.get("/healthz").status_code == 200
    assert "Configurar" in client.get("/setup").get_data(as_text=True)


def test_setup_creates_event_booth_coordinator_and_enrolls_this_browser(app, client, clock):
    r = client.post("/setup", data=form(client, clock))
    assert r.status_code == 303
    assert counts(app) == (1, 1, 1)
    home = client.get("/")
    assert home.status_code == 200
    assert "C01" in home.get_data(as_text=True)
    # setup is closed afterwards
    assert client.get("/setup").status_code == 302
    other = app.test_client()
    assert other.get("/setup").headers["Location"].endswith("/")


def test_clock_difference_needs_confirmation(app, client, clock):
    skewed = str(int((clock.now().timestamp() + 600) * 1000))
    r = client.post("/setup", data=form(client, clock, browser_time_ms=skewed))
    assert r.status_code == 422
    assert "10.0" in r.get_data(as_text=True)  # minutes of difference shown
    assert counts(app) == (0, 0, 0)
    r = client.post("/setup", data=form(client, clock, browser_time_ms=skewed, confirm_clock="y"))
    assert r.status_code == 303
    with app.app_context():
        assert db.session.scalar(select(Booth.setup_clock_skew_s)) == 600


def test_bad_setup_input_changes_nothing(app, client, clock):
    cases = [dict(pin="12345"), dict(pin="111111", pin_confirm="111111"), dict(pin_confirm="999999"),
             dict(event_name=""), dict(event_name="x" * 200), dict(timezone="Mars/Olympus"),
             dict(coordinator_code="a b c"), dict(event_day="not-a-date")]
    for over in cases:
        r = client.post("/setup", data=form(client, clock, **over))
        assert r.status_code == 422, over
        assert 'class="error"' in r.get_data(as_text=True)
    assert counts(app) == (0, 0, 0)


def test_setup_without_csrf_token_is_refused(app, client, clock):
    data = form(client, clock)
    del data["csrf_token"]
    assert client.post("/setup", data=data).status_code == 400
    assert counts(app) == (0, 0, 0)
