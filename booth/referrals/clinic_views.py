"""The receiving clinic: the neutral page a scanned QR opens, lookup by QR or folio, and the linkage
record. Lookups are rate-limited per staff member and per device/address, answer unknown codes with
one generic message, and are all in the audit log."""
from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from booth import clock
from booth.audit import services as audit
from booth.auth.access import current_device, current_staff, public, role_required
from booth.auth.models import Role
from booth.errors import DomainError
from booth.events.models import Booth
from booth.db import get_by_id
from booth.extensions import db, limiter
from booth.referrals import codes, services
from booth.referrals.models import CLOSE_REASONS, Referral
from booth.screening.models import Screening
from booth.visits.models import Visit

bp = Blueprint("clinic", __name__)


def lookup_limit():
    return current_app.config.get("LOOKUP_RATE_LIMIT", "30 per minute")


def staff_key():
    staff = current_staff()
    return f"staff:{staff.id}" if staff is not None else f"addr:{request.remote_addr or '-'}"


def today() -> date:
    from zoneinfo import ZoneInfo

    from booth.events.queries import current_event
    event = current_event()
    tz = ZoneInfo(event.timezone) if event else ZoneInfo("America/Mexico_City")
    return clock.now().astimezone(tz).date()


def not_found():
    return render_template("clinic/not_found.html"), 404


@bp.get("/r/<token>")
@public("the neutral page a scanned referral QR opens for the person holding the slip")
@limiter.limit(lookup_limit)
def neutral(token):
    ref = services.by_token(db.session, token)
    audit.record(db.session, "referral.lookup_public", now=clock.now(), record_id=ref.id if ref else None)
    db.session.commit()
    if ref is None or ref.status == "cancelled":
        return not_found()
    return render_template("clinic/neutral.html", ref=ref, dest=ref.destination, token=token)


def _record_lookup(ref, how):
    audit.record(db.session, f"referral.lookup_{how}", now=clock.now(), actor=current_staff(),
                 device=current_device(), record_id=ref.id if ref else None)
    db.session.commit()


@bp.get("/clinic")
@role_required(Role.CLINIC)
def index():
    mine = services.clinic_destinations(db.session, current_staff())
    refs = db.session.scalars(select(Referral).where(Referral.destination_id.in_(mine))
                              .order_by(Referral.issued_at.desc()).limit(200)).all() if mine else []
    return render_template("clinic/index.html", refs=refs, linked=bool(mine), today=today(),
                           status_of=lambda r: services.status(r, today()), error=None)


@bp.post("/clinic/lookup")
@role_required(Role.CLINIC)
@limiter.limit(lookup_limit)
@limiter.limit(lookup_limit, key_func=staff_key)
def lookup():
    ref = services.by_folio(db.session, request.form.get("folio"))
    if ref is not None and not services.visible_to(db.session, ref, current_staff()):
        ref = None
    _record_lookup(ref, "folio")
    folio = codes.normalize(request.form.get("folio"))
    if ref is None and folio and codes.is_valid(folio):
        # A well-formed folio this clinic cannot see: unknown here yet (the booth has not synced) or
        # addressed elsewhere — the same answer either way, so nothing can be learned by trying.
        return render_template("clinic/provisional.html", token=None, folio=codes.display(folio), verified=False,
                               today=today(), error=None), 404
    if ref is None:
        return render_template("clinic/index.html", refs=[], linked=True, today=today(),
                               status_of=lambda r: services.status(r, today()),
                               error=_("No referral for your clinic matches this folio. Check it and type it "
                                       "again.")), 404
    return redirect(url_for("clinic.show", referral_id=ref.id), code=303)


@bp.get("/clinic/r/<token>")
@role_required(Role.CLINIC)
@limiter.limit(lookup_limit)
@limiter.limit(lookup_limit, key_func=staff_key)
def by_token(token):
    ref = services.by_token(db.session, token)
    if ref is not None and not services.visible_to(db.session, ref, current_staff()):
        ref = None
    _record_lookup(ref, "token")
    if ref is None:
        keys = services.known_keys(db.session, current_app.instance_path)
        if services.token_is_genuine(token, keys):
            # A genuine slip whose referral has not reached this server yet.
            return render_template("clinic/provisional.html", token=token, folio=None, verified=True,
                                   today=today(), error=None), 404
        return not_found()
    return redirect(url_for("clinic.show", referral_id=ref.id), code=303)


def get_visible(referral_id) -> Referral:
    ref = get_by_id(db.session, Referral, referral_id)
    if ref is None or not services.visible_to(db.session, ref, current_staff()):
        abort(404)
    return ref


def results_summary(ref: Referral) -> list[str]:
    """Only what the clinic needs for this reason, in plain words."""
    disease = {"hiv_confirmation": "hiv", "discordant_lab": "hiv", "hcv_viral_load": "hcv",
               "syphilis_confirmation": "syphilis"}.get(ref.reason)
    if disease is None:
        return []
    out = []
    rows = db.session.scalars(select(Screening).where(Screening.visit_id == ref.visit_id)
                              .order_by(Screening.started_at)).all()
    for s in rows:
        for r in s.current_results():
            if r.disease == disease:
                out.append((s.product.name, r.outcome))
    return out


def render_show(ref, status=200, error=None):
    visit = db.session.get(Visit, ref.visit_id)
    booth = db.session.get(Booth, visit.booth_id)
    return render_template("clinic/show.html", ref=ref, booth=booth, summary=results_summary(ref),
                           status=services.status(ref, today()), today=today(), error=error,
                           confirm_results=services.results_for(ref.reason), close_reasons=CLOSE_REASONS), status


@bp.get("/clinic/referrals/<referral_id>")
@role_required(Role.CLINIC)
def show(referral_id):
    ref = get_visible(referral_id)
    _record_lookup(ref, "view")
    return render_show(ref)


@bp.post("/clinic/referrals/<referral_id>/<action>")
@role_required(Role.CLINIC)
def act(referral_id, action):
    ref = get_visible(referral_id)
    if action not in ("arrival", "confirmation", "treatment", "close"):
        abort(404)
    day = None
    if request.form.get("day"):
        try:
            day = date.fromisoformat(request.form["day"])
        except ValueError:
            return render_show(ref, 422, _("Enter a valid date."))
    try:
        services.record(db.session, ref, action=action, today=today(), now=clock.now(), actor=current_staff(),
                        day=day or (today() if action in ("arrival", "treatment") and request.form.get("today")
                                    else day),
                        result=request.form.get("result"), reason=request.form.get("reason"))
        db.session.commit()
    except DomainError as e:
        db.session.rollback()
        return render_show(ref, 422, str(e.message))
    return redirect(url_for("clinic.show", referral_id=ref.id), code=303)


@bp.post("/clinic/provisional")
@role_required(Role.CLINIC)
@limiter.limit(lookup_limit)
@limiter.limit(lookup_limit, key_func=staff_key)
def provisional():
    f = request.form
    try:
        day = date.fromisoformat(f.get("day", ""))
    except ValueError:
        day = None
    try:
        services.record_provisional(db.session, token=f.get("token") or None, folio=f.get("folio") or None,
                                    keys=services.known_keys(db.session, current_app.instance_path), day=day,
                                    today=today(), now=clock.now(), actor=current_staff())
        db.session.commit()
    except DomainError as e:
        db.session.rollback()
        return render_template("clinic/provisional.html", token=f.get("token"), folio=f.get("folio"),
                               verified=bool(f.get("token")), today=today(), error=str(e.message)), 422
    return redirect(url_for("clinic.index", provisional="1"), code=303)
