"""Today's totals for one booth and one local day: every indicator of DOMAIN.md that a booth can know.

Plain functions of the database: no request, no ``g``; the caller passes the booth, the day, the signed
clinical settings and ``now``. A handful of aggregate queries (visits, consents, devices with their
current results, counseling, referrals, stock, shifts) and one pass in Python over the rows: the booth
conclusion per visit and disease comes from ``booth.screening.algorithm.derive`` — the same function the
visit card uses — so the totals can never disagree with what the counselor saw.

Definitions (the dashboard shows them in words too):

- Only current results count: a corrected result is voided and replaced, and only the replacement counts.
  Voided consents and voided counseling entries do not count either.
- *Tested* (per disease): people with at least one device for that disease (read, closed out or running).
- *With result*: people whose booth conclusion is non-reactive, reactive (needs confirmation) or
  discordant (needs the lab). A reactive first test whose second test is still pending counts once the
  second test is read or the visit is closed (``algorithm.closed_out``); until then it is *in progress*.
- *Unresolved*: closed visits whose only devices for that disease were invalid.
- *Positivity* = reactive / with result; for HIV, people who said they already knew they were HIV
  positive are left out of both (DOMAIN.md: excluded from yield) — they still appear in the counts.
- *Devices used*: every device started (each uses a kit), repeats and second tests included. A device is
  *invalid* when one of its current results is invalid; *invalid for timing* when read too early or too
  late. A *repeat* is a device started for a visit and disease that already had an invalid device.
- *Tester-hours*: shift time, within the day and up to ``now``, of staff with the tester role or who
  started a device that day; *tests per tester-hour* = devices used / tester-hours.
- *Arrival → result*: from arrival to the read time of the last device that gave that visit a valid
  result (median over visits with a valid result and no test still in progress).
- Hours are local hours of the event's time zone.
"""
from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, case, func, select, type_coerce

from booth.auth.models import Staff
from booth.counseling.models import Counseling
from booth.referrals.models import Destination, Referral
from booth.screening import algorithm
from booth.screening.algorithm import Conclusion
from booth.screening.models import Screening, ScreeningResult
from booth.settings.models import KitProduct
from booth.stock.models import SUPPLIES, KitLot, Shift, StockMovement
from booth.visits.models import Consent, Visit

DISEASES = ("hiv", "hcv", "syphilis")
TIMING = ("read_too_early", "read_too_late")
WITH_RESULT = (Conclusion.NON_REACTIVE, Conclusion.REACTIVE_NEEDS_CONFIRMATION, Conclusion.DISCORDANT_NEEDS_LAB)
DIMENSIONS = ("age_band", "gender_identity", "key_population", "beneficiary")
UNKNOWN = "unknown"


def _key(column):
    """An id column read as it is stored (no UUID object per row: these ids are only dictionary keys here)."""
    return type_coerce(column, String).label(column.key)


def rate(numerator: int, denominator: int) -> float | None:
    """A share in [0, 1], or None when there is nothing to divide by."""
    return numerator / denominator if denominator else None


@dataclass
class DiseaseTotals:
    disease: str
    offered: bool
    consented: int = 0
    refused: int = 0
    tested: int = 0
    with_result: int = 0
    non_reactive: int = 0
    reactive: int = 0
    discordant: int = 0
    unresolved: int = 0
    in_progress: int = 0
    known_positive_tested: int = 0    # HIV: tested although they knew they were positive (left out of positivity)
    yield_reactive: int = 0           # positivity numerator (known positives excluded for HIV)
    yield_with_result: int = 0        # positivity denominator
    devices: int = 0
    invalid: int = 0
    invalid_timing: int = 0
    repeats: int = 0
    second_tests: int = 0

    @property
    def positivity(self) -> float | None:
        return rate(self.yield_reactive, self.yield_with_result)

    @property
    def invalid_rate(self) -> float | None:
        return rate(self.invalid, self.devices)


@dataclass
class DeviceTotals:
    used: int = 0
    read: int = 0
    closed_out: int = 0
    running: int = 0
    invalid: int = 0
    invalid_timing: int = 0
    repeats: int = 0

    @property
    def finished(self) -> int:
        return self.read + self.closed_out

    @property
    def invalid_rate(self) -> float | None:
        return rate(self.invalid, self.finished)

    @property
    def invalid_timing_rate(self) -> float | None:
        return rate(self.invalid_timing, self.finished)


@dataclass
class LotTotals:
    lot_id: str
    product: str
    lot_number: str
    expires_on: date
    days_to_expiry: int
    quarantined: bool
    received: int = 0        # today
    used: int = 0            # devices started today
    wasted: int = 0          # today: devices without a valid result (invalid, closed out) + "wasted" movements
    adjusted: int = 0        # today: adjustments and count differences (±)
    on_hand: int = 0         # now


@dataclass
class HourTotals:
    hour: int                # local hour of the event's time zone, 0–23
    visits: int = 0
    devices: int = 0


@dataclass
class DataQuality:
    running_past_window: int = 0       # devices still "running" after their read window closed
    results_without_read_time: int = 0
    visits_tested_without_consent: int = 0
    devices_not_synced: int = 0
    sync_available: bool = False       # no sync yet: every device of the day is "not synced"

    @property
    def problems(self) -> int:
        return self.running_past_window + self.results_without_read_time + self.visits_tested_without_consent


@dataclass
class DailyTotals:
    booth_id: object
    day: date
    now: datetime
    timezone: str
    visits: int = 0
    open_visits: int = 0
    done: int = 0
    left_before_result: int = 0
    left_before_test: int = 0
    tested_people: int = 0               # people with a device for any disease
    with_result_people: int = 0          # people with a valid result for any disease
    first_time: int = 0
    last_test_over_12m: int = 0
    known_positive: int = 0
    exposure_72h: int = 0
    diseases: list[DiseaseTotals] = field(default_factory=list)
    devices: DeviceTotals = field(default_factory=DeviceTotals)
    pre_counseling: int = 0
    post_counseling: int = 0
    counseling_minutes: int = 0
    result_and_post_counseling: int = 0  # post-test counseling recorded with "result given"
    prep_interest: int = 0
    pep_need: int = 0
    referrals: int = 0
    referrals_by_reason: dict[str, int] = field(default_factory=dict)
    referrals_by_destination: dict[str, int] = field(default_factory=dict)
    prep_referrals: int = 0
    pep_fast_tracks: int = 0
    supplies_handed_out: dict[str, int] = field(default_factory=dict)
    supplies_on_hand: dict[str, int] = field(default_factory=dict)
    lots: list[LotTotals] = field(default_factory=list)
    tester_hours: float = 0.0
    median_minutes_to_result: float | None = None
    hours: list[HourTotals] = field(default_factory=list)
    by: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)   # dimension → value → counts
    quality: DataQuality = field(default_factory=DataQuality)

    @property
    def first_time_share(self) -> float | None:
        return rate(self.first_time, self.visits)

    @property
    def last_test_over_12m_share(self) -> float | None:
        return rate(self.last_test_over_12m, self.visits)

    @property
    def result_and_post_counseling_share(self) -> float | None:
        return rate(self.result_and_post_counseling, self.tested_people)

    @property
    def tests_per_tester_hour(self) -> float | None:
        return self.devices.used / self.tester_hours if self.tester_hours else None

    def disease(self, code: str) -> DiseaseTotals | None:
        return next((d for d in self.diseases if d.disease == code), None)

    def as_dict(self) -> dict:
        return asdict(self)


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The local day as a half-open UTC range."""
    start = datetime.combine(day, time(0), tz).astimezone(timezone.utc)
    end = datetime.combine(day + timedelta(days=1), time(0), tz).astimezone(timezone.utc)
    return start, end


def daily_totals(session, *, booth_id, day: date, tz_name: str, settings, now: datetime) -> DailyTotals:
    """Every total of one booth's day. ``settings``: the signed clinical settings (or None)."""
    tz = ZoneInfo(tz_name)
    start, end = day_bounds(day, tz)
    offered = list(settings.diseases) if settings is not None else []
    t = DailyTotals(booth_id=booth_id, day=day, now=now, timezone=tz_name)
    of_day = and_(Visit.booth_id == booth_id, Visit.day == day)

    # ---------------------------------------------------------------- visits
    visits = {}
    hours: dict[int, HourTotals] = {}

    def hour_of(when: datetime) -> HourTotals:
        h = when.astimezone(tz).hour
        if h not in hours:
            hours[h] = HourTotals(h)
        return hours[h]

    for row in session.execute(select(_key(Visit.id), Visit.arrived_at, Visit.final_state, Visit.first_time,
                                      Visit.last_test, Visit.known_hiv_positive, Visit.exposure_72h, Visit.age_band,
                                      Visit.gender_identity, Visit.beneficiary, Visit.key_populations_asked,
                                      Visit.key_populations).where(of_day)):
        visits[row.id] = row
        t.visits += 1
        state = row.final_state
        if state is None:
            t.open_visits += 1
        elif state == "done":
            t.done += 1
        elif state == "left_before_result":
            t.left_before_result += 1
        elif state == "left_before_test":
            t.left_before_test += 1
        t.first_time += row.first_time is True
        t.last_test_over_12m += row.last_test == "gt12m"
        t.known_positive += row.known_hiv_positive is True
        t.exposure_72h += row.exposure_72h is True
        hour_of(row.arrived_at).visits += 1

    # ---------------------------------------------------------------- consents (current entries only)
    consent: dict[tuple, bool] = {}
    refused, consented = Counter(), Counter()
    for visit_id, disease, given in session.execute(
            select(_key(Consent.visit_id), Consent.disease, Consent.given).join(Visit, Visit.id == Consent.visit_id)
            .where(of_day, Consent.voided_at.is_(None))):
        consent[(visit_id, disease)] = given
        (consented if given else refused)[disease] += 1

    # ---------------------------------------------------------------- devices and their current results
    rows = session.execute(
        select(_key(Screening.id), _key(Screening.visit_id), _key(Screening.lot_id), KitProduct.code, KitProduct.targets_csv,
               Screening.started_at, Screening.started_by, Screening.state, Screening.read_at,
               Screening.read_until_s, ScreeningResult.disease, ScreeningResult.outcome,
               ScreeningResult.invalid_reason)
        .join(Visit, Visit.id == Screening.visit_id).join(KitProduct, KitProduct.id == Screening.product_id)
        .outerjoin(ScreeningResult, and_(ScreeningResult.screening_id == Screening.id,
                                         ScreeningResult.voided_at.is_(None)))
        .where(of_day).order_by(Screening.started_at, Screening.id)).all()
    devices: dict = {}                                   # screening id → facts about the device
    entries: dict[tuple, list] = defaultdict(list)       # (visit, disease) → [(device id, product, outcome, reason)]
    for r in rows:
        dev = devices.get(r.id)
        if dev is None:
            dev = devices[r.id] = {"visit": r.visit_id, "lot": r.lot_id, "state": r.state, "read_at": r.read_at,
                                   "started_by": r.started_by, "invalid": False, "timing": False, "valid": False,
                                   "has_result": False, "repeat": False}
            t.devices.used += 1
            hour_of(r.started_at).devices += 1
            if r.state == "running":
                t.devices.running += 1
                if now > r.started_at + timedelta(seconds=r.read_until_s):
                    t.quality.running_past_window += 1
                for d in r.targets_csv.split(","):
                    if d in DISEASES and (d in offered or settings is None):
                        entries[(r.visit_id, d)].append((r.id, r.code, None, None))   # no result yet
            elif r.state == "read":
                t.devices.read += 1
            elif r.state == "closed_out":
                t.devices.closed_out += 1
        if r.disease is None:
            continue
        dev["has_result"] = True
        if r.outcome == "invalid":
            dev["invalid"] = True
            dev["timing"] = dev["timing"] or r.invalid_reason in TIMING
        else:
            dev["valid"] = True
        entries[(r.visit_id, r.disease)].append((r.id, r.code, r.outcome, r.invalid_reason))
    for dev in devices.values():
        t.devices.invalid += dev["invalid"]
        t.devices.invalid_timing += dev["timing"]
        if dev["has_result"] and dev["read_at"] is None:
            t.quality.results_without_read_time += 1
    t.quality.devices_not_synced = t.devices.used   # no sync yet (sync issue): nothing has left the node

    # ---------------------------------------------------------------- conclusions per visit and disease
    shown = [d for d in DISEASES if d in offered or any(k[1] == d for k in entries)]
    per_disease = {d: DiseaseTotals(d, d in offered, consented=consented[d], refused=refused[d]) for d in shown}
    tested_visits, result_visits, reactive_visits, no_consent_visits, pending = set(), set(), set(), set(), set()
    memo: dict[tuple, algorithm.Reading] = {}

    def reading(product: str, outcome: str) -> algorithm.Reading:   # immutable: one object per pair
        r = memo.get((product, outcome))
        if r is None:
            r = memo[(product, outcome)] = algorithm.Reading(product, algorithm.Outcome(outcome))
        return r
    last_valid_read: dict = {}
    for (visit_id, disease), devs in entries.items():
        v = visits[visit_id]
        dt = per_disease[disease]
        tested_visits.add(visit_id)
        dt.tested += 1
        dt.devices += len(devs)
        if not consent.get((visit_id, disease)):
            no_consent_visits.add(visit_id)
        known = disease == "hiv" and v.known_hiv_positive is True
        algo = algorithm.Algorithm(settings.algorithm(disease)) if settings is not None \
            else algorithm.Algorithm.ONE_TEST
        if disease == "syphilis":
            algo = algorithm.Algorithm.ONE_TEST
        # every device after the first is either a repeat (after an invalid one) or a second test (after a
        # valid reactive first test, two-test algorithm)
        seen_invalid = running = first_valid = False
        for dev_id, _product, outcome, reason in devs:
            if seen_invalid:
                dt.repeats += 1
                devices[dev_id]["repeat"] = True
            elif first_valid == "reactive" and algo is algorithm.Algorithm.TWO_TEST:
                dt.second_tests += 1
            if outcome is None:
                running = True
            elif outcome == "invalid":
                dt.invalid += 1
                dt.invalid_timing += reason in TIMING
                seen_invalid = True
            else:
                seen_invalid = False
                first_valid = first_valid or outcome
                read_at = devices[dev_id]["read_at"]
                if read_at is not None and (visit_id not in last_valid_read or read_at > last_valid_read[visit_id]):
                    last_valid_read[visit_id] = read_at
        readings = [reading(p, o) for _i, p, o, _r in devs if o is not None]
        derived = algorithm.derive(algorithm.Disease(disease), readings, algorithm=algo,
                                   consented=bool(consent.get((visit_id, disease))), known_positive=known,
                                   offered=disease in offered)
        if v.final_state is None and (running or not derived.final):
            dt.in_progress += 1
            pending.add(visit_id)
            continue
        conclusion = algorithm.closed_out(derived)
        if conclusion in WITH_RESULT:
            dt.with_result += 1
            result_visits.add(visit_id)
            if known:
                dt.known_positive_tested += 1
            else:
                dt.yield_with_result += 1
        if conclusion is Conclusion.NON_REACTIVE:
            dt.non_reactive += 1
        elif conclusion is Conclusion.REACTIVE_NEEDS_CONFIRMATION:
            dt.reactive += 1
            reactive_visits.add(visit_id)
            dt.yield_reactive += not known
        elif conclusion is Conclusion.DISCORDANT_NEEDS_LAB:
            dt.discordant += 1
        elif conclusion is Conclusion.INVALID_UNRESOLVED:
            dt.unresolved += 1
    for dev in devices.values():
        t.devices.repeats += dev["repeat"]
    t.diseases = [per_disease[d] for d in shown]
    t.tested_people = len(tested_visits)
    t.with_result_people = len(result_visits)
    t.quality.visits_tested_without_consent = len(no_consent_visits)
    minutes = [(read_at - visits[v].arrived_at).total_seconds() / 60 for v, read_at in last_valid_read.items()
               if v not in pending]
    t.median_minutes_to_result = round(statistics.median(minutes), 1) if minutes else None

    # ---------------------------------------------------------------- disaggregations
    t.by = _disaggregate(visits.values(), tested_visits, result_visits, reactive_visits)

    # ---------------------------------------------------------------- counseling
    _counseling(session, t, of_day)
    # ---------------------------------------------------------------- referrals (cancelled ones do not count)
    for reason, destination, n in session.execute(
            select(Referral.reason, Destination.name, func.count()).join(Visit, Visit.id == Referral.visit_id)
            .join(Destination, Destination.id == Referral.destination_id)
            .where(of_day, Referral.status != "cancelled").group_by(Referral.reason, Destination.name)):
        t.referrals += n
        t.referrals_by_reason[reason] = t.referrals_by_reason.get(reason, 0) + n
        t.referrals_by_destination[destination] = t.referrals_by_destination.get(destination, 0) + n
    t.prep_referrals = t.referrals_by_reason.get("prep", 0)
    t.pep_fast_tracks = t.referrals_by_reason.get("pep_urgent", 0)

    # ---------------------------------------------------------------- stock
    _stock(session, t, booth_id, start, end, day, devices)
    # ---------------------------------------------------------------- shifts
    testers = {dev["started_by"] for dev in devices.values() if dev["started_by"]}
    t.tester_hours = _tester_hours(session, booth_id, start, min(end, max(now, start)), testers)

    t.hours = [hours.get(h) or HourTotals(h) for h in range(min(hours), max(hours) + 1)] if hours else []
    return t


def _disaggregate(visits, tested, with_result, reactive) -> dict:
    """Visits, people tested, with a result and reactive (any test) by age band, gender identity, key
    population (a person can count in several) and social-security status."""
    out: dict[str, dict[str, dict[str, int]]] = {d: {} for d in DIMENSIONS}
    for v in visits:
        flags = (1, v.id in tested, v.id in with_result, v.id in reactive)
        if not v.key_populations_asked:
            kps = ("not_asked",)
        else:
            kps = tuple(v.key_populations or ()) or ("none",)
        for dimension, values in (("age_band", (v.age_band,)), ("gender_identity", (v.gender_identity,)),
                                  ("key_population", kps), ("beneficiary", (v.beneficiary,))):
            for value in values:
                cell = out[dimension].get(value or UNKNOWN)
                if cell is None:
                    cell = out[dimension][value or UNKNOWN] = [0, 0, 0, 0]
                for i, flag in enumerate(flags):
                    cell[i] += flag
    return {d: {value: dict(zip(("visits", "tested", "with_result", "reactive"), cell))
                for value, cell in cells.items()} for d, cells in out.items()}


def _counseling(session, t: DailyTotals, of_day) -> None:
    live = and_(of_day, Counseling.voided_at.is_(None), Counseling.finished_at.is_not(None))
    for kind, n, minutes, given in session.execute(
            select(Counseling.kind, func.count(), func.coalesce(func.sum(Counseling.minutes), 0),
                   func.coalesce(func.sum(case((Counseling.result_given.is_(True), 1), else_=0)), 0))
            .join(Visit, Visit.id == Counseling.visit_id).where(live).group_by(Counseling.kind)):
        t.counseling_minutes += int(minutes)
        if kind == "pre":
            t.pre_counseling = n
        elif kind == "post":
            t.post_counseling = n
            t.result_and_post_counseling = int(given)
    prep, pep = session.execute(
        select(func.count(func.distinct(case((Counseling.prep_interest.is_(True), Counseling.visit_id)))),
               func.count(func.distinct(case((Counseling.pep_need.is_(True), Counseling.visit_id)))))
        .join(Visit, Visit.id == Counseling.visit_id).where(live)).one()
    t.prep_interest, t.pep_need = prep, pep


def _stock(session, t: DailyTotals, booth_id, start: datetime, end: datetime, day: date, devices: dict) -> None:
    today = and_(StockMovement.at >= start, StockMovement.at < end)

    def today_sum(condition, sign=1):
        return func.coalesce(func.sum(case((and_(today, condition), sign * StockMovement.quantity), else_=0)), 0)

    # supplies: handed out today, on hand now
    for item, handed_out, on_hand in session.execute(
            select(StockMovement.item, today_sum(StockMovement.kind == "handed_out", -1),
                   func.sum(StockMovement.quantity))
            .where(StockMovement.booth_id == booth_id, StockMovement.lot_id.is_(None))
            .group_by(StockMovement.item)):
        t.supplies_handed_out[item] = int(handed_out)
        t.supplies_on_hand[item] = int(on_hand)
    for item in SUPPLIES:
        t.supplies_handed_out.setdefault(item, 0)
        t.supplies_on_hand.setdefault(item, 0)

    # kits: per lot
    wasted_devices = Counter(dev["lot"] for dev in devices.values()
                             if dev["state"] != "running" and not dev["valid"])
    for (lot_id, product, lot_number, expires_on, quarantined_at, received, used, wasted, adjusted,
         on_hand) in session.execute(
            select(_key(KitLot.id), KitProduct.name, KitLot.lot_number, KitLot.expires_on, KitLot.quarantined_at,
                   today_sum(StockMovement.kind == "received"), today_sum(StockMovement.kind == "used", -1),
                   today_sum(StockMovement.kind == "wasted", -1),
                   today_sum(StockMovement.kind.in_(("adjustment", "count"))), func.sum(StockMovement.quantity))
            .join(StockMovement, StockMovement.lot_id == KitLot.id).join(KitProduct, KitProduct.id == KitLot.product_id)
            .where(StockMovement.booth_id == booth_id)
            .group_by(KitLot.id, KitProduct.name, KitLot.lot_number, KitLot.expires_on, KitLot.quarantined_at)
            .order_by(KitLot.expires_on, KitProduct.name, KitLot.lot_number)):
        t.lots.append(LotTotals(str(lot_id), product, lot_number, expires_on, (expires_on - day).days,
                                quarantined_at is not None, received=int(received), used=int(used),
                                wasted=int(wasted) + wasted_devices[lot_id], adjusted=int(adjusted),
                                on_hand=int(on_hand)))


def _tester_hours(session, booth_id, start: datetime, until: datetime, device_starters: set) -> float:
    total = 0.0
    for started_at, ended_at, code, roles in session.execute(
            select(Shift.started_at, Shift.ended_at, Staff.code, Staff.roles_csv).join(Staff, Staff.id == Shift.staff_id)
            .where(Shift.booth_id == booth_id, Shift.started_at < until)):
        if "tester" not in roles.split(",") and code not in device_starters:
            continue
        a, b = max(started_at, start), min(ended_at or until, until)
        if b > a:
            total += (b - a).total_seconds() / 3600
    return round(total, 2)
