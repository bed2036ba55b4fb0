"""Pre-test and post-test counseling on the visit card."""
from __future__ import annotations


from flask import Blueprint, abort, request
from flask_babel import gettext as _

from booth.auth.access import current_staff, role_required
from booth.auth.models import Role
from booth.counseling import services
from booth.counseling.models import Counseling
from booth.errors import DomainError
from booth.db import get_by_id
from booth.extensions import db
from booth.stock.models import SUPPLIES
from booth.visits.views import back_to, fail, get_visit
from booth.workflow import booth_day, form_int, form_yes_no

bp = Blueprint("counseling", __name__)
COUNSELORS = (Role.COUNSELOR, Role.COORDINATOR)


@bp.post("/visits/<visit_id>/counseling/<kind>/start")
@role_required(*COUNSELORS)
def start(visit_id, kind):
    visit = get_visit(visit_id)
    try:
        services.start(db.session, visit, kind=kind, now=booth_day().now, actor=current_staff())
        db.session.commit()
    except DomainError as e:
        return fail(visit, e)
    return back_to(visit)


@bp.post("/visits/<visit_id>/counseling/<kind>")
@role_required(*COUNSELORS)
def finish(visit_id, kind):
    visit = get_visit(visit_id)
    f = request.form
    supplies = {}
    for item in SUPPLIES:
        qty = form_int(f.get(f"supply_{item}") or 0, default=-1)
        if qty < 0:
            return fail(visit, DomainError(_("Hand out between 0 and 100 of each supply.")))
        if qty:
            supplies[item] = qty
    answers = {name: form_yes_no(f.get(name)) for name in ("result_given", "prep_interest", "pep_need")}
    if any(answers[name] is None and f.get(name) for name in answers):  # unanswered is fine; junk is not
        return fail(visit, DomainError(_("Choose yes or no.")))
    try:
        services.finish(db.session, visit, kind=kind, now=booth_day().now, actor=current_staff(),
                        topics=f.getlist("topics"), result_given=answers["result_given"],
                        prep_interest=answers["prep_interest"], pep_need=answers["pep_need"],
                        preset_minutes=form_int(f.get("minutes")), supplies=supplies)
        db.session.commit()
    except DomainError as e:
        return fail(visit, e)
    return back_to(visit)


@bp.post("/counseling/<counseling_id>/correct")
@role_required(*COUNSELORS)
def correct(counseling_id):
    c = get_by_id(db.session, Counseling, counseling_id)
    if c is None:
        abort(404)
    visit = get_visit(str(c.visit_id))
    try:
        services.correct(db.session, c, reason=request.form.get("reason", ""), now=booth_day().now,
                         actor=current_staff())
        db.session.commit()
    except DomainError as e:
        return fail(visit, e)
    return back_to(visit)
