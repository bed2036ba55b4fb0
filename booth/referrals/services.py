"""Referrals: destinations with neutral slip names, routing rules, issuing a folio + QR token, and
the clinic's linkage record (arrival → confirmation → treatment → closed)."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from booth.audit import services as audit
from booth.db import new_id
from booth.auth.models import Role
from booth.errors import DomainError
from booth.instance import write_private
from booth.referrals import codes
from booth.referrals.models import (CLOSE_REASONS, CONFIRM_RESULTS, KINDS, REASONS, SERVES, Destination, Linkage,
                                    Referral, RoutingRule, StaffDestination)
from booth.visits.models import Visit

KEY_FILE = "referral_key"
DEFAULT_VALID_DAYS = 30
MAX_VALID_DAYS = 90

# Words that out the person carrying a slip. Short ones match whole words; stems match anywhere.
FORBIDDEN_WORDS = ("vih", "hiv", "sida", "aids", "vhc", "hcv", "vhb", "its", "ets", "sti", "std", "lgbt", "lgbtq",
                   "gay", "trans", "prep", "pep", "arv", "tar")
FORBIDDEN_STEMS = ("hepatit", "hepato", "infectolog", "sifil", "syphil", "capasits", "reactiv", "positiv", "venere", "venereal",
                   "infeccion", "infection", "transmision", "transmitted", "antirretrovir", "antiretrovir",
                   "seropositiv", "serodiscord", "diversidad sexual", "condesa")


def _plain(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))


def forbidden_in(text: str) -> list[str]:
    plain = _plain(text or "")
    words = set(re.findall(r"[a-z0-9]+", plain))
    found = [w for w in FORBIDDEN_WORDS if w in words]
    found += [s for s in FORBIDDEN_STEMS if s in plain]
    return found


# ------------------------------------------------------------------ the node's referral key

def referral_key(instance_path) -> bytes:
    """A per-node secret (instance/referral_key, mode 0600), created at first use."""
    import secrets as _secrets

    path = Path(instance_path) / KEY_FILE
    if not path.exists():
        write_private(path, _secrets.token_hex(32).encode())
    return bytes.fromhex(path.read_text().strip())


# ------------------------------------------------------------------ destinations

@dataclass
class DestinationInput:
    name: str
    slip_name: str
    kind: str
    address: str
    hours: str
    phone: str
    what_to_bring: str
    serves: str = "everyone"
    reasons: tuple = ()
    open_days: tuple = ()
    is_example: bool = False


def _text(value, field, limit, message, required=True):
    value = (value or "").strip()
    if (required and not value) or len(value) > limit:
        raise DomainError(message, field)
    return value


def validate_destination(d: DestinationInput) -> dict:
    out = dict(
        name=_text(d.name, "name", 120, _l("Enter the destination's name (at most 120 characters).")),
        slip_name=_text(d.slip_name, "slip_name", 80, _l("Enter the name printed on the slip (at most 80 characters).")),
        address=_text(d.address, "address", 200, _l("Enter the address (at most 200 characters).")),
        hours=_text(d.hours, "hours", 120, _l("Enter the opening hours (at most 120 characters).")),
        phone=_text(d.phone, "phone", 40, _l("Enter the phone number (at most 40 characters).")),
        what_to_bring=_text(d.what_to_bring, "what_to_bring", 200,
                            _l("Say what to bring (at most 200 characters)."), required=False),
    )
    bad = forbidden_in(out["slip_name"]) + forbidden_in(out["address"]) + forbidden_in(out["what_to_bring"])
    if bad:
        raise DomainError(_l("The slip would out the person who carries it: remove “%(words)s” from the name, "
                             "address or what to bring printed on the slip, and use a neutral name.",
                             words=", ".join(sorted(set(bad)))), "slip_name")
    if d.kind not in KINDS:
        raise DomainError(_l("Choose the kind of service."), "kind")
    if d.serves not in SERVES:
        raise DomainError(_l("Choose who the service attends."), "serves")
    reasons = list(dict.fromkeys(d.reasons))
    if not reasons or any(r not in REASONS for r in reasons):
        raise DomainError(_l("Choose the referral reasons this destination accepts."), "reasons")
    if any(str(x) not in ("1", "2", "3", "4", "5", "6", "7") for x in d.open_days):
        raise DomainError(_l("Choose the days it is open (Monday to Sunday)."), "open_days")
    days = sorted({int(x) for x in d.open_days})
    out.update(kind=d.kind, serves=d.serves, reasons=reasons, open_days=days, is_example=bool(d.is_example))
    return out


def save_destination(session, data: DestinationInput, *, now: datetime, actor, destination: Destination | None = None
                     ) -> Destination:
    fields = validate_destination(data)
    if destination is None:
        destination = Destination(created_at=now, updated_at=now, **fields)
        session.add(destination)
        action = "destination.add"
    else:
        for k, v in fields.items():
            setattr(destination, k, v)
        destination.updated_at = now
        destination.version += 1
        action = "destination.edit"
    session.flush()
    audit.record(session, action, now=now, actor=actor, record_id=destination.id)
    return destination


def add_rule(session, *, reason: str, beneficiary: str, destination: Destination, priority: int,
             open_today_only: bool, now: datetime, actor) -> RoutingRule:
    if reason not in REASONS:
        raise DomainError(_l("Choose the referral reason."), "reason")
    if beneficiary not in ("yes", "no", "any"):
        raise DomainError(_l("Choose whom the rule applies to."), "beneficiary")
    if reason not in destination.reasons:
        raise DomainError(_l("This destination does not accept that reason."), "destination")
    if not isinstance(priority, int) or not 1 <= priority <= 999:
        raise DomainError(_l("The priority is a number from 1 to 999."), "priority")
    rule = RoutingRule(reason=reason, beneficiary=beneficiary, destination_id=destination.id, priority=priority,
                       open_today_only=bool(open_today_only), created_at=now, updated_at=now)
    session.add(rule)
    session.flush()
    audit.record(session, "routing_rule.add", now=now, actor=actor, record_id=rule.id)
    return rule


def _serves(d: Destination, beneficiary: str | None) -> bool:
    if d.serves == "everyone":
        return True
    is_beneficiary = beneficiary == "yes"
    return is_beneficiary if d.serves == "beneficiaries" else not is_beneficiary


def suggest(session, *, reason: str, visit: Visit, today: date) -> Destination | None:
    who = "yes" if visit.beneficiary == "yes" else "no"
    rules = session.scalars(select(RoutingRule).order_by(RoutingRule.priority, RoutingRule.created_at)).all()
    for rule in rules:
        d = rule.destination
        if rule.reason != reason or rule.beneficiary not in (who, "any") or not d.active or reason not in d.reasons:
            continue
        if (rule.open_today_only or reason == "pep_urgent") and not d.open_on(today):
            continue
        return d
    for d in session.scalars(select(Destination).where(Destination.active.is_(True)).order_by(Destination.name)):
        if reason in d.reasons and _serves(d, visit.beneficiary) and (reason != "pep_urgent" or d.open_on(today)):
            return d
    return None


def default_valid_until(reason: str, today: date) -> date:
    return today if reason == "pep_urgent" else today + timedelta(days=DEFAULT_VALID_DAYS)


def reasons_for(view) -> list[str]:
    """Reasons the visit's conclusions call for (the counselor can choose others)."""
    from booth.screening.algorithm import Conclusion

    out = []
    for disease, d in view.conclusions.items():
        if d.conclusion is Conclusion.DISCORDANT_NEEDS_LAB:
            out.append("discordant_lab")
        elif d.conclusion is Conclusion.REACTIVE_NEEDS_CONFIRMATION:
            out.append({"hiv": "hiv_confirmation", "hcv": "hcv_viral_load",
                        "syphilis": "syphilis_confirmation"}[disease])
    if any(c.pep_need for c in view.counseling if c.voided_at is None) or view.visit.exposure_72h:
        out.append("pep_urgent")
    if any(c.prep_interest for c in view.counseling if c.voided_at is None):
        out.append("prep")
    return list(dict.fromkeys(out))


# ------------------------------------------------------------------ issuing

def issue(session, *, visit: Visit, reason: str, destination: Destination, valid_until: date, key: bytes,
          today: date, now: datetime, actor) -> tuple[Referral, str]:
    from booth.visits import services as visits

    if visits.day_locked(session, visit.booth_id, visit.day) and not (actor and actor.has_role(Role.COORDINATOR)):
        raise DomainError(_l("This day is closed: only a coordinator can correct it, with a reason."))
    if reason not in REASONS:
        raise DomainError(_l("Choose the referral reason."), "reason")
    if destination is None or not destination.active:
        raise DomainError(_l("Choose the destination."), "destination")
    if reason not in destination.reasons:
        raise DomainError(_l("This destination does not accept that reason: choose another."), "destination")
    if valid_until < today or valid_until > today + timedelta(days=MAX_VALID_DAYS):
        raise DomainError(_l("Valid until must be between today and %(days)s days from now.", days=MAX_VALID_DAYS),
                          "valid_until")
    existing = session.scalar(select(Referral).where(Referral.visit_id == visit.id, Referral.reason == reason,
                                                     Referral.status == "issued"))
    if existing is not None:
        raise DomainError(_l("This visit already has a referral for this reason: reprint it instead."), "reason")
    for _attempt in range(5):
        ref = Referral(id=new_id(), visit_id=visit.id, folio=codes.new_folio(), token_hash="pending", reason=reason,
                       destination_id=destination.id, issued_at=now, issued_by=actor.code if actor else None,
                       valid_until=valid_until, created_at=now, updated_at=now)
        token = codes.token_for(key, ref.id)
        ref.token_hash = codes.token_hash(token)
        try:
            with session.begin_nested():
                session.add(ref)
                session.flush()
            break
        except IntegrityError:  # a folio collision (1 in 10^12): draw again
            continue
    else:  # pragma: no cover
        raise DomainError(_l("Could not make a unique folio; try again."))
    ref.destination = destination
    visits.touch(visit, now)
    session.flush()
    audit.record(session, "referral.issue", now=now, actor=actor, record_id=ref.id)
    return ref, token


def cancel(session, ref: Referral, *, now: datetime, actor) -> None:
    if ref.status != "issued" or (ref.linkage is not None and ref.linkage.status != "issued"):
        raise DomainError(_l("This referral can no longer be cancelled."))
    ref.status = "cancelled"
    ref.updated_at = now
    ref.version += 1
    session.flush()
    audit.record(session, "referral.cancel", now=now, actor=actor, record_id=ref.id)


def slip_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/r/{token}"


def slip_data(ref: Referral, *, base_url: str, key: bytes, language: str):
    """Everything printed on the slip — and nothing about the reason, a result or the person."""
    from booth.referrals.slip import SlipData

    d = ref.destination
    return SlipData(folio=codes.display(ref.folio), url=slip_url(base_url, codes.token_for(key, ref.id)),
                    destination=d.slip_name, address=d.address, hours=d.hours, phone=d.phone,
                    what_to_bring=d.what_to_bring, valid_until=ref.valid_until, issued_on=ref.issued_at.date(),
                    counselor_code=ref.issued_by or "", urgent=ref.valid_until <= ref.issued_at.date(),
                    language=language)


# ------------------------------------------------------------------ lookups (rate-limited in the views)

def by_token(session, token: str | None) -> Referral | None:
    if codes.split_token(token) is None:
        return None
    return session.scalar(select(Referral).where(Referral.token_hash == codes.token_hash(token)))


def by_folio(session, typed: str | None) -> Referral | None:
    folio = codes.normalize(typed)
    if folio is None or not codes.is_valid(folio):
        return None
    return session.scalar(select(Referral).where(Referral.folio == folio))


def clinic_destinations(session, staff) -> set:
    return set(session.scalars(select(StaffDestination.destination_id).where(StaffDestination.staff_id == staff.id)))


def visible_to(session, ref: Referral | None, staff) -> bool:
    """Clinic staff see only referrals addressed to their own clinic(s)."""
    return ref is not None and ref.destination_id in clinic_destinations(session, staff)


def link_staff(session, *, staff, destination: Destination, now: datetime, actor) -> None:
    if not staff.has_role(Role.CLINIC):
        raise DomainError(_l("Only clinic staff can be linked to a destination."))
    if session.get(StaffDestination, (staff.id, destination.id)) is None:
        session.add(StaffDestination(staff_id=staff.id, destination_id=destination.id))
        session.flush()
        audit.record(session, "destination.link_staff", now=now, actor=actor, record_id=destination.id)


# ------------------------------------------------------------------ linkage (the clinic's record)

def status(ref: Referral, today: date) -> str:
    if ref.status == "cancelled":
        return "cancelled"
    if ref.linkage is not None and ref.linkage.status != "issued":
        return ref.linkage.status
    if ref.valid_until < today:
        return "expired"
    return "issued"


RESULT_PREFIX = {"hiv_confirmation": "hiv_", "discordant_lab": "hiv_", "hcv_viral_load": "hcv_",
                 "syphilis_confirmation": "syphilis_"}


def results_for(reason: str) -> tuple[str, ...]:
    """The confirmatory results that fit a referral's reason (all of them for PrEP, PEP and other care)."""
    prefix = RESULT_PREFIX.get(reason)
    return tuple(r for r in CONFIRM_RESULTS if prefix is None or r.startswith(prefix))


def _linkage(session, ref: Referral, now: datetime) -> Linkage:
    if ref.linkage is None:
        ref.linkage = Linkage(referral_id=ref.id, status="issued", created_at=now, updated_at=now)
        session.add(ref.linkage)
        session.flush()
    return ref.linkage


def _check_day(value: date | None, ref: Referral, today: date, field: str) -> date:
    if value is None:
        raise DomainError(_l("Enter the date."), field)
    if value > today:
        raise DomainError(_l("The date cannot be in the future."), field)
    if value < ref.issued_at.date() - timedelta(days=1):
        raise DomainError(_l("The date cannot be before the referral was issued."), field)
    return value


def record(session, ref: Referral, *, action: str, today: date, now: datetime, actor, day: date | None = None,
           result: str | None = None, reason: str | None = None) -> Linkage:
    """arrival → confirmation → treatment started → closed. A closed referral never changes again."""
    if ref.status == "cancelled":
        raise DomainError(_l("This referral was cancelled at the booth."))
    link = _linkage(session, ref, now)
    current = link.status
    if current == "closed":
        raise DomainError(_l("This referral is closed and cannot be changed."))
    if action == "arrival":
        if current != "issued":
            raise DomainError(_l("The arrival is already recorded."))
        link.arrived_on = _check_day(day, ref, today, "day")
        link.status = "arrived"
    elif action == "confirmation":
        if current not in ("arrived",):
            raise DomainError(_l("Record the arrival first."))
        if result not in results_for(ref.reason):
            raise DomainError(_l("Choose the confirmatory result."), "result")
        link.confirm_result = result
        link.status = "confirmed" if result in ("hiv_confirmed", "hcv_rna_detected", "syphilis_active") \
            else "not_confirmed"
    elif action == "treatment":
        if current not in ("arrived", "confirmed"):
            raise DomainError(_l("Record the arrival (and the confirmation) first."))
        link.treatment_started_on = _check_day(day, ref, today, "day")
        if link.arrived_on and link.treatment_started_on < link.arrived_on:
            raise DomainError(_l("Treatment cannot start before the arrival."), "day")
        link.status = "treatment_started"
    elif action == "close":
        if reason not in CLOSE_REASONS:
            raise DomainError(_l("Choose why the referral is closed."), "reason")
        link.closed_reason = reason
        link.closed_at = now
        link.status = "closed"
    else:
        raise DomainError(_l("Unknown action."))
    link.recorded_by = actor.code if actor else None
    link.updated_at = now
    link.version += 1
    session.flush()
    audit.record(session, f"linkage.{action}", now=now, actor=actor, record_id=ref.id)
    return link


EXAMPLES = [
    # name (staff screens), neutral slip name, kind, serves, reasons, open days
    ("UMF 00 — Unidad de Medicina Familiar (EJEMPLO)", "Unidad de Medicina Familiar 00 (ejemplo)", "family_clinic",
     "beneficiaries", ["hiv_confirmation", "hcv_viral_load", "syphilis_confirmation", "discordant_lab", "prep",
                       "other_care"], [1, 2, 3, 4, 5]),
    ("Clínica especializada en VIH e ITS (EJEMPLO)", "Clínica de Salud Integral Norte (ejemplo)", "hiv_clinic",
     "everyone", ["hiv_confirmation", "syphilis_confirmation", "discordant_lab", "prep", "other_care"],
     [1, 2, 3, 4, 5, 6]),
    ("Servicio de hepatitis — Hospital General (EJEMPLO)", "Hospital General, consulta 4 (ejemplo)",
     "hepatitis_service", "everyone", ["hcv_viral_load"], [1, 2, 3, 4, 5]),
    ("Urgencias PEP 24 h (EJEMPLO)", "Urgencias Hospital Central (ejemplo)", "pep_emergency", "everyone",
     ["pep_urgent"], []),
]


def add_examples(session, *, now: datetime, actor=None) -> list[Destination]:
    """Invented destinations, clearly marked as examples, plus rules: beneficiaries → family clinic;
    others → the specialised clinic; hepatitis C → the hepatitis service; PEP → open today."""
    out = []
    for i, (name, slip, kind, serves, reasons, days) in enumerate(EXAMPLES, start=1):
        out.append(save_destination(session, DestinationInput(
            name=name, slip_name=slip, kind=kind, address=f"Calle Ejemplo {i * 100}, Col. Centro, Ciudad de México",
            hours="Lunes a viernes 8:00–14:00" if days else "Todos los días, 24 horas", phone=f"55 0000 000{i}",
            what_to_bring="Esta hoja y una identificación si la tiene" if kind != "family_clinic"
            else "Esta hoja y su carnet de derechohabiente", serves=serves, reasons=tuple(reasons),
            open_days=tuple(days), is_example=True), now=now, actor=actor))
    family, special, hep, pep = out
    for reason in family.reasons:
        add_rule(session, reason=reason, beneficiary="yes", destination=family, priority=10, open_today_only=False,
                 now=now, actor=actor)
    for reason in special.reasons:
        add_rule(session, reason=reason, beneficiary="no", destination=special, priority=20, open_today_only=False,
                 now=now, actor=actor)
    add_rule(session, reason="hcv_viral_load", beneficiary="no", destination=hep, priority=20, open_today_only=False,
             now=now, actor=actor)
    add_rule(session, reason="pep_urgent", beneficiary="any", destination=pep, priority=1, open_today_only=True,
             now=now, actor=actor)
    return out


# ------------------------------------------------------------------ before the booth has synced

PROVISIONAL_DAYS = 60


def known_keys(session, instance_path) -> list[bytes]:
    """Referral keys this server can verify QR tokens with: a booth knows its own; central also knows
    the key of every enrolled, non-revoked node (sent once, at sync enrollment)."""
    from booth.sync.queries import enrolled_referral_keys

    keys = []
    try:
        keys.append(referral_key(instance_path))
    except (OSError, ValueError):
        pass
    return keys + enrolled_referral_keys(session)


def token_is_genuine(token: str | None, keys: list[bytes]) -> bool:
    return any(codes.token_verifies(token, k) for k in keys)


def record_provisional(session, *, token: str | None = None, folio: str | None = None, keys: list[bytes],
                       day: date, today: date, now: datetime, actor) -> "ProvisionalArrival":
    """The person is here but their referral has not reached this server yet. A QR token whose MAC
    verifies under a known node key is recorded as verified; a typed folio with a valid check symbol
    as *unverified* (flagged). Matched when the booth's data arrives; unmatched ones expire."""
    from booth.referrals.models import ProvisionalArrival

    if day is None or day > today or day < today - timedelta(days=MAX_VALID_DAYS):
        raise DomainError(_l("Enter the arrival date (not in the future)."), "day")
    verified = False
    token_h = folio_n = None
    if token:
        if not token_is_genuine(token, keys):
            raise DomainError(_l("This code was not found"), "token")
        verified, token_h = True, codes.token_hash(token)
        if session.scalar(select(ProvisionalArrival.id).where(ProvisionalArrival.token_hash == token_h)):
            raise DomainError(_l("This arrival is already recorded."))
    else:
        folio_n = codes.normalize(folio)
        if folio_n is None or not codes.is_valid(folio_n):
            raise DomainError(_l("This folio is not valid: check it and type it again."), "folio")
        if session.scalar(select(ProvisionalArrival.id).where(ProvisionalArrival.folio == folio_n)):
            raise DomainError(_l("This arrival is already recorded."))
    row = ProvisionalArrival(token_hash=token_h, folio=folio_n, verified=verified, arrived_on=day,
                             recorded_by=actor.code if actor else None,
                             expires_on=today + timedelta(days=PROVISIONAL_DAYS), created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    audit.record(session, "linkage.provisional_arrival", now=now, actor=actor, record_id=row.id)
    return row


def match_provisional(conn, metadata, referrals: list[dict], *, now: datetime) -> int:
    """Central, when a booth's referrals arrive: provisional arrivals recorded before them are matched by
    QR token hash or folio; the arrival becomes the referral's linkage (``arrived``) unless the clinic
    already recorded one. Core statements on the push's connection; returns how many were matched."""
    from booth.db import new_id

    pa, lk, au = metadata.tables["provisional_arrivals"], metadata.tables["linkages"], metadata.tables["audit_entries"]
    by_hash = {r["token_hash"]: r for r in referrals if r.get("token_hash")}
    by_folio = {r["folio"]: r for r in referrals if r.get("folio")}
    found = conn.execute(select(pa).where(pa.c.matched_referral_id.is_(None),
                                          (pa.c.token_hash.in_(list(by_hash))) | (pa.c.folio.in_(list(by_folio)))))
    matched = 0
    for p in found.mappings().all():
        ref = by_hash.get(p["token_hash"]) or by_folio.get(p["folio"])
        if ref is None:
            continue
        conn.execute(pa.update().where(pa.c.id == p["id"])
                     .values(matched_referral_id=ref["id"], version=pa.c.version + 1, updated_at=now))
        if conn.execute(select(lk.c.id).where(lk.c.referral_id == ref["id"])).first() is None:
            conn.execute(lk.insert().values(id=new_id(), referral_id=ref["id"], status="arrived",
                                            arrived_on=p["arrived_on"], recorded_by=p["recorded_by"], version=1,
                                            created_at=now, updated_at=now))
        conn.execute(au.insert().values(id=new_id(), at=now, staff_code=None, device_id=None,
                                        action="linkage.provisional_matched", record_id=str(ref["id"])))
        matched += 1
    return matched
