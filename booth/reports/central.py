"""The central dashboard's numbers: every booth and event that sync has brought in (plain module, no Flask).

**Summary per booth and day.** A million visits are a few hundred booth-days, so central keeps one row per
booth and local day (``report_days``): ``indicators.daily_totals`` of that day — the booth dashboard's own
function, so central counts exactly what the booth counted. ``totals`` holds its additive counts as one
vector of ints in a fixed order (``KEYS``: every test, disaggregation value, reason, hour …; summing booth-days
is adding vectors) plus open-ended counts (destinations), the arrival → result histogram and the kit lots;
``tables`` holds the day's exact tables as the exports suppress them (``exports.csv.unit_tables``);
``referrals`` the linkage cascade of the day's referrals for confirmation, per test. Sync keeps it up to date:
the merge asks ``touched_days(conn, kind, rows)`` for each kind of a pushed batch which booth-days the rows
belong to (a visit's, a device's visit's, the day of a shift or a stock movement …) and notes them
(``mark_pending``); once the node's push is over (its last batch, its receipt, the end of a bundle)
``refresh_pending`` calls ``refresh_days(conn, booth_days, now=…)`` for them inside that request's transaction. ``refresh_all`` rebuilds every row (``flask --app wsgi central-reports rebuild``, after an upgrade
that changes ``SUMMARY_SCHEMA``). What clinics record at central (``linkages``) changes without any sync: a
flush hook on ``Linkage`` (``_linkage_written``) recomputes the cascade of that referral's booth-day and
booth in the clinic's own transaction.

**A central event** is ``coalesce(events.central_event_id, events.id)``: several booths' own event rows
count as one event when their nodes are linked to the same central event.

**Exact view** (``exact``): the sums of the booth-days in the filter (event, booth, date range; a disease
filter narrows what is shown), the disaggregations per test, the linkage cascade with medians and day bins.
**Shareable view** (``shared``): nothing but what the exports publish for the same booth-days — the union
of whole suppressed units (``exports.csv.unit_tables`` → ``exports.common.publish``; docs/ARCHITECTURE.md,
"Small-cell suppression") — plus the linkage cascade, suppressed per booth-day with the same functions.

Linkage cascade, per test (people are counted through their referrals; cancelled referrals never count):

- *tested*: people with at least one device for the test; *reactive*: their booth conclusion is reactive
  or discordant (both need a confirmatory test);
- *referred*: referrals for confirmation (HIV: ``hiv_confirmation`` and ``discordant_lab``; hepatitis C:
  ``hcv_viral_load``; syphilis: ``syphilis_confirmation``);
- *arrived*, *confirmed* (``hiv_confirmed``, ``hcv_rna_detected``, ``syphilis_active``), *treatment
  started*: what the clinic recorded on those referrals;
- days test → arrival and test → treatment count from the visit's local day; bins ≤ 14, 15–28, > 28.
"""
from __future__ import annotations

import json
import statistics
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from typing import Mapping, Sequence
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from booth.events.models import Booth, Event
from booth.referrals.models import REASONS, Linkage, Referral
from booth.reports import indicators
from booth.reports import suppression as sup
from booth.reports.indicators import DailyTotals, DataQuality, DeviceTotals, DiseaseTotals, HourTotals, LotTotals
from booth.reports.models import ReportBooth, ReportDay, ReportPending
from booth.screening.models import Screening, ScreeningResult
from booth.settings import services as settings_services
from booth.stock.models import SUPPLIES, Shift, StockMovement
from booth.sync.models import NodeStaff
from booth.visits.models import AGE_BANDS, BENEFICIARY, GENDERS, KEY_POPULATIONS, Visit

SUMMARY_SCHEMA = 5          # bump when what a summary holds changes: ``refresh_all`` recomputes older rows
DISEASES = indicators.DISEASES
CONFIRMATION = {"hiv": ("hiv_confirmation", "discordant_lab"), "hcv": ("hcv_viral_load",),
                "syphilis": ("syphilis_confirmation",)}
CONFIRMED = ("hiv_confirmed", "hcv_rna_detected", "syphilis_active")
BINS = ("le14", "15to28", "gt28")
STAGES = ("tested", "reactive", "referred", "arrived", "confirmed", "treated")
VISIT_CHILDREN = {"consent", "screening", "counseling", "referral"}


def day_bin(days: int) -> str:
    return "le14" if days <= 14 else "15to28" if days <= 28 else "gt28"


# ================================================================= keeping the summaries up to date (sync)

def touched_days(conn, kind: str, rows: Sequence[dict]) -> set[tuple]:
    """The (booth id, local day) pairs whose totals may change with these rows (only days with visits)."""
    if kind == "visit":
        return {(r["booth_id"], r["day"]) for r in rows}
    if kind in VISIT_CHILDREN:
        return _days_of_visits(conn, {r["visit_id"] for r in rows})
    if kind == "screening_result":
        ids = {r["screening_id"] for r in rows}
        visit_ids = set(conn.execute(select(Screening.visit_id).where(_among(conn, Screening.id, ids))).scalars())
        return _days_of_visits(conn, visit_ids)
    if kind == "linkage":          # a clinic at a booth node recorded it (clinics at central: ``_linkage_written``)
        ids = {r["referral_id"] for r in rows}
        visit_ids = set(conn.execute(select(Referral.visit_id).where(_among(conn, Referral.id, ids))).scalars())
        return _days_of_visits(conn, visit_ids)
    if kind == "shift":
        spans = [(r["booth_id"], r["started_at"], r["ended_at"] or r["started_at"]) for r in rows]
        return _local_days(conn, spans)
    if kind == "stock_movement":
        # the day of the movement, and the booth's last day (kits and supplies on hand are "as last synced")
        out = _local_days(conn, [(r["booth_id"], r["at"], r["at"]) for r in rows])
        return out | _last_days(conn, {r["booth_id"] for r in rows})
    if kind == "kit_lot":        # a quarantine or a new expiry shows on the lot's booths' last day
        booths = set(conn.execute(select(StockMovement.booth_id).where(
            StockMovement.lot_id.in_([r["id"] for r in rows])).distinct()).scalars())
        return _last_days(conn, booths)
    if kind == "clinical_settings":   # the algorithm decides conclusions: every summarised day of the event
        events = {r["event_id"] for r in rows}
        return set(conn.execute(select(ReportDay.booth_id, ReportDay.day).where(ReportDay.event_id.in_(events)))
                   .tuples())
    return set()


def _among(conn, col, values):
    """``col IN values``; on PostgreSQL as ``col = ANY(one array parameter)``: a pushed batch asks about a
    thousand ids at a time, which as a thousand parameters cost more to send and plan than to look up."""
    values = list(values)
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return col == sa.any_(sa.literal(values, ARRAY(col.type)))
    return col.in_(values)


def _days_of_visits(conn, visit_ids) -> set[tuple]:
    if not visit_ids:
        return set()
    return set(conn.execute(select(Visit.booth_id, Visit.day).where(_among(conn, Visit.id, visit_ids)).distinct())
               .tuples())


def _last_days(conn, booth_ids) -> set[tuple]:
    if not booth_ids:
        return set()
    return set(conn.execute(select(Visit.booth_id, func.max(Visit.day)).where(Visit.booth_id.in_(booth_ids))
                            .group_by(Visit.booth_id)).tuples())


def _local_days(conn, spans) -> set[tuple]:
    """(booth, from, to) UTC spans → the booth's local days they cover that have visits."""
    zones = {b: tz for b, tz in conn.execute(select(Booth.id, Event.timezone).join(Event, Event.id == Booth.event_id)
                                             .where(Booth.id.in_({b for b, _a, _z in spans})))}
    wanted: dict = defaultdict(set)
    for booth_id, start, end in spans:
        if booth_id not in zones:
            continue
        tz = ZoneInfo(zones[booth_id])
        d, last = start.astimezone(tz).date(), max(start, end).astimezone(tz).date()
        while d <= last and len(wanted[booth_id]) < 32:
            wanted[booth_id].add(d)
            d += timedelta(days=1)
    out = set()
    for booth_id, days in wanted.items():
        out |= set(conn.execute(select(Visit.booth_id, Visit.day).where(Visit.booth_id == booth_id,
                                                                         Visit.day.in_(days)).distinct()).tuples())
    return out


def refresh_days(conn, booth_days, *, now: datetime) -> int:
    """Recompute the summary of each (booth id, day) inside the caller's transaction (no commit); a day
    without visits loses its row."""
    booth_days = sorted(set(booth_days), key=lambda bd: (str(bd[0]), bd[1]))
    if not booth_days:
        return 0
    info = {b: (event_id, tz) for b, event_id, tz in conn.execute(
        select(Booth.id, Booth.event_id, Event.timezone).join(Event, Event.id == Booth.event_id)
        .where(Booth.id.in_({b for b, _d in booth_days}))).tuples()}
    settings: dict = {}
    table = ReportDay.__table__
    # the caller's connection and transaction: this session reads through them and never commits
    with Session(bind=conn) as session:
        for booth_id, day in booth_days:
            if booth_id not in info:
                continue
            event_id, tz = info[booth_id]
            if event_id not in settings:
                settings[event_id] = settings_services.signed(session, event_id)
            t = indicators.daily_totals(session, booth_id=booth_id, day=day, tz_name=tz, settings=settings[event_id],
                                        now=now)
            conn.execute(sa.delete(table).where(table.c.booth_id == booth_id, table.c.day == day))
            if not t.visits:
                continue
            t.tester_hours = _tester_hours(conn, booth_id, day, tz, now)
            conn.execute(sa.insert(table).values(
                booth_id=booth_id, day=day, event_id=event_id, visits=t.visits, totals=encode(t),
                tables=encode_tables(unit_tables(t)), referrals=cascade_stats(conn, booth_id, day),
                schema=SUMMARY_SCHEMA, refreshed_at=now))
    for booth_id in sorted({b for b, _d in booth_days}, key=str):
        _refresh_booth(conn, booth_id)
    return len(booth_days)


def mark_pending(conn, booth_days, *, now: datetime) -> None:
    """Note booth-days a pushed batch changed; their summaries are recomputed once the push is over
    (``refresh_pending``), not after every batch (a day's recomputation costs ~0.2 s)."""
    rows = [{"booth_id": b, "day": d, "since": now} for b, d in set(booth_days)]
    if not rows:
        return
    table = ReportPending.__table__
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(table).values(rows).on_conflict_do_nothing())
    else:
        conn.execute(sa.insert(table).prefix_with("OR IGNORE").values(rows))


def refresh_pending(conn, *, now: datetime, booth_ids=None) -> int:
    """Recompute the pending booth-days (of these booths, or all) and forget them; returns how many."""
    table = ReportPending.__table__
    q = select(table.c.booth_id, table.c.day)
    if booth_ids is not None:
        booth_ids = list(booth_ids)
        if not booth_ids:
            return 0
        q = q.where(table.c.booth_id.in_(booth_ids))
    days = set(conn.execute(q.with_for_update(skip_locked=True) if conn.dialect.name == "postgresql" else q)
               .tuples())
    if not days:
        return 0
    n = refresh_days(conn, days, now=now)
    for booth_id, day in days:
        conn.execute(sa.delete(table).where(table.c.booth_id == booth_id, table.c.day == day))
    return n


def pending_units(session, f: "Filters") -> int:
    """Booth-days in the filter whose summary waits for the end of a push (shown as a notice)."""
    q = select(func.count()).select_from(ReportPending).join(Booth, Booth.id == ReportPending.booth_id) \
        .join(Event, Event.id == Booth.event_id)
    return session.connection().execute(_scoped(q, f)).scalar_one()


def _refresh_booth(conn, booth_id) -> None:
    """The booth's aggregate (``report_booths``): its current day summaries added up, with per-day series."""
    table = ReportBooth.__table__
    rows = conn.execute(select(ReportDay.day, ReportDay.event_id, ReportDay.totals, ReportDay.referrals,
                               ReportDay.refreshed_at)
                        .where(ReportDay.booth_id == booth_id, ReportDay.schema == SUMMARY_SCHEMA)
                        .order_by(ReportDay.day)).all()
    conn.execute(sa.delete(table).where(table.c.booth_id == booth_id))
    if not rows:
        return
    docs = [(day, json.loads(doc) if isinstance(doc, str) else doc) for day, _e, doc, _r, _at in rows]
    merged = merge_docs([(booth_id, day, doc) for day, doc in docs])
    merged["days"] = [[day.isoformat()] + day_counts(doc) for day, doc in docs]
    referrals = merge_stats([json.loads(refs) if isinstance(refs, str) else (refs or {})
                             for _day, _e, _doc, refs, _at in rows])
    conn.execute(sa.insert(table).values(
        booth_id=booth_id, event_id=rows[-1][1], first_day=rows[0][0], last_day=rows[-1][0], days=len(rows),
        totals=merged, referrals=referrals, schema=SUMMARY_SCHEMA, refreshed_at=min(r[4] for r in rows)))


def day_counts(doc: dict) -> list[int]:
    """visits, people tested and reactive per test (DISEASES order) of one summary."""
    v = doc["v"]
    return [v[INDEX[("t", "visits")]], v[INDEX[("t", "tested_people")]]] + \
        [v[INDEX[("d", d, "reactive")]] for d in DISEASES]


def refresh_all(conn, *, now: datetime, only_stale: bool = False) -> int:
    """Every booth-day with visits (``only_stale``: those computed by an older ``SUMMARY_SCHEMA`` or missing)."""
    days = set(conn.execute(select(Visit.booth_id, Visit.day).distinct()).tuples())
    if only_stale:
        current = set(conn.execute(select(ReportDay.booth_id, ReportDay.day)
                                   .where(ReportDay.schema == SUMMARY_SCHEMA)).tuples())
        days -= current
    stale = set(conn.execute(select(ReportDay.booth_id, ReportDay.day)).tuples()) - \
        set(conn.execute(select(Visit.booth_id, Visit.day).distinct()).tuples())
    n = refresh_days(conn, days | stale, now=now)
    for booth_id in set(conn.execute(select(ReportBooth.booth_id).where(ReportBooth.schema != SUMMARY_SCHEMA))
                        .scalars()):
        _refresh_booth(conn, booth_id)
    return n


def cascade_stats(conn, booth_id, day: date) -> dict:
    """The day's referrals for confirmation (cancelled ones left out) and what clinics recorded on them:
    disease → [referred, confirmed, [[days test → arrival, referrals] …], [[days test → treatment, …] …]]."""
    reason_of = {r: d for d, reasons in CONFIRMATION.items() for r in reasons}
    out: dict = {}
    for reason, arrived_on, result, treated_on in conn.execute(
            select(Referral.reason, Linkage.arrived_on, Linkage.confirm_result, Linkage.treatment_started_on)
            .join(Visit, Visit.id == Referral.visit_id).outerjoin(Linkage, Linkage.referral_id == Referral.id)
            .where(Visit.booth_id == booth_id, Visit.day == day, Referral.status != "cancelled",
                   Referral.reason.in_(reason_of))):
        stats = out.setdefault(reason_of[reason], [0, 0, {}, {}])
        stats[0] += 1
        stats[1] += result in CONFIRMED
        if arrived_on is not None:
            k = (arrived_on - day).days
            stats[2][k] = stats[2].get(k, 0) + 1
        if treated_on is not None:
            k = (treated_on - day).days
            stats[3][k] = stats[3].get(k, 0) + 1
    return {d: [r, c, sorted(a.items()), sorted(t.items())] for d, (r, c, a, t) in out.items()}


def merge_stats(many: Sequence[dict]) -> dict:
    """Several ``cascade_stats`` added up."""
    acc: dict = {}
    for stats in many:
        for disease, (referred, confirmed, arrival, treatment) in stats.items():
            a = acc.setdefault(disease, [0, 0, {}, {}])
            a[0] += referred
            a[1] += confirmed
            for k, n in arrival:
                a[2][k] = a[2].get(k, 0) + n
            for k, n in treatment:
                a[3][k] = a[3].get(k, 0) + n
    return {d: [r, c, sorted(a.items()), sorted(t.items())] for d, (r, c, a, t) in acc.items()}


def refresh_cascade(conn, referral_id) -> None:
    """A clinic recorded something on a referral: recompute the cascade of its booth-day and of its booth
    (only where they are summarised: on a booth node, and before sync brings the day, nothing happens)."""
    found = conn.execute(select(Visit.booth_id, Visit.day).join(Referral, Referral.visit_id == Visit.id)
                         .where(Referral.id == referral_id)).first()
    if found is None:
        return
    booth_id, day = found
    days, booths = ReportDay.__table__, ReportBooth.__table__
    done = conn.execute(sa.update(days).where(days.c.booth_id == booth_id, days.c.day == day,
                                              days.c.schema == SUMMARY_SCHEMA)
                        .values(referrals=cascade_stats(conn, booth_id, day)))
    if not done.rowcount:
        return
    stats = [json.loads(r) if isinstance(r, str) else (r or {}) for r in conn.execute(
        select(days.c.referrals).where(days.c.booth_id == booth_id, days.c.schema == SUMMARY_SCHEMA)).scalars()]
    conn.execute(sa.update(booths).where(booths.c.booth_id == booth_id).values(referrals=merge_stats(stats)))


@event.listens_for(Linkage, "after_insert")
@event.listens_for(Linkage, "after_update")
def _linkage_written(_mapper, connection, target) -> None:
    """The flush hook: a linkage written through the ORM (the clinic screens) updates the summaries in the same
    transaction. Registered when this module is imported: at central (the dashboard's blueprint, the sync
    merge), never on a booth node."""
    refresh_cascade(connection, target.referral_id)


def _tester_hours(conn, booth_id, day: date, tz_name: str, now: datetime) -> float:
    """``daily_totals``' tester-hours, with the booth's staff as central holds them (``node_staff``): shift
    time within the day and up to ``now`` of staff with the tester role or who started a device that day."""
    start, end = indicators.day_bounds(day, ZoneInfo(tz_name))
    until = min(end, max(now, start))
    starters = set(conn.execute(select(Screening.started_by).join(Visit, Visit.id == Screening.visit_id)
                                .where(Visit.booth_id == booth_id, Visit.day == day).distinct()).scalars())
    total = 0.0
    for started_at, ended_at, code, roles in conn.execute(
            select(Shift.started_at, Shift.ended_at, NodeStaff.code, NodeStaff.roles)
            .join(NodeStaff, NodeStaff.id == Shift.staff_id)
            .where(Shift.booth_id == booth_id, Shift.started_at < until)):
        if "tester" not in roles.split(",") and code not in starters:
            continue
        a, b = max(started_at, start), min(ended_at or until, until)
        if b > a:
            total += (b - a).total_seconds() / 3600
    return round(total, 2)


# ================================================================= a summary as JSON and back

INT_FIELDS = ("visits", "open_visits", "done", "left_before_result", "left_before_test", "tested_people",
              "with_result_people", "first_time", "last_test_over_12m", "known_positive", "exposure_72h",
              "pre_counseling", "post_counseling", "counseling_minutes", "result_and_post_counseling",
              "prep_interest", "pep_need", "referrals", "prep_referrals", "pep_fast_tracks")
DISEASE_INTS = tuple(f.name for f in fields(DiseaseTotals) if f.name not in ("disease", "offered"))
DEVICE_INTS = tuple(f.name for f in fields(DeviceTotals))
QUALITY_INTS = ("running_past_window", "results_without_read_time", "visits_tested_without_consent")
BY_MEASURES = ("visits", "tested", "with_result", "reactive")
BY_DISEASE_MEASURES = ("tested", "with_result", "reactive", "yield_with_result", "yield_reactive")
DIMENSION_VALUES = {"age_band": AGE_BANDS, "gender_identity": GENDERS + ("unknown",),
                    "key_population": KEY_POPULATIONS + ("not_asked", "none", "unknown"),
                    "beneficiary": BENEFICIARY}


def _layout() -> list[tuple]:
    keys: list[tuple] = [("t", n) for n in INT_FIELDS] + [("dev", n) for n in DEVICE_INTS] + \
        [("q", n) for n in QUALITY_INTS]
    for d in DISEASES:
        keys += [("d", d, "shown"), ("d", d, "offered")] + [("d", d, n) for n in DISEASE_INTS]
    for dim, values in DIMENSION_VALUES.items():
        keys += [("by", dim, v, m) for v in values for m in BY_MEASURES]
    for d in DISEASES:
        for dim, values in DIMENSION_VALUES.items():
            keys += [("bd", d, dim, v, m) for v in values for m in BY_DISEASE_MEASURES]
    return keys + [("reason", r) for r in REASONS] + [("handed_out", s) for s in SUPPLIES] + \
        [("hour", h, m) for h in range(24) for m in ("visits", "devices")]


KEYS = _layout()                         # the order of ``totals["v"]`` (SUMMARY_SCHEMA changes with it)
INDEX = {k: i for i, k in enumerate(KEYS)}


def encode(t: DailyTotals) -> dict:
    """One booth-day's totals, JSON-ready: ``v`` the vector of KEYS, ``x`` open-ended counts (name → number),
    ``m`` the arrival → result histogram ([tenths of a minute, visits] pairs), ``lots`` and ``on_hand`` (kits and
    supplies on hand as last synced)."""
    v = [0] * len(KEYS)
    x: dict = {}

    def put(key, n):
        if key in INDEX:
            v[INDEX[key]] += n
        elif n:
            x["|".join(map(str, key))] = x.get("|".join(map(str, key)), 0) + n

    for n in INT_FIELDS:
        put(("t", n), getattr(t, n))
    for n in DEVICE_INTS:
        put(("dev", n), getattr(t.devices, n))
    for n in QUALITY_INTS:
        put(("q", n), getattr(t.quality, n))
    for d in t.diseases:
        put(("d", d.disease, "shown"), 1)
        put(("d", d.disease, "offered"), int(d.offered))
        for n in DISEASE_INTS:
            put(("d", d.disease, n), getattr(d, n))
    for dim, cells in t.by.items():
        for value, cell in cells.items():
            for m in BY_MEASURES:
                put(("by", dim, value, m), cell[m])
    for disease, dims in t.by_disease.items():
        for dim, cells in dims.items():
            for value, cell in cells.items():
                for m in BY_DISEASE_MEASURES:
                    put(("bd", disease, dim, value, m), cell[m])
    for reason, n in t.referrals_by_reason.items():
        put(("reason", reason), n)
    for item, n in t.supplies_handed_out.items():
        put(("handed_out", item), n)
    for name, n in t.referrals_by_destination.items():
        x["dest|" + name] = n
    for h in t.hours:
        put(("hour", h.hour, "visits"), h.visits)
        put(("hour", h.hour, "devices"), h.devices)
    x["tester_hours"] = t.tester_hours
    lots = [[lot.lot_id, lot.product, lot.lot_number, lot.expires_on.isoformat(), int(lot.quarantined), lot.received,
             lot.used, lot.wasted, lot.adjusted, lot.on_hand] for lot in t.lots]
    return {"v": v, "x": x, "m": sorted(t.minutes_to_result.items()), "lots": lots,
            "on_hand": dict(t.supplies_on_hand)}


def merge_docs(items: Sequence[tuple]) -> dict:
    """Several ``encode``d summaries — (booth id, last day, doc) — as one: vectors added, open-ended counts and
    histograms merged, kit lots added up; kits and supplies *on hand* are each booth's as of its latest item."""
    v = [sum(column) for column in zip(*(doc["v"] for _b, _d, doc in items))] if items else [0] * len(KEYS)
    x: dict = {}
    minutes: dict = {}
    last: dict = {}
    lots: dict = {}
    for booth_id, day, doc in items:
        for k, n in doc["x"].items():
            x[k] = x.get(k, 0) + n
        for tenths, n in doc["m"]:
            minutes[tenths] = minutes.get(tenths, 0) + n
        newest = booth_id not in last or day >= last[booth_id][0]
        if newest:
            last[booth_id] = (day, doc["on_hand"])
        for lot in doc["lots"]:
            acc = lots.get(lot[0])
            if acc is None:
                acc = lots[lot[0]] = list(lot[:5]) + [0, 0, 0, 0, lot[9]]
            for i in (5, 6, 7, 8):
                acc[i] += lot[i]
            if newest:
                acc[4], acc[9] = lot[4], lot[9]
    on_hand: dict = {}
    for _day, items_on_hand in last.values():
        for item, n in items_on_hand.items():
            on_hand[item] = on_hand.get(item, 0) + n
    return {"v": v, "x": x, "m": sorted(minutes.items()), "lots": list(lots.values()), "on_hand": on_hand}


def decode(units: Sequence["Unit"], *, now: datetime) -> DailyTotals:
    """The exact sums of several booth-days as one DailyTotals (``day`` None)."""
    return totals_from(merge_docs([(u.booth_id, u.day, u.totals) for u in units]), now=now)


def totals_from(doc: dict, *, now: datetime) -> DailyTotals:
    """A (merged) summary as a DailyTotals: what the templates read. Medians come from the histogram."""
    s = DailyTotals(booth_id=None, day=None, now=now, timezone="")
    v, x = doc["v"], doc["x"]
    minutes = dict(doc["m"])
    for item, n in doc["on_hand"].items():
        s.supplies_on_hand[item] = n
    s.lots = [LotTotals(lot_id, product, number, date.fromisoformat(expires), 0, bool(quarantined),
                        received=received, used=used, wasted=wasted, adjusted=adjusted, on_hand=on_hand)
              for lot_id, product, number, expires, quarantined, received, used, wasted, adjusted, on_hand
              in doc["lots"]]

    def get(*key):
        return v[INDEX[key]]

    for n in INT_FIELDS:
        setattr(s, n, get("t", n))
    for n in DEVICE_INTS:
        setattr(s.devices, n, get("dev", n))
    for n in QUALITY_INTS:
        setattr(s.quality, n, get("q", n))
    for d in DISEASES:
        if get("d", d, "shown"):
            dt = DiseaseTotals(d, bool(get("d", d, "offered")))
            for n in DISEASE_INTS:
                setattr(dt, n, get("d", d, n))
            s.diseases.append(dt)
    s.by = {dim: {} for dim in DIMENSION_VALUES}
    for dim, values in DIMENSION_VALUES.items():
        for value in values:
            cell = {m: get("by", dim, value, m) for m in BY_MEASURES}
            if cell["visits"]:
                s.by[dim][value] = cell
    for dt in s.diseases:
        per = s.by_disease[dt.disease] = {dim: {} for dim in DIMENSION_VALUES}
        for dim, values in DIMENSION_VALUES.items():
            for value in values:
                cell = {m: get("bd", dt.disease, dim, value, m) for m in BY_DISEASE_MEASURES}
                if cell["tested"]:
                    per[dim][value] = cell
    s.referrals_by_reason = {r: get("reason", r) for r in REASONS if get("reason", r)}
    s.supplies_handed_out = {i: get("handed_out", i) for i in SUPPLIES}
    busy = [h for h in range(24) if get("hour", h, "visits") or get("hour", h, "devices")]
    s.hours = [HourTotals(h, get("hour", h, "visits"), get("hour", h, "devices"))
               for h in range(min(busy), max(busy) + 1)] if busy else []
    for k, n in x.items():
        parts = k.split("|")
        if parts[0] == "dest":
            s.referrals_by_destination[k[5:]] = n
        elif parts[0] == "by":                  # a value outside the known ones (older or newer node)
            s.by.setdefault(parts[1], {}).setdefault(parts[2], dict.fromkeys(BY_MEASURES, 0))[parts[3]] = n
        elif parts[0] == "bd":
            s.by_disease.setdefault(parts[1], {}).setdefault(parts[2], {}).setdefault(
                parts[3], dict.fromkeys(BY_DISEASE_MEASURES, 0))[parts[4]] = n
    s.tester_hours = round(x.get("tester_hours", 0.0), 2)
    s.minutes_to_result = minutes
    s.median_minutes_to_result = median_of(minutes, scale=10)
    for item in SUPPLIES:
        s.supplies_on_hand.setdefault(item, 0)
    today = now.date()
    s.lots.sort(key=lambda lot: (lot.expires_on, lot.product, lot.lot_number))
    for lot in s.lots:
        lot.days_to_expiry = (lot.expires_on - today).days
    return s


def unit_tables(t: DailyTotals):
    from booth.reports.exports.csv import unit_tables as tables_of_unit

    return tables_of_unit(t)


def encode_tables(u) -> dict:
    """``exports.csv.UnitTables`` as JSON (a free count's key (indicator, disaggregation) as "indicator|…")."""
    return {"linked": u.linked, "diseases": u.diseases, "free": {f"{a}|{b}": n for (a, b), n in u.free.items()}}


def decode_tables(doc: dict):
    from booth.reports.exports.csv import UnitTables

    return UnitTables(doc["linked"], doc["diseases"],
                      {tuple(k.split("|", 1)): n for k, n in doc["free"].items()})


# ================================================================= filters

class FilterError(ValueError):
    """A filter in the query string that cannot be read (the view answers 400 with the form)."""

    def __init__(self, field_name: str):
        super().__init__(field_name)
        self.field = field_name


@dataclass(frozen=True)
class Filters:
    event_id: uuid.UUID | None = None      # a central event: coalesce(central_event_id, id)
    booth_id: uuid.UUID | None = None
    date_from: date | None = None
    date_to: date | None = None
    disease: str | None = None

    def as_args(self) -> dict:
        """The filters as query-string arguments (aggregate filters only: events, booths, dates, a test)."""
        out = {"event": self.event_id, "booth": self.booth_id, "from": self.date_from, "to": self.date_to,
               "disease": self.disease}
        return {k: str(v) for k, v in out.items() if v is not None}

    def diseases(self, shown: Sequence[str]) -> list[str]:
        return [d for d in shown if self.disease in (None, d)]


def parse_filters(args: Mapping[str, str]) -> Filters:
    """Read ``event``, ``booth`` (ids), ``from``, ``to`` (YYYY-MM-DD) and ``disease`` from a query string;
    empty values mean "any". Raises FilterError naming the first field that cannot be read."""
    def value(name):
        v = args.get(name)
        return v.strip() if isinstance(v, str) and v.strip() else None

    def an_id(name):
        v = value(name)
        if v is None:
            return None
        try:
            return uuid.UUID(v)
        except ValueError:
            raise FilterError(name) from None

    def a_day(name):
        v = value(name)
        if v is None:
            return None
        try:
            if len(v) != 10:
                raise ValueError(v)
            return date.fromisoformat(v)
        except ValueError:
            raise FilterError(name) from None

    f = Filters(an_id("event"), an_id("booth"), a_day("from"), a_day("to"), value("disease"))
    if f.disease is not None and f.disease not in DISEASES:
        raise FilterError("disease")
    if f.date_from and f.date_to and f.date_from > f.date_to:
        raise FilterError("to")
    return f


@dataclass(frozen=True)
class Option:
    id: uuid.UUID
    label: str
    group: str = ""


def options(session) -> tuple[list[Option], list[Option]]:
    """The events (central events: those that count under no other) and booths a coordinator can choose."""
    central = func.coalesce(Event.central_event_id, Event.id)
    events = [Option(i, f"{name} · {day.isoformat()}") for i, name, day in session.execute(
        select(Event.id, Event.name, Event.day).where(Event.central_event_id.is_(None))
        .order_by(Event.day.desc(), Event.name))]
    names = {o.id: o.label for o in events}
    booths = [Option(i, name, names.get(ev, "")) for i, name, ev in session.execute(
        select(Booth.id, Booth.name, central).join(Event, Event.id == Booth.event_id)
        .order_by(central, Booth.name, Booth.id))]
    return events, booths


# ================================================================= the booth-days of a filter

@dataclass
class Unit:
    booth_id: uuid.UUID
    day: date
    event_id: uuid.UUID          # the central event
    refreshed_at: datetime
    totals: dict                 # ``encode``d (exact view) or None
    referrals: dict              # ``cascade_stats``
    tables: dict | None = None   # ``encode_tables``d (shareable view) or None

    def count(self, *key) -> int:
        return self.totals["v"][INDEX[key]]


def load_units(session, f: Filters, *, tables: bool = False) -> list[Unit]:
    """The summaries of the booth-days in the filter: their totals (exact view) or their tables (shareable)."""
    central = func.coalesce(Event.central_event_id, Event.id)
    q = (select(ReportDay.booth_id, ReportDay.day, central, ReportDay.refreshed_at,
                ReportDay.tables if tables else ReportDay.totals, ReportDay.referrals)
         .join(Event, Event.id == ReportDay.event_id).where(ReportDay.schema == SUMMARY_SCHEMA))
    q = _scoped(q, f)
    out = []
    for b, d, e, at, doc, refs in session.connection().execute(q.order_by(ReportDay.day, ReportDay.booth_id)):
        doc = json.loads(doc) if isinstance(doc, str) else doc
        refs = json.loads(refs) if isinstance(refs, str) else refs
        out.append(Unit(b, d, e, at, None if tables else doc, refs or {}, doc if tables else None))
    return out


def stale_units(session, f: Filters) -> int:
    """Booth-days in the filter summarised by an older SUMMARY_SCHEMA (left out until rebuilt)."""
    q = select(func.count()).select_from(ReportDay).join(Event, Event.id == ReportDay.event_id) \
        .where(ReportDay.schema != SUMMARY_SCHEMA)
    return session.connection().execute(_scoped(q, f)).scalar_one()


def _scoped(q, f: Filters):
    central = func.coalesce(Event.central_event_id, Event.id)
    if f.event_id is not None:
        q = q.where(central == f.event_id)
    if f.booth_id is not None:
        q = q.where(ReportDay.booth_id == f.booth_id)
    if f.date_from is not None:
        q = q.where(ReportDay.day >= f.date_from)
    if f.date_to is not None:
        q = q.where(ReportDay.day <= f.date_to)
    return q


# ================================================================= medians

def median_of(histogram: Mapping[int, int], *, scale: int = 1) -> float | None:
    """The median of a histogram {value: how many} (the mean of the two middle values for an even count)."""
    n = sum(histogram.values())
    if not n:
        return None
    middle = ((n - 1) // 2, n // 2)
    found, seen = [], 0
    for value in sorted(histogram):
        count = histogram[value]
        for m in middle:
            if seen <= m < seen + count:
                found.append(value)
        seen += count
    return round(sum(found) / len(found) / scale, 1)


# ================================================================= the linkage cascade

@dataclass
class Cascade:
    disease: str
    tested: int = 0
    reactive: int = 0
    referred: int = 0
    arrived: int = 0
    confirmed: int = 0
    treated: int = 0
    arrival_days: Counter = field(default_factory=Counter)      # days test → arrival → referrals
    treatment_days: Counter = field(default_factory=Counter)

    def stage(self, name: str) -> int:
        return getattr(self, name)

    def share(self, name: str) -> float | None:
        """This stage as a share of the one before it."""
        i = STAGES.index(name)
        return indicators.rate(self.stage(name), self.stage(STAGES[i - 1])) if i else None

    @property
    def median_days_to_arrival(self) -> float | None:
        return median_of(self.arrival_days)

    @property
    def median_days_to_treatment(self) -> float | None:
        return median_of(self.treatment_days)

    def arrival_bins(self) -> dict[str, int]:
        return _bins(self.arrival_days)

    def treatment_bins(self) -> dict[str, int]:
        return _bins(self.treatment_days)


def _bins(days: Counter) -> dict[str, int]:
    out = dict.fromkeys(BINS, 0)
    for d, n in days.items():
        out[day_bin(d)] += n
    return out


def cascades(totals: DailyTotals, stats: dict, diseases: Sequence[str]) -> list[Cascade]:
    """The cascade per test: tested and reactive from the totals, the rest from ``merge_stats``."""
    out = {d: Cascade(d) for d in diseases}
    for d in totals.diseases:
        if d.disease in out:
            out[d.disease].tested, out[d.disease].reactive = d.tested, d.reactive + d.discordant
    for disease, (referred, confirmed, arrival, treatment) in stats.items():
        c = out.get(disease)
        if c is None:
            continue
        c.referred, c.confirmed = referred, confirmed
        c.arrival_days, c.treatment_days = Counter(dict(arrival)), Counter(dict(treatment))
        c.arrived, c.treated = sum(c.arrival_days.values()), sum(c.treatment_days.values())
    return [out[d] for d in diseases]


# ================================================================= the exact report

@dataclass
class BoothRow:
    booth_id: uuid.UUID
    days: int
    visits: int
    tested: int
    reactive: dict          # disease → reactive (needs confirmation) people


@dataclass
class DayRow:
    day: date
    visits: int
    tested: int


@dataclass
class Report:
    filters: Filters
    units: int
    totals: DailyTotals
    diseases: list[str]                 # shown (the disease filter applied)
    cascades: list[Cascade]
    per_day: list[DayRow]
    per_booth: list[BoothRow]
    first_day: date | None
    last_day: date | None
    oldest_refresh: datetime | None
    stale: int = 0                      # booth-days summarised by an older version (left out)

    def bins(self, which: str) -> dict[str, int]:
        """Referrals for confirmation per day bin, every test shown together (``which``: arrival, treatment)."""
        out = dict.fromkeys(BINS, 0)
        for c in self.cascades:
            for b, n in (c.arrival_bins() if which == "arrival" else c.treatment_bins()).items():
                out[b] += n
        return out

    @staticmethod
    def rate(numerator: int, denominator: int) -> float | None:
        return indicators.rate(numerator, denominator)

    def kits_by_product(self) -> list[dict]:
        """Kits per product over every lot of every booth: used, wasted, on hand, lots, the nearest expiry."""
        out: dict = {}
        for lot in self.totals.lots:
            p = out.setdefault(lot.product, {"product": lot.product, "lots": 0, "used": 0, "wasted": 0, "on_hand": 0,
                                             "expires_on": lot.expires_on, "quarantined": 0})
            p["lots"] += 1
            p["used"] += lot.used
            p["wasted"] += lot.wasted
            p["on_hand"] += lot.on_hand
            p["quarantined"] += lot.quarantined
            p["expires_on"] = min(p["expires_on"], lot.expires_on)
        return sorted(out.values(), key=lambda p: p["product"])


@dataclass
class Part:
    """What the exact view adds up: one booth-day, or every day of one booth (its ``report_booths`` row)."""
    booth_id: uuid.UUID
    first_day: date
    last_day: date
    days: int
    refreshed_at: datetime
    totals: dict                 # ``encode``d or ``merge_docs``ed
    referrals: dict              # ``cascade_stats`` (``merge_stats`` of a booth's days)
    series: list                 # [day, visits, tested, reactive per test …] per day


def load_booths(session, f: Filters) -> list[Part]:
    """The booths' aggregates in the filter (no date filter: every day of each booth)."""
    central = func.coalesce(Event.central_event_id, Event.id)
    q = (select(ReportBooth.booth_id, ReportBooth.first_day, ReportBooth.last_day, ReportBooth.days,
                ReportBooth.refreshed_at, ReportBooth.totals, ReportBooth.referrals)
         .join(Event, Event.id == ReportBooth.event_id).where(ReportBooth.schema == SUMMARY_SCHEMA))
    if f.event_id is not None:
        q = q.where(central == f.event_id)
    if f.booth_id is not None:
        q = q.where(ReportBooth.booth_id == f.booth_id)
    out = []
    for b, first, last, days, at, doc, refs in session.connection().execute(q).all():
        doc = json.loads(doc) if isinstance(doc, str) else doc
        refs = json.loads(refs) if isinstance(refs, str) else refs
        series = [[date.fromisoformat(row[0])] + row[1:] for row in doc["days"]]
        out.append(Part(b, first, last, days, at, doc, refs or {}, series))
    return out


def exact(session, f: Filters, *, now: datetime) -> Report:
    """The coordinator's view: exact sums of the booth-days in the filter. Without dates, one aggregate row per
    booth is read instead of one row per booth-day (the same sums)."""
    if f.date_from is None and f.date_to is None:
        parts = load_booths(session, f)
    else:
        parts = [Part(u.booth_id, u.day, u.day, 1, u.refreshed_at, u.totals, u.referrals,
                      [[u.day] + day_counts(u.totals)]) for u in load_units(session, f)]
    totals = totals_from(merge_docs([(p.booth_id, p.last_day, p.totals) for p in parts]), now=now)
    diseases = f.diseases([d.disease for d in totals.diseases])
    stats = merge_stats([p.referrals for p in parts])
    per_day: dict[date, DayRow] = {}
    per_booth: dict = {}
    for p in parts:
        b = per_booth.setdefault(p.booth_id, BoothRow(p.booth_id, 0, 0, 0, Counter()))
        b.days += p.days
        for day, visits, tested, *reactive in p.series:
            row = per_day.setdefault(day, DayRow(day, 0, 0))
            row.visits += visits
            row.tested += tested
            b.visits += visits
            b.tested += tested
            for d, n in zip(DISEASES, reactive):
                b.reactive[d] += n
    return Report(f, sum(p.days for p in parts), totals, diseases, cascades(totals, stats, diseases),
                  [per_day[d] for d in sorted(per_day)], list(per_booth.values()),
                  min((p.first_day for p in parts), default=None), max((p.last_day for p in parts), default=None),
                  min((p.refreshed_at for p in parts), default=None), stale_units(session, f))


def names(session, booth_ids) -> dict:
    """booth id → (booth name, event name) for the tables."""
    if not booth_ids:
        return {}
    return {b: (bn, en) for b, bn, en in session.execute(
        select(Booth.id, Booth.name, Event.name).join(Event, Event.id == Booth.event_id)
        .where(Booth.id.in_(set(booth_ids))))}


# ================================================================= the shareable report (suppressed)

@dataclass
class SharedCascade:
    disease: str
    stages: dict            # stage → published value
    arrival_bins: dict      # bin → published value
    treatment_bins: dict


@dataclass
class SharedReport:
    filters: Filters
    units: int
    threshold: int
    published: dict                     # (indicator, disaggregation) → value: the union of every unit
    diseases: list[str]
    cascades: list[SharedCascade]
    per_day: list[tuple]                # (day, published visits, published people tested)
    per_booth: list[tuple]              # (booth id, published visits, published people tested)
    first_day: date | None
    last_day: date | None
    stale: int = 0


def _bin_list(days) -> list[int]:
    """[[days, referrals] …] → referrals per day bin."""
    out = [0, 0, 0]
    for d, n in days:
        out[BINS.index(day_bin(d))] += n
    return out


def shared(session, f: Filters, *, threshold: int) -> SharedReport:
    """What may leave the coordinator view: every value is the union of whole suppressed booth-days."""
    from booth.reports.exports import common
    from booth.reports.exports.csv import UnitTables

    units = load_units(session, f, tables=True)
    tables = [decode_tables(u.tables) for u in units]
    published = common.publish(tables, threshold=threshold)
    shown = [d for d in DISEASES if (f"{d}.tested", "total") in published]
    diseases = f.diseases(shown)

    # the cascade: tested, reactive and referred are the very values the tables above publish; arrival and
    # treatment (each split into the three day bins, one linked table per booth-day) and confirmation are
    # suppressed per booth-day with the same functions, then united
    nothing = (0, 0, (), ())
    out = []
    for d in diseases:
        arrivals, treatments, confirmed = [], [], []
        for u in units:
            _referred, c, arrival, treatment = u.referrals.get(d, nothing)
            a, t = _bin_list(arrival), _bin_list(treatment)
            confirmed.append(sup.suppress([[c]], threshold=threshold, row_totals=False, col_totals=False).cells[0][0])
            arrivals.append(sup.suppress_linked([a], threshold=threshold))
            treatments.append(sup.suppress_linked([t], threshold=threshold))
        arrived = sup.combine_linked(arrivals) if arrivals else sup.Linked([[0, 0, 0]], 0)
        treated = sup.combine_linked(treatments) if treatments else sup.Linked([[0, 0, 0]], 0)

        def get(indicator, disaggregation="total"):
            return published.get((indicator, disaggregation), 0)

        stages = {
            "tested": get(f"{d}.tested"),
            "reactive": sup.combine_values([get(f"{d}.reactive"), get(f"{d}.discordant")]),
            "referred": sup.combine_values([get("referrals", f"reason={r}") for r in CONFIRMATION[d]]),
            "arrived": arrived.total,
            "confirmed": sup.combine_values(confirmed) if confirmed else 0,
            "treated": treated.total,
        }
        out.append(SharedCascade(d, stages, dict(zip(BINS, arrived.partitions[0])),
                                 dict(zip(BINS, treated.partitions[0]))))

    by_day: dict = defaultdict(list)
    by_booth: dict = defaultdict(list)
    for i, u in enumerate(units):
        by_day[u.day].append(i)
        by_booth[u.booth_id].append(i)

    def visits_and_tested(indices):
        # only the two linked tables these columns come from (each is published from its own splits)
        p = common.publish([UnitTables({k: tables[i].linked[k] for k in ("visits", "people_tested")
                                        if k in tables[i].linked}, {}, {}) for i in indices], threshold=threshold)
        return p.get(("visits", "total"), 0), p.get(("people_tested", "total"), 0)

    return SharedReport(f, len(units), threshold, published, diseases, out,
                        [(d, *visits_and_tested(ix)) for d, ix in sorted(by_day.items())],
                        [(b, *visits_and_tested(ix)) for b, ix in by_booth.items()],
                        min((u.day for u in units), default=None), max((u.day for u in units), default=None),
                        stale_units(session, f))

