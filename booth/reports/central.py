"""The central dashboard's numbers: every booth and event that sync has brought in (plain module, no Flask).

**Summary per booth and day.** A million visits are a few hundred booth-days, so central keeps one row per
booth and local day (``report_days``): ``indicators.daily_totals`` of that day — the booth dashboard's own
function, so central counts exactly what the booth counted. ``totals`` holds its additive counts as one
vector of ints in a fixed order (``KEYS``: every test, disaggregation value, reason …; summing booth-days is
adding vectors) plus a few open-ended ones (destinations, hours, the minutes histogram) and the kit lots;
``tables`` holds the day's exact tables as the exports suppress them (``exports.csv.unit_tables``);
``referrals`` the ids of the day's referrals for confirmation, per test. Sync keeps it up to date:
``refresh_after(conn, kind, rows, now=…)``, called once per kind of a pushed batch in the merge's
``_after``, works out which booth-days the rows belong to (a visit's, a device's visit's, the day of a shift or a
stock movement …) and recomputes exactly those, inside the batch's transaction (a crash leaves both or
neither). ``refresh_all`` rebuilds every row (``flask --app wsgi central-reports rebuild``, after an upgrade
that changes ``SUMMARY_SCHEMA``). What clinics record (``linkages``) changes without any sync and is read
from its own table at request time (one row per referral a clinic acted on: a few per hundred visits), matched
to the booth-days by the referral ids the summaries keep.

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
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from booth.events.models import Booth, Event
from booth.referrals.models import REASONS, Linkage, Referral
from booth.reports import indicators
from booth.reports import suppression as sup
from booth.reports.indicators import DailyTotals, DataQuality, DeviceTotals, DiseaseTotals, HourTotals, LotTotals
from booth.reports.models import ReportDay
from booth.screening.models import Screening, ScreeningResult
from booth.settings import services as settings_services
from booth.stock.models import SUPPLIES, Shift, StockMovement
from booth.sync.models import NodeStaff
from booth.visits.models import AGE_BANDS, BENEFICIARY, GENDERS, KEY_POPULATIONS, Visit

SUMMARY_SCHEMA = 2          # bump when what a summary holds changes: ``refresh_all`` recomputes older rows
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

def refresh_after(conn, kind: str, rows: Sequence[dict], *, now: datetime) -> int:
    """Sync's hook: recompute the booth-days that ``rows`` (decoded records of ``kind`` just inserted or
    updated at central) belong to. Returns how many booth-days were recomputed."""
    if not rows:
        return 0
    days = touched_days(conn, kind, rows)
    return refresh_days(conn, days, now=now) if days else 0


def touched_days(conn, kind: str, rows: Sequence[dict]) -> set[tuple]:
    """The (booth id, local day) pairs whose totals may change with these rows (only days with visits)."""
    if kind == "visit":
        return {(r["booth_id"], r["day"]) for r in rows}
    if kind in VISIT_CHILDREN:
        return _days_of_visits(conn, {r["visit_id"] for r in rows})
    if kind == "screening_result":
        ids = {r["screening_id"] for r in rows}
        visit_ids = set(conn.execute(select(Screening.visit_id).where(Screening.id.in_(ids))).scalars())
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


def _days_of_visits(conn, visit_ids) -> set[tuple]:
    if not visit_ids:
        return set()
    return set(conn.execute(select(Visit.booth_id, Visit.day).where(Visit.id.in_(visit_ids)).distinct()).tuples())


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
                tables=encode_tables(unit_tables(t)), referrals=_confirmation_referrals(conn, booth_id, day),
                schema=SUMMARY_SCHEMA, refreshed_at=now))
    return len(booth_days)


def refresh_all(conn, *, now: datetime, only_stale: bool = False) -> int:
    """Every booth-day with visits (``only_stale``: those computed by an older ``SUMMARY_SCHEMA`` or missing)."""
    days = set(conn.execute(select(Visit.booth_id, Visit.day).distinct()).tuples())
    if only_stale:
        current = set(conn.execute(select(ReportDay.booth_id, ReportDay.day)
                                   .where(ReportDay.schema == SUMMARY_SCHEMA)).tuples())
        days -= current
    stale = set(conn.execute(select(ReportDay.booth_id, ReportDay.day)).tuples()) - \
        set(conn.execute(select(Visit.booth_id, Visit.day).distinct()).tuples())
    return refresh_days(conn, days | stale, now=now)


def _confirmation_referrals(conn, booth_id, day: date) -> dict[str, list[str]]:
    """disease → ids (text) of the day's referrals for confirmation that were not cancelled."""
    reason_of = {r: d for d, reasons in CONFIRMATION.items() for r in reasons}
    out: dict[str, list[str]] = {}
    for rid, reason in conn.execute(
            select(sa.cast(Referral.id, sa.String), Referral.reason).join(Visit, Visit.id == Referral.visit_id)
            .where(Visit.booth_id == booth_id, Visit.day == day, Referral.status != "cancelled",
                   Referral.reason.in_(reason_of)).order_by(Referral.id)):
        out.setdefault(reason_of[reason], []).append(str(rid))
    return out


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
    return keys + [("reason", r) for r in REASONS] + [("handed_out", s) for s in SUPPLIES]


KEYS = _layout()                         # the order of ``totals["v"]`` (SUMMARY_SCHEMA changes with it)
INDEX = {k: i for i, k in enumerate(KEYS)}


def encode(t: DailyTotals) -> dict:
    """One booth-day's totals, JSON-ready: ``v`` the vector of KEYS, ``x`` open-ended counts (name → number),
    ``lots`` and ``on_hand`` (kits and supplies on hand as last synced)."""
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
        x[f"hour|{h.hour}|visits"], x[f"hour|{h.hour}|devices"] = h.visits, h.devices
    for tenths, n in t.minutes_to_result.items():
        x[f"min|{tenths}"] = n
    x["tester_hours"] = t.tester_hours
    lots = [[lot.lot_id, lot.product, lot.lot_number, lot.expires_on.isoformat(), int(lot.quarantined), lot.received,
             lot.used, lot.wasted, lot.adjusted, lot.on_hand] for lot in t.lots]
    return {"v": v, "x": x, "lots": lots, "on_hand": dict(t.supplies_on_hand)}


def decode(units: Sequence["Unit"], *, now: datetime) -> DailyTotals:
    """The exact sums of several booth-days as one DailyTotals (``day`` None): the vectors added, the open-ended
    counts merged, medians from the merged histogram; kits and supplies *on hand* are each booth's as of its
    last day among ``units``."""
    s = DailyTotals(booth_id=None, day=None, now=now, timezone="")
    v = [sum(column) for column in zip(*(u.totals["v"] for u in units))] if units else [0] * len(KEYS)
    x: dict = {}
    last: dict = {}
    lots: dict = {}
    for u in units:
        for k, n in u.totals["x"].items():
            x[k] = x.get(k, 0) + n
        newest = u.booth_id not in last or u.day >= last[u.booth_id][0]
        if newest:
            last[u.booth_id] = (u.day, u.totals["on_hand"])
        for lot_id, product, number, expires, quarantined, received, used, wasted, adjusted, on_hand in u.totals["lots"]:
            acc = lots.get(lot_id)
            if acc is None:
                acc = lots[lot_id] = LotTotals(lot_id, product, number, date.fromisoformat(expires), 0, bool(quarantined))
            acc.received += received
            acc.used += used
            acc.wasted += wasted
            acc.adjusted += adjusted
            if newest:
                acc.on_hand, acc.quarantined = on_hand, bool(quarantined)

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
    hours: dict = {}
    minutes: dict = {}
    for k, n in x.items():
        parts = k.split("|")
        if parts[0] == "dest":
            s.referrals_by_destination[k[5:]] = n
        elif parts[0] == "hour":
            hours.setdefault(int(parts[1]), HourTotals(int(parts[1])))
            setattr(hours[int(parts[1])], parts[2], n)
        elif parts[0] == "min":
            minutes[int(parts[1])] = n
        elif parts[0] == "by":                  # a value outside the known ones (older or newer node)
            s.by.setdefault(parts[1], {}).setdefault(parts[2], dict.fromkeys(BY_MEASURES, 0))[parts[3]] = n
        elif parts[0] == "bd":
            s.by_disease.setdefault(parts[1], {}).setdefault(parts[2], {}).setdefault(
                parts[3], dict.fromkeys(BY_DISEASE_MEASURES, 0))[parts[4]] = n
    s.hours = [hours[h] for h in sorted(hours)]
    s.tester_hours = round(x.get("tester_hours", 0.0), 2)
    s.minutes_to_result = minutes
    s.median_minutes_to_result = median_of(minutes, scale=10)
    for _day, on_hand in last.values():
        for item, n in on_hand.items():
            s.supplies_on_hand[item] = s.supplies_on_hand.get(item, 0) + n
    for item in SUPPLIES:
        s.supplies_on_hand.setdefault(item, 0)
    today = now.date()
    s.lots = sorted(lots.values(), key=lambda lot: (lot.expires_on, lot.product, lot.lot_number))
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
    referrals: dict              # disease → ids of referrals for confirmation
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


def linkage_map(session) -> dict[str, tuple]:
    """referral id (text) → (arrived_on, confirm_result, treatment_started_on) of every referral a clinic has
    recorded something on: one small table, read whole (a few rows per hundred visits)."""
    return {rid: (a, c, t) for rid, a, c, t in session.connection().execute(
        select(sa.cast(Linkage.referral_id, sa.String), Linkage.arrived_on, Linkage.confirm_result,
               Linkage.treatment_started_on)
        .where(or_(Linkage.arrived_on.is_not(None), Linkage.confirm_result.is_not(None),
                   Linkage.treatment_started_on.is_not(None))))}


def linkage_rows(session, units: Sequence[Unit]) -> list[tuple]:
    """(booth id, day, disease, days test → arrival, confirmed, days test → treatment) of every referral for
    confirmation of the visits of ``units`` (cancelled ones left out); days are None when not recorded."""
    if not units:
        return []
    links = linkage_map(session)
    none = (None, None, None)
    out = []
    for u in units:
        for disease, ids in u.referrals.items():
            for rid in ids:
                arrived_on, result, treated_on = links.get(rid, none)
                out.append((u.booth_id, u.day, disease, (arrived_on - u.day).days if arrived_on else None,
                            result in CONFIRMED, (treated_on - u.day).days if treated_on else None))
    return out


def cascades(totals: DailyTotals, rows: Sequence[tuple], diseases: Sequence[str]) -> list[Cascade]:
    out = {d: Cascade(d) for d in diseases}
    for d in totals.diseases:
        if d.disease in out:
            out[d.disease].tested, out[d.disease].reactive = d.tested, d.reactive + d.discordant
    for _b, _day, disease, arrival, confirmed, treatment in rows:
        c = out.get(disease)
        if c is None:
            continue
        c.referred += 1
        if arrival is not None:
            c.arrived += 1
            c.arrival_days[arrival] += 1
        c.confirmed += confirmed
        if treatment is not None:
            c.treated += 1
            c.treatment_days[treatment] += 1
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


def exact(session, f: Filters, *, now: datetime) -> Report:
    units = load_units(session, f)
    totals = decode(units, now=now)
    diseases = f.diseases([d.disease for d in totals.diseases])
    rows = linkage_rows(session, units)
    per_day: dict[date, DayRow] = {}
    per_booth: dict = {}
    for u in units:
        visits, tested = u.count("t", "visits"), u.count("t", "tested_people")
        row = per_day.setdefault(u.day, DayRow(u.day, 0, 0))
        row.visits += visits
        row.tested += tested
        b = per_booth.setdefault(u.booth_id, BoothRow(u.booth_id, 0, 0, 0, Counter()))
        b.days += 1
        b.visits += visits
        b.tested += tested
        for d in DISEASES:
            b.reactive[d] += u.count("d", d, "reactive")
    return Report(f, len(units), totals, diseases, cascades(totals, rows, diseases),
                  [per_day[d] for d in sorted(per_day)], list(per_booth.values()),
                  min((u.day for u in units), default=None), max((u.day for u in units), default=None),
                  min((u.refreshed_at for u in units), default=None), stale_units(session, f))


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


def _unit_cascade(rows, disease: str) -> tuple[int, list[int], list[int]]:
    confirmed, arrival, treatment = 0, [0, 0, 0], [0, 0, 0]
    for _b, _d, d, a, c, t in rows:
        if d != disease:
            continue
        confirmed += c
        if a is not None:
            arrival[BINS.index(day_bin(a))] += 1
        if t is not None:
            treatment[BINS.index(day_bin(t))] += 1
    return confirmed, arrival, treatment


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
    rows_of: dict = defaultdict(list)
    for row in linkage_rows(session, units):
        rows_of[(row[0], row[1])].append(row)
    out = []
    for d in diseases:
        arrivals, treatments, confirmed = [], [], []
        for u in units:
            c, a, t = _unit_cascade(rows_of.get((u.booth_id, u.day), ()), d)
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

