"""Starting devices, reading them, the timer board (live by polling) and its display mode."""
from __future__ import annotations

import threading

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy.orm.exc import StaleDataError

from booth.auth.access import current_staff, display_required, role_required
from booth.auth.models import Role
from booth.core import idempotency
from booth.errors import DomainError
from booth.db import get_by_id
from booth.extensions import db
from booth.screening import services
from booth.screening.models import Screening, ScreeningResult
from booth.stock.models import KitLot
from booth.visits import queries
from booth.visits.services import StaleError
from booth.visits.views import back_to, fail, get_visit
from booth.workflow import booth_day, form_int, form_version

bp = Blueprint("screening", __name__)
TESTERS = (Role.TESTER, Role.COORDINATOR)
STAFF = (Role.TESTER, Role.COUNSELOR, Role.COORDINATOR)
_start_lock = threading.Lock()


def _get(model, raw):
    row = get_by_id(db.session, model, raw or "")
    return row


def get_screening(screening_id: str) -> Screening:
    s = _get(Screening, screening_id)
    if s is None or s.visit.booth_id != booth_day().booth.id:
        abort(404)
    return s


@bp.post("/visits/<visit_id>/screenings")
@role_required(*TESTERS)
def start(visit_id):
    visit = get_visit(visit_id)
    bd = booth_day()
    nonce = request.form.get("nonce")
    if idempotency.seen(db.session, nonce, "screening.start"):
        return back_to(visit)
    lot = _get(KitLot, request.form.get("lot"))
    product = lot.product if lot is not None else None
    try:
        if product is None or lot is None:
            raise DomainError(_("Choose the product and the lot."))
        # no slot: the first free one; a slot that is not a number is refused like one out of range
        slot = form_int(request.form.get("slot"), 0) if request.form.get("slot") else None
        # a free tray slot is read, then taken: one start at a time in this process, or two tablets starting
        # at the same moment get the same slot (bench/load.py found it with 20 tablets)
        with _start_lock:
            s = services.start(db.session, visit=visit, product=product, lot=lot,
                               sample_type=request.form.get("sample_type", ""), slot=slot, settings=bd.settings,
                               today=bd.today, now=bd.now, actor=current_staff())
            idempotency.remember(db.session, nonce, "screening.start", s.id, bd.now)
            db.session.commit()
    except DomainError as e:
        return fail(visit, e)
    return back_to(visit)


@bp.post("/screenings/<screening_id>/result")
@role_required(*TESTERS)
def result(screening_id):
    s = get_screening(screening_id)
    bd = booth_day()
    diseases = [d for d in s.product.targets if bd.settings and d in services.screening_settings(db.session, s).diseases]
    results = {}
    for d in diseases:
        outcome = (request.form.get(f"outcome_{d}") or request.form.get("outcome")
                   or ("invalid" if request.form.get("reason") else None))
        if outcome:
            results[d] = (outcome, request.form.get(f"reason_{d}") or request.form.get("reason"))
    try:
        services.record_result(db.session, s, results, now=bd.now, actor=current_staff(),
                               expected_version=form_version(request.form.get("version")))
        db.session.commit()
    except DomainError as e:
        return fail(s.visit, e)
    except StaleDataError:
        return fail(s.visit, StaleError())
    if request.form.get("from") == "board":
        return redirect(url_for("screening.board"), code=303)
    return back_to(s.visit)


@bp.post("/screenings/<screening_id>/close-out")
@role_required(*TESTERS)
def close_out(screening_id):
    s = get_screening(screening_id)
    try:
        services.close_out(db.session, s, now=booth_day().now, actor=current_staff(),
                           reason=request.form.get("reason", "procedure_error"))
        db.session.commit()
    except DomainError as e:
        return fail(s.visit, e)
    return back_to(s.visit)


@bp.post("/results/<result_id>/correct")
@role_required(*STAFF)
def correct(result_id):
    r = _get(ScreeningResult, result_id)
    if r is None or r.screening.visit.booth_id != booth_day().booth.id:
        abort(404)
    outcome = request.form.get("outcome") or None
    try:
        services.correct_result(db.session, r, outcome=outcome, invalid_reason=request.form.get("invalid_reason"),
                                reason=request.form.get("reason", ""), now=booth_day().now, actor=current_staff())
        db.session.commit()
    except DomainError as e:
        return fail(r.screening.visit, e)
    return back_to(r.screening.visit)


def _board(template_full: str, template_rows: str, display: bool):
    bd = booth_day()
    rows = queries.timer_board(db.session, bd.booth.id, bd.now)
    template = template_rows if request.headers.get("HX-Request") else template_full
    return render_template(template, rows=rows, bd=bd, display=display)


@bp.get("/board")
@role_required(*STAFF, passive=True)
def board():
    """Every running device of the booth, across tablets. Polled every few seconds (passive: polling
    does not keep a tablet from locking)."""
    return _board("screening/board.html", "screening/_board.html", display=False)


@bp.get("/display/board")
@display_required
def display_board():
    """Read-only tray screen: slot, call number and state only (no results, no products)."""
    return _board("screening/display_board.html", "screening/_display_board.html", display=True)


@bp.get("/display/queue")
@display_required
def display_queue():
    bd = booth_day()
    rows = queries.queue(db.session, bd.booth.id, bd.today, bd.settings, bd.now)
    template = "visits/_display_queue.html" if request.headers.get("HX-Request") else "visits/display_queue.html"
    return render_template(template, rows=rows, bd=bd, display=True)
