"""argon2id for PINs and passwords; SHA-256 for high-entropy random tokens."""
from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

# A hash computed once so that an unknown staff code costs as much time as a wrong PIN.
_DUMMY: dict[tuple, str] = {}


def hasher() -> PasswordHasher:
    cfg = current_app.config
    return PasswordHasher(time_cost=cfg["ARGON2_TIME_COST"], memory_cost=cfg["ARGON2_MEMORY_COST_KIB"],
                          parallelism=cfg["ARGON2_PARALLELISM"], type=Type.ID)


def hash_secret(value: str) -> str:
    return hasher().hash(value)


def verify_secret(stored: str | None, value: str) -> bool:
    h = hasher()
    if stored is None:
        key = (h.time_cost, h.memory_cost)
        if key not in _DUMMY:
            _DUMMY[key] = h.hash(secrets.token_hex(8))
        stored = _DUMMY[key]
        try:
            h.verify(stored, value)
        except (VerificationError, InvalidHashError):
            pass
        return False
    try:
        return h.verify(stored, value)
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    """A cookie / URL token: 256 random bits."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
