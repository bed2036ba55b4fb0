"""Staff, PINs, devices, enrollment codes and server-side sessions. No request, no commit."""
from __future__ import annotations

import hmac
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from booth.audit import services as audit
from booth.auth.hashing import hash_secret, new_token, token_hash, verify_secret
from booth.auth.models import Device, EnrollmentCode, Role, Staff, StaffSession
from booth.errors import DomainError

CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9-]{1,11}$")
PIN_RE = re.compile(r"^[0-9]{6}$")
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class LoginError(DomainError):
    status = 401


# ---------------------------------------------------------------- validation

def normalize_code(code: str | None) -> str:
    return (code or "").strip().upper()


def validate_code(code: str) -> str:
    code = normalize_code(code)
    if not CODE_RE.match(code):
        raise DomainError(_l("The staff code must be 2 to 12 letters, digits or hyphens (for example T07)."), "code")
    return code


def validate_pin(pin: str | None) -> str:
    pin = (pin or "").strip()
    if not PIN_RE.match(pin):
        raise DomainError(_l("The PIN must be exactly 6 digits."), "pin")
    digits = [int(c) for c in pin]
    steps = {b - a for a, b in zip(digits, digits[1:])}
    if len(set(digits)) == 1 or steps in ({1}, {-1}):
        raise DomainError(_l("This PIN is too easy to guess (repeated or consecutive digits). Choose another."), "pin")
    return pin


def validate_password(password: str | None) -> str:
    password = password or ""
    if len(password) < 12:
        raise DomainError(_l("The password must have at least 12 characters."), "password")
    if len(password) > 128:
        raise DomainError(_l("The password must have at most 128 characters."), "password")
    return password


def validate_roles(roles) -> frozenset[Role]:
    try:
        parsed = frozenset(Role.parse(r) if isinstance(r, str) else Role(r) for r in roles)
    except ValueError:
        raise DomainError(_l("Unknown role. Choose tester, counselor, coordinator or clinic."), "roles")
    if not parsed:
        raise DomainError(_l("Choose at least one role."), "roles")
    return parsed


# ---------------------------------------------------------------- staff

def staff_by_code(session, code: str) -> Staff | None:
    code = normalize_code(code)
    if not CODE_RE.match(code):  # no staff member can have it (and PostgreSQL refuses a NUL in a parameter)
        return None
    return session.scalar(select(Staff).where(Staff.code == code))


def create_staff(session, *, code: str, roles, now: datetime, pin: str | None = None,
                 password: str | None = None, alias: str | None = None, clinical_lead: bool = False,
                 actor: Staff | None = None, device: Device | None = None) -> Staff:
    code = validate_code(code)
    roles = validate_roles(roles)
    if pin is None and password is None:
        raise DomainError(_l("A PIN (booth) or a password (central) is required."), "pin")
    pin_hash = hash_secret(validate_pin(pin)) if pin is not None else None
    password_hash = hash_secret(validate_password(password)) if password is not None else None
    alias = (alias or "").strip() or None
    if alias is not None and len(alias) > 40:
        raise DomainError(_l("The alias must have at most 40 characters."), "alias")
    if staff_by_code(session, code) is not None:
        raise DomainError(_l("The staff code %(code)s is already in use.", code=code), "code")
    staff = Staff(code=code, alias=alias, pin_hash=pin_hash, password_hash=password_hash,
                  clinical_lead=clinical_lead, created_at=now, updated_at=now)
    staff.roles = roles
    session.add(staff)
    session.flush()
    audit.record(session, "staff.add", now=now, actor=actor, device=device, record_id=staff.id)
    return staff


def set_pin(session, staff: Staff, pin: str, *, now: datetime, actor: Staff | None, device=None) -> None:
    staff.pin_hash = hash_secret(validate_pin(pin))
    staff.updated_at = now
    staff.version += 1
    session.flush()
    audit.record(session, "staff.set_pin", now=now, actor=actor, device=device, record_id=staff.id)


def unlock_staff(session, staff: Staff, *, now: datetime, actor: Staff | None, device=None) -> None:
    staff.locked_until = None
    staff.failed_attempts = 0
    staff.updated_at = now
    session.flush()
    audit.record(session, "staff.unlock", now=now, actor=actor, device=device, record_id=staff.id)


def disable_staff(session, staff: Staff, *, now: datetime, actor: Staff | None, device=None) -> None:
    if actor is not None and actor.id == staff.id:
        raise DomainError(_l("You cannot disable yourself."))
    staff.disabled_at = now
    staff.updated_at = now
    staff.version += 1
    for s in session.scalars(select(StaffSession).where(StaffSession.staff_id == staff.id,
                                                        StaffSession.ended_at.is_(None))):
        s.ended_at = now
    session.flush()
    audit.record(session, "staff.disable", now=now, actor=actor, device=device, record_id=staff.id)


def enable_staff(session, staff: Staff, *, now: datetime, actor: Staff | None, device=None) -> None:
    staff.disabled_at = None
    staff.updated_at = now
    staff.version += 1
    session.flush()
    audit.record(session, "staff.enable", now=now, actor=actor, device=device, record_id=staff.id)


# ---------------------------------------------------------------- login

@dataclass
class LockoutPolicy:
    threshold: int = 5
    minutes: int = 15


def _fail(session, staff: Staff | None, *, now: datetime, policy: LockoutPolicy, device, action: str):
    if staff is not None:
        staff.failed_attempts += 1
        if staff.failed_attempts >= policy.threshold:
            staff.locked_until = now + timedelta(minutes=policy.minutes)
            staff.failed_attempts = 0
            audit.record(session, "staff.locked", now=now, staff_code=staff.code, device=device, record_id=staff.id)
        session.flush()
    audit.record(session, action, now=now, staff_code=staff.code if staff else None, device=device)


def check_secret(session, *, code: str, secret: str, kind: str, now: datetime, policy: LockoutPolicy,
                 device: Device | None = None, second_factor: bool = False) -> Staff:
    """Verify a PIN (kind="pin") or a password (kind="password"), with per-staff lockout.

    The lockout counts failures per staff member whatever device they come from.
    A failure is committed by the caller even though this raises. With ``second_factor`` (central:
    a TOTP code follows) the count is reset only once the code is right too, so knowing the
    password does not give unlimited guesses at the code.
    """
    staff = staff_by_code(session, code)
    if staff is not None and staff.is_locked(now):
        raise LoginError(_l("This staff code is locked after too many wrong attempts. "
                            "Try again in %(minutes)s minutes or ask a coordinator to unlock it.",
                            minutes=max(1, int((staff.locked_until - now).total_seconds() // 60) + 1)))
    stored = None
    if staff is not None and staff.active:
        stored = staff.pin_hash if kind == "pin" else staff.password_hash
    if not verify_secret(stored, secret or ""):
        _fail(session, staff if staff is not None and staff.active else None, now=now, policy=policy,
              device=device, action="login.failed")
        if staff is not None and staff.is_locked(now):
            raise LoginError(_l("Too many wrong attempts: this staff code is locked for %(minutes)s minutes.",
                                minutes=policy.minutes))
        if kind == "pin":
            raise LoginError(_l("Staff code or PIN is wrong."))
        raise LoginError(_l("Staff code, password or code is wrong."))
    if not second_factor:
        staff.failed_attempts = 0
        session.flush()
    return staff


def verify_totp(session, staff: Staff, code: str, *, now: datetime, policy: LockoutPolicy) -> None:
    """Check a TOTP code (±1 step). A wrong code counts as a failed attempt; a code already used
    (same or earlier time step) is refused, so an overheard code cannot be replayed."""
    step = matching_totp_step(staff.totp_secret, (code or "").strip(), now)
    if step is not None and staff.totp_last_step is not None and step <= staff.totp_last_step:
        step = None
    if step is None:
        _fail(session, staff, now=now, policy=policy, device=None, action="login.failed_totp")
        if staff.is_locked(now):
            raise LoginError(_l("Too many wrong attempts: this staff code is locked for %(minutes)s minutes.",
                                minutes=policy.minutes))
        raise LoginError(_l("Staff code, password or code is wrong."))
    staff.failed_attempts = 0
    staff.totp_last_step = step
    session.flush()


def matching_totp_step(secret: str | None, code: str, now: datetime) -> int | None:
    if not secret or not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def begin_totp_setup(session, staff: Staff) -> str:
    if staff.totp_confirmed_at is not None:
        raise DomainError(_l("Two-step sign-in is already set up for this account."))
    if not staff.totp_secret:
        staff.totp_secret = pyotp.random_base32()
        session.flush()
    return pyotp.TOTP(staff.totp_secret).provisioning_uri(name=staff.code, issuer_name="Vínculo")


def confirm_totp(session, staff: Staff, code: str, *, now: datetime, policy: LockoutPolicy) -> None:
    verify_totp(session, staff, code, now=now, policy=policy)
    staff.totp_confirmed_at = now
    session.flush()
    audit.record(session, "staff.totp_confirmed", now=now, actor=staff, record_id=staff.id)


def start_session(session, staff: Staff, *, now: datetime, device: Device | None = None) -> tuple[StaffSession, str]:
    """A fresh session (and a fresh token) at every login: no session fixation."""
    token = new_token()
    s = StaffSession(token_hash=token_hash(token), staff_id=staff.id, device_id=device.id if device else None,
                     created_at=now, last_seen_at=now)
    session.add(s)
    session.flush()
    audit.record(session, "login", now=now, actor=staff, device=device)
    return s, token


@dataclass
class SessionState:
    staff_session: StaffSession | None
    locked: bool = False

    @property
    def staff(self) -> Staff | None:
        return self.staff_session.staff if self.staff_session else None


class Activity:
    """When each session was last active, as the serving process saw it.

    Every staff request counts as activity for the idle lock, but writing ``last_seen_at`` on every tap
    cost a commit — an fsync with ``synchronous=FULL`` — on every page, even on reads (bench/load.py).
    The process keeps the exact time here; the row is written at most every ``write_every`` per session.
    The idle lock reads the later of the two, so it is exact while the process runs; a node killed and
    restarted forgets at most ``write_every`` of activity (the tablet may lock that much earlier).
    """

    write_every = timedelta(seconds=30)

    def __init__(self):
        self._seen: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def last_seen(self, s: StaffSession) -> datetime:
        seen = self._seen.get(s.token_hash)
        return s.last_seen_at if seen is None or seen < s.last_seen_at else seen

    def note(self, s: StaffSession, now: datetime) -> None:
        with self._lock:
            seen = self._seen.get(s.token_hash)
            self._seen[s.token_hash] = now if seen is None or seen < now else seen
            if len(self._seen) > 1000:  # sessions end within hours: forget what no session can use
                for key in [k for k, at in self._seen.items() if now - at > timedelta(days=1)]:
                    del self._seen[key]


def resolve_session(session, token: str | None, *, now: datetime, idle: timedelta, absolute: timedelta,
                    device: Device | None, require_device: bool, activity: Activity | None = None) -> SessionState:
    if not token:
        return SessionState(None)
    s = session.scalar(select(StaffSession).where(StaffSession.token_hash == token_hash(token))
                       .options(joinedload(StaffSession.staff)))
    if s is None or s.ended_at is not None:
        return SessionState(None)
    if now - s.created_at >= absolute or not s.staff.active:
        s.ended_at = now
        session.flush()
        return SessionState(None)
    if require_device and (device is None or s.device_id != device.id):
        return SessionState(None)
    if now - (activity.last_seen(s) if activity else s.last_seen_at) >= idle:
        return SessionState(s, locked=True)
    return SessionState(s)


def touch_session(session, s: StaffSession, now: datetime, activity: Activity | None = None) -> bool:
    """Count a request as activity. Without ``activity`` the row is written; with it, only when the row is
    ``Activity.write_every`` old (True: the caller commits)."""
    if activity is not None:
        activity.note(s, now)
        if now - s.last_seen_at < activity.write_every:
            return False
    s.last_seen_at = now
    session.flush()
    return True


def end_session(session, s: StaffSession, *, now: datetime, device=None) -> None:
    s.ended_at = now
    session.flush()
    audit.record(session, "logout", now=now, actor=s.staff, device=device)


# ---------------------------------------------------------------- devices

def _normalize_enrollment(code: str | None) -> str:
    raw = (code or "").upper().replace("-", "").replace(" ", "")
    return raw.translate(str.maketrans({"O": "0", "I": "1", "L": "1"}))


def format_enrollment(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def create_enrollment_code(session, *, now: datetime, minutes: int, actor: Staff | None,
                           kind: str = "tablet", device: Device | None = None) -> tuple[EnrollmentCode, str]:
    if kind not in ("tablet", "display"):
        raise DomainError(_l("Unknown device kind."))
    code = "".join(secrets.choice(CROCKFORD) for _ in range(8))
    row = EnrollmentCode(code_hash=token_hash(code), kind=kind, created_by_id=actor.id if actor else None,
                         created_at=now, expires_at=now + timedelta(minutes=minutes))
    session.add(row)
    session.flush()
    audit.record(session, "device.enrollment_code", now=now, actor=actor, device=device, record_id=row.id)
    return row, format_enrollment(code)


def enroll_device(session, *, code: str, name: str | None, now: datetime) -> tuple[Device, str]:
    normalized = _normalize_enrollment(code)
    row = session.scalar(select(EnrollmentCode).where(EnrollmentCode.code_hash == token_hash(normalized))) \
        if len(normalized) == 8 else None
    if row is None:
        raise DomainError(_l("This enrollment code is not valid. Ask a coordinator for a new one."), "code")
    if row.used_at is not None:
        raise DomainError(_l("This enrollment code has already been used. Ask a coordinator for a new one."), "code")
    if row.expires_at <= now:
        raise DomainError(_l("This enrollment code has expired (codes last %(minutes)s minutes). "
                             "Ask a coordinator for a new one.",
                             minutes=int((row.expires_at - row.created_at).total_seconds() // 60)), "code")
    name = (name or "").strip()
    if len(name) > 40:
        raise DomainError(_l("The device name must have at most 40 characters."), "name")
    count = len(session.scalars(select(Device.id)).all())
    token = new_token()
    device = Device(name=name or f"{'Display' if row.kind == 'display' else 'Tablet'} {count + 1}", kind=row.kind,
                    token_hash=token_hash(token), created_at=now, last_seen_at=now)
    session.add(device)
    session.flush()
    row.used_at = now
    row.device_id = device.id
    session.flush()
    audit.record(session, "device.enroll", now=now, device=device, record_id=device.id)
    return device, token


def register_first_device(session, *, name: str, now: datetime) -> tuple[Device, str]:
    """The browser that runs first-run setup becomes the first enrolled device."""
    token = new_token()
    device = Device(name=name, token_hash=token_hash(token), created_at=now, last_seen_at=now)
    session.add(device)
    session.flush()
    audit.record(session, "device.enroll", now=now, device=device, record_id=device.id)
    return device, token


def device_by_token(session, token: str | None) -> Device | None:
    if not token:
        return None
    return session.scalar(select(Device).where(Device.token_hash == token_hash(token)))


def revoke_device(session, device: Device, *, now: datetime, actor: Staff | None, from_device=None) -> None:
    if device.revoked_at is not None:
        raise DomainError(_l("This device is already revoked."))
    device.revoked_at = now
    for s in session.scalars(select(StaffSession).where(StaffSession.device_id == device.id,
                                                        StaffSession.ended_at.is_(None))):
        s.ended_at = now
    session.flush()
    audit.record(session, "device.revoke", now=now, actor=actor, device=from_device, record_id=device.id)
