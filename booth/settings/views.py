"""Event set-up of clinical settings: coordinators edit a draft; a clinical lead signs it off."""
from __future__ import annotations

import copy

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _

from booth.auth.access import current_staff, role_required
from booth.auth.models import Role
from booth.errors import DomainError
from booth.extensions import db
from booth.settings import defaults, services
from booth.workflow import booth_day, form_int

bp = Blueprint("settings", __name__)


def render(status=200, error=None):
    bd = booth_day()
    draft = services.latest(db.session, bd.event.id)
    if draft is None or draft.status != "draft":
        draft = None
    history = services.versions(db.session, bd.event.id)
    products = services.catalogue(db.session)
    shown = draft or bd.settings
    return render_template("settings/index.html", bd=bd, draft=draft, signed=bd.settings, shown=shown,
                           history=history, products=products, error=error, diseases=defaults.DISEASES), status


@bp.get("/settings")
@role_required(Role.COORDINATOR)
def index():
    return render()


def content_from_form(form, base: dict) -> dict:
    content = copy.deepcopy(base)
    chosen = form.getlist("diseases")
    # in the usual order; anything unknown stays in, for validate_content to refuse
    content["diseases"] = [d for d in defaults.DISEASES if d in chosen] + sorted(set(chosen) - set(defaults.DISEASES))
    content["algorithms"] = {d: form.get(f"algorithm_{d}", "one_test") for d in defaults.DISEASES}
    if any(a not in ("one_test", "two_test") for a in content["algorithms"].values()):
        raise DomainError(_("Unknown testing algorithm."), "algorithms")
    chosen = {}
    for code in form.getlist("products"):
        rf = form_int(form.get(f"read_from_{code}"))
        ru = form_int(form.get(f"read_until_{code}"))
        chosen[code] = {"read_from_s": rf * 60 if rf is not None else None,
                        "read_until_s": ru * 60 if ru is not None else None,
                        "samples": form.getlist(f"samples_{code}")}
    content["products"] = chosen
    content["consent"] = {"es": form.get("consent_es", "").strip(), "en": form.get("consent_en", "").strip()}
    return content


@bp.post("/settings")
@role_required(Role.COORDINATOR)
def update():
    bd = booth_day()
    base = services.draft(db.session, bd.event.id, now=bd.now, actor=current_staff()).content
    try:
        services.update_draft(db.session, bd.event.id, content_from_form(request.form, base), now=bd.now,
                              actor=current_staff())
        db.session.commit()
    except DomainError as e:
        db.session.rollback()
        return render(422, str(e.message))
    return redirect(url_for("settings.index"), code=303)


@bp.post("/settings/sign-off")
@role_required(Role.COORDINATOR, clinical_lead=True)
def sign_off():
    bd = booth_day()
    d = services.latest(db.session, bd.event.id)
    try:
        if d is not None and d.status != "draft":
            raise DomainError(_("There are no changes to sign off: the settings in force are already signed."))
        if d is None:
            d = services.draft(db.session, bd.event.id, now=bd.now, actor=current_staff())
        services.sign_off(db.session, d, now=bd.now, actor=current_staff())
        db.session.commit()
    except DomainError as e:
        db.session.rollback()
        return render(422, str(e.message))
    return redirect(url_for("settings.index"), code=303)
