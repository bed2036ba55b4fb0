from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booth.db import new_id
from booth.extensions import db


class Role(str, enum.Enum):
    TESTER = "tester"
    COUNSELOR = "counselor"
    COORDINATOR = "coordinator"
    CLINIC = "clinic"

    @classmethod
    def parse(cls, value: str) -> "Role":
        return cls(value.strip().lower())


class Staff(db.Model):
    """A person working at a booth or at central, known by a short code (no name needed)."""

    __tablename__ = "staff"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    alias: Mapped[str | None] = mapped_column(String(40))
    roles_csv: Mapped[str] = mapped_column("roles", String(80))
    clinical_lead: Mapped[bool] = mapped_column(Boolean, default=False)
    # Booth: a 6-digit PIN. Central: a password and a TOTP secret. Never synced.
    pin_hash: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_confirmed_at: Mapped[datetime | None]
    totp_last_step: Mapped[int | None]   # the last accepted TOTP time step (no replay)
    failed_attempts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(Role(r) for r in self.roles_csv.split(",") if r)

    @roles.setter
    def roles(self, value) -> None:
        self.roles_csv = ",".join(sorted(Role(r).value for r in value))

    def has_role(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now


class Device(db.Model):
    """An enrolled tablet (or tray display). The cookie holds only a random token; its hash is here."""

    __tablename__ = "devices"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16), default="tablet")  # tablet | display
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    locale: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class EnrollmentCode(db.Model):
    """A one-time code that turns a browser into an enrolled device; valid for a few minutes."""

    __tablename__ = "enrollment_codes"
    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="tablet")
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    device_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("devices.id"))


class StaffSession(db.Model):
    """A server-side, revocable login. The cookie holds only a random token; its hash is here."""

    __tablename__ = "staff_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff.id"), index=True)
    device_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("devices.id"))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]

    staff: Mapped[Staff] = relationship()
    device: Mapped[Device | None] = relationship()
