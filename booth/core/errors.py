from __future__ import annotations

from flask import jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json" or request.path.startswith("/api/")


def _messages():
    return {
        400: _("The request could not be understood."),
        401: _("Please log in."),
        403: _("Your role does not allow this. Ask a coordinator if you need it."),
        404: _("This page does not exist."),
        405: _("This action is not allowed here."),
        413: _("What you sent is too large."),
        422: _("Some fields need attention."),
        429: _("Too many attempts. Wait a minute and try again."),
        500: _("Something went wrong on the node. Your last action was not saved; try again."),
        503: _("The node is not ready. Ask a coordinator."),
    }


def render_error(status: int, message: str | None = None):
    message = message or _messages().get(status, _("Something went wrong."))
    if _wants_json():
        return jsonify(error=message), status
    template = "core/_error.html" if request.headers.get("HX-Request") else "core/error.html"
    return render_template(template, status=status, message=message), status


DISK_FULL = "database or disk is full"


def is_disk_full(exc: BaseException) -> bool:
    """SQLite's SQLITE_FULL (also what ``PRAGMA max_page_count`` raises, which the tests use)."""
    return DISK_FULL in str(getattr(exc, "orig", None) or exc).lower()


def register(app):
    @app.errorhandler(CSRFError)
    def csrf_error(e):
        return render_error(400, _("The form expired or was sent from elsewhere. Reload the page and try again."))

    @app.errorhandler(HTTPException)
    def http_error(e):
        return render_error(e.code or 500)

    @app.errorhandler(OperationalError)
    def database_error(e):
        """Disk full: the request's transaction is rolled back (nothing half-written) and the screen says
        so (507); the node goes on, and the same action succeeds once there is space again."""
        if not is_disk_full(e):
            return unexpected(e)
        from booth.extensions import db

        app.logger.error("database or disk is full on endpoint %s: action rolled back", request.endpoint)
        db.session.rollback()
        return render_error(507, _("The node's disk is full: this action was NOT saved. Tell the coordinator."))

    @app.errorhandler(Exception)
    def unexpected(e):  # never leak details; the log line holds no request data
        from booth.extensions import db

        app.logger.exception("unhandled error on endpoint %s", request.endpoint)
        db.session.rollback()
        return render_error(500)
