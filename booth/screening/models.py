"""A screening is one rapid-test device: product, lot, sample, tray slot, a read-window clock that
lives on the server, and one result per disease it tests (two on a dual HIV/syphilis device)."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booth.db import new_id
from booth.extensions import db
from booth.screening.windows import ReadWindow
from booth.settings.models import KitProduct
from booth.stock.models import KitLot
from booth.visits.models import Visit

INVALID_REASONS = ("no_control_line", "background", "partial_line", "read_too_early", "read_too_late",
                   "expired_kit", "procedure_error")


class Screening(db.Model):
    __tablename__ = "screenings"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    visit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("visits.id"), index=True)
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("kit_products.id"))
    lot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("kit_lots.id"))
    settings_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinical_settings.id"))
    sample_type: Mapped[str] = mapped_column(String(16))
    slot: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(index=True)
    started_by: Mapped[str | None] = mapped_column(String(16))
    read_from_s: Mapped[int]          # the window in force when the device was started
    read_until_s: Mapped[int]
    state: Mapped[str] = mapped_column(String(12), default="running")  # running | read | closed_out
    read_at: Mapped[datetime | None]
    read_by: Mapped[str | None] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __mapper_args__ = {"version_id_col": version}

    visit: Mapped[Visit] = relationship()
    product: Mapped[KitProduct] = relationship()
    lot: Mapped[KitLot] = relationship()
    results: Mapped[list["ScreeningResult"]] = relationship(back_populates="screening",
                                                            order_by="ScreeningResult.recorded_at")

    def read_window(self) -> ReadWindow:
        return ReadWindow(timedelta(seconds=self.read_from_s), timedelta(seconds=self.read_until_s))

    def current_results(self) -> list["ScreeningResult"]:
        return [r for r in self.results if r.voided_at is None]


class ScreeningResult(db.Model):
    """The result of one device for one disease. A correction voids it and adds a new row."""

    __tablename__ = "screening_results"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    screening_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("screenings.id"), index=True)
    disease: Mapped[str] = mapped_column(String(12))
    outcome: Mapped[str] = mapped_column(String(16))              # reactive | non_reactive | invalid
    invalid_reason: Mapped[str | None] = mapped_column(String(20))
    lot_number: Mapped[str] = mapped_column(String(40))           # recorded with every result
    lot_expires_on: Mapped[str] = mapped_column(String(10))
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str | None] = mapped_column(String(16))
    voided_at: Mapped[datetime | None]
    void_reason: Mapped[str | None] = mapped_column(String(32))
    voided_by: Mapped[str | None] = mapped_column(String(16))
    replaces_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("screening_results.id"))
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    screening: Mapped[Screening] = relationship(back_populates="results")
