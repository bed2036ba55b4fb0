from __future__ import annotations

from datetime import datetime

from booth.audit.models import AuditEntry


def record(session, action: str, *, now: datetime, actor=None, device=None, record_id=None,
           staff_code: str | None = None) -> AuditEntry:
    """Append one audit entry. ``record_id`` is an id, never a value typed by a person."""
    entry = AuditEntry(
        at=now,
        staff_code=actor.code if actor is not None else staff_code,
        device_id=device.id if device is not None else None,
        action=action,
        record_id=str(record_id) if record_id is not None else None,
    )
    session.add(entry)
    session.flush()
    return entry
