"""Booth node: device enrollment, PIN login, idle unlock, switch user, staff and devices."""
from __future__ import annotations

from datetime import datetime


from flask import Blueprint, abort, current_app, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from booth import clock
from booth.auth import services
from booth.auth.access import current_device, current_staff, device_required, public, role_required, safe_next
from booth.auth.cookies import clear_session_cookie, set_device_cookie, set_session_cookie
from booth.auth.forms import (ConfirmForm, EnrollForm, EnrollmentCodeForm, LoginForm, PinResetForm, StaffForm,
                              UnlockForm, role_labels)
from booth.auth.models import Device, Role, Staff
from booth.errors import DomainError
from booth.db import get_by_id
from booth.extensions import db, limiter
from booth import tls_info as tls

bp = Blueprint("auth", __name__)


def login_limit():
    return current_app.config["LOGIN_RATE_LIMIT"]


def policy() -> services.LockoutPolicy:
    cfg = current_app.config
    return services.LockoutPolicy(cfg["LOCKOUT_THRESHOLD"], cfg["LOCKOUT_MINUTES"])


def show_domain_error(form, e: DomainError) -> None:
    target = getattr(form, e.field, None) if e.field else None
    if target is not None and hasattr(target, "errors"):
        target.errors = list(target.errors) + [str(e.message)]
    else:
        form.form_errors.append(str(e.message))


# ------------------------------------------------------------------ enrollment

def ca_info():
    return tls.ca_summary(current_app.instance_path)


@bp.route("/enroll", methods=["GET", "POST"])
@public("a tablet that is not enrolled yet can only reach this page")
@limiter.limit(login_limit, methods=["POST"])
def enroll():
    if current_device() is not None:
        return redirect(url_for("auth.login"))
    form = EnrollForm()
    if request.method == "GET":
        form.code.data = request.args.get("code", "")[:20]
        return render_template("auth/enroll.html", form=form, ca=ca_info())
    if not form.validate():
        return render_template("auth/enroll.html", form=form, ca=ca_info()), 422
    try:
        device, token = services.enroll_device(db.session, code=form.code.data, name=form.name.data,
                                               now=clock.now())
    except DomainError as e:
        db.session.rollback()
        show_domain_error(form, e)
        return render_template("auth/enroll.html", form=form, ca=ca_info()), 422
    db.session.commit()
    back = safe_next(session.pop("after_enroll", None))
    resp = redirect(url_for("auth.login", next=back) if back and back != "/" else url_for("auth.login"), code=303)
    return set_device_cookie(resp, token)


@bp.get("/enroll/ca.pem")
@public("the node's CA certificate, for a tablet to trust the node's HTTPS (also before setup)",
        before_setup=True)
def ca_certificate():
    pem = tls.ca_certificate_pem(current_app.instance_path)
    if pem is None:
        abort(404)
    return current_app.response_class(pem, mimetype="application/x-x509-ca-cert",
                                      headers={"Content-Disposition": "attachment; filename=vinculo-ca.crt"})


# ------------------------------------------------------------------ login, unlock, switch user

@bp.route("/login", methods=["GET", "POST"])
@device_required
@limiter.limit(login_limit, methods=["POST"])
def login():
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
        return render_template("auth/login.html", form=form)
    if not form.validate():
        return render_template("auth/login.html", form=form), 422
    now = clock.now()
    try:
        staff = services.check_secret(db.session, code=form.code.data, secret=form.pin.data, kind="pin", now=now,
                                      policy=policy(), device=current_device())
    except services.LoginError as e:
        db.session.commit()  # the failed attempt counts towards the lockout
        form.pin.data = ""
        form.form_errors.append(str(e.message))
        return render_template("auth/login.html", form=form), 401
    if g.staff_session is not None:
        services.end_session(db.session, g.staff_session, now=now, device=current_device())
    _s, token = services.start_session(db.session, staff, now=now, device=current_device())
    db.session.commit()
    resp = redirect(safe_next(form.next.data) or url_for("core.home"), code=303)
    return set_session_cookie(resp, token)


@bp.route("/unlock", methods=["GET", "POST"])
@device_required
@limiter.limit(login_limit, methods=["POST"])
def unlock():
    locked = g.staff_session if g.locked else None
    if locked is None:
        if g.staff is not None:
            return redirect(safe_next(request.values.get("next")) or url_for("core.home"))
        return redirect(url_for("auth.login", next=safe_next(request.values.get("next")) or None))
    form = UnlockForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
        return render_template("auth/unlock.html", form=form, staff=locked.staff)
    if not form.validate():
        return render_template("auth/unlock.html", form=form, staff=locked.staff), 422
    now = clock.now()
    try:
        services.check_secret(db.session, code=locked.staff.code, secret=form.pin.data, kind="pin", now=now,
                              policy=policy(), device=current_device())
    except services.LoginError as e:
        db.session.commit()
        form.form_errors.append(str(e.message))
        return render_template("auth/unlock.html", form=form, staff=locked.staff), 401
    # A new session id after the PIN, as at every login.
    services.end_session(db.session, locked, now=now, device=current_device())
    _s, token = services.start_session(db.session, locked.staff, now=now, device=current_device())
    db.session.commit()
    resp = redirect(safe_next(form.next.data) or url_for("core.home"), code=303)
    return set_session_cookie(resp, token)


@bp.post("/logout")
@device_required
def logout():
    """Switch user: one tap ends this session and shows the login screen."""
    if g.staff_session is not None:
        services.end_session(db.session, g.staff_session, now=clock.now(), device=current_device())
        db.session.commit()
    return clear_session_cookie(redirect(url_for("auth.login"), code=303))


# ------------------------------------------------------------------ staff (coordinator)

def _staff_list():
    return db.session.scalars(select(Staff).order_by(Staff.disabled_at.is_not(None), Staff.code)).all()


def _get_staff(staff_id: str) -> Staff:
    staff = get_by_id(db.session, Staff, staff_id)
    if staff is None:
        abort(404)
    return staff


def render_staff(form=None, status=200, message=None):
    return render_template("auth/staff.html", form=form or StaffForm(), staff_list=_staff_list(), now=clock.now(),
                           role_labels=role_labels(), action_form=ConfirmForm(), message=message), status


@bp.get("/staff")
@role_required(Role.COORDINATOR)
def staff_index():
    return render_staff()


@bp.post("/staff")
@role_required(Role.COORDINATOR)
def staff_add():
    form = StaffForm()
    if not form.validate():
        return render_staff(form, 422)
    try:
        services.create_staff(db.session, code=form.code.data, roles=form.roles.data, pin=form.pin.data,
                              alias=form.alias.data, clinical_lead=form.clinical_lead.data, now=clock.now(),
                              actor=current_staff(), device=current_device())
    except DomainError as e:
        db.session.rollback()
        show_domain_error(form, e)
        return render_staff(form, 422)
    db.session.commit()
    return redirect(url_for("auth.staff_index"), code=303)


@bp.post("/staff/<staff_id>/<action>")
@role_required(Role.COORDINATOR)
def staff_action(staff_id, action):
    staff = _get_staff(staff_id)
    actions = {"unlock": services.unlock_staff, "disable": services.disable_staff, "enable": services.enable_staff}
    if action not in actions:
        abort(404)
    try:
        actions[action](db.session, staff, now=clock.now(), actor=current_staff(), device=current_device())
    except DomainError as e:
        db.session.rollback()
        return render_staff(status=422, message=str(e.message))
    db.session.commit()
    return redirect(url_for("auth.staff_index"), code=303)


@bp.route("/staff/<staff_id>/pin", methods=["GET", "POST"])
@role_required(Role.COORDINATOR)
def staff_pin(staff_id):
    staff = _get_staff(staff_id)
    form = PinResetForm()
    if request.method == "GET":
        return render_template("auth/staff_pin.html", form=form, staff=staff)
    if not form.validate():
        return render_template("auth/staff_pin.html", form=form, staff=staff), 422
    try:
        services.set_pin(db.session, staff, form.pin.data, now=clock.now(), actor=current_staff(),
                         device=current_device())
    except DomainError as e:
        db.session.rollback()
        show_domain_error(form, e)
        return render_template("auth/staff_pin.html", form=form, staff=staff), 422
    db.session.commit()
    return redirect(url_for("auth.staff_index"), code=303)


# ------------------------------------------------------------------ devices (coordinator)

def _base_url() -> str:
    return (current_app.config.get("BASE_URL") or request.host_url).rstrip("/")


def render_devices(new_code=None, status=200, message=None):
    devices = db.session.scalars(select(Device).order_by(Device.revoked_at.is_not(None), Device.created_at)).all()
    return render_template("auth/devices.html", devices=devices, new_code=new_code, form=EnrollmentCodeForm(),
                           action_form=ConfirmForm(), message=message, ca=ca_info()), status


@bp.get("/devices")
@role_required(Role.COORDINATOR)
def devices_index():
    shown = session.pop("new_enrollment", None)
    new_code = None
    if shown:
        from booth.core.qr import svg_data_uri
        new_code = dict(shown, qr=svg_data_uri(shown["url"]),
                        expires_at=datetime.fromisoformat(shown["expires_at"]))
    return render_devices(new_code=new_code)


@bp.post("/devices/codes")
@role_required(Role.COORDINATOR)
def devices_new_code():
    form = EnrollmentCodeForm()
    if not form.validate():
        return render_devices(status=422, message=_("Choose the kind of device."))
    now = clock.now()
    row, code = services.create_enrollment_code(db.session, now=now,
                                                minutes=current_app.config["ENROLLMENT_CODE_MINUTES"],
                                                actor=current_staff(), kind=form.kind.data, device=current_device())
    db.session.commit()
    url = f"{_base_url()}{url_for('auth.enroll')}?code={code}"
    # Post/redirect/get: the code is shown once by the page the browser is sent to, so a reload
    # (or the idle lock's reload) never re-posts the form and makes another code.
    session["new_enrollment"] = {"code": code, "url": url, "expires_at": row.expires_at.isoformat(),
                                 "kind": row.kind}
    return redirect(url_for("auth.devices_index"), code=303)


@bp.post("/devices/<device_id>/revoke")
@role_required(Role.COORDINATOR)
def devices_revoke(device_id):
    device = get_by_id(db.session, Device, device_id)
    if device is None:
        abort(404)
    try:
        services.revoke_device(db.session, device, now=clock.now(), actor=current_staff(), from_device=current_device())
    except DomainError as e:
        db.session.rollback()
        return render_devices(status=422, message=str(e.message))
    db.session.commit()
    return redirect(url_for("auth.devices_index"), code=303)
