"""The queue, intake, the visit card, consent, closing a visit."""
from __future__ import annotations

import threading

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import get_locale, gettext as _
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from booth.auth.access import current_staff, role_required
from booth.auth.models import Role
from booth.core import idempotency
from booth.errors import DomainError
from booth.db import get_by_id
from booth.extensions import db
from booth.stock import services as stock
from booth.visits import queries, services
from booth.visits.card import render_card
from booth.visits.models import Consent, Visit
from booth.workflow import booth_day, form_version, form_yes_no

bp = Blueprint("visits", __name__)
STAFF = (Role.TESTER, Role.COUNSELOR, Role.COORDINATOR)
REGISTER_ATTEMPTS = 5
_register_lock = threading.Lock()


def get_visit(visit_id: str) -> Visit:
    visit = get_by_id(db.session, Visit, visit_id)
    if visit is None or visit.booth_id != booth_day().booth.id:
        abort(404)
    return visit


def back_to(visit: Visit):
    return redirect(url_for("visits.show", visit_id=visit.id), code=303)


def fail(visit: Visit, e: DomainError):
    db.session.rollback()
    stale = isinstance(e, services.StaleError)
    return render_card(visit, status=409 if stale else 422, error=str(e.message), stale=stale)


@bp.get("/visits")
@role_required(*STAFF)
def queue():
    bd = booth_day()
    rows = queries.queue(db.session, bd.booth.id, bd.today, bd.settings, bd.now)
    warnings = stock.warnings(db.session, booth_id=bd.booth.id, today=bd.today, now=bd.now)
    template = "visits/_queue.html" if request.headers.get("HX-Request") else "visits/queue.html"
    shift = stock.current_shift(db.session, current_staff().id)
    return render_template(template, rows=rows, bd=bd, warnings=warnings, shift=shift)


def intake_from_form(form) -> services.Intake:
    return services.Intake(
        age_band=form.get("age_band", ""), gender_identity=form.get("gender_identity"),
        sex_at_birth=form.get("sex_at_birth"), beneficiary=form.get("beneficiary"),
        first_time=form.get("first_time"), last_test=form.get("last_test"),
        known_hiv_positive=form.get("known_hiv_positive"), previous_hcv_treatment=form.get("previous_hcv_treatment"),
        treated_syphilis_before=form.get("treated_syphilis_before"), exposure_72h=form.get("exposure_72h"),
        key_populations_asked=form.get("key_populations_asked") in ("y", "yes", "on", "1", "true"),
        key_populations=tuple(form.getlist("key_populations")))


@bp.get("/visits/new")
@role_required(*STAFF)
def new():
    bd = booth_day()
    return render_template("visits/new.html", bd=bd, nonce=idempotency.new_nonce(), values={}, error=None)


@bp.post("/visits")
@role_required(*STAFF)
def create():
    bd = booth_day()
    nonce = request.form.get("nonce")
    done = idempotency.seen(db.session, nonce, "visit.register")
    if done:
        return redirect(url_for("visits.show", visit_id=done), code=303)
    for attempt in range(REGISTER_ATTEMPTS):
        try:
            with _register_lock:  # the next call number is max + 1: one registration at a time in this process
                visit = services.register_visit(db.session, booth=bd.booth, intake=intake_from_form(request.form),
                                                now=bd.now, actor=current_staff())
                idempotency.remember(db.session, nonce, "visit.register", visit.id, bd.now)
                db.session.commit()
            return back_to(visit)
        except DomainError as e:
            db.session.rollback()
            return render_template("visits/new.html", bd=bd, nonce=nonce, values=request.form,
                                   error=str(e.message), field=e.field), 422
        except IntegrityError:
            # two registrations read the same last call number (bench/load.py showed it with 20 tablets; another
            # process, e.g. a CLI command, can still race the lock): take the next number; a double tap of the
            # same form finds its visit
            db.session.rollback()
            done = idempotency.seen(db.session, nonce, "visit.register")
            if done:
                return redirect(url_for("visits.show", visit_id=done), code=303)
            if attempt == REGISTER_ATTEMPTS - 1:
                raise


@bp.get("/visits/<visit_id>")
@role_required(*STAFF)
def show(visit_id):
    return render_card(get_visit(visit_id))


@bp.post("/visits/<visit_id>/intake")
@role_required(*STAFF)
def update_intake(visit_id):
    visit = get_visit(visit_id)
    try:
        services.update_intake(db.session, visit, intake=intake_from_form(request.form),
                               expected_version=form_version(request.form.get("version")), now=booth_day().now,
                               actor=current_staff())
        db.session.commit()
    except DomainError as e:
        return fail(visit, e)
    except StaleDataError:
        return fail(visit, services.StaleError())
    return back_to(visit)


@bp.post("/visits/<visit_id>/consent")
@role_required(*STAFF)
def consent(visit_id):
    """One tap records consent (or refusal) for one disease, or for every offered disease at once."""
    visit = get_visit(visit_id)
    bd = booth_day()
    given = form_yes_no(request.form.get("given"))
    if given is None:  # never read anything but "yes" as a refusal
        return fail(visit, DomainError(_("Say whether the person agrees or refuses."), "given"))
    diseases = request.form.getlist("disease")
    if request.form.get("all") == "yes" and bd.settings is not None:
        diseases = [d for d in bd.settings.diseases if services.active_consent(visit, d) is None]
    if not diseases:
        return fail(visit, DomainError(_("Choose the test the consent is for.")))
    try:
        for disease in diseases:
            services.record_consent(db.session, visit, disease=disease, given=given, settings=bd.settings,
                                    language=request.form.get("language") or str(get_locale()), now=bd.now,
                                    actor=current_staff())
        db.session.commit()
    except DomainError as e:
        return fail(visit, e)
    return back_to(visit)


@bp.post("/consents/<consent_id>/correct")
@role_required(*STAFF)
def correct_consent(consent_id):
    consent = get_by_id(db.session, Consent, consent_id)
    if consent is None:
        abort(404)
    visit = get_visit(str(consent.visit_id))
    given = form_yes_no(request.form.get("given"))
    if given is None and request.form.get("given"):  # empty: remove the entry; anything else is not an answer
        return fail(visit, DomainError(_("Say whether the person agrees or refuses."), "given"))
    try:
        services.correct_consent(db.session, consent, given=given, reason=request.form.get("reason", ""),
                                 settings=booth_day().settings, now=booth_day().now, actor=current_staff())
        db.session.commit()
    except DomainError as e:
        return fail(visit, e)
    return back_to(visit)


@bp.post("/visits/<visit_id>/close")
@role_required(*STAFF)
def close(visit_id):
    visit = get_visit(visit_id)
    try:
        services.close_visit(db.session, visit, final_state=request.form.get("final_state", ""), now=booth_day().now,
                             actor=current_staff(), expected_version=form_version(request.form.get("version")))
        db.session.commit()
    except DomainError as e:
        return fail(visit, e)
    except StaleDataError:
        return fail(visit, services.StaleError())
    if request.headers.get("HX-Request"):
        # the card's forms swap #visit-card; a closed visit goes back to the whole queue page
        return "", 204, {"HX-Redirect": url_for("visits.queue")}
    return redirect(url_for("visits.queue"), code=303)
