"""Booth workflow services with a fixed clock: read windows, lots, stock, consent, algorithm, dual kit,
corrections, close of day."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from booth.counseling import services as counseling
from booth.errors import DomainError
from booth.extensions import db
from booth.screening import services as screening
from booth.screening.algorithm import Conclusion, NextStep
from booth.settings import services as settings_services
from booth.stock import services as stock
from booth.visits import closing, queries, services as visits
from booth.visits.models import Consent


def start(ctx, visit, code="determine-hiv", sample="fingerstick", slot=None, lot=None):
    return screening.start(db.session, visit=visit, product=ctx.products[code], lot=lot or ctx.lots[code],
                           sample_type=sample, slot=slot, settings=ctx.settings, today=ctx.today,
                           now=ctx.clock.now(), actor=ctx.tester)


def read(ctx, s, outcome="non_reactive", reason=None, **kw):
    results = {d: (outcome, reason) for d in s.product.targets if d in ctx.settings.diseases}
    return screening.record_result(db.session, s, results, now=ctx.clock.now(), actor=ctx.tester, **kw)


def test_call_numbers_count_up_per_day(ctx):
    a, b = ctx.visit(), ctx.visit()
    assert (a.call_number, b.call_number) == ("A-001", "A-002")
    assert visits.call_number(999) == "A-999" and visits.call_number(1000) == "B-001"


def test_intake_validation(ctx):
    for bad in (dict(age_band="30"), dict(age_band="25-29", gender_identity="x"),
                dict(age_band="25-29", key_populations=("msm",)),
                dict(age_band="25-29", first_time="yes", last_test="lt3m")):
        with pytest.raises(DomainError):
            visits.validate_intake(visits.Intake(**bad))
    ok = visits.validate_intake(visits.Intake(age_band="20-24", key_populations_asked=True,
                                              key_populations=("msm", "chemsex"), first_time="yes"))
    assert ok["key_populations"] == ["msm", "chemsex"] and ok["last_test"] == "never"


@pytest.mark.parametrize("offset,expect", [(-1, "early"), (0, "ok"), (1, "ok")])
def test_read_window_opening_edge(ctx, offset, expect):
    v = ctx.visit()
    ctx.consent_all(v)
    s = start(ctx, v)  # Determine: 15–60 min
    ctx.clock.advance(minutes=15, seconds=offset)
    if expect == "early":
        with pytest.raises(screening.ReadWindowError) as e:
            read(ctx, s)
        assert "1 s" in str(e.value.message)
    else:
        read(ctx, s)
        assert s.current_results()[0].outcome == "non_reactive"


@pytest.mark.parametrize("offset,late", [(-1, False), (0, False), (1, True)])
def test_read_window_closing_edge(ctx, offset, late):
    v = ctx.visit()
    ctx.consent_all(v)
    s = start(ctx, v)
    ctx.clock.advance(minutes=60, seconds=offset)
    read(ctx, s, "reactive")
    r = s.current_results()[0]
    assert (r.outcome, r.invalid_reason) == (("invalid", "read_too_late") if late else ("reactive", None))


def test_read_too_early_can_be_recorded_as_invalid(ctx):
    v = ctx.visit()
    ctx.consent_all(v)
    s = start(ctx, v)
    ctx.clock.advance(minutes=3)
    read(ctx, s, "invalid", "read_too_early")
    assert s.current_results()[0].invalid_reason == "read_too_early"


def test_expired_and_quarantined_lots_refused(ctx):
    v = ctx.visit()
    ctx.consent_all(v)
    lot = ctx.lots["determine-hiv"]
    stock.quarantine(db.session, lot, reason="temperature", now=ctx.clock.now(), actor=ctx.coordinator)
    with pytest.raises(DomainError, match="cuarentena|quarantine"):
        start(ctx, v)
    stock.release(db.session, lot, now=ctx.clock.now(), actor=ctx.coordinator)
    lot.expires_on = ctx.today - timedelta(days=1)
    with pytest.raises(DomainError):
        start(ctx, v)
    assert stock.suggested_lot(db.session, ctx.products["determine-hiv"], ctx.today) is None
    with pytest.raises(DomainError):
        stock.receive_lot(db.session, booth_id=ctx.booth.id, product=ctx.products["determine-hiv"],
                          lot_number="OLD1", expires_on=ctx.today - timedelta(days=1), quantity=5, today=ctx.today,
                          now=ctx.clock.now(), actor=ctx.coordinator)


def test_suggested_lot_expires_first(ctx):
    p = ctx.products["determine-hiv"]
    soon = stock.receive_lot(db.session, booth_id=ctx.booth.id, product=p, lot_number="SOON", quantity=3,
                             expires_on=ctx.today + timedelta(days=5), today=ctx.today, now=ctx.clock.now(),
                             actor=ctx.coordinator)
    assert stock.suggested_lot(db.session, p, ctx.today).id == soon.id
    kinds = {w.kind for w in stock.warnings(db.session, booth_id=ctx.booth.id, today=ctx.today, now=ctx.clock.now())}
    assert {"near_expiry", "low_stock", "temperature_due"} <= kinds


def test_stock_never_negative(ctx):
    lot = ctx.lots["oraquick-hcv"]
    with pytest.raises(DomainError):
        stock.adjust_lot(db.session, booth_id=ctx.booth.id, lot=lot, delta=-51, reason="lost", now=ctx.clock.now(),
                         actor=ctx.coordinator)
    with pytest.raises(DomainError):
        stock.adjust_lot(db.session, booth_id=ctx.booth.id, lot=lot, delta=-1, reason="", now=ctx.clock.now(),
                         actor=ctx.coordinator)
    stock.adjust_lot(db.session, booth_id=ctx.booth.id, lot=lot, delta=-50, reason="damaged", now=ctx.clock.now(),
                     actor=ctx.coordinator)
    assert stock.lot_on_hand(db.session, lot.id) == 0
    v = ctx.visit()
    ctx.consent_all(v)
    with pytest.raises(DomainError):
        start(ctx, v, "oraquick-hcv")
    with pytest.raises(DomainError):
        stock.hand_out(db.session, booth_id=ctx.booth.id, visit_id=v.id, supplies={"condom": 201},
                       now=ctx.clock.now(), actor=ctx.counselor)


def test_every_device_used_counts_even_invalid(ctx):
    v = ctx.visit()
    ctx.consent_all(v)
    lot = ctx.lots["determine-hiv"]
    s = start(ctx, v)
    ctx.clock.advance(minutes=15)
    read(ctx, s, "invalid", "no_control_line")
    start(ctx, v)
    assert stock.lot_on_hand(db.session, lot.id) == 48


def test_consent_version_language_and_refusal(ctx):
    v = ctx.visit()
    c = visits.record_consent(db.session, v, disease="hiv", given=True, settings=ctx.settings, language="en",
                              now=ctx.clock.now(), actor=ctx.tester)
    assert (c.text_version, c.language, c.settings_id) == (ctx.settings.number, "en", ctx.settings.id)
    visits.record_consent(db.session, v, disease="hcv", given=False, settings=ctx.settings, language="es",
                          now=ctx.clock.now(), actor=ctx.tester)
    with pytest.raises(DomainError):
        start(ctx, v, "oraquick-hcv")
    with pytest.raises(DomainError):
        visits.record_consent(db.session, v, disease="hiv", given=True, settings=ctx.settings, language="es",
                              now=ctx.clock.now(), actor=ctx.tester)
    refused = db.session.scalar(select(func.count()).select_from(Consent).where(Consent.given.is_(False)))
    assert refused == 1
    view = queries.visit_view(db.session, v, ctx.settings, ctx.clock.now())
    assert view.conclusions["hcv"].conclusion is Conclusion.NOT_TESTED
    # the person who refused can still get counseling and supplies
    counseling.finish(db.session, v, kind="post", now=ctx.clock.now(), actor=ctx.counselor, preset_minutes=5,
                      result_given=False, supplies={"condom": 4})
    assert stock.supply_on_hand(db.session, ctx.booth.id, "condom") == 196


def test_two_test_algorithm_asks_for_a_different_product(ctx):
    v = ctx.visit()
    ctx.consent_all(v)
    s1 = start(ctx, v)
    ctx.clock.advance(minutes=15)
    read(ctx, s1, "reactive")
    view = queries.visit_view(db.session, v, ctx.settings, ctx.clock.now())
    assert view.conclusions["hiv"].next_step is NextStep.SECOND_TEST and view.state == "testing"
    with pytest.raises(DomainError, match="distinto|diferente|different"):
        start(ctx, v)
    s2 = start(ctx, v, "oraquick-hiv", sample="oral_fluid")
    ctx.clock.advance(minutes=20)
    read(ctx, s2, "non_reactive")
    view = queries.visit_view(db.session, v, ctx.settings, ctx.clock.now())
    assert view.conclusions["hiv"].conclusion is Conclusion.DISCORDANT_NEEDS_LAB


def test_dual_kit_records_two_results(node, clock):
    from tests.workflow.conftest import build_ctx
    from booth.settings.defaults import default_content
    content = default_content()
    content["diseases"] = ["hiv", "hcv", "syphilis"]
    with node.app.app_context():
        ctx = build_ctx(node.app, node, clock, content=content)
        v = ctx.visit()
        ctx.consent_all(v)
        s = start(ctx, v, "bioline-duo")
        ctx.clock.advance(minutes=15)
        with pytest.raises(DomainError):
            screening.record_result(db.session, s, {"hiv": ("non_reactive", None)}, now=clock.now(), actor=ctx.tester)
        screening.record_result(db.session, s, {"hiv": ("non_reactive", None), "syphilis": ("reactive", None)},
                                now=clock.now(), actor=ctx.tester)
        assert sorted((r.disease, r.outcome) for r in s.current_results()) == [("hiv", "non_reactive"),
                                                                               ("syphilis", "reactive")]
        assert all(r.lot_number == ctx.lots["bioline-duo"].lot_number for r in s.current_results())
        view = queries.visit_view(db.session, v, ctx.settings, clock.now())
        assert view.conclusions["syphilis"].conclusion is Conclusion.REACTIVE_NEEDS_CONFIRMATION
        assert view.conclusions["hiv"].conclusion is Conclusion.NON_REACTIVE


def test_corrections_keep_history_and_authorship_window(ctx):
    v = ctx.visit()
    ctx.consent_all(v)
    s = start(ctx, v)
    ctx.clock.advance(minutes=15)
    read(ctx, s, "reactive")
    original = s.current_results()[0]
    new = screening.correct_result(db.session, original, outcome="non_reactive", invalid_reason=None,
                                   reason="wrong_entry", now=ctx.clock.now(), actor=ctx.tester)
    assert original.voided_at is not None and new.replaces_id == original.id
    assert [r.outcome for r in s.results] == ["reactive", "non_reactive"]
    assert [r.outcome for r in s.current_results()] == ["non_reactive"]
    ctx.clock.advance(minutes=11)
    with pytest.raises(DomainError, match="10"):
        screening.correct_result(db.session, new, outcome="reactive", invalid_reason=None, reason="wrong_entry",
                                 now=ctx.clock.now(), actor=ctx.tester)
    with pytest.raises(DomainError):
        screening.correct_result(db.session, new, outcome="reactive", invalid_reason=None, reason="because",
                                 now=ctx.clock.now(), actor=ctx.coordinator)
    screening.correct_result(db.session, new, outcome="reactive", invalid_reason=None, reason="misread",
                             now=ctx.clock.now(), actor=ctx.coordinator)
    assert [r.outcome for r in s.current_results()] == ["reactive"]


def test_close_of_day_requires_final_states_and_count_reasons_then_locks(ctx):
    v1, v2 = ctx.visit(), ctx.visit()
    ctx.consent_all(v1)
    s = start(ctx, v1)
    lots = closing.lots_to_count(db.session, ctx.booth.id)
    counts = {str(lc.lot.id): (lc.expected, None) for lc in lots}
    with pytest.raises(DomainError, match="A-001"):
        closing.close_day(db.session, booth=ctx.booth, day=ctx.today, final_states={}, kit_counts=counts,
                          now=ctx.clock.now(), actor=ctx.coordinator)
    states = {str(v1.id): "left_before_result", str(v2.id): "left_before_test"}
    lot = ctx.lots["determine-hiv"]
    bad = dict(counts)
    bad[str(lot.id)] = (counts[str(lot.id)][0] - 2, None)
    with pytest.raises(DomainError, match="expected|esperaba|esperad"):
        closing.close_day(db.session, booth=ctx.booth, day=ctx.today, final_states=states, kit_counts=bad,
                          now=ctx.clock.now(), actor=ctx.coordinator)
    assert s.state == "running" and v1.final_state is None  # nothing half-done
    bad[str(lot.id)] = (counts[str(lot.id)][0] - 2, "lost")
    with pytest.raises(DomainError):
        closing.close_day(db.session, booth=ctx.booth, day=ctx.today, final_states=states, kit_counts=bad,
                          now=ctx.clock.now(), actor=ctx.tester)
    closing.close_day(db.session, booth=ctx.booth, day=ctx.today, final_states=states, kit_counts=bad,
                      now=ctx.clock.now(), actor=ctx.coordinator)
    assert s.state == "closed_out" and v1.final_state == "left_before_result"
    assert stock.lot_on_hand(db.session, lot.id) == 47
    # locked: new visits and edits refused; a coordinator correction with a reason still works
    with pytest.raises(DomainError):
        ctx.visit()
    r = s.current_results()[0]
    with pytest.raises(DomainError):
        screening.correct_result(db.session, r, outcome="invalid", invalid_reason="procedure_error",
                                 reason="wrong_entry", now=ctx.clock.now(), actor=ctx.tester)
    screening.correct_result(db.session, r, outcome="invalid", invalid_reason="procedure_error",
                             reason="wrong_entry", now=ctx.clock.now(), actor=ctx.coordinator)


def test_settings_sign_off_locks_and_changes_make_new_version(ctx):
    first = ctx.settings
    assert first.status == "signed"
    d = settings_services.draft(db.session, first.event_id, now=ctx.clock.now(), actor=ctx.coordinator)
    assert d.number == first.number + 1 and d.status == "draft"
    content = dict(d.content)
    content["diseases"] = ["hiv"]
    settings_services.update_draft(db.session, first.event_id, content, now=ctx.clock.now(), actor=ctx.coordinator)
    assert settings_services.signed(db.session, first.event_id).id == first.id  # old one still in force
    ctx.coordinator.clinical_lead = False
    with pytest.raises(DomainError):
        settings_services.sign_off(db.session, d, now=ctx.clock.now(), actor=ctx.coordinator)
    ctx.coordinator.clinical_lead = True
    settings_services.sign_off(db.session, d, now=ctx.clock.now(), actor=ctx.coordinator)
    assert settings_services.signed(db.session, first.event_id).id == d.id and first.status == "superseded"
    bad = dict(d.content)
    bad["algorithms"] = {"hiv": "two_test"}
    bad["products"] = {"determine-hiv": d.content["products"]["determine-hiv"]}
    with pytest.raises(DomainError, match="two|dos"):
        settings_services.update_draft(db.session, first.event_id, bad, now=ctx.clock.now(), actor=ctx.coordinator)


def test_timer_board_states(ctx):
    v = ctx.visit()
    ctx.consent_all(v)
    start(ctx, v, slot=3)
    start(ctx, v, "oraquick-hcv", slot=4)
    board = queries.timer_board(db.session, ctx.booth.id, ctx.clock.now())
    assert [(r["slot"], r["state"]) for r in board] == [(3, "developing"), (4, "developing")]
    with pytest.raises(DomainError):
        start(ctx, ctx.visit(), slot=3)
    ctx.clock.advance(minutes=20)
    assert [r["state"] for r in queries.timer_board(db.session, ctx.booth.id, ctx.clock.now())] == ["ready", "ready"]
    ctx.clock.advance(minutes=21)
    assert [r["state"] for r in queries.timer_board(db.session, ctx.booth.id, ctx.clock.now())] == ["ready",
                                                                                                   "too_late"]
