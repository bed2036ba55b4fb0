from __future__ import annotations

import json

from flask import current_app, g, request
from flask_babel import format_datetime, get_locale

from booth import clock
from booth.auth.forms import role_labels
from booth.labels import all_labels
from booth.auth.models import Role
from booth.events.queries import current_booth

HTMX_CONFIG = json.dumps({
    "allowEval": False,
    "includeIndicatorStyles": False,
    "historyCacheSize": 0,
    "refreshOnHistoryMiss": True,
    "selfRequestsOnly": True,
    "responseHandling": [
        {"code": "204", "swap": False},
        {"code": "[23]..", "swap": True},
        {"code": "422", "swap": True},
        {"code": "409", "swap": True},  # a stale write answers with the current state: show it
        {"code": "[45]..", "swap": False, "error": True},
    ],
})


def translated_labels() -> dict:
    """The labels of ``booth.labels`` as plain strings in the request's language, translated once per language
    and process: a page renders dozens of them, and each lazy string looked its translation up again."""
    cache = current_app.extensions.setdefault("vinculo", {}).setdefault("labels", {})
    locale = str(get_locale())
    found = cache.get(locale)
    if found is None:
        found = cache[locale] = {name: {code: str(text) for code, text in table.items()}
                                 for name, table in all_labels().items()}
    return found


def register_template_helpers(app):
    @app.context_processor
    def inject():
        staff = g.get("staff") if not g.get("locked") else None
        booth = current_booth()
        return {
            "current_staff": staff,
            "current_device": g.get("device"),
            "current_booth": booth,
            "current_event": booth.event if booth else None,
            "is_coordinator": bool(staff and staff.has_role(Role.COORDINATOR)),
            "node_role": current_app.config["ROLE"],
            "locale": str(get_locale()),
            "languages": current_app.config["LANGUAGES"],
            "server_epoch_ms": int(clock.now().timestamp() * 1000),
            "idle_seconds": current_app.config["IDLE_LOCK_MINUTES"] * 60,
            "skew_warn_seconds": current_app.config["CLOCK_SKEW_WARN_SECONDS"],
            "htmx_config": HTMX_CONFIG,
            "role_labels": role_labels(),
            "labels": translated_labels(),
            "here": request.full_path.rstrip("?") if request.method == "GET" else request.path,
        }

    @app.template_filter("localtime")
    def localtime(value, fmt="short"):
        return format_datetime(value, fmt) if value is not None else "—"
