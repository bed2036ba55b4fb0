"""Kits and supplies: receive, adjust, quarantine; storage temperature; QC runs; shifts."""
from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from booth.auth.access import current_staff, role_required
from booth.auth.models import Role
from booth.errors import DomainError
from booth.db import get_by_id
from booth.extensions import db
from booth.settings import services as settings_services
from booth.settings.models import KitProduct
from booth.stock import services
from booth.stock.models import SUPPLIES, KitLot, TemperatureLog
from booth.workflow import booth_day, form_int

bp = Blueprint("stock", __name__)
STAFF = (Role.TESTER, Role.COUNSELOR, Role.COORDINATOR)


def render(status=200, error=None, ok=None):
    bd = booth_day()
    lots = db.session.scalars(select(KitLot).order_by(KitLot.expires_on)).all()
    on_hand = services.on_hand_by_lot(db.session)
    temps = db.session.scalars(select(TemperatureLog).where(TemperatureLog.booth_id == bd.booth.id)
                               .order_by(TemperatureLog.at.desc()).limit(5)).all()
    products = settings_services.catalogue(db.session)
    return render_template("stock/index.html", bd=bd, lots=lots, on_hand=on_hand, temps=temps, products=products,
                           supplies={i: services.supply_on_hand(db.session, bd.booth.id, i) for i in SUPPLIES},
                           warnings=services.warnings(db.session, booth_id=bd.booth.id, today=bd.today, now=bd.now),
                           storage=services.storage_range(db.session), error=error, ok=ok,
                           shift=services.current_shift(db.session, current_staff().id)), status


def done():
    return redirect(url_for("stock.index"), code=303)


def attempt(fn):
    try:
        fn()
        db.session.commit()
    except DomainError as e:
        db.session.rollback()
        return render(422, str(e.message))
    return done()


def get_lot(lot_id) -> KitLot:
    lot = get_by_id(db.session, KitLot, lot_id)
    if lot is None:
        abort(404)
    return lot


@bp.get("/stock")
@role_required(*STAFF)
def index():
    return render()


@bp.post("/stock/lots")
@role_required(Role.COORDINATOR)
def receive():
    bd = booth_day()
    f = request.form
    product = get_by_id(db.session, KitProduct, f.get("product", ""))
    try:
        expires = date.fromisoformat(f.get("expires_on", ""))
    except ValueError:
        expires = None

    def go():
        if product is None:
            raise DomainError(_("Choose the product."))
        if expires is None:
            raise DomainError(_("Type the expiry date printed on the box."))
        services.receive_lot(db.session, booth_id=bd.booth.id, product=product, lot_number=f.get("lot_number", ""),
                             expires_on=expires, quantity=form_int(f.get("quantity"), -1), today=bd.today, now=bd.now,
                             actor=current_staff())
    return attempt(go)


@bp.post("/stock/lots/<lot_id>/adjust")
@role_required(Role.COORDINATOR)
def adjust(lot_id):
    lot = get_lot(lot_id)
    bd = booth_day()
    return attempt(lambda: services.adjust_lot(db.session, booth_id=bd.booth.id, lot=lot,
                                               delta=form_int(request.form.get("delta"), 0),
                                               reason=request.form.get("reason", ""), now=bd.now,
                                               actor=current_staff()))


@bp.post("/stock/lots/<lot_id>/quarantine")
@role_required(Role.COORDINATOR)
def quarantine(lot_id):
    lot = get_lot(lot_id)
    return attempt(lambda: services.quarantine(db.session, lot, reason=request.form.get("reason", ""),
                                               now=booth_day().now, actor=current_staff()))


@bp.post("/stock/lots/<lot_id>/release")
@role_required(Role.COORDINATOR)
def release(lot_id):
    lot = get_lot(lot_id)
    return attempt(lambda: services.release(db.session, lot, now=booth_day().now, actor=current_staff()))


@bp.post("/stock/lots/<lot_id>/qc")
@role_required(Role.TESTER, Role.COORDINATOR)
def qc(lot_id):
    lot = get_lot(lot_id)
    bd = booth_day()
    if request.form.get("positive") not in ("ok", "fail") or request.form.get("negative") not in ("ok", "fail"):
        return render(422, _("Say how each control line came out (as expected or failed)."))
    return attempt(lambda: services.record_qc(db.session, lot=lot, day=bd.today,
                                              positive_ok=request.form.get("positive") == "ok",
                                              negative_ok=request.form.get("negative") == "ok", now=bd.now,
                                              actor=current_staff()))


@bp.post("/stock/supplies")
@role_required(Role.COORDINATOR)
def receive_supply():
    bd = booth_day()
    return attempt(lambda: services.receive_supply(db.session, booth_id=bd.booth.id, item=request.form.get("item", ""),
                                                   quantity=form_int(request.form.get("quantity"), -1), now=bd.now,
                                                   actor=current_staff()))


@bp.post("/stock/supplies/adjust")
@role_required(Role.COORDINATOR)
def adjust_supply():
    bd = booth_day()
    return attempt(lambda: services.adjust_supply(db.session, booth_id=bd.booth.id, item=request.form.get("item", ""),
                                                  delta=form_int(request.form.get("delta"), 0),
                                                  reason=request.form.get("reason", ""), now=bd.now,
                                                  actor=current_staff()))


@bp.post("/stock/temperature")
@role_required(*STAFF)
def temperature():
    bd = booth_day()
    raw = (request.form.get("celsius") or "").replace(",", ".")
    try:
        value = float(raw)
    except ValueError:
        value = None
    return attempt(lambda: services.log_temperature(db.session, booth_id=bd.booth.id,
                                                    celsius=value if value is not None else float("nan"),
                                                    now=bd.now, actor=current_staff()))


@bp.post("/shift")
@role_required(*STAFF)
def shift():
    """One tap: sign on if off, sign off if on."""
    bd = booth_day()
    staff = current_staff()

    def go():
        if services.current_shift(db.session, staff.id) is None:
            services.sign_on(db.session, booth_id=bd.booth.id, staff=staff, now=bd.now)
        else:
            services.sign_off(db.session, staff=staff, now=bd.now)
    try:
        go()
        db.session.commit()
    except DomainError as e:
        db.session.rollback()
        return render(422, str(e.message))
    from booth.auth.access import safe_next
    return redirect(safe_next(request.form.get("next")) or url_for("core.home"), code=303)

