"""Destinations, referrals (booth-owned) and their linkage (clinic-owned, a separate record).

A referral carries a random folio and a QR token (only its hash is stored) — never a name or any
data about the person. What the clinic records (arrival, confirmatory result, treatment start,
closure) lives in ``linkages``, keyed by the referral id, so a later booth update of the referral can
never overwrite it (the sync issue relies on this).
"""
from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import JSON, Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booth.db import new_id
from booth.extensions import db

KINDS = ("family_clinic", "hiv_clinic", "hepatitis_service", "prep_service", "pep_emergency")
REASONS = ("hiv_confirmation", "hcv_viral_load", "syphilis_confirmation", "discordant_lab", "prep", "pep_urgent",
           "other_care")
SERVES = ("everyone", "beneficiaries", "non_beneficiaries")
STATUSES = ("issued", "arrived", "confirmed", "not_confirmed", "treatment_started", "closed", "expired", "cancelled")
CONFIRM_RESULTS = ("hiv_confirmed", "hiv_not_confirmed", "hiv_indeterminate", "hcv_rna_detected",
                   "hcv_rna_not_detected", "syphilis_active", "syphilis_past_treated", "syphilis_not_confirmed")
CLOSE_REASONS = ("not_confirmed", "lost", "declined", "completed", "other_service")


class Destination(db.Model):
    __tablename__ = "destinations"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(120))            # for staff screens only
    slip_name: Mapped[str] = mapped_column(String(80))        # neutral: printed on the slip
    kind: Mapped[str] = mapped_column(String(24))
    address: Mapped[str] = mapped_column(String(200))
    hours: Mapped[str] = mapped_column(String(120))
    open_days: Mapped[list] = mapped_column(JSON, default=list)   # ISO weekdays 1–7
    phone: Mapped[str] = mapped_column(String(40))
    what_to_bring: Mapped[str] = mapped_column(String(200))
    serves: Mapped[str] = mapped_column(String(20), default="everyone")
    reasons: Mapped[list] = mapped_column(JSON, default=list)
    is_example: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    def open_on(self, day: date) -> bool:
        return not self.open_days or day.isoweekday() in self.open_days


class RoutingRule(db.Model):
    """Suggest a destination: for a reason and a beneficiary status, in priority order."""

    __tablename__ = "routing_rules"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    reason: Mapped[str] = mapped_column(String(24))
    beneficiary: Mapped[str] = mapped_column(String(8), default="any")   # yes | no | any
    destination_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("destinations.id"))
    priority: Mapped[int] = mapped_column(default=100)
    open_today_only: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    destination: Mapped[Destination] = relationship()


class Referral(db.Model):
    __tablename__ = "referrals"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    visit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("visits.id"), index=True)
    folio: Mapped[str] = mapped_column(String(9), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[str] = mapped_column(String(24))
    destination_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("destinations.id"))
    issued_at: Mapped[datetime]
    issued_by: Mapped[str | None] = mapped_column(String(16))
    valid_until: Mapped[date]
    status: Mapped[str] = mapped_column(String(12), default="issued")   # issued | cancelled (booth-owned)
    printed_count: Mapped[int] = mapped_column(default=0)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    destination: Mapped[Destination] = relationship()
    linkage: Mapped["Linkage | None"] = relationship(back_populates="referral", uselist=False)


class Linkage(db.Model):
    """What the receiving clinic records. Central-owned; one per referral."""

    __tablename__ = "linkages"
    __table_args__ = (UniqueConstraint("referral_id"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"))
    status: Mapped[str] = mapped_column(String(20), default="issued")
    arrived_on: Mapped[date | None]
    confirm_result: Mapped[str | None] = mapped_column(String(24))
    treatment_started_on: Mapped[date | None]
    closed_reason: Mapped[str | None] = mapped_column(String(20))
    closed_at: Mapped[datetime | None]
    recorded_by: Mapped[str | None] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    referral: Mapped[Referral] = relationship(back_populates="linkage")


class ProvisionalArrival(db.Model):
    """A person reached the clinic before the booth's data reached central (sync issue matches these)."""

    __tablename__ = "provisional_arrivals"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    token_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    folio: Mapped[str | None] = mapped_column(String(9), index=True)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)   # QR MAC verified under a node's key
    destination_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("destinations.id"))
    arrived_on: Mapped[date]
    recorded_by: Mapped[str | None] = mapped_column(String(16))
    matched_referral_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("referrals.id"))
    expires_on: Mapped[date]
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class StaffDestination(db.Model):
    """Which destination(s) a clinic user works for: they see only referrals addressed there."""

    __tablename__ = "staff_destinations"
    staff_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff.id"), primary_key=True)
    destination_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("destinations.id"), primary_key=True)
