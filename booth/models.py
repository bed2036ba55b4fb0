"""Import every model so that ``db.metadata`` (and so Alembic) knows every table."""
from booth.audit.models import AuditEntry  # noqa: F401
from booth.auth.models import Device, EnrollmentCode, Staff, StaffSession  # noqa: F401
from booth.events.models import Booth, Event  # noqa: F401
