"""An anonymous visit: no name, phone, address or birth date, ever. A call number for the day."""
from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booth.db import new_id
from booth.extensions import db

AGE_BANDS = ("lt15", "15-19", "20-24", "25-29", "30-34", "35-39", "40-44", "45-49", "50-54", "55-59",
             "60-64", "65+", "unknown")
GENDERS = ("woman", "man", "trans_woman", "trans_man", "non_binary", "another", "prefer_not")
SEX_AT_BIRTH = ("female", "male", "intersex", "prefer_not")
BENEFICIARY = ("yes", "no", "unknown")
LAST_TEST = ("lt3m", "3to12m", "gt12m", "never")
KEY_POPULATIONS = ("msm", "trans_woman", "trans_man", "non_binary", "sex_work", "pwid", "chemsex")
FINAL_STATES = ("done", "left_before_result", "left_before_test")


class Visit(db.Model):
    __tablename__ = "visits"
    __table_args__ = (UniqueConstraint("booth_id", "day", "call_number"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"), index=True)
    booth_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("booths.id"))
    day: Mapped[date] = mapped_column(index=True)          # the event's local date
    seq: Mapped[int]                                       # 1, 2, 3 … per booth and day
    call_number: Mapped[str] = mapped_column(String(8))    # "A-047"
    arrived_at: Mapped[datetime]
    age_band: Mapped[str] = mapped_column(String(8))
    gender_identity: Mapped[str | None] = mapped_column(String(16))
    sex_at_birth: Mapped[str | None] = mapped_column(String(12))
    beneficiary: Mapped[str | None] = mapped_column(String(8))
    first_time: Mapped[bool | None]
    last_test: Mapped[str | None] = mapped_column(String(8))
    known_hiv_positive: Mapped[bool | None]
    previous_hcv_treatment: Mapped[bool | None]
    treated_syphilis_before: Mapped[bool | None]
    exposure_72h: Mapped[bool | None]
    key_populations_asked: Mapped[bool] = mapped_column(default=False)
    key_populations: Mapped[list] = mapped_column(JSON, default=list)
    final_state: Mapped[str | None] = mapped_column(String(20))   # None while open
    closed_at: Mapped[datetime | None]
    created_by: Mapped[str | None] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __mapper_args__ = {"version_id_col": version}

    consents: Mapped[list["Consent"]] = relationship(back_populates="visit", order_by="Consent.recorded_at")


class Consent(db.Model):
    """Consent (or refusal) per disease, with the consent-text version and language shown."""

    __tablename__ = "consents"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    visit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("visits.id"), index=True)
    disease: Mapped[str] = mapped_column(String(12))
    given: Mapped[bool]
    settings_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinical_settings.id"))
    text_version: Mapped[int]
    language: Mapped[str] = mapped_column(String(8))
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str | None] = mapped_column(String(16))
    voided_at: Mapped[datetime | None]
    void_reason: Mapped[str | None] = mapped_column(String(32))
    voided_by: Mapped[str | None] = mapped_column(String(16))
    replaces_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("consents.id"))
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    visit: Mapped[Visit] = relationship(back_populates="consents")


class DayClosure(db.Model):
    """Close of day: after it, only coordinator corrections with a reason."""

    __tablename__ = "day_closures"
    __table_args__ = (UniqueConstraint("booth_id", "day"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    booth_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("booths.id"))
    day: Mapped[date]
    closed_at: Mapped[datetime]
    closed_by: Mapped[str | None] = mapped_column(String(16))
    kit_counts: Mapped[dict] = mapped_column(JSON, default=dict)   # lot id → {"expected", "counted", "reason"}
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
