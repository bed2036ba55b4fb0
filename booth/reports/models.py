"""Central's summary of each booth's day, kept up to date by sync (``booth.reports.central.refresh_days``).

The central dashboard reads these rows instead of the raw tables: a million visits are a few hundred
booth-days. The table exists on a booth too (one migration history) but stays empty there.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import JSON, ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from booth.extensions import db


class ReportDay(db.Model):
    """One booth's day as ``indicators.daily_totals`` counts it, with exact counts (coordinators only)."""

    __tablename__ = "report_days"
    booth_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("booths.id"), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)      # the event's local date
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"))   # the booth's own event row
    visits: Mapped[int]
    totals: Mapped[dict] = mapped_column(JSON)               # central.encode: the day's counts (exact view)
    tables: Mapped[dict | None] = mapped_column(JSON)        # central.encode_tables: as exports suppress them
    referrals: Mapped[dict | None] = mapped_column(JSON)     # disease → ids of referrals for confirmation
    schema: Mapped[int]                                      # central.SUMMARY_SCHEMA when computed
    refreshed_at: Mapped[datetime]

    __table_args__ = (Index("ix_report_days_event_day", "event_id", "day"),)


class ReportBooth(db.Model):
    """Every summarised day of one booth added up (``central.merge_docs``), recomputed with its days: the
    dashboard without a date filter reads one row per booth instead of one per booth-day."""

    __tablename__ = "report_booths"
    booth_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("booths.id"), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"), index=True)   # the booth's own event row
    first_day: Mapped[date]
    last_day: Mapped[date]
    days: Mapped[int]
    totals: Mapped[dict] = mapped_column(JSON)       # merged summary, plus "days": per-day visits, tested, reactive
    referrals: Mapped[dict] = mapped_column(JSON)    # disease → [[day, [referral ids]], …]
    schema: Mapped[int]
    refreshed_at: Mapped[datetime]                   # the oldest of its days' summaries


class ReportPending(db.Model):
    """Booth-days a push changed whose summary is not recomputed yet: the merge notes them batch by batch and
    the summaries are recomputed once, when the node says its push is over (its last batch, its receipt, the
    end of a bundle), or by ``flask central-reports rebuild``; the dashboard says how many are waiting."""

    __tablename__ = "report_pending"
    booth_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("booths.id"), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    since: Mapped[datetime]
