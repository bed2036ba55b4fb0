"""Counseling given (pre-test and post-test): who, minutes from the taps, topics as a checklist."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from booth.db import new_id
from booth.extensions import db

TOPICS = ("window_period", "confirmation", "prep", "pep", "condoms", "hcv_treatment", "harm_reduction",
          "partner_testing", "rights_free_care", "mental_health")


class Counseling(db.Model):
    __tablename__ = "counseling"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    visit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("visits.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))            # pre | post
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    minutes: Mapped[int | None]
    counselor_code: Mapped[str | None] = mapped_column(String(16))
    result_given: Mapped[bool | None]
    topics: Mapped[list] = mapped_column(JSON, default=list)
    prep_interest: Mapped[bool | None]
    pep_need: Mapped[bool | None]
    recorded_at: Mapped[datetime]
    voided_at: Mapped[datetime | None]
    void_reason: Mapped[str | None] = mapped_column(String(32))
    voided_by: Mapped[str | None] = mapped_column(String(16))
    replaces_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("counseling.id"))
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
