"""The central dashboard on PostgreSQL, fed by real pushes from three booth nodes, with expected numbers worked
out by hand below (not by the code under test).

Central holds one central event, "Marcha 2026"; booths A and B are linked to it, booth C to nothing (its own
event). Mexico City time (UTC−6).

* **A** (2026-06-27): the hand-built day of ``tests/reports/test_indicators.py`` (13 visits; its table lists
  them: known positives, a repeat after an invalid device, a read too late, refusals, a person who left before
  the result, a corrected result, a discordant HIV result, syphilis on a dual device, an open visit …).
* **B**, "Módulo 2" (2026-06-28), HIV and hepatitis C (two-test HIV algorithm):

  | visit | arrives | intake | HIV | hepatitis C | ends |
  |---|---|---|---|---|---|
  | W1 | 10:00 | 30-34, woman, beneficiary | Determine R (10:21), OraQuick R (10:42) | NR (10:21) | done, referred HIV |
  | W2 | 10:10 | 30-34, man, msm | NR (10:31) | R (10:31) | done, referred viral load |
  | W3 | 10:20 | | device closed out (10:25) | not asked | left before result |
  | W4 | 10:30 | | refused | refused | done (pre-test counseling only) |

* **C** (2026-07-04, event "Feria de la salud"): X1 10:00 Determine R (10:21), OraQuick R (10:42), referred HIV;
  X2 10:05 Determine NR (10:26).

What the clinics record at central (days from the day of the test):

| referral | arrived | confirmation | treatment |
|---|---|---|---|
| A·V4 HIV confirmation | 07-03 (6) | HIV confirmed | 07-10 (13) |
| A·V5 discordant → laboratory | 07-20 (23) | HIV not confirmed | — |
| A·V5 hepatitis C viral load | 08-01 (35) | RNA detected | 08-10 (44) |
| A·V11 syphilis | 06-28 (1) | active | 06-28 (1) |
| A·V11 PEP (not a confirmation: outside the cascade) | 06-27 | — | — |
| B·W1 HIV confirmation | 07-20 (22) | HIV confirmed | 08-05 (38) |
| B·W2 hepatitis C viral load | — | — | — |
| C·X1 HIV confirmation | 07-05 (1) | HIV confirmed | — |
"""
from __future__ import annotations

import json
import re
from datetime import date, datetime, time, timedelta, timezone
from html.parser import HTMLParser
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from booth.auth.models import Role
from booth.counseling import services as counseling
from booth.events import services as events_services
from booth.events.models import Booth, Event
from booth.extensions import db
from booth.referrals import services as referrals
from booth.referrals.models import Destination, Referral
from booth.reports import central as C
from booth.screening import services as screening
from booth.visits import services as visits
from tests.reports.test_indicators import KEY, booth_with_syphilis, build_day
from tests.sync.conftest import central, make_booth, sync  # noqa: F401  (fixtures)
from tests.test_authz_matrix import central_signin, central_staff
from tests.workflow.conftest import build_ctx

MX = ZoneInfo("America/Mexico_City")
CENTRAL_NOW = datetime(2026, 8, 20, 18, 0, tzinfo=timezone.utc)


# ---------------------------------------------------------------- building the three booths

class Later:
    """A booth's day on a given date (the helpers of test_indicators are pinned to 2026-06-27)."""

    def __init__(self, ctx, day: date):
        self.ctx, self.clock, self.day = ctx, ctx.clock, day

    def at(self, hh, mm):
        self.clock.set(datetime.combine(self.day, time(hh, mm), MX).astimezone(timezone.utc))
        return self.clock.now()

    def visit(self, hh, mm, **intake):
        self.at(hh, mm)
        intake.setdefault("first_time", "no")
        intake.setdefault("last_test", "3to12m")
        return self.ctx.visit(**intake)

    def consent(self, v, **given):
        for disease, ok in given.items():
            visits.record_consent(db.session, v, disease=disease, given=ok, settings=self.ctx.settings,
                                  language="es", now=self.clock.now(), actor=self.ctx.tester)

    def start(self, v, code, hh, mm, sample="fingerstick"):
        self.at(hh, mm)
        return screening.start(db.session, visit=v, product=self.ctx.products[code], lot=self.ctx.lots[code],
                               sample_type=sample, slot=None, settings=self.ctx.settings, today=self.ctx.today,
                               now=self.clock.now(), actor=self.ctx.tester)

    def read(self, s, hh, mm, **outcomes):
        self.at(hh, mm)
        return screening.record_result(db.session, s, {d: (o, None) for d, o in outcomes.items()},
                                       now=self.clock.now(), actor=self.ctx.tester)

    def post(self, v, hh, mm):
        self.at(hh, mm)
        counseling.finish(db.session, v, kind="post", now=self.clock.now(), actor=self.ctx.counselor,
                          preset_minutes=5, result_given=True)

    def refer(self, v, reason, kind):
        destination = db.session.scalar(select(Destination).where(Destination.kind == kind))
        return referrals.issue(db.session, visit=v, reason=reason, destination=destination,
                               valid_until=self.ctx.today + timedelta(days=30), key=KEY, today=self.ctx.today,
                               now=self.clock.now(), actor=self.ctx.counselor)[0]

    def close(self, v, hh, mm, state="done"):
        self.at(hh, mm)
        visits.close_visit(db.session, v, final_state=state, now=self.clock.now(), actor=self.ctx.counselor)


def ctx_for(app, content_syphilis=False):
    node = SimpleNamespace(app=app, booth_id=db.session.scalar(select(Booth.id)))
    return booth_with_syphilis(node, app.clock) if content_syphilis else build_ctx(app, node, app.clock)


def folios(app) -> dict:
    """reason → folio of the booth's referrals (one per reason in this world; cancelled ones left out)."""
    with app.app_context():
        return {r.reason: r.folio for r in db.session.scalars(select(Referral).where(Referral.status != "cancelled"))}


def build_a(make_booth):
    app = make_booth("a")
    with app.app_context():
        build_day(ctx_for(app, content_syphilis=True))
    return app


def build_b(make_booth):
    app = make_booth("b")
    app.clock.set(datetime(2026, 6, 28, 14, 0, tzinfo=timezone.utc))     # 08:00 on the 28th
    with app.app_context():
        db.session.get(Booth, db.session.scalar(select(Booth.id))).name = "Módulo 2"
        ctx = ctx_for(app)
        referrals.add_examples(db.session, now=app.clock.now())
        d = Later(ctx, date(2026, 6, 28))
        w1 = d.visit(10, 0, age_band="30-34", gender_identity="woman", beneficiary="yes")
        d.consent(w1, hiv=True, hcv=True)
        h, c = d.start(w1, "determine-hiv", 10, 1), d.start(w1, "oraquick-hcv", 10, 1)
        d.read(h, 10, 21, hiv="reactive")
        d.read(c, 10, 21, hcv="non_reactive")
        d.read(d.start(w1, "oraquick-hiv", 10, 22, sample="oral_fluid"), 10, 42, hiv="reactive")
        d.post(w1, 10, 45)
        d.refer(w1, "hiv_confirmation", "family_clinic")
        d.close(w1, 10, 50)

        w2 = d.visit(10, 10, age_band="30-34", gender_identity="man", beneficiary="no",
                     key_populations_asked=True, key_populations=("msm",))
        d.consent(w2, hiv=True, hcv=True)
        h, c = d.start(w2, "determine-hiv", 10, 11), d.start(w2, "oraquick-hcv", 10, 11)
        d.read(h, 10, 31, hiv="non_reactive")
        d.read(c, 10, 31, hcv="reactive")
        d.post(w2, 10, 35)
        d.refer(w2, "hcv_viral_load", "hepatitis_service")
        d.close(w2, 10, 40)

        w3 = d.visit(10, 20)
        d.consent(w3, hiv=True)
        h = d.start(w3, "determine-hiv", 10, 21)
        d.at(10, 25)
        screening.close_out(db.session, h, now=app.clock.now(), actor=ctx.tester)
        d.close(w3, 10, 25, "left_before_result")

        w4 = d.visit(10, 30)
        d.consent(w4, hiv=False, hcv=False)
        d.at(10, 35)
        counseling.finish(db.session, w4, kind="pre", now=app.clock.now(), actor=ctx.counselor, preset_minutes=5)
        d.close(w4, 10, 40)
        db.session.commit()
    return app


def build_c(make_booth):
    app = make_booth("c")
    app.clock.set(datetime(2026, 7, 4, 14, 0, tzinfo=timezone.utc))
    with app.app_context():
        event = db.session.scalar(select(Event))
        event.name, event.day = "Feria de la salud", date(2026, 7, 4)
        ctx = ctx_for(app)
        referrals.add_examples(db.session, now=app.clock.now())
        d = Later(ctx, date(2026, 7, 4))
        x1 = d.visit(10, 0)
        d.consent(x1, hiv=True)
        d.read(d.start(x1, "determine-hiv", 10, 1), 10, 21, hiv="reactive")
        d.read(d.start(x1, "oraquick-hiv", 10, 22, sample="oral_fluid"), 10, 42, hiv="reactive")
        d.post(x1, 10, 45)
        d.refer(x1, "hiv_confirmation", "hiv_clinic")
        d.close(x1, 10, 50)
        x2 = d.visit(10, 5)
        d.consent(x2, hiv=True)
        d.read(d.start(x2, "determine-hiv", 10, 6), 10, 26, hiv="non_reactive")
        d.post(x2, 10, 30)
        d.close(x2, 10, 35)
        db.session.commit()
    return app


def push(central_app, booth_app, name, event_id=None):
    args = ["register-node", name, "--json"] + (["--event", str(event_id)] if event_id else [])
    r = sync(central_app, *args)
    assert r.exit_code == 0, r.output
    code = json.loads(r.output)["code"]
    booth_app.clock.set(CENTRAL_NOW)            # the booth's clock agrees with central's when it syncs
    r = sync(booth_app, "enroll", central_app.url, code)
    assert r.exit_code == 0, r.output
    r = sync(booth_app, "push", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output.strip().splitlines()[-1])
    assert report["quarantined"] == report["deferred"] == 0 and report["acked"] == report["total"] > 0, report


def clinic_records(central_app, folio: str, *steps):
    """steps: ("arrival", day) | ("confirmation", result) | ("treatment", day), as the clinic records them."""
    with central_app.app_context():
        ref = db.session.scalar(select(Referral).where(Referral.folio == folio))
        for action, value in steps:
            kw = {"result": value} if action == "confirmation" else {"day": value}
            referrals.record(db.session, ref, action=action, today=date(2026, 8, 20), now=CENTRAL_NOW, actor=None, **kw)
        db.session.commit()


@pytest.fixture
def world(central, make_booth, clock):
    """Central with the three booths pushed and the clinics' records; returns ids of what filters use."""
    clock.set(CENTRAL_NOW)
    with central.app_context():
        march = events_services.create_event(db.session, name="Marcha 2026", day=date(2026, 6, 27), place="CDMX",
                                             timezone="America/Mexico_City", now=CENTRAL_NOW)
        db.session.commit()
        march_id = march.id
    a, b, c = build_a(make_booth), build_b(make_booth), build_c(make_booth)
    push(central, a, "Nodo A", march_id)
    push(central, b, "Nodo B", march_id)
    push(central, c, "Nodo C")
    fa, fb, fc = folios(a), folios(b), folios(c)
    clinic_records(central, fa["hiv_confirmation"], ("arrival", date(2026, 7, 3)), ("confirmation", "hiv_confirmed"),
                   ("treatment", date(2026, 7, 10)))
    clinic_records(central, fa["discordant_lab"], ("arrival", date(2026, 7, 20)),
                   ("confirmation", "hiv_not_confirmed"))
    clinic_records(central, fa["hcv_viral_load"], ("arrival", date(2026, 8, 1)), ("confirmation", "hcv_rna_detected"),
                   ("treatment", date(2026, 8, 10)))
    clinic_records(central, fa["syphilis_confirmation"], ("arrival", date(2026, 6, 28)),
                   ("confirmation", "syphilis_active"), ("treatment", date(2026, 6, 28)))
    clinic_records(central, fa["pep_urgent"], ("arrival", date(2026, 6, 27)))
    clinic_records(central, fb["hiv_confirmation"], ("arrival", date(2026, 7, 20)), ("confirmation", "hiv_confirmed"),
                   ("treatment", date(2026, 8, 5)))
    clinic_records(central, fc["hiv_confirmation"], ("arrival", date(2026, 7, 5)), ("confirmation", "hiv_confirmed"))
    with central.app_context():
        booth_ids = {name: i for i, name, ev in db.session.execute(
            select(Booth.id, Booth.name, Event.name).join(Event, Event.id == Booth.event_id)
            .where(Event.name != "Feria de la salud"))}
        c_event = db.session.scalar(select(Event.id).where(Event.name == "Feria de la salud"))
    return SimpleNamespace(march=march_id, feria=c_event, booth_a=booth_ids["Módulo 1"], booth_b=booth_ids["Módulo 2"])


def report(app, **filters):
    with app.app_context():
        return C.exact(db.session, C.Filters(**filters), now=CENTRAL_NOW)


def cascade(r, disease):
    c = next(x for x in r.cascades if x.disease == disease)
    return (c.tested, c.reactive, c.referred, c.arrived, c.confirmed, c.treated)


# ---------------------------------------------------------------- the hand-built totals

def test_totals_and_cascade_across_booths_and_events(world, central):
    with central.app_context():
        days = {(str(d), n) for d, n in db.session.execute(select(C.ReportDay.day, C.ReportDay.visits))}
    assert days == {("2026-06-27", 13), ("2026-06-28", 4), ("2026-07-04", 2)}   # kept up to date by the pushes

    r = report(central)
    t = r.totals
    assert r.units == 3
    # visits: 13 + 4 + 2; left before result: A·V9 and B·W3; known positives: A·V2 and A·V3
    assert (t.visits, t.done, t.left_before_result, t.open_visits, t.known_positive) == (19, 16, 2, 1, 2)
    assert (t.tested_people, t.with_result_people) == (12 + 3 + 2, 10 + 2 + 2)
    hiv, hcv, syph = t.diseases
    # HIV: tested A 11 + B 3 + C 2; with a result A 9 + B 2 (W3 unresolved) + C 2; A·V3 knew and is left out
    assert (hiv.tested, hiv.with_result, hiv.non_reactive, hiv.reactive, hiv.discordant) == (16, 13, 8, 4, 1)
    assert (hiv.unresolved, hiv.in_progress, hiv.known_positive_tested) == (2, 1, 1)
    assert (hiv.yield_reactive, hiv.yield_with_result) == (3, 12) and hiv.positivity == pytest.approx(0.25)
    # refusals: A·V8 (HIV), A·V3 and A·V8 (hepatitis C) and B·W4 (both)
    assert (hiv.refused, hcv.refused) == (2, 3)
    # invalid: A·V6 and A·V9, B·W3 (closed out); repeats: A·V6; second tests A·V3, V4, V5, B·W1, C·X1
    assert (hiv.devices, hiv.invalid, hiv.repeats, hiv.second_tests) == (15 + 4 + 3, 3, 1, 5)
    assert (hcv.tested, hcv.reactive, hcv.with_result, hcv.invalid, hcv.invalid_timing) == (13, 2, 10, 2, 1)
    assert (syph.tested, syph.reactive) == (1, 1)
    assert t.devices.used == 26 + 6 + 3
    assert t.tester_hours == 3.0 and t.tests_per_tester_hour == pytest.approx(35 / 3)
    # A's ten minutes (21 ×4, 22, 37, 37, 42, 42, 46) with B's 42 and 21 and C's 42 and 21: (22 + 37) / 2
    assert t.median_minutes_to_result == 29.5
    # at central's clock both of A·V12's devices have been running past their windows
    assert t.quality.running_past_window == 2
    assert t.referrals_by_reason == {"hiv_confirmation": 3, "discordant_lab": 1, "hcv_viral_load": 2,
                                     "syphilis_confirmation": 1, "pep_urgent": 1, "prep": 1}

    # the linkage cascade: tested → reactive (or discordant) → referred → arrived → confirmed → treatment
    assert cascade(r, "hiv") == (16, 5, 4, 4, 3, 2)
    assert cascade(r, "hcv") == (13, 2, 2, 1, 1, 1)
    assert cascade(r, "syphilis") == (1, 1, 1, 1, 1, 1)
    h = next(x for x in r.cascades if x.disease == "hiv")
    assert h.median_days_to_arrival == 14.0 and h.median_days_to_treatment == 25.5     # (6 + 22) / 2, (13 + 38) / 2
    assert h.arrival_bins() == {"le14": 2, "15to28": 2, "gt28": 0}                    # 1, 6 | 22, 23
    assert h.treatment_bins() == {"le14": 1, "15to28": 0, "gt28": 1}                  # 13 | 38
    v = next(x for x in r.cascades if x.disease == "hcv")
    assert (v.median_days_to_arrival, v.median_days_to_treatment) == (35, 44)
    assert v.arrival_bins() == {"le14": 0, "15to28": 0, "gt28": 1}
    assert r.bins("arrival") == {"le14": 3, "15to28": 2, "gt28": 1}                   # + syphilis (1 day)

    # disaggregations per test: 30-34 are B·W1 (HIV reactive, hepatitis C NR) and B·W2 (HIV NR, hepatitis C R)
    assert t.by_disease["hiv"]["age_band"]["30-34"] == {"tested": 2, "with_result": 2, "reactive": 1,
                                                        "yield_with_result": 2, "yield_reactive": 1}
    assert t.by_disease["hcv"]["age_band"]["30-34"]["reactive"] == 1
    # msm: A·V1 (both NR) and B·W2 (hepatitis C reactive)
    assert t.by_disease["hcv"]["key_population"]["msm"] == {"tested": 2, "with_result": 2, "reactive": 1,
                                                            "yield_with_result": 2, "yield_reactive": 1}
    assert t.by_disease["hiv"]["key_population"]["msm"]["reactive"] == 0
    # known positives: 25-29 holds A·V3 (HIV reactive, knew: left out of positivity) and C·X1 (HIV reactive)
    hiv_2529 = t.by_disease["hiv"]["age_band"]["25-29"]
    assert (hiv_2529["reactive"], hiv_2529["yield_reactive"]) == (2, 1)
    assert t.by["age_band"]["30-34"] == {"visits": 2, "tested": 2, "with_result": 2, "reactive": 2}


def test_filters_event_booth_dates_and_disease(world, central):
    # the central event: A and B (their own event rows count under "Marcha 2026")
    r = report(central, event_id=world.march)
    assert (r.units, r.totals.visits) == (2, 17)
    assert cascade(r, "hiv") == (14, 4, 3, 3, 2, 2)
    h = next(x for x in r.cascades if x.disease == "hiv")
    assert (h.median_days_to_arrival, h.median_days_to_treatment) == (22, 25.5)        # 6, 22, 23 | 13, 38
    assert r.totals.median_minutes_to_result == 29.5
    # C's own event
    r = report(central, event_id=world.feria)
    assert (r.units, r.totals.visits, cascade(r, "hiv")) == (1, 2, (2, 1, 1, 1, 1, 0))
    # one booth; and the same booth-day by dates
    for r in (report(central, booth_id=world.booth_b),
              report(central, date_from=date(2026, 6, 28), date_to=date(2026, 6, 30))):
        assert (r.units, r.totals.visits, r.totals.left_before_result) == (1, 4, 1)
        assert cascade(r, "hiv") == (3, 1, 1, 1, 1, 1) and cascade(r, "hcv") == (2, 1, 1, 0, 0, 0)
        assert r.totals.median_minutes_to_result == 31.5                                  # 21 and 42
    # a test: only its rows
    r = report(central, disease="hcv")
    assert [c.disease for c in r.cascades] == ["hcv"] and r.diseases == ["hcv"]
    assert report(central, date_from=date(2026, 9, 1)).units == 0

    # a summary made by an older version is left out, and said so, until it is rebuilt
    with central.app_context():
        for table in (C.ReportDay, C.ReportBooth):
            db.session.execute(update(table).where(table.booth_id == world.booth_b).values(schema=1))
        db.session.commit()
    r = report(central)
    assert (r.units, r.stale, r.totals.visits) == (2, 1, 15)
    out = central.test_cli_runner().invoke(args=["central-reports", "rebuild", "--stale"])
    assert out.exit_code == 0, out.output
    r = report(central)
    assert (r.units, r.stale, r.totals.visits) == (3, 0, 19)


# ---------------------------------------------------------------- over HTTP

class Tables(HTMLParser):
    """Every <table> of a page: caption → rows of cell texts."""

    def __init__(self, html: str):
        super().__init__()
        self.tables, self._rows, self._cell, self._caption = {}, None, None, None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._rows, self._caption = [], ""
        elif tag == "caption":
            self._cell = []
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])
        elif tag in ("td", "th") and self._rows is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "caption" and self._cell is not None:
            self._caption, self._cell = " ".join("".join(self._cell).split()), None
        elif tag in ("td", "th") and self._cell is not None and self._rows:
            self._rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table" and self._rows is not None:
            self.tables[self._caption] = self._rows
            self._rows = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def find(tables: dict, start: str) -> list[list[str]]:
    return next(rows for caption, rows in tables.items() if caption.startswith(start))


def coordinator(app, clock):
    return central_signin(app, clock, "C01", central_staff(app, clock, "C01", [Role.COORDINATOR]))


def test_pages_roles_and_the_shareable_view(world, central, clock):
    client = coordinator(central, clock)
    page = client.get("/central/dashboard")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Conteos exactos, solo para coordinación" in html
    tables = Tables(html).tables
    stages = find(tables, "De la prueba al tratamiento")
    assert stages[0] == ["Etapa", "VIH", "Hepatitis C", "Sífilis"]
    assert [row[:2] for row in stages[1:7]] == [["Con prueba", "16"], ["Reactivo o discordante", "5 (31.2%)"],
                                               ["Referidos", "4 (80.0%)"], ["Llegaron a la unidad", "4 (100.0%)"],
                                               ["Diagnóstico confirmado", "3 (75.0%)"],
                                               ["Inició tratamiento", "2 (66.7%)"]]
    assert stages[7][:2] == ["Mediana de días, prueba → llegada", "14.0"]
    assert [row for row in stages[8:11]] == [["… llegaron en ≤ 14 días", "2", "0", "1"],
                                             ["… llegaron en 15–28 días", "2", "0", "0"],
                                             ["… llegaron en > 28 días", "0", "1", "0"]]
    assert stages[11][:2] == ["Mediana de días, prueba → tratamiento", "25.5"]
    assert [row for row in stages[12:15]] == [["… iniciaron tratamiento en ≤ 14 días", "1", "0", "1"],
                                              ["… iniciaron tratamiento en 15–28 días", "0", "0", "0"],
                                              ["… iniciaron tratamiento en > 28 días", "1", "1", "0"]]
    bins = find(tables, "Referencias para confirmación por días")     # the day-bins chart's numbers: every test
    assert bins[1:] == [["≤ 14 días", "3", "2"], ["15–28 días", "2", "0"], ["> 28 días", "1", "2"]]
    assert html.count('class="chart"') == 4      # per day, cascade, day bins, hour of the day — each beside its table
    # kits of three booths, per product: Determine used A 11 (2 wasted: V6's invalid, V9 closed out), B 3 (W3 closed
    # out), C 2; each booth received 50
    kits = find(tables, "Pruebas por producto")
    assert ["Determine HIV-1/2", "3", "2026-09-25", "16", "3", "134"] in kits

    r = client.get("/central/dashboard", query_string={"event": str(world.march), "disease": "hiv"})
    rows = find(Tables(r.get_data(as_text=True)).tables, "De la prueba al tratamiento")
    assert rows[0] == ["Etapa", "VIH"] and rows[1] == ["Con prueba", "14"]
    ages = find(Tables(r.get_data(as_text=True)).tables, "VIH · Por grupo de edad")
    assert ["30-34", "2", "2", "1", "50.0%"] in ages

    # filters that cannot be read: 400 with the form, nothing else
    for bad in ({"event": "not-an-id"}, {"from": "27/06/2026"}, {"from": "2026-07-01", "to": "2026-06-01"},
                {"disease": "flu"}):
        r = client.get("/central/dashboard", query_string=bad)
        assert r.status_code == 400 and "No se pudo leer un filtro" in r.get_data(as_text=True)

    # the shareable view: no count from 1 to 9 anywhere, small counts as "<10"
    share = client.get("/central/dashboard/shareable")
    assert share.status_code == 200
    text = share.get_data(as_text=True)
    assert "para imprimir y compartir" in text
    cells = [c for rows in Tables(text).tables.values() for row in rows for c in row[1:]]
    assert "<10" in cells
    assert not [c for c in cells if re.fullmatch(r"[1-9]", c.replace(",", ""))], cells
    assert "16" not in cells and "19" not in cells       # HIV tested and visits: their tables hold small cells

    # with a threshold of 3, booth A alone: counts of 3 or more show, 1 and 2 never do
    central.config["REPORT_SUPPRESSION_THRESHOLD"] = 3
    text = client.get("/central/dashboard/shareable", query_string={"booth": str(world.booth_a)}).get_data(as_text=True)
    tables = Tables(text).tables
    cells = [c for rows in tables.values() for row in rows for c in row[1:]]
    assert "<3" in cells and not [c for c in cells if c in ("1", "2")], cells
    # consented: HIV 11, hepatitis C 10 (A·V13's voided), syphilis 1
    assert find(tables, "Personas por prueba")[1] == ["Aceptaron", "11", "10", "<3"]

    # roles: testers and counselors cannot see either view; clinic staff see only their referrals
    for role in ("tester", "counselor", "clinic"):
        code = role[:3].upper() + "9"
        other = central_signin(central, clock, code, central_staff(central, clock, code, [Role(role)]))
        for url in ("/central/dashboard", "/central/dashboard/shareable"):
            assert other.get(url).status_code == 403, (role, url)
        assert other.get("/clinic").status_code == (200 if role == "clinic" else 403)
        home = other.get("/").get_data(as_text=True)
        assert "/central/dashboard" not in home
    assert "/central/dashboard" in client.get("/").get_data(as_text=True)
