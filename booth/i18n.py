"""Locale and time-zone selection (Spanish by default, English one tap away, remembered per device)."""
from __future__ import annotations

from flask import current_app, g, has_request_context, request

LANG_COOKIE = "vinculo_lang"


def select_locale() -> str:
    languages = current_app.config["LANGUAGES"]
    if has_request_context():
        device = g.get("device")
        if device is not None and device.locale in languages:
            return device.locale
        cookie = request.cookies.get(LANG_COOKIE)
        if cookie in languages:
            return cookie
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def select_timezone() -> str:
    """Times are stored in UTC and shown in the event's time zone."""
    from booth.events.queries import current_event

    event = current_event() if has_request_context() else None
    return event.timezone if event is not None else "UTC"
