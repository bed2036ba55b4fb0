"""Clinical settings of an event: diseases offered, kit products and read windows, algorithm per
disease, consent texts. A clinical lead signs a version off; a signed version is locked, and any
change makes a new draft version that needs a new sign-off."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from booth.db import new_id
from booth.extensions import db


class KitProduct(db.Model):
    """A rapid-test product (the catalogue). Read windows here are defaults; a lot may override them."""

    __tablename__ = "kit_products"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    targets_csv: Mapped[str] = mapped_column("targets", String(40))       # "hiv" or "hiv,syphilis"
    samples_csv: Mapped[str] = mapped_column("samples", String(60))       # "fingerstick,oral_fluid"
    read_from_s: Mapped[int]
    read_until_s: Mapped[int]
    temp_min_c: Mapped[int] = mapped_column(default=2)
    temp_max_c: Mapped[int] = mapped_column(default=30)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    @property
    def targets(self) -> list[str]:
        return [t for t in self.targets_csv.split(",") if t]

    @property
    def samples(self) -> list[str]:
        return [s for s in self.samples_csv.split(",") if s]

    @property
    def is_dual(self) -> bool:
        return len(self.targets) > 1


class ClinicalSettings(db.Model):
    """One version of an event's clinical settings. ``content`` is the whole snapshot:

    {"diseases": ["hiv", "hcv"], "algorithms": {"hiv": "two_test", ...},
     "products": {"determine-hiv": {"read_from_s": 900, "read_until_s": 3600, "samples": [...]}, ...},
     "consent": {"es": "...", "en": "..."}}
    """

    __tablename__ = "clinical_settings"
    __table_args__ = (UniqueConstraint("event_id", "number"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"))
    number: Mapped[int]
    content: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(12), default="draft")  # draft | signed | superseded
    created_by: Mapped[str | None] = mapped_column(String(16))
    signed_by: Mapped[str | None] = mapped_column(String(16))
    signed_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    @property
    def diseases(self) -> list[str]:
        return list(self.content.get("diseases", []))

    def algorithm(self, disease: str) -> str:
        return self.content.get("algorithms", {}).get(disease, "one_test")

    def product(self, code: str) -> dict | None:
        return self.content.get("products", {}).get(code)

    def consent_text(self, language: str) -> str:
        texts = self.content.get("consent", {})
        return texts.get(language) or texts.get("es") or ""
