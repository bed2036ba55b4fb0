from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booth.db import new_id
from booth.extensions import db


class Event(db.Model):
    """A one-day (usually) event such as a Pride march; several booths can serve it."""

    __tablename__ = "events"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(120))
    day: Mapped[date]
    place: Mapped[str] = mapped_column(String(160))
    timezone: Mapped[str] = mapped_column(String(64))
    # Base URL of the central server for QR codes (typed at setup or filled in by sync enrollment)
    central_base_url: Mapped[str | None] = mapped_column(String(300))
    # Central only: the central event a booth's own event record counts under (set when the node that
    # pushed it is linked to a central event), so every booth of a march reports as one event.
    central_event_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("events.id"))
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    booths: Mapped[list["Booth"]] = relationship(back_populates="event")


class Booth(db.Model):
    """This node's booth. A booth node holds exactly one; central holds every booth it has merged."""

    __tablename__ = "booths"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"))
    name: Mapped[str] = mapped_column(String(80))
    # Clock difference accepted at setup (browser − node, seconds), kept for the record
    setup_clock_skew_s: Mapped[int | None]
    # Referral slips: "80mm" (thermal roll) or "a6"; a CUPS queue for one-tap printing (None: browser print)
    slip_format: Mapped[str] = mapped_column(String(8), default="80mm", server_default="80mm")
    printer_queue: Mapped[str | None] = mapped_column(String(60))
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    event: Mapped[Event] = relationship(back_populates="booths")
