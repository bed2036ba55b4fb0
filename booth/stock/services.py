"""Stock: lots received, devices used (valid or not), supplies handed out, adjustments with a reason.

Stock on hand is the sum of movements; no movement may take it below zero. An expired or quarantined
lot cannot be chosen; the suggested lot is the usable one that expires first.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from booth.audit import services as audit
from booth.errors import DomainError
from booth.settings.models import KitProduct
from booth.stock.models import SUPPLIES, KitLot, QcRun, Shift, StockMovement, TemperatureLog

LOT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9./-]{0,39}$")
ADJUSTMENT_REASONS = ("damaged", "lost", "count_correction", "returned", "transfer", "other")
QUARANTINE_REASONS = ("temperature", "qc_failed", "damaged_packaging", "recall")
LOW_STOCK = 20
NEAR_EXPIRY_DAYS = 30
TEMPERATURE_EVERY = timedelta(hours=3)


def _code(actor):
    return actor.code if actor is not None else None


def lot_on_hand(session, lot_id) -> int:
    return int(session.scalar(select(func.coalesce(func.sum(StockMovement.quantity), 0))
                              .where(StockMovement.lot_id == lot_id)))


def supply_on_hand(session, booth_id, item: str) -> int:
    return int(session.scalar(select(func.coalesce(func.sum(StockMovement.quantity), 0))
                              .where(StockMovement.booth_id == booth_id, StockMovement.item == item,
                                     StockMovement.lot_id.is_(None))))


def supplies_on_hand(session, booth_id) -> dict[str, int]:
    """``supply_on_hand`` of every supply, in one query."""
    rows = dict(session.execute(select(StockMovement.item, func.sum(StockMovement.quantity))
                                .where(StockMovement.booth_id == booth_id, StockMovement.item.in_(SUPPLIES),
                                       StockMovement.lot_id.is_(None)).group_by(StockMovement.item)).all())
    return {item: int(rows.get(item) or 0) for item in SUPPLIES}


def on_hand_by_lot(session) -> dict:
    rows = session.execute(select(StockMovement.lot_id, func.sum(StockMovement.quantity))
                           .where(StockMovement.lot_id.is_not(None)).group_by(StockMovement.lot_id))
    return {lot_id: int(q) for lot_id, q in rows}


def _move(session, *, booth_id, item, quantity, kind, now, actor, lot_id=None, reason=None, visit_id=None,
          screening_id=None) -> StockMovement:
    m = StockMovement(booth_id=booth_id, item=item, lot_id=lot_id, quantity=quantity, kind=kind, reason=reason,
                      visit_id=visit_id, screening_id=screening_id, staff_code=_code(actor), at=now,
                      created_at=now, updated_at=now)
    session.add(m)
    session.flush()
    return m


def receive_lot(session, *, booth_id, product: KitProduct, lot_number: str, expires_on: date, quantity: int,
                today: date, now: datetime, actor) -> KitLot:
    lot_number = (lot_number or "").strip()
    if not LOT_RE.match(lot_number):
        raise DomainError(_l("Type the lot number as printed on the box (letters, digits, . / -)."), "lot_number")
    if not isinstance(quantity, int) or not 1 <= quantity <= 10000:
        raise DomainError(_l("The quantity must be between 1 and 10,000."), "quantity")
    if expires_on < today:
        raise DomainError(_l("This lot has already expired: it cannot be received."), "expires_on")
    lot = session.scalar(select(KitLot).where(KitLot.product_id == product.id, KitLot.lot_number == lot_number))
    if lot is not None and lot.expires_on != expires_on:
        raise DomainError(_l("Lot %(lot)s is already registered with another expiry date (%(date)s).",
                             lot=lot_number, date=lot.expires_on.isoformat()), "expires_on")
    if lot is None:
        lot = KitLot(product_id=product.id, lot_number=lot_number, expires_on=expires_on, created_at=now,
                     updated_at=now)
        session.add(lot)
        session.flush()
    _move(session, booth_id=booth_id, item="kit", lot_id=lot.id, quantity=quantity, kind="received", now=now,
          actor=actor)
    audit.record(session, "stock.receive", now=now, actor=actor, record_id=lot.id)
    return lot


def usable_lots(session, product: KitProduct, today: date, on_hand: dict | None = None) -> list[KitLot]:
    """Lots that may be chosen, the one expiring first first. ``on_hand`` (from ``on_hand_by_lot``) can be
    passed in when several products are looked at in one request."""
    return usable_lots_by_product(session, [product.id], today, on_hand).get(product.id, [])


def usable_lots_by_product(session, product_ids, today: date, on_hand: dict | None = None) -> dict:
    """``usable_lots`` of several products in one query: product id → lots, the one expiring first first."""
    lots = session.scalars(select(KitLot).where(KitLot.product_id.in_(list(product_ids)),
                                                KitLot.quarantined_at.is_(None), KitLot.expires_on >= today)
                           .order_by(KitLot.expires_on, KitLot.created_at)).all()
    stock = on_hand if on_hand is not None else on_hand_by_lot(session)
    found: dict = {}
    for lot in lots:
        if stock.get(lot.id, 0) > 0:
            found.setdefault(lot.product_id, []).append(lot)
    return found


def suggested_lot(session, product: KitProduct, today: date) -> KitLot | None:
    lots = usable_lots(session, product, today)
    return lots[0] if lots else None


def check_usable(session, lot: KitLot, today: date) -> None:
    if lot.expired(today):
        raise DomainError(_l("Lot %(lot)s expired on %(date)s and cannot be used.", lot=lot.lot_number,
                             date=lot.expires_on.isoformat()), "lot")
    if lot.quarantined_at is not None:
        raise DomainError(_l("Lot %(lot)s is in quarantine and cannot be used.", lot=lot.lot_number), "lot")
    if lot_on_hand(session, lot.id) <= 0:
        raise DomainError(_l("There are no devices left of lot %(lot)s.", lot=lot.lot_number), "lot")


def use_device(session, *, booth_id, lot: KitLot, now, actor, visit_id, screening_id) -> StockMovement:
    return _move(session, booth_id=booth_id, item="kit", lot_id=lot.id, quantity=-1, kind="used", now=now,
                 actor=actor, visit_id=visit_id, screening_id=screening_id)


def adjust_lot(session, *, booth_id, lot: KitLot, delta: int, reason: str, now, actor, kind="adjustment"):
    if reason not in ADJUSTMENT_REASONS:
        raise DomainError(_l("Choose a reason for the adjustment."), "reason")
    if not isinstance(delta, int) or delta == 0 or abs(delta) > 10000:
        raise DomainError(_l("The adjustment must be a whole number other than zero."), "quantity")
    if lot_on_hand(session, lot.id) + delta < 0:
        raise DomainError(_l("Stock cannot go below zero (on hand: %(n)s).", n=lot_on_hand(session, lot.id)),
                          "quantity")
    m = _move(session, booth_id=booth_id, item="kit", lot_id=lot.id, quantity=delta, kind=kind, reason=reason,
              now=now, actor=actor)
    audit.record(session, "stock.adjust", now=now, actor=actor, record_id=m.id)
    return m


def receive_supply(session, *, booth_id, item: str, quantity: int, now, actor) -> StockMovement:
    if item not in SUPPLIES:
        raise DomainError(_l("Unknown supply."), "item")
    if not isinstance(quantity, int) or not 1 <= quantity <= 100000:
        raise DomainError(_l("The quantity must be between 1 and 100,000."), "quantity")
    m = _move(session, booth_id=booth_id, item=item, quantity=quantity, kind="received", now=now, actor=actor)
    audit.record(session, "stock.receive_supply", now=now, actor=actor, record_id=m.id)
    return m


def adjust_supply(session, *, booth_id, item: str, delta: int, reason: str, now, actor) -> StockMovement:
    if item not in SUPPLIES:
        raise DomainError(_l("Unknown supply."), "item")
    if reason not in ADJUSTMENT_REASONS:
        raise DomainError(_l("Choose a reason for the adjustment."), "reason")
    if not isinstance(delta, int) or delta == 0 or abs(delta) > 100000:
        raise DomainError(_l("The adjustment must be a whole number other than zero."), "quantity")
    if supply_on_hand(session, booth_id, item) + delta < 0:
        raise DomainError(_l("Stock cannot go below zero (on hand: %(n)s).",
                             n=supply_on_hand(session, booth_id, item)), "quantity")
    m = _move(session, booth_id=booth_id, item=item, quantity=delta, kind="adjustment", reason=reason, now=now,
              actor=actor)
    audit.record(session, "stock.adjust", now=now, actor=actor, record_id=m.id)
    return m


def hand_out(session, *, booth_id, visit_id, supplies: dict[str, int], now, actor) -> list[StockMovement]:
    moves = []
    for item, qty in supplies.items():
        if not qty:
            continue
        if item not in SUPPLIES:
            raise DomainError(_l("Unknown supply."), "supplies")
        if not isinstance(qty, int) or qty < 0 or qty > 100:
            raise DomainError(_l("Hand out between 0 and 100 of each supply."), "supplies")
        have = supply_on_hand(session, booth_id, item)
        if qty > have:
            raise DomainError(_l("Not enough %(item)s in stock (on hand: %(n)s).", item=supply_label(item), n=have),
                              "supplies")
        moves.append(_move(session, booth_id=booth_id, item=item, quantity=-qty, kind="handed_out", now=now,
                           actor=actor, visit_id=visit_id))
    return moves


def supply_label(item: str) -> str:
    return str({"condom": _l("condoms"), "lubricant": _l("lubricant"), "self_test": _l("self-test kits")}[item])


def quarantine(session, lot: KitLot, *, reason: str, now, actor) -> None:
    if reason not in QUARANTINE_REASONS:
        raise DomainError(_l("Choose a reason for the quarantine."), "reason")
    if lot.quarantined_at is not None:
        raise DomainError(_l("This lot is already in quarantine."))
    lot.quarantined_at, lot.quarantine_reason = now, reason
    lot.updated_at = now
    lot.version += 1
    session.flush()
    audit.record(session, "stock.quarantine", now=now, actor=actor, record_id=lot.id)


def release(session, lot: KitLot, *, now, actor) -> None:
    if lot.quarantined_at is None:
        raise DomainError(_l("This lot is not in quarantine."))
    lot.quarantined_at, lot.quarantine_reason = None, None
    lot.updated_at = now
    lot.version += 1
    session.flush()
    audit.record(session, "stock.release", now=now, actor=actor, record_id=lot.id)


def storage_range(session) -> tuple[int, int]:
    """The range every product in stock tolerates (the tightest of their ranges)."""
    stock = on_hand_by_lot(session)
    lots = [lot for lot in session.scalars(select(KitLot).options(selectinload(KitLot.product)))
            if stock.get(lot.id, 0) > 0]
    products = {lot.product for lot in lots} or set(session.scalars(select(KitProduct)))
    if not products:
        return 2, 30
    return max(p.temp_min_c for p in products), min(p.temp_max_c for p in products)


def log_temperature(session, *, booth_id, celsius: float, now, actor) -> TemperatureLog:
    if not isinstance(celsius, (int, float)) or not -30 <= celsius <= 60:
        raise DomainError(_l("Type the temperature in °C (between -30 and 60)."), "celsius")
    low, high = storage_range(session)
    log = TemperatureLog(booth_id=booth_id, celsius=float(celsius), out_of_range=not low <= celsius <= high,
                         staff_code=_code(actor), at=now, created_at=now, updated_at=now)
    session.add(log)
    session.flush()
    audit.record(session, "stock.temperature", now=now, actor=actor, record_id=log.id)
    return log


def record_qc(session, *, lot: KitLot, day: date, positive_ok: bool, negative_ok: bool, now, actor) -> QcRun:
    run = QcRun(lot_id=lot.id, day=day, positive_ok=bool(positive_ok), negative_ok=bool(negative_ok),
                staff_code=_code(actor), at=now, created_at=now, updated_at=now)
    session.add(run)
    session.flush()
    audit.record(session, "stock.qc", now=now, actor=actor, record_id=run.id)
    return run


@dataclass
class Warning:
    kind: str      # low_stock | near_expiry | quarantined | temperature | temperature_due | qc_failed
    message: str


def warnings(session, *, booth_id, today: date, now: datetime) -> list[Warning]:
    out: list[Warning] = []
    stock = on_hand_by_lot(session)
    for lot in session.scalars(select(KitLot).options(selectinload(KitLot.product)).order_by(KitLot.expires_on)):
        qty = stock.get(lot.id, 0)
        name = f"{lot.product.name} · {lot.lot_number}"
        if lot.quarantined_at is not None:
            out.append(Warning("quarantined", str(_l("%(lot)s is in quarantine.", lot=name))))
            continue
        if qty <= 0:
            continue
        if lot.expires_on < today:
            out.append(Warning("near_expiry", str(_l("%(lot)s has expired: remove it.", lot=name))))
        elif (lot.expires_on - today).days <= NEAR_EXPIRY_DAYS:
            out.append(Warning("near_expiry", str(_l("%(lot)s expires in %(days)s days.", lot=name,
                                                     days=(lot.expires_on - today).days))))
        if qty < LOW_STOCK:
            out.append(Warning("low_stock", str(_l("%(lot)s: only %(n)s left.", lot=name, n=qty))))
    last = session.scalar(select(TemperatureLog).where(TemperatureLog.booth_id == booth_id)
                          .order_by(TemperatureLog.at.desc()).limit(1))
    if last is None or now - last.at > TEMPERATURE_EVERY:
        out.append(Warning("temperature_due", str(_l("Log the storage temperature (every 3 hours)."))))
    elif last.out_of_range:
        out.append(Warning("temperature", str(_l("The last storage temperature (%(t)s °C) is out of range: "
                                                 "consider quarantining the lots.", t=last.celsius))))
    for run in session.scalars(select(QcRun).where(QcRun.day == today)):
        if not (run.positive_ok and run.negative_ok):
            out.append(Warning("qc_failed", str(_l("A quality-control run failed today: quarantine that lot."))))
    return out


# ------------------------------------------------------------------ shifts

def current_shift(session, staff_id) -> Shift | None:
    return session.scalar(select(Shift).where(Shift.staff_id == staff_id, Shift.ended_at.is_(None)))


def sign_on(session, *, booth_id, staff, now) -> Shift:
    if current_shift(session, staff.id) is not None:
        raise DomainError(_l("You are already signed on."))
    s = Shift(booth_id=booth_id, staff_id=staff.id, started_at=now, created_at=now, updated_at=now)
    session.add(s)
    session.flush()
    audit.record(session, "shift.on", now=now, actor=staff, record_id=s.id)
    return s


def sign_off(session, *, staff, now) -> Shift:
    s = current_shift(session, staff.id)
    if s is None:
        raise DomainError(_l("You are not signed on."))
    s.ended_at = now
    s.updated_at = now
    s.version += 1
    session.flush()
    audit.record(session, "shift.off", now=now, actor=staff, record_id=s.id)
    return s
