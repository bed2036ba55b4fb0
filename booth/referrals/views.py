"""Issuing referrals at the booth, the slip (PDF, printing), and destinations (coordinator)."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from datetime import timedelta

from flask import (Blueprint, abort, current_app, redirect, render_template, request, url_for)
from flask_babel import get_locale, gettext as _
from sqlalchemy import select

from booth.auth.access import current_staff, role_required
from booth.auth.models import Role
from booth.errors import DomainError
from booth.db import get_by_id
from booth.extensions import db
from booth.referrals import services
from booth.referrals.models import KINDS, REASONS, SERVES, Destination, Referral, RoutingRule
from booth.visits import queries
from booth.visits.views import get_visit
from booth.workflow import booth_day, form_int

bp = Blueprint("referrals", __name__)
ISSUERS = (Role.COUNSELOR, Role.COORDINATOR)


def central_base_url() -> tuple[str, bool]:
    """The QR's base URL and whether it is a real central server (False: the node's own address)."""
    event = booth_day().event
    if event.central_base_url:
        return event.central_base_url, True
    return (current_app.config.get("BASE_URL") or request.host_url).rstrip("/"), False


def get_referral(referral_id: str) -> Referral:
    ref = get_by_id(db.session, Referral, referral_id)
    if ref is None:
        abort(404)
    get_visit(str(ref.visit_id))  # same booth, or 404
    return ref


def destinations():
    return db.session.scalars(select(Destination).where(Destination.active.is_(True))
                              .order_by(Destination.name)).all()


def render_new(visit, status=200, error=None, values=None):
    bd = booth_day()
    view = queries.visit_view(db.session, visit, bd.settings, bd.now)
    needed = services.reasons_for(view)
    values = values or {}
    reason = values.get("reason") or (needed[0] if needed else "")
    suggested = services.suggest(db.session, reason=reason, visit=visit, today=bd.today) if reason else None
    _base, real = central_base_url()
    existing = db.session.scalars(select(Referral).where(Referral.visit_id == visit.id)
                                  .order_by(Referral.issued_at)).all()
    return render_template("referrals/new.html", visit=visit, view=view, needed=needed, reason=reason,
                           reasons=REASONS, destinations=destinations(), suggested=suggested, bd=bd,
                           default_until=services.default_valid_until(reason, bd.today) if reason else None,
                           error=error, central_ok=real, existing=existing,
                           status_of=lambda r: services.status(r, bd.today)), status


@bp.get("/visits/<visit_id>/referrals/new")
@role_required(*ISSUERS)
def new(visit_id):
    return render_new(get_visit(visit_id), values=request.args)


@bp.post("/visits/<visit_id>/referrals")
@role_required(*ISSUERS)
def issue(visit_id):
    visit = get_visit(visit_id)
    bd = booth_day()
    f = request.form
    reason = f.get("reason", "")
    dest = get_by_id(db.session, Destination, f.get("destination", ""))
    days = form_int(f.get("valid_days"), -1) if f.get("valid_days") else None
    if days is not None and not 0 <= days <= services.MAX_VALID_DAYS:  # (a huge number overflows the date)
        return render_new(visit, 422, _("Valid until must be between today and %(days)s days from now.",
                                        days=services.MAX_VALID_DAYS), values=f)
    valid_until = services.default_valid_until(reason, bd.today) if days is None else bd.today + timedelta(days=days)
    try:
        ref, _token = services.issue(db.session, visit=visit, reason=reason, destination=dest,
                                     valid_until=valid_until, key=services.referral_key(current_app.instance_path),
                                     today=bd.today, now=bd.now, actor=current_staff())
        db.session.commit()
    except DomainError as e:
        db.session.rollback()
        return render_new(visit, 422, str(e.message), values=f)
    return redirect(url_for("referrals.show", referral_id=ref.id), code=303)


@bp.get("/referrals/<referral_id>")
@role_required(*ISSUERS)
def show(referral_id):
    ref = get_referral(referral_id)
    bd = booth_day()
    _base, real = central_base_url()
    return render_template("referrals/show.html", ref=ref, bd=bd, central_ok=real,
                           status=services.status(ref, bd.today), printed=request.args.get("printed"))


def slip_pdf_bytes(ref: Referral, fmt: str) -> bytes:
    from booth.referrals import slip_pdf

    base, _real = central_base_url()
    data = services.slip_data(ref, base_url=base, key=services.referral_key(current_app.instance_path),
                              language=str(get_locale()))
    return slip_pdf.render(data, fmt)


@bp.get("/referrals/<referral_id>/slip.pdf")
@role_required(*ISSUERS)
def slip(referral_id):
    ref = get_referral(referral_id)
    fmt = request.args.get("format") or booth_day().booth.slip_format
    if fmt not in ("80mm", "a6"):
        abort(404)
    pdf = slip_pdf_bytes(ref, fmt)
    # A neutral file name: no folio, reason or anything about the person.
    return current_app.response_class(pdf, mimetype="application/pdf",
                                      headers={"Content-Disposition": 'inline; filename="hoja.pdf"'})


@bp.post("/referrals/<referral_id>/print")
@role_required(*ISSUERS)
def print_slip(referral_id):
    """One tap: to the booth's CUPS queue with `lp -d QUEUE` when one is set; otherwise the page embeds
    the PDF for the browser's print dialog."""
    ref = get_referral(referral_id)
    booth = booth_day().booth
    if not booth.printer_queue:
        return redirect(url_for("referrals.show", referral_id=ref.id, printed="browser"), code=303)
    pdf = slip_pdf_bytes(ref, booth.slip_format)
    lp = shutil.which("lp")
    error = None
    if lp is None:
        error = _("The printing command (lp) is not installed on this node.")
    else:
        with tempfile.NamedTemporaryFile(prefix="hoja-", suffix=".pdf") as fh:
            fh.write(pdf)
            fh.flush()
            try:
                done = subprocess.run([lp, "-d", booth.printer_queue, fh.name], capture_output=True, timeout=20)
                if done.returncode != 0:
                    error = _("The printer did not accept the slip. Check that it is on and has paper.")
            except (OSError, subprocess.TimeoutExpired):
                error = _("The printer did not answer. Check that it is on and has paper.")
    if error:
        return render_template("referrals/show.html", ref=ref, bd=booth_day(), central_ok=central_base_url()[1],
                               status=services.status(ref, booth_day().today), error=error), 503
    ref.printed_count += 1
    db.session.commit()
    return redirect(url_for("referrals.show", referral_id=ref.id, printed="printer"), code=303)


@bp.post("/referrals/<referral_id>/cancel")
@role_required(*ISSUERS)
def cancel(referral_id):
    ref = get_referral(referral_id)
    try:
        services.cancel(db.session, ref, now=booth_day().now, actor=current_staff())
        db.session.commit()
    except DomainError as e:
        db.session.rollback()
        return render_template("referrals/show.html", ref=ref, bd=booth_day(), central_ok=central_base_url()[1],
                               status=services.status(ref, booth_day().today), error=str(e.message)), 422
    return redirect(url_for("referrals.show", referral_id=ref.id), code=303)


# ------------------------------------------------------------------ destinations (coordinator)

def destination_input(f) -> services.DestinationInput:
    return services.DestinationInput(
        name=f.get("name", ""), slip_name=f.get("slip_name", ""), kind=f.get("kind", ""), address=f.get("address", ""),
        hours=f.get("hours", ""), phone=f.get("phone", ""), what_to_bring=f.get("what_to_bring", ""),
        serves=f.get("serves", "everyone"), reasons=tuple(f.getlist("reasons")), open_days=tuple(f.getlist("open_days")),
        is_example=f.get("is_example") == "yes")


def render_destinations(status=200, error=None, values=None, editing=None):
    from booth.auth.models import Staff
    bd = booth_day()
    rules = db.session.scalars(select(RoutingRule).order_by(RoutingRule.reason, RoutingRule.priority)).all()
    clinic_staff = [s for s in db.session.scalars(select(Staff).order_by(Staff.code)) if s.has_role(Role.CLINIC)]
    return render_template("referrals/destinations.html", destinations=destinations(), rules=rules, bd=bd,
                           kinds=KINDS, reasons=REASONS, serves=SERVES, error=error, values=values or {},
                           editing=editing, clinic_staff=clinic_staff), status


@bp.get("/destinations")
@role_required(Role.COORDINATOR)
def destinations_index():
    editing = None
    if request.args.get("edit"):
        editing = get_by_id(db.session, Destination, request.args["edit"])
    return render_destinations(editing=editing)


@bp.post("/destinations")
@role_required(Role.COORDINATOR)
def destinations_save():
    editing = None
    if request.form.get("id"):
        try:
            editing = db.session.get(Destination, uuid.UUID(request.form["id"]))
        except ValueError:
            abort(404)
        if editing is None:
            abort(404)
    try:
        services.save_destination(db.session, destination_input(request.form), now=booth_day().now,
                                  actor=current_staff(), destination=editing)
        db.session.commit()
    except DomainError as e:
        db.session.rollback()
        return render_destinations(422, str(e.message), values=request.form, editing=editing)
    return redirect(url_for("referrals.destinations_index"), code=303)


@bp.post("/destinations/rules")
@role_required(Role.COORDINATOR)
def destinations_rule():
    f = request.form
    dest = get_by_id(db.session, Destination, f.get("destination", ""))
    try:
        if dest is None:
            raise DomainError(_("Choose the destination."))
        services.add_rule(db.session, reason=f.get("reason", ""), beneficiary=f.get("beneficiary", "any"),
                          destination=dest, priority=form_int(f.get("priority"), 0) if f.get("priority") else 100,
                          open_today_only=f.get("open_today_only") == "yes", now=booth_day().now,
                          actor=current_staff())
        db.session.commit()
    except DomainError as e:
        db.session.rollback()
        return render_destinations(422, str(e.message))
    return redirect(url_for("referrals.destinations_index"), code=303)


@bp.post("/destinations/<destination_id>/staff")
@role_required(Role.COORDINATOR)
def destinations_link_staff(destination_id):
    from booth.auth.services import staff_by_code
    dest = get_by_id(db.session, Destination, destination_id)
    if dest is None:
        abort(404)
    staff = staff_by_code(db.session, request.form.get("code", ""))
    try:
        if staff is None:
            raise DomainError(_("No staff member has that code."))
        services.link_staff(db.session, staff=staff, destination=dest, now=booth_day().now, actor=current_staff())
        db.session.commit()
    except DomainError as e:
        db.session.rollback()
        return render_destinations(422, str(e.message))
    return redirect(url_for("referrals.destinations_index"), code=303)


@bp.post("/destinations/printing")
@role_required(Role.COORDINATOR)
def printing():
    import re
    booth = booth_day().booth
    fmt = request.form.get("slip_format", "")
    queue = (request.form.get("printer_queue") or "").strip()
    if fmt not in ("80mm", "a6"):
        return render_destinations(422, _("Choose the slip size."))
    if queue and not re.fullmatch(r"[A-Za-z0-9_.-]{1,60}", queue):
        return render_destinations(422, _("A printer queue name has only letters, digits, dots, hyphens and "
                                          "underscores."))
    booth.slip_format, booth.printer_queue = fmt, queue or None
    booth.version += 1
    from booth.audit import services as audit
    audit.record(db.session, "booth.printing", now=booth_day().now, actor=current_staff(), record_id=booth.id)
    db.session.commit()
    return redirect(url_for("referrals.destinations_index"), code=303)
