"""Kit lots, stock movements, storage temperature, quality-control runs and staff shifts."""
from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booth.db import new_id
from booth.extensions import db
from booth.settings.models import KitProduct

SUPPLIES = ("condom", "lubricant", "self_test")


class KitLot(db.Model):
    __tablename__ = "kit_lots"
    # one row per (product, lot number) on a node (the service looks it up); not unique at central,
    # where several booths receive boxes of the same lot
    __table_args__ = (Index("ix_kit_lots_product_lot", "product_id", "lot_number"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("kit_products.id"))
    lot_number: Mapped[str] = mapped_column(String(40))
    expires_on: Mapped[date]
    read_from_s: Mapped[int | None]      # per-lot override of the product's read window
    read_until_s: Mapped[int | None]
    quarantined_at: Mapped[datetime | None]
    quarantine_reason: Mapped[str | None] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    product: Mapped[KitProduct] = relationship()

    def expired(self, today: date) -> bool:
        return self.expires_on < today


class StockMovement(db.Model):
    """Every change of stock is a row: received (+), used / wasted / handed out (−), adjustment (±).

    ``lot_id`` is set for test kits; supplies (condoms, lubricant, self-test kits) use ``item``.
    """

    __tablename__ = "stock_movements"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # indexed: central holds every booth's movements and sums one booth's (its summary per booth-day)
    booth_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("booths.id"), index=True)
    item: Mapped[str] = mapped_column(String(20))        # "kit" or one of SUPPLIES
    lot_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("kit_lots.id"), index=True)
    quantity: Mapped[int]
    kind: Mapped[str] = mapped_column(String(20))        # received | used | wasted | handed_out | adjustment | count
    reason: Mapped[str | None] = mapped_column(String(40))
    visit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("visits.id"), index=True)
    screening_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("screenings.id"))
    staff_code: Mapped[str | None] = mapped_column(String(16))
    at: Mapped[datetime]
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class TemperatureLog(db.Model):
    __tablename__ = "temperature_logs"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    booth_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("booths.id"))
    celsius: Mapped[float]
    out_of_range: Mapped[bool]
    staff_code: Mapped[str | None] = mapped_column(String(16))
    at: Mapped[datetime]
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class QcRun(db.Model):
    """A positive and a negative control run on a lot (per day)."""

    __tablename__ = "qc_runs"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    lot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("kit_lots.id"))
    day: Mapped[date]
    positive_ok: Mapped[bool]
    negative_ok: Mapped[bool]
    staff_code: Mapped[str | None] = mapped_column(String(16))
    at: Mapped[datetime]
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Shift(db.Model):
    __tablename__ = "shifts"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    booth_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("booths.id"))
    # staff.id on a booth; node_staff.id at central (a booth's staff travel as references only), so no
    # foreign key: the shift service takes the staff row itself
    staff_id: Mapped[uuid.UUID] = mapped_column(index=True)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
