"""Close of day: a checklist screen for the coordinator."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from booth.auth.access import current_staff, role_required
from booth.auth.models import Role
from booth.errors import DomainError
from booth.extensions import db
from booth.screening import services as screening
from booth.visits import closing, queries
from booth.visits.models import DayClosure
from booth.workflow import booth_day, form_int

bp = Blueprint("day", __name__)


def render(status=200, error=None):
    bd = booth_day()
    closure = db.session.query(DayClosure).filter_by(booth_id=bd.booth.id, day=bd.today).one_or_none()
    views = queries.queue(db.session, bd.booth.id, bd.today, bd.settings, bd.now)
    return render_template("day/close.html", bd=bd, closure=closure, views=views,
                           running=screening.running(db.session, bd.booth.id),
                           lots=closing.lots_to_count(db.session, bd.booth.id), error=error,
                           form=request.form if request.method == "POST" else {}), status


@bp.get("/day/close")
@role_required(Role.COORDINATOR)
def close_form():
    return render()


@bp.post("/day/close")
@role_required(Role.COORDINATOR)
def close():
    bd = booth_day()
    f = request.form
    named = [(k, v) for k, v in f.items() if isinstance(k, str)]  # a malformed multipart part has no name
    final_states = {k[len("final_"):]: v for k, v in named if k.startswith("final_")}
    counts = {}
    for key, value in named:
        if key.startswith("count_"):
            lot_id = key[len("count_"):]
            counts[lot_id] = (form_int(value, -1) if value != "" else None, f.get(f"reason_{lot_id}") or None)
    try:
        closing.close_day(db.session, booth=bd.booth, day=bd.today, final_states=final_states, kit_counts=counts,
                          now=bd.now, actor=current_staff())
        db.session.commit()
    except DomainError as e:
        db.session.rollback()
        return render(422, str(e.message))
    return redirect(url_for("day.close_form"), code=303)
