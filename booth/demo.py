"""A realistic demo day: ~800 visits between 10:00 and 16:00 with plausible rates of reactive,
invalid, first-time testers, refusals and left-before-result. Same seed → same data."""
from __future__ import annotations

import random
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from booth.counseling import services as counseling
from booth.screening import services as screening
from booth.settings import services as settings_services
from booth.stock import services as stock
from booth.visits import closing, services as visits
from booth.visits.models import AGE_BANDS

AGE_WEIGHTS = [0, 6, 22, 24, 17, 11, 7, 5, 3, 2, 1, 1, 1]
RATES = {"hiv_reactive": 0.025, "hcv_reactive": 0.012, "invalid": 0.02, "discordant": 0.15, "first_time": 0.35,
         "refuse": 0.03, "left_before_result": 0.03, "known_positive": 0.02, "pep": 0.02, "prep": 0.2}


def generate_day(session, *, booth, coordinator, testers, counselors, visits_n: int = 800, seed: int = 1,
                 open_day: bool = False, now: datetime, referral_key: bytes | None = None) -> dict:
    """With ``referral_key`` (the node's), counselors also issue the referrals a real day has: reactive
    HIV or HCV, PrEP interest, PEP need."""
    rng = random.Random(seed)
    event = booth.event
    tz = ZoneInfo(event.timezone)
    day = visits.local_day(event, now)
    start = datetime.combine(day, time(10, 0), tz).astimezone(ZoneInfo("UTC"))
    settings = settings_services.signed(session, event.id) or settings_services.sign_off_defaults(
        session, event.id, now=start - timedelta(hours=1), actor=coordinator)
    products = settings_services.products_by_code(session)
    receive_at = start - timedelta(minutes=30)
    lots = {}
    for code, qty in (("determine-hiv", visits_n + 100), ("oraquick-hiv", visits_n // 4 + 50),
                      ("oraquick-hcv", visits_n + 100)):
        lots[code] = stock.receive_lot(session, booth_id=booth.id, product=products[code],
                                       lot_number=f"D{seed}-{code[:4].upper()}", expires_on=day + timedelta(days=120),
                                       quantity=qty, today=day, now=receive_at, actor=coordinator)
    for item, qty in (("condom", visits_n * 6), ("lubricant", visits_n * 3), ("self_test", visits_n // 5 + 10)):
        stock.receive_supply(session, booth_id=booth.id, item=item, quantity=qty, now=receive_at, actor=coordinator)
    stock.log_temperature(session, booth_id=booth.id, celsius=22.5, now=receive_at, actor=coordinator)
    for staff in testers + counselors:
        stock.sign_on(session, booth_id=booth.id, staff=staff, now=start - timedelta(minutes=10))

    span = 6 * 3600
    arrivals = sorted(rng.uniform(0, span - 3600) for _ in range(visits_n))
    open_tail = set(range(visits_n - max(1, visits_n // 50), visits_n)) if open_day else set()
    for i, offset in enumerate(arrivals):
        t = start + timedelta(seconds=offset)
        tester, counselor = rng.choice(testers), rng.choice(counselors)
        first_time = rng.random() < RATES["first_time"]
        intake = visits.Intake(
            age_band=rng.choices(AGE_BANDS, AGE_WEIGHTS)[0],
            gender_identity=rng.choice(["man", "man", "man", "woman", "trans_woman", "non_binary", None]),
            beneficiary=rng.choice(["yes", "yes", "no", "unknown"]),
            first_time="yes" if first_time else "no",
            last_test=None if first_time else rng.choice(["lt3m", "3to12m", "gt12m", "gt12m"]),
            known_hiv_positive="yes" if rng.random() < RATES["known_positive"] else None,
            exposure_72h="yes" if rng.random() < RATES["pep"] else None,
            key_populations_asked=rng.random() < 0.7,
            key_populations=tuple(rng.sample(["msm", "trans_woman", "sex_work", "chemsex", "non_binary"],
                                             rng.choice([0, 1, 1, 2]))))
        if not intake.key_populations_asked:
            intake.key_populations = ()
        v = visits.register_visit(session, booth=booth, intake=intake, now=t, actor=tester)
        t += timedelta(minutes=rng.uniform(1, 4))
        for disease in settings.diseases:
            given = rng.random() >= RATES["refuse"] and not (disease == "hiv" and v.known_hiv_positive)
            visits.record_consent(session, v, disease=disease, given=given, settings=settings, language="es",
                                  now=t, actor=tester)
        if i in open_tail:
            continue
        left_early = rng.random() < RATES["left_before_result"]
        running = []
        for disease, code in (("hiv", "determine-hiv"), ("hcv", "oraquick-hcv")):
            c = visits.active_consent(v, disease)
            if c is None or not c.given:
                continue
            s = screening.start(session, visit=v, product=products[code], lot=lots[code], sample_type="fingerstick",
                                slot=None, settings=settings, today=day, now=t, actor=tester)
            running.append((disease, s))
        if left_early and running:
            end = t + timedelta(minutes=8)
            for _d, s in running:
                screening.close_out(session, s, now=end, actor=tester, reason="procedure_error")
            visits.close_visit(session, v, final_state="left_before_result", now=end, actor=tester)
            continue
        read_at = t + timedelta(minutes=rng.uniform(20.5, 30))
        reactive_hiv = reactive_hcv = False
        for disease, s in running:
            if rng.random() < RATES["invalid"]:
                outcome, reason = "invalid", rng.choice(["no_control_line", "background"])
            else:
                p = RATES["hiv_reactive"] if disease == "hiv" else RATES["hcv_reactive"]
                outcome, reason = ("reactive" if rng.random() < p else "non_reactive"), None
            screening.record_result(session, s, {disease: (outcome, reason)}, now=read_at, actor=tester)
            reactive_hiv = reactive_hiv or (disease == "hiv" and outcome == "reactive")
            reactive_hcv = reactive_hcv or (disease == "hcv" and outcome == "reactive")
        if reactive_hiv and settings.algorithm("hiv") == "two_test":
            t2 = read_at + timedelta(minutes=1)
            s2 = screening.start(session, visit=v, product=products["oraquick-hiv"], lot=lots["oraquick-hiv"],
                                 sample_type="oral_fluid", slot=None, settings=settings, today=day, now=t2,
                                 actor=tester)
            outcome = "non_reactive" if rng.random() < RATES["discordant"] else "reactive"
            read_at = t2 + timedelta(minutes=rng.uniform(20.5, 30))
            screening.record_result(session, s2, {"hiv": (outcome, None)}, now=read_at, actor=tester)
        c_start = read_at + timedelta(minutes=rng.uniform(0.5, 5))
        counseling.start(session, v, kind="post", now=c_start, actor=counselor)
        supplies = {"condom": rng.choice([0, 2, 4, 6]), "lubricant": rng.choice([0, 0, 2])}
        if rng.random() < 0.05:
            supplies["self_test"] = 1
        prep_interest = rng.random() < RATES["prep"]
        c_end = c_start + timedelta(minutes=rng.uniform(4, 15))
        counseling.finish(session, v, kind="post", now=c_end,
                          actor=counselor, result_given=True,
                          topics=rng.sample(["window_period", "prep", "condoms", "partner_testing",
                                             "rights_free_care"], 2),
                          prep_interest=prep_interest, pep_need=bool(v.exposure_72h),
                          supplies={k: q for k, q in supplies.items() if q})
        if referral_key is not None:
            reasons = [r for r, yes in (("hiv_confirmation", reactive_hiv), ("hcv_viral_load", reactive_hcv),
                                        ("pep_urgent", bool(v.exposure_72h)),
                                        ("prep", prep_interest and not reactive_hiv)) if yes]
            for reason in reasons:
                _refer(session, v, reason, day=day, now=c_end, actor=counselor, key=referral_key)
        visits.close_visit(session, v, final_state="done", now=c_start + timedelta(minutes=16), actor=counselor)
    end_of_day = start + timedelta(seconds=span)
    if not open_day:
        for staff in testers + counselors:
            stock.sign_off(session, staff=staff, now=end_of_day)
        pending = closing.open_visits(session, booth.id, day)
        counts = {str(lc.lot.id): (lc.expected, None) for lc in closing.lots_to_count(session, booth.id)}
        closing.close_day(session, booth=booth, day=day, final_states={str(v.id): "left_before_result"
                                                                       for v in pending},
                          kit_counts=counts, now=end_of_day, actor=coordinator)
    return {"visits": visits_n, "day": day.isoformat(), "closed": not open_day}


def _refer(session, visit, reason, *, day, now, actor, key) -> None:
    from sqlalchemy import select

    from booth.referrals import services as referrals
    from booth.referrals.models import Destination

    dest = referrals.suggest(session, reason=reason, visit=visit, today=day)
    if dest is None:
        dest = next((d for d in session.scalars(select(Destination).where(Destination.active.is_(True))
                                                .order_by(Destination.name)) if reason in d.reasons), None)
    if dest is None:
        return
    referrals.issue(session, visit=visit, reason=reason, destination=dest,
                    valid_until=referrals.default_valid_until(reason, day), key=key, today=day, now=now, actor=actor)
