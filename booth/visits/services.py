"""Visits: intake with no personal data, a call number for the day, consent per disease, the state
of a visit in the queue, corrections and close of day."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from booth.audit import services as audit
from booth.auth.models import Role
from booth.errors import DomainError
from booth.events.models import Booth, Event
from booth.screening import algorithm
from booth.settings.models import ClinicalSettings
from booth.visits.models import (AGE_BANDS, BENEFICIARY, FINAL_STATES, GENDERS, KEY_POPULATIONS, LAST_TEST,
                                 SEX_AT_BIRTH, Consent, DayClosure, Visit)

CORRECTION_REASONS = ("wrong_entry", "wrong_visit", "wrong_disease", "duplicate", "misread", "other")
AUTHOR_GRACE = timedelta(minutes=10)


class StaleError(DomainError):
    """A write based on an old version: the person sees the current state and tries again."""
    status = 409

    def __init__(self, message=None, field=None):
        super().__init__(message or _l("Someone else changed this visit a moment ago. Here is its current state; "
                                       "check it and try again."), field)


def local_day(event: Event, now: datetime) -> date:
    return now.astimezone(ZoneInfo(event.timezone)).date()


def day_locked(session, booth_id, day: date) -> bool:
    return session.scalar(select(DayClosure.id).where(DayClosure.booth_id == booth_id, DayClosure.day == day)) \
        is not None


def ensure_open_day(session, visit_or_booth_id, day: date, actor) -> None:
    """After close of day only coordinator corrections are possible."""
    booth_id = getattr(visit_or_booth_id, "booth_id", visit_or_booth_id)
    if day_locked(session, booth_id, day):
        raise DomainError(_l("This day is closed: only a coordinator can correct it, with a reason."))


def call_number(seq: int) -> str:
    letter = chr(ord("A") + ((seq - 1) // 999) % 26)
    return f"{letter}-{(seq - 1) % 999 + 1:03d}"


def _choice(value, allowed, field, message):
    if value in (None, ""):
        return None
    if value not in allowed:
        raise DomainError(message, field)
    return value


def _tristate(value, field):
    if value in (None, "", "unknown"):
        return None
    if value in (True, "yes", "true", "1", 1):
        return True
    if value in (False, "no", "false", "0", 0):
        return False
    raise DomainError(_l("Choose yes or no."), field)


@dataclass
class Intake:
    age_band: str
    gender_identity: str | None = None
    sex_at_birth: str | None = None
    beneficiary: str | None = None
    first_time: object = None
    last_test: str | None = None
    known_hiv_positive: object = None
    previous_hcv_treatment: object = None
    treated_syphilis_before: object = None
    exposure_72h: object = None
    key_populations_asked: bool = False
    key_populations: tuple = ()


def validate_intake(intake: Intake) -> dict:
    if intake.age_band not in AGE_BANDS:
        raise DomainError(_l("Choose the age band (required)."), "age_band")
    kps = list(dict.fromkeys(intake.key_populations or ()))
    if any(k not in KEY_POPULATIONS for k in kps):
        raise DomainError(_l("Unknown key population."), "key_populations")
    if kps and not intake.key_populations_asked:
        raise DomainError(_l("Record key populations only if the person agreed to answer."), "key_populations")
    first_time = _tristate(intake.first_time, "first_time")
    last_test = _choice(intake.last_test, LAST_TEST, "last_test", _l("Unknown answer for the last test."))
    if first_time is True and last_test not in (None, "never"):
        raise DomainError(_l("A first-time tester cannot have a previous test date."), "last_test")
    return dict(
        age_band=intake.age_band,
        gender_identity=_choice(intake.gender_identity, GENDERS, "gender_identity", _l("Unknown gender identity.")),
        sex_at_birth=_choice(intake.sex_at_birth, SEX_AT_BIRTH, "sex_at_birth", _l("Unknown answer.")),
        beneficiary=_choice(intake.beneficiary, BENEFICIARY, "beneficiary", _l("Unknown answer.")),
        first_time=first_time, last_test="never" if first_time else last_test,
        known_hiv_positive=_tristate(intake.known_hiv_positive, "known_hiv_positive"),
        previous_hcv_treatment=_tristate(intake.previous_hcv_treatment, "previous_hcv_treatment"),
        treated_syphilis_before=_tristate(intake.treated_syphilis_before, "treated_syphilis_before"),
        exposure_72h=_tristate(intake.exposure_72h, "exposure_72h"),
        key_populations_asked=bool(intake.key_populations_asked),
        key_populations=kps if intake.key_populations_asked else [],
    )


def register_visit(session, *, booth: Booth, intake: Intake, now: datetime, actor) -> Visit:
    fields = validate_intake(intake)
    day = local_day(booth.event, now)
    ensure_open_day(session, booth.id, day, actor)
    seq = (session.scalar(select(func.max(Visit.seq)).where(Visit.booth_id == booth.id, Visit.day == day)) or 0) + 1
    visit = Visit(event_id=booth.event_id, booth_id=booth.id, day=day, seq=seq, call_number=call_number(seq),
                  arrived_at=now, created_by=actor.code if actor else None, created_at=now, updated_at=now, **fields)
    session.add(visit)
    session.flush()
    audit.record(session, "visit.register", now=now, actor=actor, record_id=visit.id)
    return visit


def update_intake(session, visit: Visit, *, intake: Intake, expected_version: int, now, actor) -> Visit:
    check_version(visit, expected_version)
    ensure_editable(session, visit, actor)
    for k, v in validate_intake(intake).items():
        setattr(visit, k, v)
    touch(visit, now)
    session.flush()
    audit.record(session, "visit.intake", now=now, actor=actor, record_id=visit.id)
    return visit


def touch(visit: Visit, now: datetime) -> None:
    """Any change to a visit or to what hangs from it bumps the visit's version (stale-write check)."""
    from sqlalchemy.orm.attributes import flag_modified

    visit.updated_at = now
    flag_modified(visit, "updated_at")


def check_version(record, expected_version: int | None) -> None:
    if expected_version is not None and int(expected_version) != record.version:
        raise StaleError()


def ensure_editable(session, visit: Visit, actor) -> None:
    if day_locked(session, visit.booth_id, visit.day):
        raise DomainError(_l("This day is closed: only a coordinator can correct it, with a reason."))
    if visit.final_state is not None:
        raise DomainError(_l("This visit is closed."))


# ------------------------------------------------------------------ consent

def active_consent(visit: Visit, disease: str) -> Consent | None:
    return next((c for c in visit.consents if c.disease == disease and c.voided_at is None), None)


def record_consent(session, visit: Visit, *, disease: str, given: bool, settings: ClinicalSettings,
                   language: str, now: datetime, actor) -> Consent:
    ensure_editable(session, visit, actor)
    if settings is None or settings.status != "signed":
        raise DomainError(_l("The clinical settings are not signed off yet: ask the clinical lead."))
    if disease not in settings.diseases:
        raise DomainError(_l("This booth does not offer this test."), "disease")
    if language not in ("es", "en"):
        raise DomainError(_l("Unknown language."), "language")
    if active_consent(visit, disease) is not None:
        raise DomainError(_l("Consent for this test is already recorded. To change it, correct it."), "disease")
    c = Consent(visit_id=visit.id, disease=disease, given=bool(given), settings_id=settings.id,
                text_version=settings.number, language=language, recorded_at=now,
                recorded_by=actor.code if actor else None, created_at=now, updated_at=now)
    visit.consents.append(c)
    touch(visit, now)
    session.flush()
    audit.record(session, "consent.refuse" if not given else "consent.give", now=now, actor=actor, record_id=c.id)
    return c


# ------------------------------------------------------------------ corrections

def may_correct(session, *, author: str | None, recorded_at: datetime, visit: Visit, actor, now: datetime,
                reason: str) -> None:
    if reason not in CORRECTION_REASONS:
        raise DomainError(_l("Choose the reason for the correction."), "reason")
    is_coordinator = actor is not None and actor.has_role(Role.COORDINATOR)
    if is_coordinator:
        return
    if day_locked(session, visit.booth_id, visit.day):
        raise DomainError(_l("This day is closed: only a coordinator can correct it, with a reason."))
    if actor is None or actor.code != author or now - recorded_at > AUTHOR_GRACE:
        raise DomainError(_l("Only its author (within 10 minutes) or a coordinator can correct this entry."))


def void(entry, *, reason: str, now, actor) -> None:
    entry.voided_at = now
    entry.void_reason = reason
    entry.voided_by = actor.code if actor else None
    entry.updated_at = now
    entry.version += 1


def correct_consent(session, consent: Consent, *, given: bool | None, reason: str, settings: ClinicalSettings,
                    now, actor) -> Consent | None:
    """Void a consent entry and, unless ``given`` is None (void only), record the corrected one."""
    if consent.voided_at is not None:
        raise DomainError(_l("This entry was already corrected."))
    visit = consent.visit
    may_correct(session, author=consent.recorded_by, recorded_at=consent.recorded_at, visit=visit, actor=actor,
                now=now, reason=reason)
    void(consent, reason=reason, now=now, actor=actor)
    new = None
    if given is not None:
        new = Consent(visit_id=visit.id, disease=consent.disease, given=bool(given), settings_id=consent.settings_id,
                      text_version=consent.text_version, language=consent.language, recorded_at=now,
                      recorded_by=actor.code if actor else None, replaces_id=consent.id, created_at=now,
                      updated_at=now)
        visit.consents.append(new)
    touch(visit, now)
    session.flush()
    audit.record(session, "consent.correct", now=now, actor=actor, record_id=consent.id)
    return new


# ------------------------------------------------------------------ closing a visit

def close_visit(session, visit: Visit, *, final_state: str, now, actor, expected_version: int | None = None) -> Visit:
    check_version(visit, expected_version)
    if final_state not in FINAL_STATES:
        raise DomainError(_l("Choose how the visit ended."), "final_state")
    if visit.final_state is not None:
        raise DomainError(_l("This visit is already closed."))
    if day_locked(session, visit.booth_id, visit.day) and not (actor and actor.has_role(Role.COORDINATOR)):
        raise DomainError(_l("This day is closed: only a coordinator can correct it, with a reason."))
    visit.final_state = final_state
    visit.closed_at = now
    touch(visit, now)
    session.flush()
    audit.record(session, f"visit.{final_state}", now=now, actor=actor, record_id=visit.id)
    return visit


def conclusions(visit: Visit, screenings, settings: ClinicalSettings | None) -> dict[str, algorithm.Derived]:
    """The booth conclusion per offered disease, derived from the current (non-voided) results."""
    offered = settings.diseases if settings else []
    out = {}
    for disease in ("hiv", "hcv", "syphilis"):
        readings = []
        for s in sorted(screenings, key=lambda s: s.started_at):
            for r in s.current_results():
                if r.disease == disease:
                    readings.append(algorithm.Reading(s.product.code, algorithm.Outcome(r.outcome)))
        consent = active_consent(visit, disease)
        if disease not in offered and not readings:
            continue
        out[disease] = algorithm.derive(
            algorithm.Disease(disease), readings,
            algorithm=algorithm.Algorithm(settings.algorithm(disease)) if settings else algorithm.Algorithm.ONE_TEST,
            consented=consent is not None and consent.given, known_positive=bool(visit.known_hiv_positive),
            offered=disease in offered)
    return out
