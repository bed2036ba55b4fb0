"""Security headers on every response."""
from __future__ import annotations

import time

from flask import g, request

from booth.auth.access import DEVICE_COOKIE

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'self'; frame-src 'self'; frame-ancestors 'self'; base-uri 'none'; "
       "form-action 'self'; connect-src 'self'")


def start_timer():
    g.t0 = time.perf_counter()


def apply_security_headers(response):
    h = response.headers
    if "t0" in g:  # server time of this request, for benches and browser dev tools
        h["Server-Timing"] = f"app;dur={(time.perf_counter() - g.t0) * 1000:.1f}"
    h["Content-Security-Policy"] = CSP
    h["X-Content-Type-Options"] = "nosniff"
    h["Referrer-Policy"] = "no-referrer"
    h["X-Frame-Options"] = "SAMEORIGIN"
    h["Permissions-Policy"] = "camera=(self), microphone=(), geolocation=(), interest-cohort=()"
    h["Cross-Origin-Opener-Policy"] = "same-origin"
    if request.is_secure:
        h["Strict-Transport-Security"] = "max-age=31536000"
    if request.endpoint != "static":
        h["Cache-Control"] = "no-store"
        h["Pragma"] = "no-cache"
        h.add("Vary", "HX-Request")
        h.add("Vary", "Cookie")
    if g.get("clear_device_cookie"):
        response.delete_cookie(DEVICE_COOKIE, httponly=True, samesite="Strict", secure=request.is_secure)
    return response
