"""Health check, home screen and the language switch."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, g, jsonify, redirect, render_template, request
from sqlalchemy import text

from booth.auth.access import public, role_required, safe_next
from booth.extensions import db
from booth.i18n import LANG_COOKIE

bp = Blueprint("core", __name__)


@bp.get("/healthz")
@public("monitoring: says only whether the node and its database answer", before_setup=True)
def healthz():
    body = {"status": "ok", "role": current_app.config["ROLE"], "db": "ok", "schema": None,
            "version": current_app.config["VERSION"]}
    try:
        db.session.execute(text("SELECT 1"))
        body["schema"] = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:
        db.session.rollback()
        body.update(status="error", db="error")
        return jsonify(body), 503
    return jsonify(body)


@bp.get("/")
@role_required()
def home():
    return render_template("core/home.html")


@bp.post("/lang/<code>")
@public("the language switch works before login and before setup", before_setup=True)
def set_language(code):
    # CSRFProtect has already checked the token of this POST.
    if code not in current_app.config["LANGUAGES"]:
        abort(404)
    device = g.get("device")
    if device is not None:
        device.locale = code
        db.session.commit()
    resp = redirect(safe_next(request.form.get("next")) or "/", code=303)
    resp.set_cookie(LANG_COOKIE, code, max_age=400 * 86400, httponly=True, samesite="Strict",
                    secure=request.is_secure)
    return resp
