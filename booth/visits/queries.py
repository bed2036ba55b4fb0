"""Reads for the queue, the visit card and the timer board."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from booth.counseling.models import Counseling
from booth.screening import algorithm
from booth.screening.models import Screening
from booth.screening.windows import ReadWindow, TimerState
from booth.settings.models import ClinicalSettings, KitProduct
from booth.visits import services
from booth.visits.models import Visit

STATES = ("waiting", "testing", "ready_to_read", "counseling", "referral_pending", "done", "left_before_result",
          "left_before_test")
REFERRAL_CONCLUSIONS = (algorithm.Conclusion.REACTIVE_NEEDS_CONFIRMATION, algorithm.Conclusion.DISCORDANT_NEEDS_LAB)


@dataclass
class VisitView:
    visit: Visit
    screenings: list[Screening]
    counseling: list[Counseling]
    conclusions: dict[str, algorithm.Derived]
    state: str
    running: list[Screening] = field(default_factory=list)

    @property
    def post_counseling(self):
        return next((c for c in self.counseling if c.kind == "post" and c.voided_at is None), None)

    @property
    def pre_counseling(self):
        return next((c for c in self.counseling if c.kind == "pre" and c.voided_at is None), None)

    @property
    def needs_referral(self) -> bool:
        pep = any(c.pep_need for c in self.counseling if c.voided_at is None)
        return pep or any(d.conclusion in REFERRAL_CONCLUSIONS for d in self.conclusions.values())


def referred_visit_ids(session, visit_ids) -> set:
    from booth.referrals.models import Referral

    if not visit_ids:
        return set()
    return set(session.scalars(select(Referral.visit_id).where(Referral.visit_id.in_(list(visit_ids)),
                                                               Referral.status == "issued")))


def derive_state(visit: Visit, screenings, counseling, conclusions, now: datetime, referred: bool = False) -> str:
    if visit.final_state:
        return visit.final_state
    running = [s for s in screenings if s.state == "running"]
    if any(s.read_window().state(s.started_at, now) is not TimerState.DEVELOPING for s in running):
        return "ready_to_read"
    if running:
        return "testing"
    live_consents = [c for c in visit.consents if c.voided_at is None]
    if not live_consents and not screenings:
        return "waiting"
    if any(d.next_step is not None and (d.next_step is not algorithm.NextStep.FIRST_TEST or
                                        services.active_consent(visit, disease) is not None and
                                        services.active_consent(visit, disease).given)
           for disease, d in conclusions.items()):
        return "testing"
    post = next((c for c in counseling if c.kind == "post" and c.voided_at is None and c.finished_at), None)
    if post is None:
        return "counseling"
    pep = any(c.pep_need for c in counseling if c.voided_at is None)
    if (pep or any(d.conclusion in REFERRAL_CONCLUSIONS for d in conclusions.values())) and not referred:
        return "referral_pending"
    return "done"


def visit_view(session, visit: Visit, settings: ClinicalSettings | None, now: datetime) -> VisitView:
    screenings = session.scalars(select(Screening).where(Screening.visit_id == visit.id)
                                 .options(selectinload(Screening.results), selectinload(Screening.product),
                                          selectinload(Screening.lot))
                                 .order_by(Screening.started_at)).all()
    counseling = session.scalars(select(Counseling).where(Counseling.visit_id == visit.id)
                                 .order_by(Counseling.recorded_at)).all()
    concl = services.conclusions(visit, screenings, settings)
    state = derive_state(visit, screenings, counseling, concl, now, visit.id in referred_visit_ids(session, [visit.id]))
    return VisitView(visit, screenings, counseling, concl, state, [s for s in screenings if s.state == "running"])


def queue(session, booth_id, day: date, settings, now: datetime, include_closed: bool = False) -> list[VisitView]:
    q = select(Visit).where(Visit.booth_id == booth_id, Visit.day == day).options(selectinload(Visit.consents))
    if not include_closed:
        q = q.where(Visit.final_state.is_(None))
    visits = session.scalars(q.order_by(Visit.seq)).all()
    if not visits:
        return []
    ids = [v.id for v in visits]
    screenings = session.scalars(select(Screening).where(Screening.visit_id.in_(ids))
                                 .options(selectinload(Screening.results), selectinload(Screening.product))
                                 .order_by(Screening.started_at)).all()
    counseling = session.scalars(select(Counseling).where(Counseling.visit_id.in_(ids))).all()
    by_visit_s: dict = {}
    for s in screenings:
        by_visit_s.setdefault(s.visit_id, []).append(s)
    by_visit_c: dict = {}
    for c in counseling:
        by_visit_c.setdefault(c.visit_id, []).append(c)
    out = []
    referred = referred_visit_ids(session, ids)
    for v in visits:
        ss, cc = by_visit_s.get(v.id, []), by_visit_c.get(v.id, [])
        concl = services.conclusions(v, ss, settings)
        out.append(VisitView(v, ss, cc, concl, derive_state(v, ss, cc, concl, now, v.id in referred),
                             [s for s in ss if s.state == "running"]))
    return out


def timer_board(session, booth_id, now: datetime) -> list[dict]:
    """The booth's running devices by tray slot. ``screening`` is the device's row (``id``, ``visit_id`` …),
    read as plain columns: the board is polled every 5 s by every tablet and holds up to a full tray."""
    rows = session.execute(select(Screening.id, Screening.visit_id, Screening.slot, Screening.started_at,
                                  Screening.read_from_s, Screening.read_until_s, Visit.call_number, KitProduct.name)
                           .join(Visit, Visit.id == Screening.visit_id)
                           .join(KitProduct, KitProduct.id == Screening.product_id)
                           .where(Visit.booth_id == booth_id, Screening.state == "running")
                           .order_by(Screening.slot)).all()
    out = []
    for s in rows:
        w = ReadWindow(timedelta(seconds=s.read_from_s), timedelta(seconds=s.read_until_s))  # Screening.read_window
        opens, closes = w.opens_at(s.started_at), w.closes_at(s.started_at)
        out.append({"screening": s, "slot": s.slot, "call_number": s.call_number, "product": s.name,
                    "state": w.state(s.started_at, now).value, "opens_at": opens, "closes_at": closes,
                    "to_open_s": int((opens - now).total_seconds()), "to_close_s": int((closes - now).total_seconds())})
    return out
