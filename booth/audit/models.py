from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from booth.db import new_id
from booth.extensions import db


class AuditEntry(db.Model):
    """Who (staff code), which device, what action, which record, when. Append-only.

    Database triggers (see the migration) refuse DELETE and any UPDATE except replacing
    ``record_id`` (a later purge swaps it for a keyed hash). No personal data, ever.
    """

    __tablename__ = "audit_entries"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(index=True)
    staff_code: Mapped[str | None] = mapped_column(String(16))
    device_id: Mapped[uuid.UUID | None]
    action: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str | None] = mapped_column(String(80))
