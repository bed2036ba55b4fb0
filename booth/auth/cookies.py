"""The two cookies a booth browser holds: a device token and a session token (random, HttpOnly)."""
from __future__ import annotations

from flask import current_app, has_request_context, request
from flask.sessions import SecureCookieSessionInterface

from booth.auth.access import DEVICE_COOKIE, SESSION_COOKIE


def set_device_cookie(response, token: str):
    response.set_cookie(DEVICE_COOKIE, token, max_age=current_app.config["DEVICE_COOKIE_DAYS"] * 86400,
                        httponly=True, samesite="Strict", secure=request.is_secure)
    return response


def set_session_cookie(response, token: str):
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Strict", secure=request.is_secure)
    return response


def clear_session_cookie(response):
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="Strict", secure=request.is_secure)
    return response


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed session cookie (CSRF token, central's pending sign-in): Secure over HTTPS,
    like the device and session cookies, while plain HTTP on loopback keeps working."""

    def get_cookie_secure(self, app) -> bool:
        return super().get_cookie_secure(app) or (has_request_context() and request.is_secure)
