"""Random sequences of booth actions keep the invariants: stock equals received − used − adjusted and
never goes below zero; every result has a lot; conclusions follow the current results."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import select

from booth import create_app
from booth.clock import FrozenClock
from booth.errors import DomainError
from booth.extensions import db
from booth.screening import algorithm, services as screening
from booth.screening.models import Screening, ScreeningResult
from booth.stock import services as stock
from booth.visits import services as visits
from tests.conftest import START, base_config, migrate, setup_node
from tests.workflow.conftest import build_ctx

_TEMPLATE: dict = {}


def template_db() -> Path:
    if "path" not in _TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="vinculo-stateful-"))
        app = create_app(base_config(folder))
        migrate(app)
        with app.app_context():
            db.engine.dispose()
        _TEMPLATE["path"] = folder / "node.sqlite3"
    return _TEMPLATE["path"]


class BoothDay(RuleBasedStateMachine):
    visits_b = Bundle("visits")

    @initialize()
    def setup(self):
        self.folder = Path(tempfile.mkdtemp(prefix="vinculo-sm-"))
        shutil.copy(template_db(), self.folder / "node.sqlite3")
        self.clock = FrozenClock(START)
        self.app = create_app(base_config(self.folder, CLOCK=self.clock))
        node = setup_node(self.app, self.clock)
        self.ctx_manager = self.app.app_context()
        self.ctx_manager.push()
        self.ctx = build_ctx(self.app, node, self.clock)
        self.expected = {lot.id: 50 for lot in self.ctx.lots.values()}

    def teardown(self):
        if hasattr(self, "ctx_manager"):
            db.session.rollback()
            db.engine.dispose()
            self.ctx_manager.pop()
            shutil.rmtree(self.folder, ignore_errors=True)

    @rule(target=visits_b, band=st.sampled_from(["15-19", "25-29", "40-44", "unknown"]),
          known=st.booleans())
    def register(self, band, known):
        v = self.ctx.visit(age_band=band, known_hiv_positive="yes" if known else None)
        db.session.commit()
        return v.id

    @rule(visit_id=visits_b, given=st.booleans())
    def consent(self, visit_id, given):
        v = db.session.get(visits.Visit, visit_id)
        for d in self.ctx.settings.diseases:
            try:
                visits.record_consent(db.session, v, disease=d, given=given, settings=self.ctx.settings,
                                      language="es", now=self.clock.now(), actor=self.ctx.tester)
                db.session.commit()
            except DomainError:
                db.session.rollback()

    @rule(visit_id=visits_b, code=st.sampled_from(["determine-hiv", "oraquick-hiv", "oraquick-hcv", "bioline-duo"]))
    def start(self, visit_id, code):
        v = db.session.get(visits.Visit, visit_id)
        product, lot = self.ctx.products[code], self.ctx.lots[code]
        sample = self.ctx.settings.product(code)["samples"][0] if self.ctx.settings.product(code) else "fingerstick"
        try:
            screening.start(db.session, visit=v, product=product, lot=lot, sample_type=sample, slot=None,
                            settings=self.ctx.settings, today=self.ctx.today, now=self.clock.now(),
                            actor=self.ctx.tester)
            db.session.commit()
            self.expected[lot.id] -= 1
        except DomainError:
            db.session.rollback()

    @rule(minutes=st.integers(1, 45))
    def wait(self, minutes):
        self.clock.advance(minutes=minutes)

    @rule(outcome=st.sampled_from(["reactive", "non_reactive", "invalid"]), data=st.data())
    def read(self, outcome, data):
        running = screening.running(db.session, self.ctx.booth.id)
        if not running:
            return
        s = data.draw(st.sampled_from(running))
        targets = [d for d in s.product.targets if d in self.ctx.settings.diseases]
        try:
            screening.record_result(db.session, s, {d: (outcome, "no_control_line") for d in targets},
                                    now=self.clock.now(), actor=self.ctx.tester)
            db.session.commit()
        except DomainError:
            db.session.rollback()

    @rule(data=st.data(), outcome=st.sampled_from(["reactive", "non_reactive", None]))
    def correct(self, data, outcome):
        results = db.session.scalars(select(ScreeningResult).where(ScreeningResult.voided_at.is_(None))).all()
        if not results:
            return
        r = data.draw(st.sampled_from(results))
        try:
            screening.correct_result(db.session, r, outcome=outcome, invalid_reason=None, reason="wrong_entry",
                                     now=self.clock.now(), actor=self.ctx.coordinator)
            db.session.commit()
        except DomainError:
            db.session.rollback()

    @rule(code=st.sampled_from(["determine-hiv", "oraquick-hcv"]), delta=st.integers(-60, 20))
    def adjust(self, code, delta):
        lot = self.ctx.lots[code]
        try:
            stock.adjust_lot(db.session, booth_id=self.ctx.booth.id, lot=lot, delta=delta, reason="damaged",
                             now=self.clock.now(), actor=self.ctx.coordinator)
            db.session.commit()
            self.expected[lot.id] += delta
        except DomainError:
            db.session.rollback()

    @invariant()
    def stock_matches_and_never_negative(self):
        if not hasattr(self, "ctx"):
            return
        for lot_id, expected in self.expected.items():
            on_hand = stock.lot_on_hand(db.session, lot_id)
            assert on_hand == expected
            assert on_hand >= 0

    @invariant()
    def every_result_has_a_lot(self):
        if not hasattr(self, "ctx"):
            return
        for r in db.session.scalars(select(ScreeningResult)):
            assert r.lot_number and r.lot_expires_on
            assert r.screening.lot.lot_number == r.lot_number

    @invariant()
    def conclusions_follow_results(self):
        if not hasattr(self, "ctx"):
            return
        for v in db.session.scalars(select(visits.Visit)):
            screenings = db.session.scalars(select(Screening).where(Screening.visit_id == v.id)
                                            .order_by(Screening.started_at)).all()
            derived = visits.conclusions(v, screenings, self.ctx.settings)
            for disease, d in derived.items():
                readings = [algorithm.Reading(s.product.code, algorithm.Outcome(r.outcome))
                            for s in screenings for r in s.current_results() if r.disease == disease]
                if not readings:
                    assert d.conclusion in (algorithm.Conclusion.NOT_TESTED,
                                            algorithm.Conclusion.KNOWN_POSITIVE_NOT_TESTED)
                elif all(r.outcome is algorithm.Outcome.INVALID for r in readings):
                    assert d.conclusion is algorithm.Conclusion.INVALID_UNRESOLVED
                else:
                    first = next(r for r in readings if r.outcome is not algorithm.Outcome.INVALID)
                    if first.outcome is algorithm.Outcome.NON_REACTIVE:
                        assert d.conclusion is algorithm.Conclusion.NON_REACTIVE
                    else:
                        assert d.conclusion in (algorithm.Conclusion.REACTIVE_NEEDS_CONFIRMATION,
                                                algorithm.Conclusion.DISCORDANT_NEEDS_LAB)


BoothDay.TestCase.settings = settings(stateful_step_count=25, deadline=None)
TestBoothDay = BoothDay.TestCase
