from __future__ import annotations

from flask import current_app, g
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from booth.events.models import Booth, Event
from booth.extensions import db


def this_booth(session) -> Booth | None:
    return session.scalar(select(Booth).options(joinedload(Booth.event)).order_by(Booth.created_at).limit(1))


def current_booth() -> Booth | None:
    """The node's booth (booth role only); cached for the request."""
    if current_app.config["ROLE"] != "booth":
        return None
    if "booth" not in g:
        g.booth = this_booth(db.session)
    return g.booth


def current_event() -> Event | None:
    booth = current_booth()
    return booth.event if booth is not None else None
