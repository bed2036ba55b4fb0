"""Starting a device (the read-window clock starts on the server), reading it, closing it out."""
from __future__ import annotations

from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from booth.audit import services as audit
from booth.errors import DomainError
from booth.screening import algorithm
from booth.screening.models import INVALID_REASONS, Screening, ScreeningResult
from booth.settings.models import ClinicalSettings, KitProduct
from booth.stock import services as stock
from booth.stock.models import KitLot
from booth.visits import services as visits
from booth.visits.models import Visit

MAX_SLOT = 60


class ReadWindowError(DomainError):
    def __init__(self, screening: Screening, now: datetime):
        wait = screening.read_window().wait(screening.started_at, now)
        minutes, seconds = divmod(int(wait.total_seconds()) + (1 if wait.microseconds else 0), 60)
        super().__init__(_l("Too early to read: wait %(min)s min %(sec)s s more. Reading early gives wrong results.",
                            min=minutes, sec=seconds))
        self.wait = wait


def running(session, booth_id=None) -> list[Screening]:
    q = select(Screening).where(Screening.state == "running").order_by(Screening.started_at)
    if booth_id is not None:
        q = q.join(Visit).where(Visit.booth_id == booth_id)
    return session.scalars(q).all()


def visit_screenings(session, visit_id) -> list[Screening]:
    return session.scalars(select(Screening).where(Screening.visit_id == visit_id)
                           .order_by(Screening.started_at)).all()


def used_slots(session, booth_id) -> set[int]:
    """The tray slots of the booth's running devices."""
    return set(session.scalars(select(Screening.slot).join(Visit).where(Screening.state == "running",
                                                                        Visit.booth_id == booth_id)))


def free_slot(session, booth_id, used: set[int] | None = None) -> int:
    used = used_slots(session, booth_id) if used is None else used
    return next(i for i in range(1, MAX_SLOT + 2) if i not in used)


def start(session, *, visit: Visit, product: KitProduct, lot: KitLot, sample_type: str, slot: int | None,
          settings: ClinicalSettings | None, today: date, now: datetime, actor) -> Screening:
    visits.ensure_editable(session, visit, actor)
    if settings is None or settings.status != "signed":
        raise DomainError(_l("The clinical settings are not signed off yet: ask the clinical lead."))
    configured = settings.product(product.code)
    if configured is None:
        raise DomainError(_l("This product is not in the signed-off settings of this event."), "product")
    if lot.product_id != product.id:
        raise DomainError(_l("This lot belongs to another product."), "lot")
    stock.check_usable(session, lot, today)
    if sample_type not in configured.get("samples", []):
        raise DomainError(_l("This product does not take that sample type."), "sample_type")
    targets = [d for d in product.targets if d in settings.diseases]
    if not targets:
        raise DomainError(_l("This booth does not offer the tests of this product."), "product")
    for disease in targets:
        consent = visits.active_consent(visit, disease)
        if consent is None or not consent.given:
            raise DomainError(_l("Record the person's consent for %(disease)s before starting the test.",
                                 disease=disease_label(disease)), "product")
    existing = visit_screenings(session, visit.id)
    if any(s.state == "running" and set(s.product.targets) & set(targets) for s in existing):
        raise DomainError(_l("A device for this test is already running for this visit."), "product")
    derived = visits.conclusions(visit, existing, settings)
    for disease in targets:
        d = derived.get(disease)
        if d is not None and d.final and d.conclusion not in (algorithm.Conclusion.NOT_TESTED,
                                                              algorithm.Conclusion.KNOWN_POSITIVE_NOT_TESTED) \
                and not product.is_dual:
            raise DomainError(_l("This visit already has a final result for %(disease)s.",
                                 disease=disease_label(disease)), "product")
        if d is not None and d.next_step is algorithm.NextStep.SECOND_TEST and d.first_product == product.code:
            raise DomainError(_l("The second test must be a different product from the first."), "product")
    used = used_slots(session, visit.booth_id)  # read once: the caller serializes starts (the slot is taken next)
    if slot is None:
        slot = free_slot(session, visit.booth_id, used)
    if not isinstance(slot, int) or not 1 <= slot <= MAX_SLOT:
        raise DomainError(_l("Choose a tray slot between 1 and %(n)s.", n=MAX_SLOT), "slot")
    if slot in used:
        raise DomainError(_l("Tray slot %(slot)s is taken by another running device.", slot=slot), "slot")
    rf = lot.read_from_s if lot.read_from_s is not None else configured["read_from_s"]
    ru = lot.read_until_s if lot.read_until_s is not None else configured["read_until_s"]
    s = Screening(visit_id=visit.id, product_id=product.id, lot_id=lot.id, settings_id=settings.id,
                  sample_type=sample_type, slot=slot, started_at=now, started_by=actor.code if actor else None,
                  read_from_s=rf, read_until_s=ru, created_at=now, updated_at=now)
    s.product, s.lot, s.visit = product, lot, visit
    session.add(s)
    session.flush()
    stock.use_device(session, booth_id=visit.booth_id, lot=lot, now=now, actor=actor, visit_id=visit.id,
                     screening_id=s.id)
    visits.touch(visit, now)
    audit.record(session, "screening.start", now=now, actor=actor, record_id=s.id)
    return s


def disease_label(disease: str) -> str:
    return str({"hiv": _l("HIV"), "hcv": _l("hepatitis C"), "syphilis": _l("syphilis")}.get(disease, disease))


def _result(s: Screening, disease, outcome, reason, now, actor, replaces=None) -> ScreeningResult:
    return ScreeningResult(screening_id=s.id, disease=disease, outcome=outcome, invalid_reason=reason,
                           lot_number=s.lot.lot_number, lot_expires_on=s.lot.expires_on.isoformat(),
                           recorded_at=now, recorded_by=actor.code if actor else None,
                           replaces_id=replaces.id if replaces else None, created_at=now, updated_at=now)


def record_result(session, screening: Screening, results: dict[str, tuple[str, str | None]], *, now: datetime,
                  actor, expected_version: int | None = None) -> Screening:
    """``results``: disease → (outcome, invalid reason). A dual device needs both of its results."""
    if expected_version is not None and int(expected_version) != screening.version:
        raise visits.StaleError(_l("Someone else recorded this device a moment ago. Here is its current state."))
    if screening.state != "running":
        raise DomainError(_l("This device has already been read."))
    visits.ensure_editable(session, screening.visit, actor)
    targets = [d for d in screening.product.targets
               if d in (screening_settings(session, screening).diseases)]
    if set(results) != set(targets):
        raise DomainError(_l("Record one result for each test on this device (%(tests)s).",
                             tests=", ".join(disease_label(d) for d in targets)), "outcome")
    clean = {}
    for disease, (outcome, reason) in results.items():
        if outcome not in ("reactive", "non_reactive", "invalid"):
            raise DomainError(_l("Choose reactive, non-reactive or invalid."), "outcome")
        if outcome == "invalid":
            if reason not in INVALID_REASONS:
                raise DomainError(_l("Choose why the result is invalid."), "invalid_reason")
        else:
            reason = None
        clean[disease] = (outcome, reason)
    window = screening.read_window()
    early_invalid = all(o == "invalid" and r == "read_too_early" for o, r in clean.values())
    if window.is_early(screening.started_at, now) and not early_invalid:
        raise ReadWindowError(screening, now)
    if window.is_late(screening.started_at, now):
        clean = {d: ("invalid", "read_too_late") for d in clean}
    for disease, (outcome, reason) in clean.items():
        r = _result(screening, disease, outcome, reason, now, actor)
        screening.results.append(r)
    screening.state = "read"
    screening.read_at = now
    screening.read_by = actor.code if actor else None
    screening.updated_at = now
    visits.touch(screening.visit, now)
    session.flush()
    audit.record(session, "screening.read", now=now, actor=actor, record_id=screening.id)
    return screening


def screening_settings(session, screening: Screening) -> ClinicalSettings:
    return session.get(ClinicalSettings, screening.settings_id)


def close_out(session, screening: Screening, *, now: datetime, actor, reason: str = "procedure_error") -> Screening:
    """A running device that will not be read (the person left, the device was dropped): invalid, wasted."""
    if screening.state != "running":
        raise DomainError(_l("This device has already been read."))
    if reason not in INVALID_REASONS:
        raise DomainError(_l("Choose why the result is invalid."), "invalid_reason")
    settings = screening_settings(session, screening)
    for disease in [d for d in screening.product.targets if d in settings.diseases]:
        r = _result(screening, disease, "invalid", reason, now, actor)
        screening.results.append(r)
    screening.state = "closed_out"
    screening.read_at = now
    screening.updated_at = now
    visits.touch(screening.visit, now)
    session.flush()
    audit.record(session, "screening.close_out", now=now, actor=actor, record_id=screening.id)
    return screening


def correct_result(session, result: ScreeningResult, *, outcome: str | None, invalid_reason: str | None,
                   reason: str, now: datetime, actor) -> ScreeningResult | None:
    """Void a result (the original stays in history) and, unless ``outcome`` is None, record the new one."""
    if result.voided_at is not None:
        raise DomainError(_l("This entry was already corrected."))
    s = result.screening
    visits.may_correct(session, author=result.recorded_by, recorded_at=result.recorded_at, visit=s.visit,
                       actor=actor, now=now, reason=reason)
    new = None
    if outcome is not None:
        if outcome not in ("reactive", "non_reactive", "invalid"):
            raise DomainError(_l("Choose reactive, non-reactive or invalid."), "outcome")
        if outcome == "invalid" and invalid_reason not in INVALID_REASONS:
            raise DomainError(_l("Choose why the result is invalid."), "invalid_reason")
        new = _result(s, result.disease, outcome, invalid_reason if outcome == "invalid" else None, now, actor,
                      replaces=result)
    visits.void(result, reason=reason, now=now, actor=actor)
    if new is not None:
        s.results.append(new)
    s.updated_at = now
    visits.touch(s.visit, now)
    session.flush()
    audit.record(session, "screening.correct", now=now, actor=actor, record_id=result.id)
    return new
