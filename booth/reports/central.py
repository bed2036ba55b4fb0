"""The central dashboard's numbers: every booth and event that sync has brought in (plain module, no Flask).

**Summary per booth and day.** A million visits are a few hundred booth-days, so central keeps one row per
booth and local day (``report_days``): ``indicators.daily_totals`` of that day — the booth dashboard's own
function, so central counts exactly what the booth counted — stored as JSON. Sync keeps it up to date:
``refresh_after(conn, kind, rows, now=…)``, called once per kind of a pushed batch in the merge's
``_after``, works out which booth-days the rows belong to (a visit's, a device's visit's, the day of a shift or a
stock movement …) and recomputes exactly those, inside the batch's transaction (a crash leaves both or
neither). ``refresh_all`` rebuilds every row (``flask --app wsgi central-reports rebuild``, after an upgrade
that changes ``SUMMARY_SCHEMA``). What clinics record (``linkages``) changes without any sync and is read
from the raw tables at request time; it is a few rows per hundred visits.

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
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from booth.events.models import Booth, Event
from booth.referrals.models import Linkage, Referral
from booth.reports import indicators
from booth.reports import suppression as sup
from booth.reports.indicators import DailyTotals, DataQuality, DeviceTotals, DiseaseTotals, HourTotals, LotTotals
from booth.reports.models import ReportDay
from booth.screening.models import Screening, ScreeningResult
from booth.settings import services as settings_services
from booth.stock.models import Shift, StockMovement
from booth.sync.models import NodeStaff
from booth.visits.models import Visit

SUMMARY_SCHEMA = 1          # bump when what a summary holds changes: ``refresh_all`` recomputes older rows
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
            conn.execute(sa.insert(table).values(booth_id=booth_id, day=day, event_id=event_id, visits=t.visits,
                                                 totals=to_doc(t), schema=SUMMARY_SCHEMA, refreshed_at=now))
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

def to_doc(t: DailyTotals) -> dict:
    """A DailyTotals as JSON-ready data (ids, dates and times as text)."""
    return json.loads(json.dumps(t.as_dict(), default=str))


def _make(cls, data: dict):
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def from_doc(doc: dict) -> DailyTotals:
    """The stored summary as a DailyTotals again (what ``exports.csv.unit_tables`` and the sums read)."""
    d = dict(doc)
    t = _make(DailyTotals, {k: v for k, v in d.items()
                            if k not in ("diseases", "devices", "lots", "hours", "quality", "minutes_to_result")})
    t.day = date.fromisoformat(d["day"]) if isinstance(d.get("day"), str) else d.get("day")
    t.diseases = [_make(DiseaseTotals, x) for x in d.get("diseases", [])]
    t.devices = _make(DeviceTotals, d.get("devices", {}))
    t.lots = [_make(LotTotals, {**x, "expires_on": date.fromisoformat(x["expires_on"])}) for x in d.get("lots", [])]
    t.hours = [_make(HourTotals, x) for x in d.get("hours", [])]
    t.quality = _make(DataQuality, d.get("quality", {}))
    t.minutes_to_result = {int(k): v for k, v in (d.get("minutes_to_result") or {}).items()}
    return t


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
    totals: DailyTotals


def load_units(session, f: Filters) -> list[Unit]:
    central = func.coalesce(Event.central_event_id, Event.id)
    q = (select(ReportDay.booth_id, ReportDay.day, central, ReportDay.refreshed_at, ReportDay.totals)
         .join(Event, Event.id == ReportDay.event_id))
    if f.event_id is not None:
        q = q.where(central == f.event_id)
    if f.booth_id is not None:
        q = q.where(ReportDay.booth_id == f.booth_id)
    if f.date_from is not None:
        q = q.where(ReportDay.day >= f.date_from)
    if f.date_to is not None:
        q = q.where(ReportDay.day <= f.date_to)
    rows = session.connection().execute(q.order_by(ReportDay.day, ReportDay.booth_id)).all()
    return [Unit(b, d, e, at, from_doc(doc if isinstance(doc, dict) else json.loads(doc))) for b, d, e, at, doc in rows]


# ================================================================= exact sums (coordinator view)

def _add_counts(into: dict, more: dict) -> None:
    """Nested dictionaries of counts: add ``more`` into ``into``."""
    for k, v in more.items():
        if isinstance(v, dict):
            _add_counts(into.setdefault(k, {}), v)
        else:
            into[k] = into.get(k, 0) + v


INT_FIELDS = ("visits", "open_visits", "done", "left_before_result", "left_before_test", "tested_people",
              "with_result_people", "first_time", "last_test_over_12m", "known_positive", "exposure_72h",
              "pre_counseling", "post_counseling", "counseling_minutes", "result_and_post_counseling",
              "prep_interest", "pep_need", "referrals", "prep_referrals", "pep_fast_tracks")
DISEASE_INTS = tuple(f.name for f in fields(DiseaseTotals) if f.name not in ("disease", "offered"))
DEVICE_INTS = tuple(f.name for f in fields(DeviceTotals))
QUALITY_INTS = ("running_past_window", "results_without_read_time", "visits_tested_without_consent")


def add_up(units: Sequence[Unit], *, now: datetime) -> DailyTotals:
    """The exact sums of several booth-days, as one DailyTotals (``day`` None). Medians come from the merged
    distributions; kits and supplies *on hand* are each booth's as of its last day in ``units``."""
    s = DailyTotals(booth_id=None, day=None, now=now, timezone="")
    diseases: dict[str, DiseaseTotals] = {}
    hours: dict[int, HourTotals] = {}
    lots: dict[str, LotTotals] = {}
    last_day: dict = {}
    minutes: Counter = Counter()
    for u in units:
        t = u.totals
        for name in INT_FIELDS:
            setattr(s, name, getattr(s, name) + getattr(t, name))
        for d in t.diseases:
            acc = diseases.setdefault(d.disease, DiseaseTotals(d.disease, d.offered))
            acc.offered = acc.offered or d.offered
            for name in DISEASE_INTS:
                setattr(acc, name, getattr(acc, name) + getattr(d, name))
        for name in DEVICE_INTS:
            setattr(s.devices, name, getattr(s.devices, name) + getattr(t.devices, name))
        for name in QUALITY_INTS:
            setattr(s.quality, name, getattr(s.quality, name) + getattr(t.quality, name))
        _add_counts(s.referrals_by_reason, t.referrals_by_reason)
        _add_counts(s.referrals_by_destination, t.referrals_by_destination)
        _add_counts(s.supplies_handed_out, t.supplies_handed_out)
        _add_counts(s.by, t.by)
        _add_counts(s.by_disease, t.by_disease)
        minutes.update(t.minutes_to_result)
        s.tester_hours += t.tester_hours
        for h in t.hours:
            acc = hours.setdefault(h.hour, HourTotals(h.hour))
            acc.visits += h.visits
            acc.devices += h.devices
        newest = last_day.get(u.booth_id) is None or u.day >= last_day[u.booth_id][0]
        if newest:
            last_day[u.booth_id] = (u.day, t)
        for lot in t.lots:
            acc = lots.get(lot.lot_id)
            if acc is None:
                acc = lots[lot.lot_id] = LotTotals(lot.lot_id, lot.product, lot.lot_number, lot.expires_on, 0,
                                                   lot.quarantined)
            for name in ("received", "used", "wasted", "adjusted"):
                setattr(acc, name, getattr(acc, name) + getattr(lot, name))
            if newest:
                acc.on_hand, acc.quarantined = lot.on_hand, lot.quarantined
    s.diseases = [diseases[d] for d in DISEASES if d in diseases]
    s.hours = [hours[h] for h in sorted(hours)]
    today = now.date()
    s.lots = sorted(lots.values(), key=lambda x: (x.expires_on, x.product, x.lot_number))
    for lot in s.lots:
        lot.days_to_expiry = (lot.expires_on - today).days
    for _day, t in last_day.values():
        _add_counts(s.supplies_on_hand, t.supplies_on_hand)
    s.tester_hours = round(s.tester_hours, 2)
    s.minutes_to_result = dict(minutes)
    s.median_minutes_to_result = median_of(minutes, scale=10)
    return s


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


def linkage_rows(session, units: Sequence[Unit]) -> list[tuple]:
    """(booth id, day, disease, arrived_on days, confirmed, treatment days) of every referral for confirmation of
    the visits of ``units`` (cancelled ones left out); days are None when not recorded."""
    if not units:
        return []
    keys = {(u.booth_id, u.day) for u in units}
    reason_of = {r: d for d, reasons in CONFIRMATION.items() for r in reasons}
    q = (select(Visit.booth_id, Visit.day, Referral.reason, Linkage.arrived_on, Linkage.confirm_result,
                Linkage.treatment_started_on)
         .join(Visit, Visit.id == Referral.visit_id)
         .outerjoin(Linkage, Linkage.referral_id == Referral.id)
         .where(Referral.status != "cancelled", Referral.reason.in_(reason_of),
                Visit.booth_id.in_({b for b, _d in keys}), Visit.day >= min(d for _b, d in keys),
                Visit.day <= max(d for _b, d in keys)))
    out = []
    for booth_id, day, reason, arrived_on, result, treated_on in session.connection().execute(q):
        if (booth_id, day) not in keys:
            continue
        out.append((booth_id, day, reason_of[reason],
                    (arrived_on - day).days if arrived_on else None, result in CONFIRMED,
                    (treated_on - day).days if treated_on else None))
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
    totals = add_up(units, now=now)
    diseases = f.diseases([d.disease for d in totals.diseases])
    rows = linkage_rows(session, units)
    per_day: dict[date, DayRow] = {}
    per_booth: dict = {}
    for u in units:
        row = per_day.setdefault(u.day, DayRow(u.day, 0, 0))
        row.visits += u.totals.visits
        row.tested += u.totals.tested_people
        b = per_booth.setdefault(u.booth_id, BoothRow(u.booth_id, 0, 0, 0, Counter()))
        b.days += 1
        b.visits += u.totals.visits
        b.tested += u.totals.tested_people
        for d in u.totals.diseases:
            b.reactive[d.disease] += d.reactive
    return Report(f, len(units), totals, diseases, cascades(totals, rows, diseases),
                  [per_day[d] for d in sorted(per_day)], list(per_booth.values()),
                  min((u.day for u in units), default=None), max((u.day for u in units), default=None),
                  min((u.refreshed_at for u in units), default=None))


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
    from booth.reports.exports.csv import unit_tables

    units = load_units(session, f)
    tables = [unit_tables(u.totals) for u in units]
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
        p = common.publish([tables[i] for i in indices], threshold=threshold)
        return p.get(("visits", "total"), 0), p.get(("people_tested", "total"), 0)

    return SharedReport(f, len(units), threshold, published, diseases, out,
                        [(d, *visits_and_tested(ix)) for d, ix in sorted(by_day.items())],
                        [(b, *visits_and_tested(ix)) for b, ix in by_booth.items()],
                        min((u.day for u in units), default=None), max((u.day for u in units), default=None))

