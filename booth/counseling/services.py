"""Counseling: pre-test and post-test, minutes from the start/finish taps or a preset, never typed;
topics as a checklist; supplies handed out; PrEP interest and PEP need. Plus the short script the
counselor reads for the visit's conclusion."""
from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from booth.audit import services as audit
from booth.counseling.models import TOPICS, Counseling
from booth.errors import DomainError
from booth.screening.algorithm import Conclusion
from booth.stock import services as stock
from booth.visits import services as visits
from booth.visits.models import Visit

PRESET_MINUTES = (5, 10, 15, 20, 30)


def for_visit(session, visit_id) -> list[Counseling]:
    return session.scalars(select(Counseling).where(Counseling.visit_id == visit_id)
                           .order_by(Counseling.recorded_at)).all()


def active(session, visit_id, kind: str) -> Counseling | None:
    return next((c for c in for_visit(session, visit_id) if c.kind == kind and c.voided_at is None), None)


def start(session, visit: Visit, *, kind: str, now: datetime, actor) -> Counseling:
    """The start tap: the minutes are measured until the finish tap."""
    visits.ensure_editable(session, visit, actor)
    if kind not in ("pre", "post"):
        raise DomainError(_l("Unknown kind of counseling."), "kind")
    current = active(session, visit.id, kind)
    if current is not None:
        if current.finished_at is None:
            return current
        raise DomainError(_l("This counseling is already recorded. To change it, correct it."))
    c = Counseling(visit_id=visit.id, kind=kind, started_at=now, counselor_code=actor.code if actor else None,
                   recorded_at=now, topics=[], created_at=now, updated_at=now)
    session.add(c)
    session.flush()
    audit.record(session, f"counseling.{kind}.start", now=now, actor=actor, record_id=c.id)
    return c


def finish(session, visit: Visit, *, kind: str, now: datetime, actor, topics=(), result_given=None,
           prep_interest=None, pep_need=None, preset_minutes: int | None = None,
           supplies: dict[str, int] | None = None) -> Counseling:
    """Record the counseling as given. Without a start tap, a preset number of minutes is required."""
    visits.ensure_editable(session, visit, actor)
    if kind not in ("pre", "post"):
        raise DomainError(_l("Unknown kind of counseling."), "kind")
    topics = list(dict.fromkeys(topics or ()))
    if any(t not in TOPICS for t in topics):
        raise DomainError(_l("Unknown counseling topic."), "topics")
    c = active(session, visit.id, kind)
    if c is not None and c.finished_at is not None:
        raise DomainError(_l("This counseling is already recorded. To change it, correct it."))
    if c is None:
        if preset_minutes not in PRESET_MINUTES:
            raise DomainError(_l("Tap “start” when the counseling begins, or choose how many minutes it took."),
                              "minutes")
        c = Counseling(visit_id=visit.id, kind=kind, started_at=None, counselor_code=actor.code if actor else None,
                       recorded_at=now, created_at=now, updated_at=now)
        session.add(c)
        minutes = preset_minutes
    else:
        minutes = max(1, round((now - c.started_at).total_seconds() / 60))
        if preset_minutes in PRESET_MINUTES:
            minutes = preset_minutes
    if kind == "post" and result_given is None:
        raise DomainError(_l("Say whether the person received the result."), "result_given")
    c.finished_at = now
    c.minutes = minutes
    c.topics = topics
    c.result_given = bool(result_given) if kind == "post" else None
    c.prep_interest = prep_interest
    c.pep_need = pep_need
    c.updated_at = now
    session.flush()
    if supplies:
        stock.hand_out(session, booth_id=visit.booth_id, visit_id=visit.id, supplies=supplies, now=now, actor=actor)
    visits.touch(visit, now)
    audit.record(session, f"counseling.{kind}", now=now, actor=actor, record_id=c.id)
    return c


def correct(session, c: Counseling, *, reason: str, now: datetime, actor) -> None:
    """Void a counseling entry recorded by mistake (it stays in history); record it again if needed."""
    if c.voided_at is not None:
        raise DomainError(_l("This entry was already corrected."))
    visit = session.get(Visit, c.visit_id)
    visits.may_correct(session, author=c.counselor_code, recorded_at=c.recorded_at, visit=visit, actor=actor,
                       now=now, reason=reason)
    visits.void(c, reason=reason, now=now, actor=actor)
    visits.touch(visit, now)
    session.flush()
    audit.record(session, "counseling.correct", now=now, actor=actor, record_id=c.id)


def script(disease: str, conclusion: Conclusion) -> str:
    """A short plain-words script for the counselor. Reactive is never called positive."""
    hcv = disease == "hcv"
    syph = disease == "syphilis"
    if conclusion is Conclusion.NON_REACTIVE:
        if hcv:
            return str(_l("Hepatitis C: the test did not find antibodies. If you had a risk in the last months, "
                          "test again later. Let's talk about how to keep protected."))
        if syph:
            return str(_l("Syphilis: the test was non-reactive. Condoms lower the risk; test again if you have "
                          "symptoms or a new risk."))
        return str(_l("HIV: the test was non-reactive. A very recent exposure may not show yet (window period). "
                      "Let's talk about PrEP, condoms and when to test again."))
    if conclusion is Conclusion.REACTIVE_NEEDS_CONFIRMATION:
        if hcv:
            return str(_l("Hepatitis C: the test was reactive. This means you had contact with the virus at some "
                          "time; it does not say whether it is still there. You need a viral-load test. We will "
                          "refer you today; treatment is free and cures it."))
        if syph:
            return str(_l("Syphilis: the test was reactive. It can be an old, treated infection or a current one. "
                          "You need another blood test and a clinical check; treatment is simple and free."))
        return str(_l("HIV: the rapid test was reactive. This is not a diagnosis: it needs a confirmatory test. "
                      "We will refer you today, and care and treatment are free."))
    if conclusion is Conclusion.DISCORDANT_NEEDS_LAB:
        return str(_l("The two rapid tests did not agree. This happens; a laboratory test will give the answer. "
                      "We will refer you today."))
    if conclusion is Conclusion.INVALID_UNRESOLVED:
        return str(_l("The test could not be read correctly. We can repeat it with a new device, or refer you "
                      "to another service."))
    if conclusion is Conclusion.KNOWN_POSITIVE_NOT_TESTED:
        return str(_l("You already know your HIV status. Let's check that you are in care and have your treatment."))
    return str(_l("No test was done. You can still receive counseling, condoms and information."))
