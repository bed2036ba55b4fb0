"""What every booth-workflow view needs: the booth, its event, today's local date, the signed-off
clinical settings. Read once per request."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from flask import abort, g

from booth import clock
from booth.events.models import Booth, Event
from booth.events.queries import current_booth
from booth.extensions import db
from booth.settings import services as settings_services
from booth.visits import services as visits


@dataclass
class BoothDay:
    booth: Booth
    event: Event
    now: datetime
    today: date
    settings: object   # signed ClinicalSettings or None
    locked: bool


def booth_day() -> BoothDay:
    if "booth_day" in g:
        return g.booth_day
    booth = current_booth()
    if booth is None:
        abort(404)
    now = clock.now()
    today = visits.local_day(booth.event, now)
    g.booth_day = BoothDay(booth, booth.event, now, today, settings_services.signed(db.session, booth.event_id),
                           visits.day_locked(db.session, booth.id, today))
    return g.booth_day


def form_yes_no(value) -> bool | None:
    """A yes/no choice from a form; None when it was not answered."""
    return {"yes": True, "no": False}.get(value)


def form_int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def form_version(value) -> int | None:
    """The version a form was rendered with: None when it sent none (no stale-write check); a value that is
    not a number never matches, so the write is refused as stale instead of skipping the check."""
    if value in (None, ""):
        return None
    return form_int(value, default=-1)
