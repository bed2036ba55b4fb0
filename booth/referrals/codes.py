"""Referral folios and QR tokens.

Folio: 8 random Crockford base32 symbols and 1 check symbol from the same alphabet, shown as
``7K3M-Q9XD-R``. The check symbol is Damm's algorithm over a totally anti-symmetric quasigroup of
order 32 built on GF(2^5): ``x ∘ y = α·x ⊕ y`` with α = the field's generator. It detects every
single-symbol substitution (a Latin square) and every adjacent transposition (anti-symmetry).
Reading is tolerant: case, O→0, I/L→1, spaces and hyphens are ignored.

Token: 128 random bits plus a 64-bit HMAC-SHA256 tag under the issuing node's referral key, so the
central server can tell a genuine QR from a forged one before the booth's data arrives. Nothing about
the person, the reason or a result is in either.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
INDEX = {c: i for i, c in enumerate(ALPHABET)}
FOLIO_SYMBOLS = 8
TOKEN_BYTES = 16
MAC_BYTES = 8
_POLY = 0b100101  # x^5 + x^2 + 1, primitive over GF(2)


def _gf_mul_alpha(x: int) -> int:
    x <<= 1
    if x & 0b100000:
        x ^= _POLY
    return x


TABLE = [[_gf_mul_alpha(x) ^ y for y in range(32)] for x in range(32)]


def _interim(values) -> int:
    i = 0
    for v in values:
        i = TABLE[i][v]
    return i


def check_symbol(body: str) -> str:
    """The symbol c with interim ∘ c = 0, i.e. c = α·interim."""
    return ALPHABET[_gf_mul_alpha(_interim(INDEX[c] for c in body))]


def new_folio() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(FOLIO_SYMBOLS))
    return body + check_symbol(body)


def display(folio: str) -> str:
    return f"{folio[:4]}-{folio[4:8]}-{folio[8:]}"


def normalize(typed: str | None) -> str | None:
    """Tolerant reading; None when it cannot be a folio."""
    raw = (typed or "").upper().replace("-", "").replace(" ", "")
    raw = raw.translate(str.maketrans({"O": "0", "I": "1", "L": "1"}))
    if len(raw) != FOLIO_SYMBOLS + 1 or any(c not in INDEX for c in raw):
        return None
    return raw


def is_valid(folio: str | None) -> bool:
    folio = normalize(folio)
    return folio is not None and _interim(INDEX[c] for c in folio) == 0


def token_for(key: bytes, referral_id) -> str:
    """The QR token of a referral: 128 bits derived from the node's secret referral key and the
    referral's id (so a reprint gives the same QR without storing the token), plus a 64-bit MAC.
    Without the key — which never leaves instance/ except to central at enrollment — neither part
    can be guessed, and the database holds only the token's hash."""
    raw = hmac.new(key, b"referral-token:" + str(referral_id).encode(), hashlib.sha256).digest()[:TOKEN_BYTES]
    tag = hmac.new(key, raw, hashlib.sha256).digest()[:MAC_BYTES]
    return base64.urlsafe_b64encode(raw + tag).decode().rstrip("=")


def new_token(key: bytes) -> str:
    """A token from fresh randomness (tests and tools); referrals use ``token_for``."""
    raw = secrets.token_bytes(TOKEN_BYTES)
    tag = hmac.new(key, raw, hashlib.sha256).digest()[:MAC_BYTES]
    return base64.urlsafe_b64encode(raw + tag).decode().rstrip("=")


def split_token(token: str | None) -> tuple[bytes, bytes] | None:
    if not token or len(token) > 64:
        return None
    try:
        data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        return None
    if len(data) != TOKEN_BYTES + MAC_BYTES:
        return None
    return data[:TOKEN_BYTES], data[TOKEN_BYTES:]


def token_verifies(token: str | None, key: bytes) -> bool:
    parts = split_token(token)
    if parts is None:
        return False
    raw, tag = parts
    return hmac.compare_digest(hmac.new(key, raw, hashlib.sha256).digest()[:MAC_BYTES], tag)


def token_hash(token: str) -> str:
    """Stored instead of the token itself: a database leak does not give working QR links."""
    return hashlib.sha256(token.encode()).hexdigest()
