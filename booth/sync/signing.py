"""Signed sync requests: HMAC-SHA256 over method, path, timestamp, nonce and the body's hash.

The sync API uses these signatures instead of sessions and CSRF tokens. The central server refuses
a bad signature (401), a timestamp more than 5 minutes off (401, with its own time so the node can
re-sign with the measured offset), and a nonce it has seen before (replay, 401).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

MAX_SKEW_S = 300
HEADER_NODE = "X-Vinculo-Node"
HEADER_TS = "X-Vinculo-Timestamp"
HEADER_NONCE = "X-Vinculo-Nonce"
HEADER_SIG = "X-Vinculo-Signature"
# The correction (seconds) a node added to its own clock after a refusal for time. Not signed and
# informational only: central uses it to record the node's real clock offset, never to accept a request.
HEADER_OFFSET = "X-Vinculo-Clock-Offset"


def canonical(method: str, path: str, timestamp: int, nonce: str, body: bytes) -> bytes:
    return "\n".join([method.upper(), path, str(int(timestamp)), nonce,
                      hashlib.sha256(body or b"").hexdigest()]).encode()


def sign(secret: bytes, method: str, path: str, timestamp: int, nonce: str, body: bytes) -> str:
    return hmac.new(secret, canonical(method, path, timestamp, nonce, body), hashlib.sha256).hexdigest()


def headers(node_id: str, secret: bytes, method: str, path: str, body: bytes, now_s: float) -> dict:
    nonce = secrets.token_hex(16)
    ts = int(now_s)
    return {HEADER_NODE: node_id, HEADER_TS: str(ts), HEADER_NONCE: nonce,
            HEADER_SIG: sign(secret, method, path, ts, nonce, body)}


@dataclass
class Verdict:
    ok: bool
    status: int = 200
    reason: str = ""


def verify(secret: bytes, method: str, path: str, hdrs, body: bytes, now_s: float, seen_nonce) -> Verdict:
    """``seen_nonce(nonce) -> bool`` records the nonce and says whether it was already used."""
    try:
        ts = int(hdrs.get(HEADER_TS, ""))
    except ValueError:
        return Verdict(False, 401, "bad_timestamp")
    nonce = hdrs.get(HEADER_NONCE, "")
    sig = hdrs.get(HEADER_SIG, "")
    if not (16 <= len(nonce) <= 64) or not sig:
        return Verdict(False, 401, "bad_signature")
    expected = sign(secret, method, path, ts, nonce, body)
    if not hmac.compare_digest(expected, sig):
        return Verdict(False, 401, "bad_signature")
    if abs(now_s - ts) > MAX_SKEW_S:
        return Verdict(False, 401, "clock")
    if seen_nonce(nonce):
        return Verdict(False, 401, "replay")
    return Verdict(True)
