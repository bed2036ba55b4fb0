"""Central server sign-in: staff code + password + TOTP; first-run setup of the first coordinator."""
from __future__ import annotations

import uuid

from flask import Blueprint, current_app, g, redirect, render_template, session, url_for

from booth import clock
from booth.auth import services
from booth.auth.access import public, role_required, setup_done
from booth.auth.cookies import clear_session_cookie, set_session_cookie
from booth.auth.models import Role, Staff
from booth.central.forms import CentralSetupForm, SigninForm, TotpForm
from booth.core.qr import svg_data_uri
from booth.errors import DomainError
from booth.extensions import db, limiter

bp = Blueprint("central", __name__)
PENDING_SECONDS = 600


def policy() -> services.LockoutPolicy:
    cfg = current_app.config
    return services.LockoutPolicy(cfg["LOCKOUT_THRESHOLD"], cfg["LOCKOUT_MINUTES"])


def login_limit():
    return current_app.config["LOGIN_RATE_LIMIT"]


def _set_pending(staff: Staff) -> None:
    session.clear()
    session["pending_staff"] = str(staff.id)
    session["pending_at"] = int(clock.now().timestamp())


def _pending_staff() -> Staff | None:
    sid, at = session.get("pending_staff"), session.get("pending_at", 0)
    if not sid or clock.now().timestamp() - at > PENDING_SECONDS:
        return None
    staff = db.session.get(Staff, uuid.UUID(sid))
    return staff if staff is not None and staff.active else None


def _signed_in(staff: Staff, now):
    _s, token = services.start_session(db.session, staff, now=now)
    db.session.commit()
    session.clear()
    return set_session_cookie(redirect(url_for("core.home"), code=303), token)


@bp.route("/central/setup", methods=["GET", "POST"])
@public("first-run setup of an empty central server; closed once a coordinator exists", before_setup=True)
def setup():
    if setup_done():
        return redirect(url_for("central.signin"))
    form = CentralSetupForm()
    if not form.is_submitted():
        return render_template("central/setup.html", form=form)
    if not form.validate():
        return render_template("central/setup.html", form=form), 422
    try:
        staff = services.create_staff(db.session, code=form.code.data, roles=[Role.COORDINATOR],
                                      password=form.password.data, now=clock.now())
    except DomainError as e:
        db.session.rollback()
        form.form_errors.append(str(e.message))
        return render_template("central/setup.html", form=form), 422
    db.session.commit()
    _set_pending(staff)
    return redirect(url_for("central.totp_setup"), code=303)


@bp.route("/signin", methods=["GET", "POST"])
@public("central sign-in")
@limiter.limit(login_limit, methods=["POST"])
def signin():
    form = SigninForm()
    if not form.is_submitted():
        return render_template("central/signin.html", form=form)
    if not form.validate():
        return render_template("central/signin.html", form=form), 422
    now = clock.now()
    try:
        staff = services.check_secret(db.session, code=form.code.data, secret=form.password.data, kind="password",
                                      now=now, policy=policy(), second_factor=True)
        if staff.totp_confirmed_at is None:
            db.session.commit()
            _set_pending(staff)
            return redirect(url_for("central.totp_setup"), code=303)
        services.verify_totp(db.session, staff, form.totp.data or "", now=now, policy=policy())
    except services.LoginError as e:
        db.session.commit()
        form.form_errors.append(str(e.message))
        return render_template("central/signin.html", form=form), 401
    return _signed_in(staff, now)


@bp.route("/signin/totp", methods=["GET", "POST"])
@public("TOTP set-up on first sign-in, reachable only right after a correct password", before_setup=True)
@limiter.limit(login_limit, methods=["POST"])
def totp_setup():
    staff = _pending_staff()
    if staff is None or staff.totp_confirmed_at is not None:
        return redirect(url_for("central.signin"))
    uri = services.begin_totp_setup(db.session, staff)
    db.session.commit()
    form = TotpForm()
    ctx = {"form": form, "qr": svg_data_uri(uri), "secret": staff.totp_secret, "staff": staff}
    if not form.is_submitted():
        return render_template("central/totp_setup.html", **ctx)
    if not form.validate():
        return render_template("central/totp_setup.html", **ctx), 422
    now = clock.now()
    try:
        services.confirm_totp(db.session, staff, form.totp.data.strip(), now=now, policy=policy())
    except services.LoginError as e:
        db.session.commit()
        form.form_errors.append(str(e.message))
        return render_template("central/totp_setup.html", **ctx), 401
    current_app.extensions.setdefault("vinculo", {})["setup_done"] = True
    return _signed_in(staff, now)


@bp.post("/signout")
@role_required()
def signout():
    services.end_session(db.session, g.staff_session, now=clock.now())
    db.session.commit()
    return clear_session_cookie(redirect(url_for("central.signin"), code=303))
