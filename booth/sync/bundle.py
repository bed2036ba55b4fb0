"""Sync without a network: a bundle file of the unacknowledged records (booth → USB stick → central) and a
receipt file back (central → booth). Pure functions over bytes; the CLI reads and writes the files.

**Bundle** = ``VSB1`` line · node id line · HMAC-SHA256(node secret, node id ‖ sealed) in hex · the
*sealed* part: the records as JSON, encrypted with the hybrid scheme of the backups (AES-256-GCM, data key
wrapped to central's X25519 bundle key, which central sends at enrollment). Only central can read it (a lost
stick leaks nothing), and only the enrolled node can have made it (central checks the HMAC before it
decrypts). Central applies the records with the same exactly-once rules as a push, so importing a bundle
twice changes nothing.

**Receipt** = ``VSR1`` line · HMAC(node secret, body) in hex · body: JSON with the node id, the bundle's
SHA-256 and central's acknowledgements (the same lists a push answer holds: ids and statuses, nothing else).
The booth checks the HMAC with its own secret and marks the acknowledged records.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import uuid
from datetime import datetime
from pathlib import Path

from booth.backup import crypto
from booth.instance import write_private

BUNDLE_MAGIC = b"VSB1\n"
RECEIPT_MAGIC = b"VSR1\n"
KEY_FILE = "sync_bundle_key"   # central: its X25519 private key for bundles (0600)


class BundleError(ValueError):
    pass


# ---------------------------------------------------------------- central's key

def central_key(instance_path) -> bytes:
    """Central's private bundle key, made on first use. Requests that arrive together (booths enrolling at
    once) must not each make one: the key is written to a file of this thread's own and linked into place,
    which only the first one does; the others read the winner's key (bench/central_load.py found the race)."""
    path = Path(instance_path) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        mine = path.with_name(f"{KEY_FILE}.{os.getpid()}.{threading.get_ident()}")
        write_private(mine, (crypto.key_to_text(crypto.new_private_key()) + "\n").encode())
        try:
            os.link(mine, path)
        except FileExistsError:
            pass
        finally:
            mine.unlink()
    return crypto.key_from_text(path.read_text())


def central_public_text(instance_path) -> str:
    return crypto.public_to_text(crypto.public_of(central_key(instance_path)))


# ---------------------------------------------------------------- bundle

def _mac(secret_hex: str, *parts: bytes) -> str:
    return hmac.new(bytes.fromhex(secret_hex), b"".join(parts), hashlib.sha256).hexdigest()


def make_bundle(*, node_id: str, secret_hex: str, central_public: bytes, records: list[dict], now: datetime) -> bytes:
    payload = json.dumps({"node": node_id, "created": now.isoformat(), "records": records},
                         separators=(",", ":")).encode()
    sealed = crypto.encrypt(payload, {"central": central_public}, now.isoformat())
    node = node_id.encode()
    return BUNDLE_MAGIC + node + b"\n" + _mac(secret_hex, node, b"\n", sealed).encode() + b"\n" + sealed


def bundle_node(blob: bytes) -> uuid.UUID:
    """The node a bundle claims to come from (checked by ``open_bundle``)."""
    try:
        if not blob.startswith(BUNDLE_MAGIC):
            raise ValueError
        return uuid.UUID(blob[len(BUNDLE_MAGIC):len(BUNDLE_MAGIC) + 36].decode())
    except (ValueError, UnicodeDecodeError):
        raise BundleError("This file is not a Vínculo sync bundle.") from None


def open_bundle(blob: bytes, *, secret_hex: str, central_private: bytes) -> dict:
    node = str(bundle_node(blob)).encode()
    start = len(BUNDLE_MAGIC) + 37
    mac, sealed = blob[start:start + 64], blob[start + 65:]
    if blob[start + 64:start + 65] != b"\n" or not hmac.compare_digest(mac, _mac(secret_hex, node, b"\n", sealed).encode()):
        raise BundleError("The bundle was modified or was not made by this node: it was refused.")
    try:
        data = json.loads(crypto.decrypt(sealed, central_private))
    except (crypto.BackupCryptoError, ValueError):
        raise BundleError("The bundle cannot be decrypted with this server's key: it was refused.") from None
    if not isinstance(data, dict) or data.get("node") != node.decode() or not isinstance(data.get("records"), list):
        raise BundleError("The bundle's content does not match its node: it was refused.")
    return data


# ---------------------------------------------------------------- receipt

def make_receipt(*, node_id: str, secret_hex: str, bundle_sha256: str, outcome: dict, now: datetime) -> bytes:
    body = json.dumps({"node": node_id, "bundle": bundle_sha256, "created": now.isoformat(), **outcome},
                      separators=(",", ":")).encode()
    return RECEIPT_MAGIC + _mac(secret_hex, body).encode() + b"\n" + body


def open_receipt(blob: bytes, *, node_id: str, secret_hex: str) -> dict:
    if not blob.startswith(RECEIPT_MAGIC):
        raise BundleError("This file is not a Vínculo sync receipt.")
    start = len(RECEIPT_MAGIC)
    mac, body = blob[start:start + 64], blob[start + 65:]
    if not hmac.compare_digest(mac, _mac(secret_hex, body).encode()):
        raise BundleError("The receipt was modified or is for another node: it was refused.")
    data = json.loads(body)
    if data.get("node") != node_id:
        raise BundleError("This receipt is for another node.")
    return data
