"""Today's totals for one booth and one local day: every indicator of DOMAIN.md that a booth can know.

Plain functions of the database: no request, no ``g``; the caller passes the booth, the day, the signed
clinical settings and ``now``. A handful of queries (visits, consents, devices with their current results
in visit order, then grouped counseling, referrals, stock and shifts) and one pass in Python over the rows,
one visit at a time: the booth conclusion per visit and disease comes from
``booth.screening.algorithm.derive`` — the same function the visit card uses — so the totals can never
disagree with what the counselor saw. It is worked out once per distinct sequence of devices (most people
share a handful), and per visit and device only small ints and strings are kept (2,000 visits: ≈ 70 ms).

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
  late. Every device after a person's first for a test is a *repeat* (started after an invalid one, before
  a valid result) or a *second test* (two-test algorithm: started after a valid reactive first test).
- *Tester-hours*: shift time, within the day and up to ``now``, of staff with the tester role or who
  started a device that day; *tests per tester-hour* = devices used / tester-hours.
- *Arrival → result*: from arrival to the read time of the last device that gave that visit a valid
  result (median over visits with a valid result and no test still in progress).
- Hours are local hours of the event's time zone.
"""
from __future__ import annotations

import json
import statistics
from collections import Counter
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


def _raw(column):
    """A column read as it is stored, without a Python type per row: ids (only dictionary keys here), times
    (parsed only where needed, see ``_naive_utc``) and JSON. On SQLite that is text; other drivers may
    already give UUIDs, datetimes and lists, which the code below accepts too."""
    return type_coerce(column, String).label(column.key)


def _naive_utc(value) -> datetime | None:
    """A stored UTC time as a naive UTC datetime (SQLite keeps ``YYYY-MM-DD HH:MM:SS.ffffff`` text)."""
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value


def _local_hour(day: date, tz: ZoneInfo):
    """naive UTC datetime → local hour; one addition when the day has a single UTC offset (no DST change)."""
    first = datetime.combine(day, time(0), tz).utcoffset()
    last = datetime.combine(day, time(23, 59), tz).utcoffset()
    if first == last:
        return lambda when: (when + first).hour
    return lambda when: when.replace(tzinfo=timezone.utc).astimezone(tz).hour


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
    running: int = 0                  # devices still developing (no result yet)
    invalid: int = 0
    invalid_timing: int = 0
    repeats: int = 0
    second_tests: int = 0

    @property
    def positivity(self) -> float | None:
        return rate(self.yield_reactive, self.yield_with_result)

    @property
    def invalid_rate(self) -> float | None:
        """Invalid results among the devices of this test that have a result."""
        return rate(self.invalid, self.devices - self.running)


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
    # the same per test: disease → dimension → value → tested, with_result, reactive, yield_with_result,
    # yield_reactive (the last two: positivity's numerator and denominator, known HIV positives left out)
    by_disease: dict[str, dict[str, dict[str, dict[str, int]]]] = field(default_factory=dict)
    # arrival → result in tenths of a minute → visits (what the median is taken over; the central server
    # merges these across booths and days)
    minutes_to_result: dict[int, int] = field(default_factory=dict)
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


# bits kept per visit and per device (plain ints in dictionaries: nothing per row for the garbage collector)
KNOWN, OPEN = 1, 2                                             # visit
TESTED, RESULT, REACTIVE, PENDING = 1, 2, 4, 8                 # visit outcome
YIELD = 8                                                      # per test: counts in positivity (not known +)
SHIFT = {d: 4 * i for i, d in enumerate(DISEASES)}             # per test bits: TESTED | RESULT | REACTIVE | YIELD
RUNNING, INVALID, TIMED_OUT, VALID, HAS_RESULT, REPEAT = 1, 2, 4, 8, 16, 32   # device


def daily_totals(session, *, booth_id, day: date, tz_name: str, settings, now: datetime) -> DailyTotals:
    """Every total of one booth's day. ``settings``: the signed clinical settings (or None)."""
    tz = ZoneInfo(tz_name)
    start, end = day_bounds(day, tz)
    offered = list(settings.diseases) if settings is not None else []
    t = DailyTotals(booth_id=booth_id, day=day, now=now, timezone=tz_name)
    of_day = and_(Visit.booth_id == booth_id, Visit.day == day)
    conn = session.connection()      # Core rows: no ORM loading machinery for a few thousand tuples
    local_hour = _local_hour(day, tz)
    hour_visits, hour_devices = Counter(), Counter()

    # ---------------------------------------------------------------- visits
    visit_bits: dict = {}
    arrived: dict = {}
    profile_of: dict = {}                 # visit → id of its (age band, gender, beneficiary, key populations)
    profiles: dict[tuple, int] = {}
    states = Counter()
    for vid, arrived_at, state, first_time, last_test, known, exposure, age, gender, beneficiary, asked, kps in \
            conn.execute(select(_raw(Visit.id), _raw(Visit.arrived_at), Visit.final_state, Visit.first_time,
                                Visit.last_test, Visit.known_hiv_positive, Visit.exposure_72h, Visit.age_band,
                                Visit.gender_identity, Visit.beneficiary, Visit.key_populations_asked,
                                _raw(Visit.key_populations)).where(of_day)):
        states[state] += 1
        t.first_time += first_time is True
        t.last_test_over_12m += last_test == "gt12m"
        t.known_positive += known is True
        t.exposure_72h += exposure is True
        hour_visits[local_hour(_naive_utc(arrived_at))] += 1
        visit_bits[vid] = (KNOWN if known is True else 0) | (OPEN if state is None else 0)
        arrived[vid] = arrived_at
        key = (age, gender, beneficiary, bool(asked), (kps if isinstance(kps, str) else tuple(kps or ())) if asked
               else None)
        profile_of[vid] = profiles.setdefault(key, len(profiles))
    t.visits = len(visit_bits)
    t.open_visits, t.done = states[None], states["done"]
    t.left_before_result, t.left_before_test = states["left_before_result"], states["left_before_test"]

    # ---------------------------------------------------------------- consents and refusals (current entries)
    consented, refused = Counter(), Counter()
    given: set = set()
    for vid, disease, ok in conn.execute(
            select(_raw(Consent.visit_id), Consent.disease, Consent.given).join(Visit, Visit.id == Consent.visit_id)
            .where(of_day, Consent.voided_at.is_(None))):
        if ok:
            consented[disease] += 1
            given.add(f"{vid}:{disease}")
        else:
            refused[disease] += 1

    # ---------------------------------------------------------------- devices, one visit at a time
    products = {pid: (code, [d for d in targets.split(",") if d in DISEASES and (d in offered or settings is None)])
                for pid, code, targets in conn.execute(select(_raw(KitProduct.id), KitProduct.code,
                                                              KitProduct.targets_csv))}
    algorithms = {d: algorithm.Algorithm.ONE_TEST if settings is None or d == "syphilis"
                  else algorithm.Algorithm(settings.algorithm(d)) for d in DISEASES}
    dev_bits: dict = {}
    dev_lot: dict = {}
    dev_read_at: dict = {}
    starters: set = set()
    outcome_of: dict = {}                 # visit → TESTED | RESULT | REACTIVE | PENDING
    tests_of: dict = {}                   # visit → the same per test, 4 bits each (SHIFT)
    patterns: dict[tuple, Pattern] = {}
    followed: Counter = Counter()         # pattern key → number of (visit, disease) pairs that followed it
    minutes: list[float] = []
    no_consent = 0
    now_utc = _naive_utc(now)

    def finish_visit(vid, by_disease: dict) -> None:
        """Conclusions of one visit, per disease (its devices in the order they were started)."""
        nonlocal no_consent
        bits = visit_bits[vid]
        out, last_valid, missing_consent = TESTED, None, False
        per_test = 0
        for disease, devs in by_disease.items():
            known = disease == "hiv" and bool(bits & KNOWN)
            key = (disease, tuple((code, outcome, reason) for _st, _sid, code, outcome, reason in devs), known,
                   bool(bits & OPEN))
            pat = patterns.get(key)
            if pat is None:
                pat = patterns[key] = _pattern(disease, key[1], algorithms[disease], known=known, open_visit=key[3],
                                               offered=disease in offered)
            followed[key] += 1
            for i in pat.repeat_at:
                dev_bits[devs[i][1]] |= REPEAT
            missing_consent = missing_consent or f"{vid}:{disease}" not in given
            if pat.category is None:
                out |= PENDING
                per_test |= TESTED << SHIFT[disease]
                continue
            bits_d = TESTED
            if pat.category in WITH_RESULT:
                out |= RESULT
                bits_d |= RESULT | (0 if pat.known else YIELD)
                if pat.category is Conclusion.REACTIVE_NEEDS_CONFIRMATION:
                    out |= REACTIVE
                    bits_d |= REACTIVE
            per_test |= bits_d << SHIFT[disease]
            for i in pat.valid_at:
                read_at = dev_read_at[devs[i][1]]   # as stored: comparable within one database
                if read_at is not None and (last_valid is None or read_at > last_valid):
                    last_valid = read_at
        outcome_of[vid] = out
        tests_of[vid] = per_test
        no_consent += missing_consent
        if last_valid is not None and not out & PENDING:
            minutes.append((_naive_utc(last_valid) - _naive_utc(arrived[vid])).total_seconds() / 60)

    current, by_disease = None, {}
    for sid, vid, lot_id, product_id, started_at, started_by, state, read_at, read_until_s, disease, outcome, \
            reason in conn.execute(
            select(_raw(Screening.id), _raw(Screening.visit_id), _raw(Screening.lot_id), _raw(Screening.product_id),
                   _raw(Screening.started_at), Screening.started_by, Screening.state, _raw(Screening.read_at),
                   Screening.read_until_s, ScreeningResult.disease, ScreeningResult.outcome,
                   ScreeningResult.invalid_reason)
            .join(Visit, Visit.id == Screening.visit_id)
            .outerjoin(ScreeningResult, and_(ScreeningResult.screening_id == Screening.id,
                                             ScreeningResult.voided_at.is_(None)))
            .where(of_day).order_by(Screening.visit_id, Screening.started_at, Screening.id)):
        if vid != current:
            if current is not None:
                finish_visit(current, by_disease)
            current, by_disease = vid, {}
        code, targets = products[product_id]
        bits = dev_bits.get(sid)
        if bits is None:
            bits = 0
            dev_lot[sid], dev_read_at[sid] = lot_id, read_at
            if started_by:
                starters.add(started_by)
            started = _naive_utc(started_at)
            hour_devices[local_hour(started)] += 1
            if state == "running":
                bits = RUNNING
                t.devices.running += 1
                t.quality.running_past_window += now_utc > started + timedelta(seconds=read_until_s)
                for d in targets:
                    by_disease.setdefault(d, []).append((started_at, sid, code, None, None))   # no result yet
            elif state == "read":
                t.devices.read += 1
            elif state == "closed_out":
                t.devices.closed_out += 1
        if disease is not None:
            bits |= HAS_RESULT | ((INVALID | (TIMED_OUT if reason in TIMING else 0)) if outcome == "invalid"
                                  else VALID)
            by_disease.setdefault(disease, []).append((started_at, sid, code, outcome, reason))
        dev_bits[sid] = bits
    if current is not None:
        finish_visit(current, by_disease)

    d_ = t.devices
    d_.used = len(dev_bits)
    for sid, bits in dev_bits.items():
        d_.invalid += bool(bits & INVALID)
        d_.invalid_timing += bool(bits & TIMED_OUT)
        d_.repeats += bool(bits & REPEAT)
        t.quality.results_without_read_time += bool(bits & HAS_RESULT) and dev_read_at[sid] is None
    t.quality.devices_not_synced = d_.used   # no sync yet (sync issue): nothing has left the node
    busy = hour_visits | hour_devices
    t.hours = [HourTotals(h, hour_visits[h], hour_devices[h]) for h in range(min(busy), max(busy) + 1)] \
        if busy else []

    shown = [d for d in DISEASES if d in offered or any(key[0] == d for key in followed)]
    per_disease = {d: DiseaseTotals(d, d in offered, consented=consented[d], refused=refused[d]) for d in shown}
    for key, n in followed.items():
        patterns[key].add_to(per_disease[key[0]], n)
    t.diseases = [per_disease[d] for d in shown]
    t.tested_people = len(outcome_of)
    t.with_result_people = sum(1 for out in outcome_of.values() if out & RESULT)
    t.median_minutes_to_result = round(statistics.median(minutes), 1) if minutes else None
    t.minutes_to_result = dict(Counter(round(m * 10) for m in minutes))
    t.quality.visits_tested_without_consent = no_consent

    t.by, t.by_disease = _disaggregate(profiles, profile_of, outcome_of, tests_of, shown)
    _counseling(conn, t, of_day)
    _referrals(conn, t, of_day)
    wasted = Counter(dev_lot[sid] for sid, bits in dev_bits.items() if not bits & (RUNNING | VALID))
    _stock(conn, t, booth_id, start, end, day, wasted)
    t.tester_hours = _tester_hours(conn, booth_id, start, min(end, max(now, start)), starters)
    return t


@dataclass
class Pattern:
    """What one (visit, disease) adds to the totals, worked out once per distinct sequence of devices:
    most people have the same few sequences (one non-reactive device, an invalid then a repeat …)."""
    category: Conclusion | None          # None: still in progress (open visit, a next step pending)
    invalid: int = 0
    invalid_timing: int = 0
    repeat_at: tuple = ()                # positions of devices started after an invalid one
    second_tests: int = 0
    valid_at: tuple = ()                 # positions of devices with a valid result
    known: bool = False                  # HIV, said to be known positive: left out of positivity
    running: int = 0

    def add_to(self, dt: DiseaseTotals, n: int = 1) -> None:
        """Add ``n`` (visit, disease) pairs that followed this pattern."""
        dt.tested += n
        dt.devices += n * (len(self.valid_at) + self.invalid + self.running)
        dt.running += n * self.running
        dt.invalid += n * self.invalid
        dt.invalid_timing += n * self.invalid_timing
        dt.repeats += n * len(self.repeat_at)
        dt.second_tests += n * self.second_tests
        c = self.category
        if c is None:
            dt.in_progress += n
            return
        if c in WITH_RESULT:
            dt.with_result += n
            if self.known:
                dt.known_positive_tested += n
            else:
                dt.yield_with_result += n
        if c is Conclusion.NON_REACTIVE:
            dt.non_reactive += n
        elif c is Conclusion.REACTIVE_NEEDS_CONFIRMATION:
            dt.reactive += n
            if not self.known:
                dt.yield_reactive += n
        elif c is Conclusion.DISCORDANT_NEEDS_LAB:
            dt.discordant += n
        elif c is Conclusion.INVALID_UNRESOLVED:
            dt.unresolved += n


def _pattern(disease: str, devs: tuple, algo: algorithm.Algorithm, *, known: bool, open_visit: bool,
             offered: bool) -> Pattern:
    """``devs``: (product, outcome or None while running, invalid reason) in the order started.

    Every device after the first is a repeat (after an invalid one) or, with the two-test algorithm, a
    second test (after a valid reactive first test)."""
    invalid = timing = second = running = 0
    repeat_at, valid_at = [], []
    seen_invalid, first_valid = False, None
    for i, (_product, outcome, reason) in enumerate(devs):
        if seen_invalid:
            repeat_at.append(i)
        elif first_valid == "reactive" and algo is algorithm.Algorithm.TWO_TEST:
            second += 1
        if outcome is None:
            running += 1
        elif outcome == "invalid":
            invalid += 1
            timing += reason in TIMING
            seen_invalid = True
        else:
            seen_invalid = False
            first_valid = first_valid or outcome
            valid_at.append(i)
    derived = algorithm.derive(algorithm.Disease(disease),
                               [algorithm.Reading(p, algorithm.Outcome(o)) for p, o, _r in devs if o is not None],
                               algorithm=algo, consented=True, known_positive=known, offered=offered)
    category = None if open_visit and (running or not derived.final) else derived.conclusion
    return Pattern(category, invalid, timing, tuple(repeat_at), second, tuple(valid_at), known, running)


def _disaggregate(profiles: dict, profile_of: dict, outcome_of: dict, tests_of: dict, shown: list) -> tuple[dict, dict]:
    """Visits, people tested, with a result and reactive (any test) by age band, gender identity, key
    population (a person can count in several) and social-security status; and per test (``by_disease``)."""
    per_profile = Counter((pid, outcome_of.get(vid, 0), tests_of.get(vid, 0)) for vid, pid in profile_of.items())
    cells_of = {}
    for (age, gender, beneficiary, asked, raw_kps), pid in profiles.items():
        if not asked:
            kps = ("not_asked",)
        else:
            kps = tuple(json.loads(raw_kps) if isinstance(raw_kps, str) else raw_kps or ()) or ("none",)
        cells_of[pid] = [("age_band", age), ("gender_identity", gender), ("beneficiary", beneficiary)] + \
            [("key_population", kp) for kp in kps]
    out: dict[str, dict[str, dict[str, int]]] = {d: {} for d in DIMENSIONS}
    per_test: dict = {d: {dim: {} for dim in DIMENSIONS} for d in shown}
    for (pid, bits, tests), n in per_profile.items():
        for dimension, value in cells_of[pid]:
            cell = out[dimension].setdefault(value or UNKNOWN, {"visits": 0, "tested": 0, "with_result": 0,
                                                                "reactive": 0})
            cell["visits"] += n
            cell["tested"] += n * bool(bits & TESTED)
            cell["with_result"] += n * bool(bits & RESULT)
            cell["reactive"] += n * bool(bits & REACTIVE)
            for d in shown:
                b = tests >> SHIFT[d]
                if not b & TESTED:
                    continue
                cell = per_test[d][dimension].setdefault(value or UNKNOWN, {
                    "tested": 0, "with_result": 0, "reactive": 0, "yield_with_result": 0, "yield_reactive": 0})
                cell["tested"] += n
                cell["with_result"] += n * bool(b & RESULT)
                cell["reactive"] += n * bool(b & REACTIVE)
                cell["yield_with_result"] += n * (b & (RESULT | YIELD) == RESULT | YIELD)
                cell["yield_reactive"] += n * (b & (REACTIVE | YIELD) == REACTIVE | YIELD)
    return out, per_test


def _counseling(conn, t: DailyTotals, of_day) -> None:
    live = and_(of_day, Counseling.voided_at.is_(None), Counseling.finished_at.is_not(None))
    for kind, n, minutes, given in conn.execute(
            select(Counseling.kind, func.count(), func.coalesce(func.sum(Counseling.minutes), 0),
                   func.coalesce(func.sum(case((Counseling.result_given.is_(True), 1), else_=0)), 0))
            .join(Visit, Visit.id == Counseling.visit_id).where(live).group_by(Counseling.kind)):
        t.counseling_minutes += int(minutes)
        if kind == "pre":
            t.pre_counseling = n
        elif kind == "post":
            t.post_counseling = n
            t.result_and_post_counseling = int(given)
    # a visit may say so at pre- and post-test counseling: count people once
    prep, pep = conn.execute(
        select(func.count(func.distinct(case((Counseling.prep_interest.is_(True), Counseling.visit_id)))),
               func.count(func.distinct(case((Counseling.pep_need.is_(True), Counseling.visit_id)))))
        .join(Visit, Visit.id == Counseling.visit_id).where(live)).one()
    t.prep_interest, t.pep_need = prep, pep


def _referrals(conn, t: DailyTotals, of_day) -> None:
    """Referrals issued for today's visits, by reason and destination (cancelled ones do not count)."""
    for reason, destination, n in conn.execute(
            select(Referral.reason, Destination.name, func.count()).join(Visit, Visit.id == Referral.visit_id)
            .join(Destination, Destination.id == Referral.destination_id)
            .where(of_day, Referral.status != "cancelled").group_by(Referral.reason, Destination.name)):
        t.referrals += n
        t.referrals_by_reason[reason] = t.referrals_by_reason.get(reason, 0) + n
        t.referrals_by_destination[destination] = t.referrals_by_destination.get(destination, 0) + n
    t.prep_referrals = t.referrals_by_reason.get("prep", 0)
    t.pep_fast_tracks = t.referrals_by_reason.get("pep_urgent", 0)


def _stock(conn, t: DailyTotals, booth_id, start: datetime, end: datetime, day: date, wasted_devices: Counter
           ) -> None:
    today = and_(StockMovement.at >= start, StockMovement.at < end)

    def today_sum(condition, sign=1):
        return func.coalesce(func.sum(case((and_(today, condition), sign * StockMovement.quantity), else_=0)), 0)

    # supplies: handed out today, on hand now
    for item, handed_out, on_hand in conn.execute(
            select(StockMovement.item, today_sum(StockMovement.kind == "handed_out", -1),
                   func.sum(StockMovement.quantity))
            .where(StockMovement.booth_id == booth_id, StockMovement.lot_id.is_(None))
            .group_by(StockMovement.item)):
        t.supplies_handed_out[item] = int(handed_out)
        t.supplies_on_hand[item] = int(on_hand)
    for item in SUPPLIES:
        t.supplies_handed_out.setdefault(item, 0)
        t.supplies_on_hand.setdefault(item, 0)

    # kits, per lot: a device started today without a valid result (invalid, closed out) is wasted
    moves = {lot_id: row for lot_id, *row in conn.execute(
        select(_raw(StockMovement.lot_id), today_sum(StockMovement.kind == "received"),
               today_sum(StockMovement.kind == "used", -1), today_sum(StockMovement.kind == "wasted", -1),
               today_sum(StockMovement.kind.in_(("adjustment", "count"))), func.sum(StockMovement.quantity))
        .where(StockMovement.booth_id == booth_id, StockMovement.lot_id.is_not(None))
        .group_by(StockMovement.lot_id))}
    for lot_id, product, lot_number, expires_on, quarantined_at in conn.execute(
            select(_raw(KitLot.id), KitProduct.name, KitLot.lot_number, KitLot.expires_on, KitLot.quarantined_at)
            .join(KitProduct, KitProduct.id == KitLot.product_id)
            .order_by(KitLot.expires_on, KitProduct.name, KitLot.lot_number)):
        if lot_id not in moves:
            continue     # a lot of the catalogue this booth never received
        received, used, wasted, adjusted, on_hand = (int(x) for x in moves[lot_id])
        t.lots.append(LotTotals(str(lot_id), product, lot_number, expires_on, (expires_on - day).days,
                                quarantined_at is not None, received=received, used=used,
                                wasted=wasted + wasted_devices[lot_id], adjusted=adjusted, on_hand=on_hand))


def _tester_hours(conn, booth_id, start: datetime, until: datetime, device_starters: set) -> float:
    """Shift hours within [start, until) of staff with the tester role or who started a device today."""
    total = 0.0
    for started_at, ended_at, code, roles in conn.execute(
            select(Shift.started_at, Shift.ended_at, Staff.code, Staff.roles_csv).join(Staff, Staff.id == Shift.staff_id)
            .where(Shift.booth_id == booth_id, Shift.started_at < until)):
        if "tester" not in roles.split(",") and code not in device_starters:
            continue
        a, b = max(started_at, start), min(ended_at or until, until)
        if b > a:
            total += (b - a).total_seconds() / 3600
    return round(total, 2)
