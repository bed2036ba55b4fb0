"""The booth node's sync actions, shared by ``flask sync …`` and the sync screen (no request here).

``push`` sends the outbox and then fetches the receipt; ``pull`` applies central's catalogue and
linkage; ``status`` is the reconciliation receipt (asked of central when it can be reached, otherwise the
last one kept in ``instance/sync-receipt.json``).
"""
from __future__ import annotations

import json
import random
import time
from pathlib import Path

from booth import clock
from booth.extensions import db
from booth.instance import write_private
from booth.sync import outbox
from booth.sync.client import SyncFailed
from booth.sync.inbox import PullError, apply_pull  # noqa: F401 (re-exported for the CLI)
from booth.sync.outbox import PushFailed  # noqa: F401

RECEIPT_FILE = "sync-receipt.json"


def push(session, transport, *, progress=None, sleep=time.sleep, rng: random.Random | None = None,
         batch_size: int = outbox.BATCH, attempts: int = 8) -> outbox.PushReport:
    return outbox.push(session, db.metadata, transport, now=clock.now, batch_size=batch_size, sleep=sleep,
                       rng=rng, attempts=attempts, progress=progress)


def pull(session, transport) -> dict:
    reply = transport.post("pull")
    counts = apply_pull(session, db.metadata, reply.body.get("records"), now=clock.now())
    session.commit()
    return counts


def receipt(session, transport) -> dict:
    reply = transport.post("receipt")
    kinds = reply.body.get("kinds")
    if not isinstance(kinds, dict):
        raise SyncFailed(502, {"error": "bad_answer", "message": "central's receipt is not a JSON object"})
    return outbox.compare(outbox.local_receipt(session, db.metadata), kinds)


def status(session, transport, instance_path) -> dict:
    """Event, booth, pending counts and the receipt; ``transport`` None → the receipt kept from last time."""
    from booth.events.queries import this_booth
    from booth.sync.client import load_state

    booth = this_booth(session)
    state = load_state(instance_path)
    data = {"node": state.node if state else None,
            "event": {"id": str(booth.event.id), "name": booth.event.name} if booth else None,
            "booth": {"id": str(booth.id), "name": booth.name} if booth else None,
            "clock_offset_s": state.clock_offset_s if state else None,
            "pending": outbox.pending_counts(session, db.metadata)}
    path = Path(instance_path) / RECEIPT_FILE
    if transport is not None:
        try:
            data["receipt"] = receipt(session, transport)
            data["checked_at"] = clock.now().isoformat()
            write_private(path, json.dumps({"receipt": data["receipt"], "checked_at": data["checked_at"]}).encode())
            session.rollback()
            return data
        except SyncFailed as e:
            data["error"] = str(e)
    kept = json.loads(path.read_text()) if path.exists() else {}
    data["receipt"], data["checked_at"] = kept.get("receipt"), kept.get("checked_at")
    session.rollback()
    return data
