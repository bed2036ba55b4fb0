"""Today's totals on a hand-built day whose expected numbers are worked out by hand below (not by the
code under test), the dashboard over HTTP, and agreement with the visit card's own conclusions.

The day (Mexico City, UTC−6; HIV two-test algorithm, hepatitis C and syphilis one test; tester T01 on shift
10:00–13:00; the dashboard is looked at 13:20):

| visit | arrives | intake | HIV | hepatitis C | syphilis | ends |
|---|---|---|---|---|---|---|
| V1  | 10:00 | first time, msm | Determine NR (10:22) | NR (10:22) | — | done, PrEP interest |
| V2  | 10:05 | knew HIV+ | not asked | NR (10:26) | — | done |
| V3  | 10:10 | knew HIV+, tested anyway | Determine R, OraQuick R (10:47) | refused | — | done |
| V4  | 10:15 | trans woman, sex work | Determine R, OraQuick R (10:57) | NR (10:36) | — | done, referred |
| V5  | 11:00 | | Determine R, OraQuick NR: discordant (11:42) | R (11:21) | — | done, referred ×2 |
| V6  | 11:05 | | Determine invalid, repeat Determine NR (11:42) | NR (11:26) | — | done |
| V7  | 11:10 | | Determine NR (11:56) | read at 45 min: invalid, too late | — | done |
| V8  | 11:15 | | refused | refused | — | pre-test counseling only |
| V9  | 11:20 | | closed out | closed out | — | left before result |
| V10 | 12:00 | | read reactive, corrected to NR (12:21) | NR (12:21) | — | done |
| V11 | 12:05 | exposure < 72 h | dual device NR (12:22) | NR (12:26) | dual device R | done, referred ×2 |
| V12 | 12:30 | | running (since 12:31) | running, past its 40 min | — | still open |
| V13 | 12:40 | | NR (13:01) | NR (13:01), then its consent voided | — | done, PrEP referral |
"""
from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from booth.counseling import services as counseling
from booth.extensions import db
from booth.referrals import services as referrals
from booth.reports import indicators
from booth.screening import services as screening
from booth.settings.defaults import default_content
from booth.stock import services as stock
from booth.visits import queries
from booth.visits import services as visits
from booth.visits.models import Consent
from tests.conftest import START, setup_node
from tests.workflow.conftest import build_ctx

TZ = "America/Mexico_City"
KEY = secrets.token_bytes(32)


def at(clock, hh: int, mm: int) -> datetime:
    """Local time of the event day (Mexico City is UTC−6, no daylight saving time)."""
    clock.set(datetime(2026, 6, 27, hh + 6, mm, tzinfo=timezone.utc))
    return clock.now()


class Day:
    def __init__(self, ctx):
        self.ctx, self.clock = ctx, ctx.clock

    def visit(self, hh, mm, **intake):
        at(self.clock, hh, mm)
        intake.setdefault("first_time", "no")
        intake.setdefault("last_test", "3to12m")
        return self.ctx.visit(**intake)

    def consent(self, v, **given):
        for disease, ok in given.items():
            visits.record_consent(db.session, v, disease=disease, given=ok, settings=self.ctx.settings,
                                  language="es", now=self.clock.now(), actor=self.ctx.tester)

    def start(self, v, code, hh, mm, sample="fingerstick"):
        at(self.clock, hh, mm)
        return screening.start(db.session, visit=v, product=self.ctx.products[code], lot=self.ctx.lots[code],
                               sample_type=sample, slot=None, settings=self.ctx.settings, today=self.ctx.today,
                               now=self.clock.now(), actor=self.ctx.tester)

    def read(self, s, hh, mm, **outcomes):
        at(self.clock, hh, mm)
        results = {d: (o, "no_control_line" if o == "invalid" else None) for d, o in outcomes.items()}
        return screening.record_result(db.session, s, results, now=self.clock.now(), actor=self.ctx.tester)

    def post(self, v, hh, mm, minutes, **kw):
        at(self.clock, hh, mm)
        kw.setdefault("result_given", True)
        counseling.finish(db.session, v, kind="post", now=self.clock.now(), actor=self.ctx.counselor,
                          preset_minutes=minutes, **kw)

    def refer(self, v, reason, destination):
        return referrals.issue(db.session, visit=v, reason=reason, destination=destination,
                               valid_until=self.ctx.today + timedelta(days=30), key=KEY, today=self.ctx.today,
                               now=self.clock.now(), actor=self.ctx.counselor)[0]

    def close(self, v, hh, mm, state="done"):
        at(self.clock, hh, mm)
        visits.close_visit(db.session, v, final_state=state, now=self.clock.now(), actor=self.ctx.counselor)


def build_day(ctx) -> None:
    d, clock = Day(ctx), ctx.clock
    family, special, hepatitis, pep = referrals.add_examples(db.session, now=clock.now())
    stock.sign_on(db.session, booth_id=ctx.booth.id, staff=ctx.tester, now=at(clock, 10, 0))
    stock.sign_on(db.session, booth_id=ctx.booth.id, staff=ctx.counselor, now=at(clock, 10, 0))

    v1 = d.visit(10, 0, first_time="yes", last_test=None, gender_identity="man", beneficiary="no",
                 key_populations_asked=True, key_populations=("msm",))
    d.consent(v1, hiv=True, hcv=True)
    h, c = d.start(v1, "determine-hiv", 10, 2), d.start(v1, "oraquick-hcv", 10, 2)
    d.read(h, 10, 22, hiv="non_reactive")
    d.read(c, 10, 22, hcv="non_reactive")
    d.post(v1, 10, 25, 10, supplies={"condom": 4, "lubricant": 2}, prep_interest=True)
    d.close(v1, 10, 30)

    v2 = d.visit(10, 5, known_hiv_positive="yes", last_test="lt3m", gender_identity="woman", beneficiary="yes")
    d.consent(v2, hcv=True)
    d.read(d.start(v2, "oraquick-hcv", 10, 6), 10, 26, hcv="non_reactive")
    d.post(v2, 10, 28, 5)
    d.close(v2, 10, 30)

    v3 = d.visit(10, 10, known_hiv_positive="yes", last_test="gt12m")
    d.consent(v3, hiv=True, hcv=False)
    d.read(d.start(v3, "determine-hiv", 10, 11), 10, 26, hiv="reactive")
    d.read(d.start(v3, "oraquick-hiv", 10, 27, sample="oral_fluid"), 10, 47, hiv="reactive")
    d.post(v3, 10, 50, 15)
    d.close(v3, 11, 0)

    v4 = d.visit(10, 15, last_test="gt12m", age_band="20-24", gender_identity="trans_woman", beneficiary="no",
                 key_populations_asked=True, key_populations=("trans_woman", "sex_work"))
    d.consent(v4, hiv=True, hcv=True)
    h, c = d.start(v4, "determine-hiv", 10, 16), d.start(v4, "oraquick-hcv", 10, 16)
    d.read(h, 10, 36, hiv="reactive")
    d.read(c, 10, 36, hcv="non_reactive")
    d.read(d.start(v4, "oraquick-hiv", 10, 37, sample="oral_fluid"), 10, 57, hiv="reactive")
    d.post(v4, 11, 0, 10)
    d.refer(v4, "hiv_confirmation", special)
    d.close(v4, 11, 5)

    v5 = d.visit(11, 0)
    d.consent(v5, hiv=True, hcv=True)
    h, c = d.start(v5, "determine-hiv", 11, 1), d.start(v5, "oraquick-hcv", 11, 1)
    d.read(h, 11, 21, hiv="reactive")
    d.read(c, 11, 21, hcv="reactive")
    d.read(d.start(v5, "oraquick-hiv", 11, 22, sample="oral_fluid"), 11, 42, hiv="non_reactive")
    d.post(v5, 11, 45, 10)
    d.refer(v5, "discordant_lab", special)
    d.refer(v5, "hcv_viral_load", hepatitis)
    d.close(v5, 11, 50)

    v6 = d.visit(11, 5)
    d.consent(v6, hiv=True, hcv=True)
    h, c = d.start(v6, "determine-hiv", 11, 6), d.start(v6, "oraquick-hcv", 11, 6)
    d.read(h, 11, 26, hiv="invalid")
    d.read(c, 11, 26, hcv="non_reactive")
    d.read(d.start(v6, "determine-hiv", 11, 27), 11, 42, hiv="non_reactive")   # the repeat
    d.post(v6, 11, 45, 5)
    d.close(v6, 11, 50)

    v7 = d.visit(11, 10)
    d.consent(v7, hiv=True, hcv=True)
    h, c = d.start(v7, "determine-hiv", 11, 11), d.start(v7, "oraquick-hcv", 11, 11)
    d.read(h, 11, 56, hiv="non_reactive")
    late = d.read(c, 11, 56, hcv="non_reactive")       # 45 min > 40: recorded as invalid, read too late
    assert [(r.outcome, r.invalid_reason) for r in late.current_results()] == [("invalid", "read_too_late")]
    d.post(v7, 11, 58, 5)
    d.close(v7, 12, 0)

    v8 = d.visit(11, 15)
    d.consent(v8, hiv=False, hcv=False)
    at(clock, 11, 20)
    counseling.finish(db.session, v8, kind="pre", now=clock.now(), actor=ctx.counselor, preset_minutes=5,
                      supplies={"condom": 6})
    d.close(v8, 11, 25)

    v9 = d.visit(11, 20)
    d.consent(v9, hiv=True, hcv=True)
    h, c = d.start(v9, "determine-hiv", 11, 21), d.start(v9, "oraquick-hcv", 11, 21)
    at(clock, 11, 29)
    screening.close_out(db.session, h, now=clock.now(), actor=ctx.tester)
    screening.close_out(db.session, c, now=clock.now(), actor=ctx.tester)
    d.close(v9, 11, 29, "left_before_result")

    v10 = d.visit(12, 0)
    d.consent(v10, hiv=True, hcv=True)
    h, c = d.start(v10, "determine-hiv", 12, 1), d.start(v10, "oraquick-hcv", 12, 1)
    d.read(h, 12, 21, hiv="reactive")                  # the wrong button …
    d.read(c, 12, 21, hcv="non_reactive")
    at(clock, 12, 23)                                  # … corrected by its author two minutes later
    screening.correct_result(db.session, h.current_results()[0], outcome="non_reactive", invalid_reason=None,
                             reason="wrong_entry", now=clock.now(), actor=ctx.tester)
    d.post(v10, 12, 25, 5)
    d.close(v10, 12, 30)

    v11 = d.visit(12, 5, exposure_72h="yes")
    d.consent(v11, hiv=True, hcv=True, syphilis=True)
    duo, c = d.start(v11, "bioline-duo", 12, 6), d.start(v11, "oraquick-hcv", 12, 6)
    d.read(duo, 12, 22, hiv="non_reactive", syphilis="reactive")
    d.read(c, 12, 26, hcv="non_reactive")
    d.post(v11, 12, 30, 15, pep_need=True, supplies={"self_test": 1})
    d.refer(v11, "syphilis_confirmation", special)
    d.refer(v11, "pep_urgent", pep)
    d.close(v11, 12, 35)

    v12 = d.visit(12, 30)
    d.consent(v12, hiv=True, hcv=True)
    d.start(v12, "determine-hiv", 12, 31)
    d.start(v12, "oraquick-hcv", 12, 31)

    v13 = d.visit(12, 40)
    d.consent(v13, hiv=True, hcv=True)
    h, c = d.start(v13, "determine-hiv", 12, 41), d.start(v13, "oraquick-hcv", 12, 41)
    d.read(h, 13, 1, hiv="non_reactive")
    d.read(c, 13, 1, hcv="non_reactive")
    at(clock, 13, 2)                                   # a coordinator voids the hepatitis C consent
    hcv_consent = next(x for x in v13.consents if x.disease == "hcv" and x.voided_at is None)
    visits.correct_consent(db.session, hcv_consent, given=None, reason="wrong_entry", settings=ctx.settings,
                           now=clock.now(), actor=ctx.coordinator)
    d.post(v13, 13, 5, 5, prep_interest=True)
    d.refer(v13, "prep", special)
    referrals.cancel(db.session, d.refer(v13, "other_care", special), now=clock.now(), actor=ctx.counselor)
    d.close(v13, 13, 10)

    stock.sign_off(db.session, staff=ctx.tester, now=at(clock, 13, 0))
    db.session.commit()
    at(clock, 13, 20)


def booth_with_syphilis(node, clock):
    content = default_content()
    content["diseases"] = ["hiv", "hcv", "syphilis"]
    return build_ctx(node.app, node, clock, content=content)


@pytest.fixture
def day(node, clock):
    """The day, inside an app context (for the service-level tests)."""
    with node.app.app_context():
        ctx = booth_with_syphilis(node, clock)
        build_day(ctx)
        yield ctx


@pytest.fixture
def served_day(node, clock):
    """The day, built and committed; no app context left open (each request gets its own ``g``)."""
    with node.app.app_context():
        build_day(booth_with_syphilis(node, clock))
    return node


def totals(ctx):
    return indicators.daily_totals(db.session, booth_id=ctx.booth.id, day=ctx.today, tz_name=TZ,
                                   settings=ctx.settings, now=ctx.clock.now())


def test_daily_totals_of_the_hand_built_day(day):
    t = totals(day)
    # visits and how they ended
    assert (t.visits, t.done, t.left_before_result, t.left_before_test, t.open_visits) == (13, 11, 1, 0, 1)
    assert (t.first_time, t.last_test_over_12m, t.known_positive, t.exposure_72h) == (1, 2, 2, 1)
    assert t.first_time_share == pytest.approx(1 / 13)
    assert (t.tested_people, t.with_result_people) == (12, 10)

    hiv, hcv, syph = t.diseases
    assert [x.disease for x in t.diseases] == ["hiv", "hcv", "syphilis"]
    # HIV: V3 (knew they were positive) is reactive but left out of positivity: 1 reactive of 8, not 2 of 9
    assert (hiv.consented, hiv.refused, hiv.tested, hiv.with_result) == (11, 1, 11, 9)
    assert (hiv.non_reactive, hiv.reactive, hiv.discordant, hiv.unresolved, hiv.in_progress) == (6, 2, 1, 1, 1)
    assert (hiv.known_positive_tested, hiv.yield_reactive, hiv.yield_with_result) == (1, 1, 8)
    assert hiv.positivity == pytest.approx(0.125)
    assert (hiv.devices, hiv.running, hiv.invalid, hiv.invalid_timing, hiv.repeats, hiv.second_tests) == \
        (15, 1, 2, 0, 1, 3)
    assert hiv.invalid_rate == pytest.approx(2 / 14)
    # hepatitis C: V13's consent was voided (not counted); V7 (too late) and V9 (closed out) unresolved
    assert (hcv.consented, hcv.refused, hcv.tested, hcv.with_result) == (10, 2, 11, 8)
    assert (hcv.non_reactive, hcv.reactive, hcv.discordant, hcv.unresolved, hcv.in_progress) == (7, 1, 0, 2, 1)
    assert hcv.positivity == pytest.approx(1 / 8)
    assert (hcv.devices, hcv.running, hcv.invalid, hcv.invalid_timing, hcv.repeats, hcv.second_tests) == \
        (11, 1, 2, 1, 0, 0)
    # syphilis, offered: one dual device
    assert (syph.offered, syph.consented, syph.tested, syph.with_result, syph.reactive, syph.devices) == \
        (True, 1, 1, 1, 1, 1)
    assert syph.positivity == 1

    # devices: a dual device counts once; V10's corrected result counts with its new value only
    dv = t.devices
    assert (dv.used, dv.read, dv.closed_out, dv.running) == (26, 22, 2, 2)
    assert (dv.invalid, dv.invalid_timing, dv.repeats) == (4, 1, 1)
    assert dv.invalid_rate == pytest.approx(4 / 24) and dv.invalid_timing_rate == pytest.approx(1 / 24)

    # counseling and linkage (V13's cancelled referral is left out)
    assert (t.pre_counseling, t.post_counseling, t.result_and_post_counseling) == (1, 10, 10)
    assert t.result_and_post_counseling_share == pytest.approx(10 / 12)
    assert (t.counseling_minutes, t.prep_interest, t.pep_need) == (90, 2, 1)
    assert t.referrals == 6 and (t.prep_referrals, t.pep_fast_tracks) == (1, 1)
    assert t.referrals_by_reason == {"hiv_confirmation": 1, "discordant_lab": 1, "hcv_viral_load": 1,
                                     "syphilis_confirmation": 1, "pep_urgent": 1, "prep": 1}
    assert sorted(t.referrals_by_destination.values()) == [1, 1, 4]

    # supplies and kits (50 devices of each lot and 200 of each supply received at 10:00)
    assert t.supplies_handed_out == {"condom": 10, "lubricant": 2, "self_test": 1}
    assert t.supplies_on_hand == {"condom": 190, "lubricant": 198, "self_test": 199}
    lots = {lot.lot_number: (lot.received, lot.used, lot.wasted, lot.adjusted, lot.on_hand, lot.days_to_expiry)
            for lot in t.lots}
    assert lots == {
        day.lots["determine-hiv"].lot_number: (50, 11, 2, 0, 39, 90),
        day.lots["oraquick-hiv"].lot_number: (50, 3, 0, 0, 47, 90),
        day.lots["oraquick-hcv"].lot_number: (50, 11, 2, 0, 39, 90),
        day.lots["bioline-duo"].lot_number: (50, 1, 0, 0, 49, 90)}

    # throughput: local hours; 26 devices in the tester's 3 hours; arrival → result
    assert [(h.hour, h.visits, h.devices) for h in t.hours] == [(10, 4, 8), (11, 5, 10), (12, 4, 8)]
    assert t.tester_hours == 3.0 and t.tests_per_tester_hour == pytest.approx(26 / 3)
    # 21, 21, 21, 21, 22, 37, 37, 42, 42, 46 minutes (V9 had no result, V12 is still in progress)
    assert t.median_minutes_to_result == 29.5

    # data quality: V12's hepatitis C device has been running past its window; V13 tested without consent
    q = t.quality
    assert (q.running_past_window, q.results_without_read_time, q.visits_tested_without_consent) == (1, 0, 1)
    assert (q.devices_not_synced, q.sync_available) == (26, False)

    # who was tested
    assert t.by["key_population"]["msm"] == {"visits": 1, "tested": 1, "with_result": 1, "reactive": 0}
    assert t.by["key_population"]["sex_work"] == {"visits": 1, "tested": 1, "with_result": 1, "reactive": 1}
    assert t.by["key_population"]["not_asked"]["visits"] == 11
    assert t.by["age_band"]["20-24"] == {"visits": 1, "tested": 1, "with_result": 1, "reactive": 1}
    assert t.by["age_band"]["25-29"] == {"visits": 12, "tested": 11, "with_result": 9, "reactive": 3}
    assert t.by["gender_identity"]["unknown"]["visits"] == 10


def test_the_day_moves_on_when_the_open_visit_is_read(day):
    """V12's HIV device is read: one more non-reactive, nothing in progress for HIV; its hepatitis C device
    is read too late (invalid), and the visit is then closed: that test is unresolved."""
    clock = day.clock
    running = {s.product.code: s for s in screening.running(db.session, day.booth.id)}
    screening.record_result(db.session, running["determine-hiv"], {"hiv": ("non_reactive", None)},
                            now=clock.now(), actor=day.tester)
    screening.record_result(db.session, running["oraquick-hcv"], {"hcv": ("non_reactive", None)},
                            now=clock.now(), actor=day.tester)
    hiv, hcv, _s = totals(day).diseases
    assert (hiv.non_reactive, hiv.in_progress, hiv.with_result) == (7, 0, 10)
    assert (hcv.invalid_timing, hcv.in_progress, hcv.unresolved) == (2, 1, 2)  # open visit: may still repeat
    v12 = running["oraquick-hcv"].visit
    visits.close_visit(db.session, v12, final_state="done", now=clock.now(), actor=day.counselor)
    t = totals(day)
    assert (t.disease("hcv").in_progress, t.disease("hcv").unresolved, t.open_visits) == (0, 3, 0)
    assert t.quality.running_past_window == 0


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), visits_n=st.integers(1, 30), open_day=st.booleans())
def test_totals_agree_with_the_visit_cards(make_app, clock, seed, visits_n, open_day):
    """On generated days the totals match, test by test, the conclusions the visit cards show
    (``booth.visits.queries.queue``, the card's own code): a test with a device is in progress while the
    visit is open and a device runs or a next step is pending; otherwise it counts under its conclusion."""
    from booth.auth import services as auth
    from booth.auth.models import Role
    from booth.demo import generate_day
    from booth.events.models import Booth
    from booth.settings import services as settings_services

    clock.set(START)
    app = make_app()
    node = setup_node(app, clock)
    try:
        with app.app_context():
            coordinator = auth.staff_by_code(db.session, "C01")
            coordinator.clinical_lead = True
            staff = [auth.create_staff(db.session, code=code, roles=[role], pin="582931", now=clock.now())
                     for code, role in (("T01", Role.TESTER), ("K01", Role.COUNSELOR))]
            booth = db.session.get(Booth, node.booth_id)
            generate_day(db.session, booth=booth, coordinator=coordinator, testers=staff[:1], counselors=staff[1:],
                         visits_n=visits_n, seed=seed, open_day=open_day, now=clock.now())
            db.session.commit()
            settings_ = settings_services.signed(db.session, booth.event_id)
            today = visits.local_day(booth.event, clock.now())
            at(clock, 15, 0)    # mid-afternoon: some devices may still be running on an open day
            views = queries.queue(db.session, booth.id, today, settings_, clock.now(), include_closed=True)
            t = indicators.daily_totals(db.session, booth_id=booth.id, day=today, tz_name=TZ, settings=settings_,
                                        now=clock.now())
            assert t.visits == len(views) == visits_n
            for dt in t.diseases:
                want = {"tested": 0, "in_progress": 0, "non_reactive": 0, "reactive_needs_confirmation": 0,
                        "discordant_needs_lab": 0, "invalid_unresolved": 0}
                for v in views:
                    devices = [s for s in v.screenings if dt.disease in s.product.targets and
                               (s.state == "running" or any(r.disease == dt.disease for r in s.current_results()))]
                    if not devices:
                        continue
                    want["tested"] += 1
                    derived = v.conclusions[dt.disease]
                    if v.visit.final_state is None and (any(s.state == "running" for s in devices)
                                                        or not derived.final):
                        want["in_progress"] += 1
                    elif derived.conclusion.value in want:
                        want[derived.conclusion.value] += 1
                got = {"tested": dt.tested, "in_progress": dt.in_progress, "non_reactive": dt.non_reactive,
                       "reactive_needs_confirmation": dt.reactive, "discordant_needs_lab": dt.discordant,
                       "invalid_unresolved": dt.unresolved}
                assert got == want, dt.disease
            assert sum(dt.consented + dt.refused for dt in t.diseases) == db.session.query(Consent).count()
            assert t.devices.used == sum(len(v.screenings) for v in views)
    finally:
        with app.app_context():
            db.engine.dispose()


# ---------------------------------------------------------------- HTTP

def test_coordinator_sees_the_dashboard_others_do_not(served_day, login):
    coordinator = login("coordinator")
    r = coordinator.get("/dashboard")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "<html" in html and 'data-hx-trigger="every 30s"' in html
    text = re.sub(r"<[^>]+>", " ", html)
    text = re.sub(r"\s+", " ", text)
    # the big numbers (visits, people tested, HIV reactive), HIV positivity with its fraction, the hourly table
    assert re.findall(r'class="stat__n">([^<]+)<', html)[:3] == ["13", "12", "2"]
    assert "12.5% (1/8)" in text and "Visitas" in text
    assert "10:00 4 8" in text and "11:00 5 10" in text and "12:00 4 8" in text
    # the chart: an accessible SVG, no inline style anywhere on the page (the CSP forbids it)
    assert re.search(r'<svg [^>]*role="img"[^>]*aria-labelledby="chart-hourly-title chart-hourly-desc"', html)
    assert '<title id="chart-hourly-title">' in html and "style=" not in html
    assert html.count("<caption>") >= 8
    for role in ("tester", "counselor", "clinic"):
        assert login(role).get("/dashboard").status_code == 403, role


def test_the_partial_polls_without_keeping_the_tablet_awake(served_day, login, clock):
    coordinator = login("coordinator")
    part = coordinator.get("/dashboard", headers={"HX-Request": "true"})
    assert part.status_code == 200 and "HX-Request" in part.headers.get("Vary", "")
    html = part.get_data(as_text=True)
    assert "<html" not in html and html.lstrip().startswith("<div id=\"dashboard\"")
    # polling every 30 s does not count as activity: 5 minutes after the login the idle lock still comes
    for _ in range(9):
        clock.advance(seconds=30)
        assert coordinator.get("/dashboard", headers={"HX-Request": "true"}).status_code == 200
    clock.advance(seconds=31)
    locked = coordinator.get("/dashboard", headers={"HX-Request": "true"})
    assert locked.status_code == 204 and locked.headers["HX-Redirect"].startswith("/unlock")
