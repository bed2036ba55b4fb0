from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from booth.audit import services as audit
from booth.auth import services as auth
from booth.auth.models import Device, Role, Staff
from booth.db import new_id
from booth.errors import DomainError
from booth.settings.services import ensure_catalogue
from booth.events.models import Booth, Event


@dataclass
class SetupResult:
    event: Event
    booth: Booth
    coordinator: Staff
    device: Device | None
    device_token: str | None


def create_event(session, *, name: str, day: date, place: str, timezone: str, now: datetime,
                 central_base_url: str | None = None, event_id=None) -> Event:
    name, place = (name or "").strip(), (place or "").strip()
    if not name or len(name) > 120:
        raise DomainError(_l("Enter the event name (at most 120 characters)."), "event_name")
    if not place or len(place) > 160:
        raise DomainError(_l("Enter the place (at most 160 characters)."), "place")
    if timezone not in zoneinfo.available_timezones():
        raise DomainError(_l("Unknown time zone."), "timezone")
    event = Event(id=event_id or new_id(), name=name, day=day, place=place, timezone=timezone,
                  central_base_url=(central_base_url or "").rstrip("/") or None, created_at=now, updated_at=now)
    session.add(event)
    session.flush()
    return event


def first_run_setup(session, *, event_name: str, event_day: date, place: str, timezone: str, booth_name: str,
                    coordinator_code: str, pin: str, now: datetime, clock_skew_s: int | None = None,
                    central_base_url: str | None = None, device_name: str | None = "Tablet 1",
                    event_id=None) -> SetupResult:
    """Create the event, the booth, the first coordinator and (unless ``device_name`` is None) enroll
    the browser that runs setup as the first device."""
    if session.scalar(select(Booth.id).limit(1)) is not None:
        raise DomainError(_l("This node has already been set up."))
    booth_name = (booth_name or "").strip()
    if not booth_name or len(booth_name) > 80:
        raise DomainError(_l("Enter the booth name (at most 80 characters)."), "booth_name")
    event = create_event(session, name=event_name, day=event_day, place=place, timezone=timezone, now=now,
                         central_base_url=central_base_url, event_id=event_id)
    booth = Booth(event_id=event.id, name=booth_name, setup_clock_skew_s=clock_skew_s, created_at=now,
                  updated_at=now)
    session.add(booth)
    session.flush()
    ensure_catalogue(session, now=now)  # the kit products of DOMAIN.md, once, so screens only read them
    coordinator = auth.create_staff(session, code=coordinator_code, roles=[Role.COORDINATOR], pin=pin, now=now)
    device, token = (auth.register_first_device(session, name=device_name, now=now) if device_name
                     else (None, None))
    audit.record(session, "setup", now=now, actor=coordinator, device=device, record_id=booth.id)
    return SetupResult(event, booth, coordinator, device, token)
