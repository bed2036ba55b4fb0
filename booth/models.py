"""Import every model so that ``db.metadata`` (and so Alembic) knows every table."""
from booth.audit.models import AuditEntry  # noqa: F401
from booth.auth.models import Device, EnrollmentCode, Staff, StaffSession  # noqa: F401
from booth.events.models import Booth, Event  # noqa: F401
from booth.core.idempotency import FormSubmission  # noqa: F401
from booth.counseling.models import Counseling  # noqa: F401
from booth.screening.models import Screening, ScreeningResult  # noqa: F401
from booth.settings.models import ClinicalSettings, KitProduct  # noqa: F401
from booth.stock.models import KitLot, QcRun, Shift, StockMovement, TemperatureLog  # noqa: F401
from booth.visits.models import Consent, DayClosure, Visit  # noqa: F401
from booth.reports.models import ReportBooth, ReportDay, ReportPending  # noqa: F401
from booth.referrals.models import (Destination, Linkage, ProvisionalArrival, Referral,  # noqa: F401
                                    RoutingRule, StaffDestination)
from booth.sync.models import (NodeStaff, SyncAck, SyncNode, SyncNonce, SyncPurged,  # noqa: F401
                               SyncQuarantine, SyncRecord)
import booth.sync.versioning  # noqa: F401,E402  (version bump on every change of a synced row)
