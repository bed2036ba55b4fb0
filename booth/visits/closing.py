"""Close of day: every open visit gets a final state, running devices are closed out, the physical
kit count per lot is compared with the expected stock (a difference needs a reason), then the day is
locked."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from booth.audit import services as audit
from booth.auth.models import Role
from booth.errors import DomainError
from booth.screening import services as screening
from booth.screening.models import Screening
from booth.stock import services as stock
from booth.stock.models import KitLot, StockMovement
from booth.visits import services as visits
from booth.visits.models import FINAL_STATES, DayClosure, Visit


@dataclass
class LotCount:
    lot: KitLot
    expected: int


def lots_to_count(session, booth_id) -> list[LotCount]:
    stock_by_lot = stock.on_hand_by_lot(session)
    lot_ids = set(session.scalars(select(StockMovement.lot_id).where(StockMovement.booth_id == booth_id,
                                                                     StockMovement.lot_id.is_not(None))))
    lots = session.scalars(select(KitLot).where(KitLot.id.in_(lot_ids)).order_by(KitLot.expires_on)).all() \
        if lot_ids else []
    return [LotCount(lot, stock_by_lot.get(lot.id, 0)) for lot in lots]


def open_visits(session, booth_id, day: date) -> list[Visit]:
    return session.scalars(select(Visit).where(Visit.booth_id == booth_id, Visit.day == day,
                                               Visit.final_state.is_(None)).order_by(Visit.seq)).all()


def close_day(session, *, booth, day: date, final_states: dict, kit_counts: dict, now: datetime,
              actor) -> DayClosure:
    """``final_states``: visit id (str) → final state; ``kit_counts``: lot id (str) → (counted, reason)."""
    if actor is None or not actor.has_role(Role.COORDINATOR):
        raise DomainError(_l("Only a coordinator can close the day."))
    if visits.day_locked(session, booth.id, day):
        raise DomainError(_l("This day is already closed."))
    pending = open_visits(session, booth.id, day)
    missing = [v.call_number for v in pending if final_states.get(str(v.id)) not in FINAL_STATES]
    if missing:
        raise DomainError(_l("Choose how these visits ended: %(visits)s.", visits=", ".join(missing)), "final_states")
    counts = {}
    for lc in lots_to_count(session, booth.id):
        entry = kit_counts.get(str(lc.lot.id))
        counted, reason = (entry if entry is not None else (None, None))
        if not isinstance(counted, int) or counted < 0:
            raise DomainError(_l("Type the number of devices counted for lot %(lot)s.", lot=lc.lot.lot_number),
                              "kit_counts")
        if counted != lc.expected and reason not in stock.ADJUSTMENT_REASONS:
            raise DomainError(_l("Lot %(lot)s: counted %(counted)s, expected %(expected)s. Choose a reason for "
                                 "the difference.", lot=lc.lot.lot_number, counted=counted, expected=lc.expected),
                              "kit_counts")
        counts[str(lc.lot.id)] = {"expected": lc.expected, "counted": counted,
                                  "reason": reason if counted != lc.expected else None}
    # All checks passed: now write.
    for s in session.scalars(select(Screening).join(Visit).where(Visit.booth_id == booth.id, Visit.day == day,
                                                                Screening.state == "running")):
        late = s.read_window().is_late(s.started_at, now)
        screening.close_out(session, s, now=now, actor=actor, reason="read_too_late" if late else "procedure_error")
    for v in pending:
        visits.close_visit(session, v, final_state=final_states[str(v.id)], now=now, actor=actor)
    for lc in lots_to_count(session, booth.id):
        c = counts[str(lc.lot.id)]
        if c["counted"] != lc.expected:
            stock.adjust_lot(session, booth_id=booth.id, lot=lc.lot, delta=c["counted"] - lc.expected,
                             reason=c["reason"], now=now, actor=actor, kind="count")
    closure = DayClosure(booth_id=booth.id, day=day, closed_at=now, closed_by=actor.code, kit_counts=counts,
                         created_at=now, updated_at=now)
    session.add(closure)
    session.flush()
    audit.record(session, "day.close", now=now, actor=actor, record_id=closure.id)
    return closure
