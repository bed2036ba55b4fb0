"""Every route declares who may reach it; a route that declares nothing is closed (403).

- ``@public("why")``: no device, no login (healthz, setup, enrollment, language switch …).
- ``@device_required``: an enrolled device but no staff login (PIN login, unlock) — booth only.
- ``@role_required(Role.X, …)``: a live, unlocked staff session with one of the roles (and, on a
  booth, the enrolled device the session was opened on).
- ``@signed_node``: the sync API (central). No session, no cookie, no CSRF token: the request is signed
  with an enrolled node's secret, and the view itself verifies the signature (``booth.sync.services``).

``guard()`` runs before every request and enforces the declaration; the authorization-matrix test
reads the same declarations from ``app.view_functions``.
"""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from flask import abort, current_app, g, jsonify, redirect, request, url_for
from flask_babel import gettext as _

from booth import clock
from booth.auth import services
from booth.auth.models import Role
from booth.extensions import db

DEVICE_COOKIE = "vinculo_device"
SESSION_COOKIE = "vinculo_session"
ALL_ROLES = tuple(Role)


def public(reason: str, *, before_setup: bool = False):
    def deco(view):
        view._access = ("public", reason)
        view._before_setup = before_setup
        return view
    return deco


def device_required(view):
    view._access = ("device", None)
    return view


def display_required(view):
    """A device enrolled as a tray display: read-only screens, no staff login, no idle lock."""
    view._access = ("display", None)
    return view


def signed_node(view):
    """Sync API: guard() lets it through; the view verifies the node's signature before anything else."""
    view._access = ("signed", None)
    return view


def role_required(*roles: Role, clinical_lead: bool = False, passive: bool = False):
    """``passive`` views (live polling) do not count as activity for the idle lock."""
    def deco(view):
        view._access = ("roles", frozenset(roles or ALL_ROLES))
        view._clinical_lead = clinical_lead
        view._passive = passive
        return view
    return deco


def is_booth() -> bool:
    return current_app.config["ROLE"] == "booth"


def current_staff():
    return g.get("staff")


def current_device():
    return g.get("device")


def safe_next(target: str | None) -> str | None:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json" or request.path.startswith("/api/")


def _go(endpoint: str, status: int = 302, **params):
    url = url_for(endpoint)
    if params:
        url += "?" + urlencode(params)
    if request.headers.get("HX-Request"):
        resp = current_app.response_class(status=204)
        resp.headers["HX-Redirect"] = url
        return resp
    return redirect(url, code=status)


def setup_done() -> bool:
    cache = current_app.extensions.setdefault("vinculo", {})
    if cache.get("setup_done"):
        return True
    from booth.auth.models import Staff
    from booth.events.models import Booth
    from sqlalchemy import select
    if is_booth():
        done = db.session.scalar(select(Booth.id).limit(1)) is not None
    else:
        done = db.session.scalar(select(Staff.id).where(Staff.roles_csv.contains("coordinator")).limit(1)) is not None
    if done:
        cache["setup_done"] = True
    return done


def _activity() -> services.Activity:
    """This process's record of when each session was last active (the idle lock reads it)."""
    cache = current_app.extensions.setdefault("vinculo", {})
    if "activity" not in cache:
        cache.setdefault("activity", services.Activity())
    return cache["activity"]


def guard():
    if request.endpoint in (None, "static", "core.healthz"):
        # healthz checks the database itself: it must answer 503, not fail here, when the database does not
        return None
    view = current_app.view_functions.get(request.endpoint)
    access = getattr(view, "_access", None)
    if access is None:
        abort(403)
    if access[0] == "signed":
        # no device, session or setup state: a node's signature is checked by the view itself
        return None
    cfg = current_app.config
    now = clock.now()
    g.device = None
    g.staff = None
    g.staff_session = None
    g.locked = False

    if is_booth():
        device = services.device_by_token(db.session, request.cookies.get(DEVICE_COOKIE))
        if device is not None and device.active:
            g.device = device
        elif device is not None:
            g.clear_device_cookie = True

    if not setup_done():
        if access[0] == "public" and getattr(view, "_before_setup", False):
            return None
        return _go("setup.setup" if is_booth() else "central.setup")

    idle = timedelta(minutes=cfg["IDLE_LOCK_MINUTES"] if is_booth() else cfg["CENTRAL_IDLE_MINUTES"])
    state = services.resolve_session(db.session, request.cookies.get(SESSION_COOKIE), now=now, idle=idle,
                                     absolute=timedelta(hours=cfg["SESSION_ABSOLUTE_HOURS"]),
                                     device=g.device, require_device=is_booth(), activity=_activity())
    g.staff_session = state.staff_session
    g.staff = state.staff
    g.locked = state.locked
    if not is_booth() and state.locked:
        # Central: 30 idle minutes end the session; sign in again.
        services.end_session(db.session, state.staff_session, now=now)
        db.session.commit()
        g.staff_session = g.staff = None
        g.locked = False

    kind = access[0]
    if kind == "public":
        return None
    if is_booth() and g.device is None:
        if _wants_json():
            return jsonify(error=_("This device is not enrolled.")), 401
        if request.method == "GET" and not request.headers.get("HX-Request"):
            # Come back here after enrolling (kept in the signed session cookie, not in the URL).
            from flask import session
            session["after_enroll"] = request.full_path.rstrip("?")
        return _go("auth.enroll")
    if kind == "device":
        if not is_booth():
            abort(404)
        if g.device.kind == "display":  # a tray screen is read-only: no staff logs in on it
            abort(403)
        return None
    if kind == "display":
        if not is_booth():
            abort(404)
        if g.device.kind != "display":
            abort(403)
        return None
    # roles
    if g.staff is None:
        if _wants_json():
            return jsonify(error=_("Please log in.")), 401
        nxt = request.full_path.rstrip("?") if request.method == "GET" else None
        return _go("auth.login" if is_booth() else "central.signin", **({"next": nxt} if nxt else {}))
    if g.locked:
        nxt = request.full_path.rstrip("?") if request.method == "GET" else None
        return _go("auth.unlock", **({"next": nxt} if nxt else {}))
    if not g.staff.has_role(*access[1]):
        abort(403)
    if getattr(view, "_clinical_lead", False) and not g.staff.clinical_lead:
        abort(403)
    if not getattr(view, "_passive", False) and services.touch_session(db.session, g.staff_session, now,
                                                                       activity=_activity()):
        db.session.commit()
    return None
