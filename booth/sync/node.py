"""The booth node's sync actions, shared by ``flask sync …`` and the sync screen (no request here).

``push`` sends the outbox and then fetches the receipt; ``pull`` applies central's catalogue and
linkage; ``status`` is the reconciliation receipt (asked of central when it can be reached, otherwise the
last one kept in ``instance/sync-receipt.json``).
"""
from __future__ import annotations

import json
import random
import threading
import time
import traceback
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
    from booth.events.queries import this_booth
    from booth.settings.services import adopt_consent_texts

    reply = transport.post("pull")
    counts = apply_pull(session, db.metadata, reply.body.get("records"), now=clock.now())
    booth = this_booth(session)
    if booth is not None and isinstance(reply.body.get("consent_texts"), dict):
        counts["consent_texts"] = int(adopt_consent_texts(session, booth.event_id, reply.body["consent_texts"],
                                                          now=clock.now()))
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


class EnrollFailed(Exception):
    pass


def enroll(session, *, central_url: str, code: str, node_id: str | None, instance_path, timeout: float) -> dict:
    """Trade the one-time code for the node's secret; keep it in ``instance/sync.json`` (0600) and point
    the event's QR codes at central. Shared by ``flask sync enroll`` and the sync screen."""
    from booth.audit import services as audit
    from booth.events.queries import this_booth
    from booth.referrals.services import referral_key
    from booth.sync import client

    central_url = (central_url or "").strip().rstrip("/")
    if not central_url.startswith(("http://", "https://")) or len(central_url) > 300:
        raise EnrollFailed("The central address must start with http:// or https://")
    existing = client.load_state(instance_path)
    if existing is not None:
        raise EnrollFailed(f"This node is already enrolled (node {existing.node}, {existing.central_url}).")
    booth = this_booth(session)
    try:
        reply = client.enroll(central_url, code, node_id=node_id, referral_key=referral_key(instance_path),
                              timeout=timeout)
    except client.SyncFailed as e:
        raise EnrollFailed(f"Enrollment refused ({e.status or 'no answer'}): {e}") from None
    base = str(reply["central_base_url"]).rstrip("/")
    event = reply.get("event") if isinstance(reply.get("event"), dict) else None
    client.save_state(instance_path, client.NodeState(
        node=str(reply["node"]), secret=str(reply["secret"]), central_url=central_url, central_base_url=base,
        central_public_key=str(reply.get("bundle_key") or ""), event=event if booth is None else None))
    now = clock.now()
    if booth is not None:   # set up already: its own event now points QR codes at central
        booth.event.central_base_url, booth.event.updated_at = base, now
    audit.record(session, "sync.enrolled", now=now, record_id=reply["node"])
    session.commit()
    return {"node": str(reply["node"]), "central_base_url": base, "event": event if booth is None else None}


def central_event(instance_path) -> dict | None:
    """The central event a node enrolled before its setup was registered for (setup takes it), or None."""
    from booth.sync import client

    state = client.load_state(instance_path)
    return state.event if state is not None and state.event else None


def adopt_central_event(session, event_id, version: int, *, now) -> None:
    """The event row a setup made from central's event is central's record: marked pulled, never pushed."""
    from booth.sync.models import SyncAck

    session.add(SyncAck(kind="event", record_id=event_id, version=version, status="pulled", at=now))


# ---------------------------------------------------------------- a push started from the sync screen

class Progress:
    """The state of the push the sync screen started (one at a time per node), read by its progress bar."""

    def __init__(self):
        self.lock = threading.Lock()
        self.running = False
        self.report: outbox.PushReport | None = None
        self.error: str | None = None
        self.finished_at = None

    def snapshot(self) -> dict:
        with self.lock:
            r = self.report
            return {"running": self.running, "error": self.error, "finished_at": self.finished_at,
                    "total": r.total if r else 0, "sent": r.sent if r else 0, "acked": r.acked if r else 0,
                    "quarantined": r.quarantined if r else 0, "deferred": r.deferred if r else 0,
                    "clock_offset_s": r.clock_offset_s if r else 0}


def progress_of(app) -> Progress:
    return app.extensions.setdefault("vinculo_sync_progress", Progress())


def start_push(app, *, sleep=time.sleep) -> bool:
    """Push in a background thread; False when a push is already running."""
    from booth.sync import client

    prog = progress_of(app)
    with prog.lock:
        if prog.running:
            return False
        prog.running, prog.error, prog.report, prog.finished_at = True, None, None, None

    def run():
        with app.app_context():
            state = client.load_state(app.instance_path)
            try:
                transport = client.Transport(state, lambda: clock.now().timestamp(),
                                             timeout=app.config["SYNC_TIMEOUT_S"])

                def on(report):
                    with prog.lock:
                        prog.report = report
                report = push(db.session, transport, progress=on, sleep=sleep)
                with prog.lock:
                    prog.report = report
                client.save_state(app.instance_path, state)
                try:
                    status(db.session, transport, app.instance_path)   # fetch and keep the receipt
                except SyncFailed:
                    pass
            except PushFailed as e:
                client.save_state(app.instance_path, state)
                with prog.lock:
                    prog.report, prog.error = e.report, str(e)
            except Exception as e:  # noqa: BLE001 - shown on the screen; the outbox is intact either way
                # the frames only (file, line, code): an exception's message may quote a record's values
                app.logger.error("sync push failed: %s\n%s", type(e).__name__,
                                 "".join(traceback.format_tb(e.__traceback__)))
                db.session.rollback()
                with prog.lock:
                    prog.error = f"unexpected error ({type(e).__name__}; details in the node log)"
            finally:
                with prog.lock:
                    prog.running, prog.finished_at = False, clock.now().isoformat()
                db.session.remove()

    threading.Thread(target=run, name="vinculo-sync-push", daemon=True).start()
    return True


# ---------------------------------------------------------------- no network: bundle out, receipt in

class NotEnrolled(Exception):
    pass


def bundle_of_pending(session, instance_path) -> tuple[bytes, int]:
    """A bundle of every unacknowledged record for central (signed, encrypted to central's key)."""
    from booth.backup import crypto
    from booth.sync import bundle, client

    state = client.load_state(instance_path)
    if state is None or not state.central_public_key:
        raise NotEnrolled("This node is not enrolled (or was enrolled before bundles existed): enroll it first, "
                          "while a network is at hand.")
    records = outbox.next_batch(session, db.metadata, {}, size=10**9)
    session.rollback()
    blob = bundle.make_bundle(node_id=state.node, secret_hex=state.secret,
                              central_public=crypto.public_from_text(state.central_public_key), records=records,
                              now=clock.now())
    return blob, len(records)


def import_receipt(session, instance_path, blob: bytes) -> dict:
    """Mark what central acknowledged in a bundle's receipt (checked with this node's secret); commits."""
    from booth.sync import bundle, client

    state = client.load_state(instance_path)
    if state is None:
        raise NotEnrolled("This node is not enrolled.")
    data = bundle.open_receipt(blob, node_id=state.node, secret_hex=state.secret)
    counts = outbox.record_reply(session, db.metadata, data, now=clock.now())
    session.commit()
    return counts
