"""Hybrid encryption of a backup for several recipients (pure: no Flask, no files).

A random 256-bit data key encrypts the (zlib-compressed) database with AES-256-GCM. The data key is
wrapped once per recipient: an ephemeral X25519 key agreement with the recipient's public key, HKDF-SHA256
over the shared secret (salt = ephemeral public key ‖ recipient public key), AES-256-GCM. Recipients are the
event's recovery key and, when configured, the central server's key. The header (JSON: format version,
creation time, the wrapped keys) is the associated data of the body, so changing any byte of the file —
header or body — makes decryption fail.

File layout: ``MAGIC`` · 4-byte big-endian header length · header JSON · 12-byte nonce · ciphertext+tag.

Private keys are written for people as base32 in groups of four (32 key bytes + 2 check bytes):
``ABCD-EFGH-…``; reading tolerates spaces, dashes, lower case and 0/O, 1/I, 8/B.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import zlib

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"VBK1\n"
FORMAT = 1
WRAP_INFO = b"vinculo backup v1 data key"
WRAP_AAD = b"vinculo backup v1"
RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


class BackupCryptoError(ValueError):
    """A backup cannot be opened: wrong key, damaged or tampered file, malformed key text."""


# ------------------------------------------------------------------------------------------- keys

def new_private_key() -> bytes:
    return X25519PrivateKey.generate().private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                     serialization.NoEncryption())


def public_of(private: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes(*RAW)


def fingerprint(public: bytes) -> str:
    return hashlib.sha256(public).hexdigest()[:16]


def _check(data: bytes) -> bytes:
    return hashlib.sha256(b"vinculo key" + data).digest()[:2]


def key_to_text(private: bytes) -> str:
    text = base64.b32encode(private + _check(private)).decode().rstrip("=")
    return "-".join(text[i:i + 4] for i in range(0, len(text), 4))


def key_from_text(text: str) -> bytes:
    cleaned = "".join(ch for ch in text.upper() if ch.isalnum())
    cleaned = cleaned.replace("0", "O").replace("1", "I").replace("8", "B")
    try:
        raw = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except (ValueError, TypeError):
        raise BackupCryptoError("The key is not valid: check every group and type it again.") from None
    if len(raw) != 34 or _check(raw[:32]) != raw[32:]:
        raise BackupCryptoError("The key is not valid: check every group and type it again.")
    return raw[:32]


def public_to_text(public: bytes) -> str:
    return base64.b64encode(public).decode()


def public_from_text(text: str) -> bytes:
    text = text.strip()
    try:
        raw = bytes.fromhex(text) if len(text) == 64 else base64.b64decode(text, validate=True)
    except ValueError:
        raise BackupCryptoError("A public key must be 32 bytes, in base64 or hex.") from None
    if len(raw) != 32:
        raise BackupCryptoError("A public key must be 32 bytes, in base64 or hex.")
    return raw


# ------------------------------------------------------------------------------------------- file

def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _kek(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=ephemeral + recipient, info=WRAP_INFO).derive(shared)


def encrypt(plaintext: bytes, recipients: dict[str, bytes], created: str) -> bytes:
    """``recipients``: label ("recovery", "central") → X25519 public key (32 bytes)."""
    if not recipients:
        raise BackupCryptoError("A backup needs at least one recipient key.")
    data_key = AESGCM.generate_key(bit_length=256)
    wrapped = []
    for label, public in recipients.items():
        eph = X25519PrivateKey.generate()
        eph_pub = eph.public_key().public_bytes(*RAW)
        shared = eph.exchange(X25519PublicKey.from_public_bytes(public))
        nonce = os.urandom(12)
        wrapped.append({"to": label, "fpr": fingerprint(public), "epk": _b64(eph_pub), "nonce": _b64(nonce),
                        "key": _b64(AESGCM(_kek(shared, eph_pub, public)).encrypt(nonce, data_key, WRAP_AAD))})
    header = json.dumps({"format": FORMAT, "created": created, "compression": "zlib", "recipients": wrapped},
                        sort_keys=True, separators=(",", ":")).encode()
    nonce = os.urandom(12)
    body = AESGCM(data_key).encrypt(nonce, zlib.compress(plaintext, 6), MAGIC + header)
    return MAGIC + struct.pack(">I", len(header)) + header + nonce + body


def read_header(blob: bytes) -> tuple[dict, bytes, bytes]:
    """(header, raw header bytes, rest); readable without a key (holds nothing personal)."""
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 4:
        raise BackupCryptoError("This file is not a Vínculo backup.")
    (size,) = struct.unpack(">I", blob[len(MAGIC):len(MAGIC) + 4])
    start = len(MAGIC) + 4
    raw = blob[start:start + size]
    try:
        header = json.loads(raw)
        assert isinstance(header, dict) and isinstance(header["recipients"], list)
    except (ValueError, KeyError, AssertionError):
        raise BackupCryptoError("The backup is damaged or was modified: its header cannot be read.") from None
    if header.get("format") != FORMAT:
        raise BackupCryptoError("This backup was written in a format this version does not read.")
    return header, raw, blob[start + size:]


def decrypt(blob: bytes, private: bytes) -> bytes:
    header, raw, rest = read_header(blob)
    public = public_of(private)
    mine = [r for r in header["recipients"] if r.get("fpr") == fingerprint(public)]
    if not mine:
        raise BackupCryptoError("This key does not open this backup (it was made for other keys).")
    try:
        r = mine[0]
        eph_pub = base64.b64decode(r["epk"])
        shared = X25519PrivateKey.from_private_bytes(private).exchange(X25519PublicKey.from_public_bytes(eph_pub))
        data_key = AESGCM(_kek(shared, eph_pub, public)).decrypt(base64.b64decode(r["nonce"]),
                                                                 base64.b64decode(r["key"]), WRAP_AAD)
        plain = AESGCM(data_key).decrypt(rest[:12], rest[12:], MAGIC + raw)
        return zlib.decompress(plain)
    except (InvalidTag, ValueError, KeyError, TypeError, zlib.error):
        raise BackupCryptoError("The backup is damaged or was modified: it was refused.") from None
