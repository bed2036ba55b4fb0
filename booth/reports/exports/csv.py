"""The CSV export: one tidy table (indicator, disaggregation, value) of the daily totals, suppressed.

For each unit (one booth's day) in the requested range, ``indicators.daily_totals`` gives the exact
counts; they are arranged in tables whose arithmetic a reader knows (``unit_tables``), each unit is
suppressed on its own (``suppression.suppress`` / ``suppress_linked``), and the range is the union of the
units' published tables (``suppression.combine``): a day, a range of days, one booth or all booths are
always unions of the same suppressed units, so no export can be subtracted from another to recover a small
count (docs/ARCHITECTURE.md, "Small-cell suppression").

Values: a number; ``<10`` for a count 1 … threshold − 1; blank for a value hidden so that no small count can be
worked out (a total, or a complementary cell); rates (``…_share``, ``….positivity``, four decimals) only
when every count they are computed from is published. Median times, tester-hours and kit lots are not in
this export.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Iterable

from sqlalchemy import or_, select

from booth.events.models import Booth, Event
from booth.reports import indicators
from booth.reports import suppression as sup
from booth.settings import services as settings_services
from booth.visits.models import Visit

HEADER = ("indicator", "disaggregation", "value")
OUTCOMES = ("non_reactive", "reactive", "discordant", "unresolved", "in_progress")
SPLITS = ("age_band", "gender_identity", "beneficiary")              # each visit has exactly one value
PEOPLE = ("visits", "tested", "with_result", "reactive")
SCALARS = ("first_time", "last_test_over_12m", "known_positive", "exposure_72h", "pre_counseling",
           "post_counseling", "result_and_post_counseling", "prep_interest", "pep_need")
DEVICE_SCALARS = ("used", "invalid", "invalid_timing", "repeats")


@dataclass
class UnitTables:
    """One unit's exact counts, arranged as the tables that are suppressed.

    ``linked``: measure → split → value → count (every split of a measure sums to its total).
    ``diseases``: disease → outcome → count (the outcomes of a disease sum to ``tested``).
    ``free``: (indicator, disaggregation) → count, with no sum a reader could write (key populations — a
    person may count in several —, consents, counseling, devices …)."""
    linked: dict = field(default_factory=dict)
    diseases: dict = field(default_factory=dict)
    free: dict = field(default_factory=dict)


def unit_tables(t: indicators.DailyTotals) -> UnitTables:
    u = UnitTables()
    states = {"done": t.done, "left_before_result": t.left_before_result, "left_before_test": t.left_before_test,
              "open": t.open_visits}
    states["other"] = t.visits - sum(states.values())
    u.linked["visits"] = {"final_state": states}
    for measure in PEOPLE:
        name = "visits" if measure == "visits" else f"people_{measure}"
        splits = u.linked.setdefault(name, {})
        for dim in SPLITS:
            splits[dim] = {value: cell[measure] for value, cell in t.by.get(dim, {}).items()}
    u.linked["referrals"] = {"reason": dict(t.referrals_by_reason), "destination": dict(t.referrals_by_destination)}
    for d in t.diseases:
        u.diseases[d.disease] = {o: getattr(d, o) for o in OUTCOMES}
        u.diseases[d.disease]["other"] = d.tested - sum(u.diseases[d.disease].values())
        u.free[(f"{d.disease}.consented", "total")] = d.consented
        u.free[(f"{d.disease}.refused", "total")] = d.refused
        if d.disease == "hiv":
            u.free[("hiv.known_positive_tested", "total")] = d.known_positive_tested
    for value, cell in t.by.get("key_population", {}).items():
        for measure in PEOPLE:
            name = "visits" if measure == "visits" else f"people_{measure}"
            u.free[(name, f"key_population={value}")] = cell[measure]
    for name in SCALARS:
        u.free[(name, "total")] = getattr(t, name)
    for name in DEVICE_SCALARS:
        u.free[(f"devices.{name}", "total")] = getattr(t.devices, name)
    return u


def _labels(units: list[UnitTables]):
    """The same shape for every unit: the union of the values any unit has (missing = 0)."""
    linked: dict = {}
    for u in units:
        for measure, splits in u.linked.items():
            for split, cells in splits.items():
                seen = linked.setdefault(measure, {}).setdefault(split, [])
                seen.extend(v for v in cells if v not in seen)
    diseases = [d for d in indicators.DISEASES if any(d in u.diseases for u in units)]
    free: list = []
    for u in units:
        free.extend(k for k in u.free if k not in free)
    for splits in linked.values():
        for values in splits.values():
            values.sort(key=_value_order)
    return linked, diseases, free


def _value_order(v):
    return v is None, str(v)


def published_rows(units: list[UnitTables], *, threshold: int = sup.DEFAULT_THRESHOLD) -> list[tuple]:
    """(indicator, disaggregation, value) of the union of ``units``; value is an int, a float (rate),
    ``SMALL``, ``HIDDEN`` or None (a rate with nothing to divide by)."""
    linked, diseases, free = _labels(units)
    rows: list[tuple] = []
    published: dict = {}
    for measure, splits in linked.items():
        names = list(splits)
        # each unit is suppressed on its own values only (never on values another unit of the range brings
        # in as zeros: that would move which cell it hides), then laid out on the union, absent values 0
        per_unit = []
        for u in units:
            own = [sorted(u.linked.get(measure, {}).get(s, {}), key=_value_order) for s in names]
            pub_u = sup.suppress_linked([[u.linked[measure][s][v] for v in own[i]] for i, s in enumerate(names)],
                                        threshold=threshold)
            laid_out = [[dict(zip(own[i], pub_u.partitions[i])).get(v, 0) for v in splits[s]]
                        for i, s in enumerate(names)]
            per_unit.append(sup.Linked(laid_out, pub_u.total))
        pub = sup.combine_linked(per_unit)
        published[(measure, "total")] = pub.total
        rows.append((measure, "total", pub.total))
        for s, cells in zip(names, pub.partitions):
            for v, value in zip(splits[s], cells):
                rows.append((measure, f"{s}={v}", value))
    if diseases:
        cols = OUTCOMES + ("other",)
        pub = sup.combine([sup.suppress([[u.diseases.get(d, {}).get(o, 0) for o in cols] for d in diseases],
                                        threshold=threshold, row_totals=True, col_totals=False) for u in units])
        for d, cells, total in zip(diseases, pub.cells, pub.row_totals):
            rows.append((f"{d}.tested", "total", total))
            for o, value in zip(cols, cells):
                published[(f"{d}.{o}", "total")] = value
                if o != "other" or value != 0:
                    rows.append((f"{d}.{o}", "total", value))
    for key in free:
        value = sup.combine_values([sup.suppress([[u.free.get(key, 0)]], threshold=threshold,
                                                 row_totals=False, col_totals=False).cells[0][0] for u in units])
        published[key] = value
        rows.append((*key, value))
    # rates: only from published numbers
    rows.append(("first_time_share", "total", sup.rate(published.get(("first_time", "total"), sup.HIDDEN),
                                                       published.get(("visits", "total"), sup.HIDDEN))))
    for d in diseases:
        parts = [published[(f"{d}.{o}", "total")] for o in ("non_reactive", "reactive", "discordant")]
        known = published.get(("hiv.known_positive_tested", "total"), 0) if d == "hiv" else 0
        if known == 0 and all(sup.is_number(p) for p in parts):
            value = sup.rate(parts[1], sum(parts))       # with no known positive, positivity = reactive / with result
        else:
            value = sup.HIDDEN                           # known positives are left out: their count is not shown
        rows.append((f"{d}.positivity", "total", value))
    return rows


# ---------------------------------------------------------------- the units a node holds

@dataclass(frozen=True)
class Unit:
    event_id: object
    booth_id: object
    day: date
    timezone: str


def units_in_range(session, *, event_id=None, day: date | None = None, date_from: date | None = None,
                   date_to: date | None = None, booth_id=None) -> list[Unit]:
    """Every (booth, day) with visits, filtered by event, booth and day or date range."""
    q = (select(Booth.event_id, Visit.booth_id, Visit.day, Event.timezone).join(Booth, Booth.id == Visit.booth_id)
         .join(Event, Event.id == Booth.event_id).distinct())
    if event_id is not None:   # at central, booths set up offline count under the event their node is linked to
        q = q.where(or_(Booth.event_id == event_id, Event.central_event_id == event_id))
    if booth_id is not None:
        q = q.where(Visit.booth_id == booth_id)
    if day is not None:
        q = q.where(Visit.day == day)
    if date_from is not None:
        q = q.where(Visit.day >= date_from)
    if date_to is not None:
        q = q.where(Visit.day <= date_to)
    found = [Unit(*row) for row in session.execute(q)]
    return sorted(found, key=lambda u: (u.day, str(u.event_id), str(u.booth_id)))


def tables_of(session, units: Iterable[Unit], *, now: datetime) -> list[UnitTables]:
    """Each unit's exact counts as the tables that are suppressed (one ``daily_totals`` per unit): what every
    export publishes from, alone or as unions."""
    settings: dict = {}
    tables = []
    for u in units:
        if u.event_id not in settings:
            settings[u.event_id] = settings_services.signed(session, u.event_id)
        t = indicators.daily_totals(session, booth_id=u.booth_id, day=u.day, tz_name=u.timezone,
                                    settings=settings[u.event_id], now=now)
        tables.append(unit_tables(t))
    return tables


def export_rows(session, units: Iterable[Unit], *, now: datetime, threshold: int) -> list[tuple]:
    tables = tables_of(session, units, now=now)
    return published_rows(tables, threshold=threshold) if tables else []


def render(rows: Iterable[tuple], *, threshold: int) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(HEADER)
    for indicator, disaggregation, value in rows:
        w.writerow((indicator, disaggregation, sup.text(value, threshold=threshold)))
    return out.getvalue()


def file_name(*, day: date | None = None, date_from: date | None = None, date_to: date | None = None,
              today: date) -> str:
    """A neutral name: nothing about HIV or results in it."""
    if day is not None:
        return f"vinculo-totales-{day.isoformat()}.csv"
    if date_from or date_to:
        return f"vinculo-totales-{(date_from or 'inicio')}-a-{(date_to or today).isoformat()}.csv"
    return f"vinculo-totales-{today.isoformat()}.csv"
