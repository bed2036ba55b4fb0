"""The booth workflow through HTTP: a full encounter, double taps, stale versions, roles, display mode."""
import re

from sqlalchemy import func, select

from booth.extensions import db
from booth.screening.models import Screening
from booth.visits.models import Visit
from tests.conftest import Tablet, new_device
from tests.workflow.conftest import build_ctx


def ready(node, clock):
    with node.app.app_context():
        build_ctx(node.app, node, clock)


def keep_alive(t, clock, minutes):
    for _ in range(minutes):
        clock.advance(minutes=1)
        assert t.get("/visits").status_code == 200


def new_visit(t, **fields):
    html = t.get("/visits/new").get_data(as_text=True)
    nonce = re.search(r'name="nonce" value="([^"]+)"', html).group(1)
    r = t.post("/visits", {"age_band": "25-29", "nonce": nonce, **fields}, csrf_page="/visits/new")
    assert r.status_code == 303, r.get_data(as_text=True)[:400]
    return r.headers["Location"], nonce


def start_forms(t, url):
    html = t.get(url).get_data(as_text=True)
    return re.findall(r'action="(/visits/[^"]+/screenings)".*?name="nonce" value="([^"]+)".*?name="lot" '
                      r'value="([^"]+)".*?name="sample_type" value="([^"]+)"', html, re.S)


def running_ids(t, url):
    return sorted(set(re.findall(r'action="/screenings/([^/]+)/result"', t.get(url).get_data(as_text=True))))


def test_full_non_reactive_encounter(node, clock, login):
    ready(node, clock)
    t = login("tester", "counselor")
    url, _ = new_visit(t, gender_identity="man", first_time="yes")
    assert "A-001" in t.get(url).get_data(as_text=True)
    assert t.post(url + "/consent", {"all": "yes", "given": "yes"}, csrf_page=url).status_code == 303
    forms = start_forms(t, url)
    assert len(forms) == 2  # HIV and hepatitis C, product and lot preselected
    for action, nonce, lot, sample in forms:
        assert t.post(action, {"nonce": nonce, "lot": lot, "sample_type": sample}, csrf_page=url).status_code == 303
    ids = running_ids(t, url)
    assert len(ids) == 2
    # too early: refused with the time still to wait, nothing recorded
    r = t.post(f"/screenings/{ids[0]}/result", {"outcome": "non_reactive"}, csrf_page=url)
    assert r.status_code == 422 and "min" in r.get_data(as_text=True)
    keep_alive(t, clock, 20)
    for sid in ids:
        assert t.post(f"/screenings/{sid}/result", {"outcome": "non_reactive"}, csrf_page=url).status_code == 303
    assert t.post(url + "/counseling/post/start", {}, csrf_page=url).status_code == 303
    keep_alive(t, clock, 4)
    r = t.post(url + "/counseling/post", {"result_given": "yes", "supply_condom": "4", "topics": ["prep"]},
               csrf_page=url)
    assert r.status_code == 303
    page = t.get(url).get_data(as_text=True)
    assert "badge--done" in page and "4 min" in page
    assert t.post(url + "/close", {"final_state": "done"}, csrf_page=url).status_code == 303
    with node.app.app_context():
        assert db.session.scalar(select(Visit.final_state)) == "done"


def test_double_tap_creates_one_visit_and_one_device(node, clock, login):
    ready(node, clock)
    t = login("tester")
    url, nonce = new_visit(t)
    again = t.post("/visits", {"age_band": "25-29", "nonce": nonce}, csrf_page="/visits/new")
    assert again.headers["Location"] == url
    t.post(url + "/consent", {"all": "yes", "given": "yes"}, csrf_page=url)
    action, n, lot, sample = start_forms(t, url)[0]
    for _ in range(2):
        t.post(action, {"nonce": n, "lot": lot, "sample_type": sample}, csrf_page=url)
    with node.app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Visit)) == 1
        assert db.session.scalar(select(func.count()).select_from(Screening)) == 1


def test_stale_write_gets_current_state_message(node, clock, login):
    ready(node, clock)
    a, b = login("tester"), login("tester")
    url, _ = new_visit(a)
    version = re.search(r'name="version" value="(\d+)"', a.get(url).get_data(as_text=True)).group(1)
    assert b.post(url + "/consent", {"all": "yes", "given": "yes"}, csrf_page=url).status_code == 303
    r = a.post(url + "/close", {"final_state": "left_before_test", "version": version}, csrf_page=url)
    assert r.status_code == 409
    with node.app.app_context():
        assert db.session.scalar(select(Visit.final_state)) is None


def test_counselor_cannot_start_tests_and_tester_cannot_counsel(node, clock, login):
    ready(node, clock)
    tester, counselor = login("tester"), login("counselor")
    url, _ = new_visit(tester)
    tester.post(url + "/consent", {"all": "yes", "given": "yes"}, csrf_page=url)
    action, n, lot, sample = start_forms(tester, url)[0]
    assert counselor.post(action, {"nonce": n, "lot": lot, "sample_type": sample}, csrf_page=url).status_code == 403
    assert tester.post(url + "/counseling/post/start", {}, csrf_page=url).status_code == 403


def test_display_mode_shows_no_results_and_needs_display_device(node, clock, login):
    ready(node, clock)
    from booth.auth import services
    with node.app.app_context():
        _row, code = services.create_enrollment_code(db.session, now=clock.now(), minutes=10, actor=None,
                                                     kind="display")
        _dev, token = services.enroll_device(db.session, code=code, name="Tray", now=clock.now())
        db.session.commit()
    display = Tablet(node.app, token)
    t = login("tester")
    url, _ = new_visit(t)
    t.post(url + "/consent", {"all": "yes", "given": "yes"}, csrf_page=url)
    action, n, lot, sample = start_forms(t, url)[0]
    t.post(action, {"nonce": n, "lot": lot, "sample_type": sample}, csrf_page=url)
    page = display.get("/display/board").get_data(as_text=True)
    assert "A-001" in page and "Determine" not in page
    # hours later the display is still there: no idle lock, no login
    clock.advance(hours=3)
    assert display.get("/display/board").status_code == 200
    assert display.get("/display/queue").status_code == 200
    assert display.get("/visits").status_code == 302  # staff screens need a login
    tablet = Tablet(node.app, new_device(node.app, clock))
    assert tablet.get("/display/board").status_code == 403


def test_timer_board_seen_from_two_tablets(node, clock, login):
    ready(node, clock)
    a, b = login("tester"), login("counselor")
    url, _ = new_visit(a)
    a.post(url + "/consent", {"all": "yes", "given": "yes"}, csrf_page=url)
    for action, n, lot, sample in start_forms(a, url):
        a.post(action, {"nonce": n, "lot": lot, "sample_type": sample}, csrf_page=url)
    board = b.get("/board", headers={"HX-Request": "true"})
    html = board.get_data(as_text=True)
    assert board.status_code == 200 and html.count("board__row--developing") == 2
    assert "<html" not in html  # htmx gets the partial
    assert "HX-Request" in board.headers.get("Vary", "")
