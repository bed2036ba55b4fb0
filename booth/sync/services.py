"""Sync, central side: register a node (one-time code), enroll it (per-node secret), revoke it, and
check the signature of every request it sends. Plain functions: they flush, the caller commits."""
from __future__ import annotations

import re
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, select, tuple_
from sqlalchemy.exc import IntegrityError

from booth.audit import services as audit
from booth.auth.hashing import token_hash
from booth.auth.services import CROCKFORD
from booth.sync import signing
from booth.sync.models import SyncNode, SyncNonce

CODE_MINUTES = 30
CODE_LENGTH = 12           # Crockford base32 symbols: 60 bits, shown as XXXX-XXXX-XXXX
NONCE_KEEP = timedelta(minutes=10)
HEX_256 = re.compile(r"^[0-9a-f]{64}$")


class SyncError(Exception):
    """A refused sync request: HTTP status, a short machine-readable code and a sentence for people."""

    def __init__(self, status: int, error: str, message: str, **extra):
        super().__init__(message)
        self.status, self.error, self.message, self.extra = status, error, message, extra

    def body(self) -> dict:
        return {"error": self.error, "message": self.message, **self.extra}


def normalize_code(code: str | None) -> str:
    raw = (code or "").upper().replace("-", "").replace(" ", "")
    return raw.translate(str.maketrans({"O": "0", "I": "1", "L": "1"}))


def format_code(code: str) -> str:
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


def register_node(session, *, name: str, event=None, now: datetime, minutes: int = CODE_MINUTES,
                  actor=None, replaces: SyncNode | None = None) -> tuple[SyncNode, str]:
    """A new node and its one-time enrollment code (returned once; only its SHA-256 is stored).

    ``replaces``: a node whose laptop was lost and whose backup was restored on this one. The old node is
    revoked and the records it pushed become the new node's, so the restored copy pushes what the backup
    holds again as identical copies (acknowledged, never doubled) and its receipt adds up."""
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise SyncError(400, "bad_name", "Give the node a name of at most 80 characters.")
    code = "".join(secrets.choice(CROCKFORD) for _ in range(CODE_LENGTH))
    node = SyncNode(name=name, event_id=event.id if event is not None else None, code_hash=token_hash(code),
                    code_expires_at=now + timedelta(minutes=minutes), created_at=now)
    session.add(node)
    session.flush()
    audit.record(session, "sync.node_register", now=now, actor=actor, record_id=node.id)
    if replaces is not None:
        from booth.sync.models import SyncQuarantine, SyncRecord

        if replaces.id == node.id:   # pragma: no cover - a new node never replaces itself
            raise SyncError(400, "bad_replaces", "A node cannot replace itself.")
        node.event_id = node.event_id or replaces.event_id
        revoke_node(session, replaces, now=now, actor=actor)
        session.execute(SyncRecord.__table__.update().where(SyncRecord.node_id == replaces.id).values(node_id=node.id))
        session.execute(SyncQuarantine.__table__.update().where(SyncQuarantine.node_id == replaces.id)
                        .values(node_id=node.id))
        audit.record(session, "sync.node_replace", now=now, actor=actor, record_id=replaces.id)
    return node, format_code(code)


def enroll_node(session, *, code: str | None, node_id: str | None, referral_key: str | None,
                now: datetime) -> tuple[SyncNode, str]:
    """Trade a one-time code for the node's secret. Every refusal happens before anything is written."""
    key = (referral_key or "").strip().lower()
    if not HEX_256.match(key):
        raise SyncError(400, "bad_referral_key", "referral_key must be the node's 256-bit referral key in hex.")
    normalized = normalize_code(code)
    node = session.scalar(select(SyncNode).where(SyncNode.code_hash == token_hash(normalized))) \
        if len(normalized) == CODE_LENGTH else None
    if node is None or (node_id and str(node.id) != str(node_id).strip().lower()):
        raise SyncError(403, "code_invalid", "This enrollment code is not valid. Ask the central coordinator "
                                             "to register the node again.")
    if node.revoked_at is not None:
        raise SyncError(403, "node_revoked", "This node has been revoked at the central server.")
    if node.code_used_at is not None:
        raise SyncError(403, "code_used", "This enrollment code has already been used. Ask the central "
                                          "coordinator to register the node again.")
    if node.code_expires_at <= now:
        raise SyncError(403, "code_expired", f"This enrollment code has expired (codes last {CODE_MINUTES} "
                                             "minutes). Ask the central coordinator to register the node again.")
    secret = secrets.token_hex(32)
    node.secret, node.referral_key = secret, key
    node.code_used_at = node.enrolled_at = node.last_seen_at = now
    session.flush()
    audit.record(session, "sync.node_enroll", now=now, record_id=node.id)
    return node, secret


def revoke_node(session, node: SyncNode, *, now: datetime, actor=None) -> SyncNode:
    if node.revoked_at is None:
        node.revoked_at = now
        session.flush()
        audit.record(session, "sync.node_revoke", now=now, actor=actor, record_id=node.id)
    return node


def purge_nonces(session, *, now: datetime) -> None:
    old = delete(SyncNonce).where(SyncNonce.seen_at < now - NONCE_KEEP)
    if session.get_bind().dialect.name == "postgresql":
        # rows another request is purging right now are skipped, not waited for: requests of one node that
        # arrive together (a push keeps two in flight) must not queue here
        table = SyncNonce.__table__
        stale = select(table.c.node_id, table.c.nonce).where(table.c.seen_at < now - NONCE_KEEP) \
            .with_for_update(skip_locked=True)
        old = delete(SyncNonce).where(tuple_(table.c.node_id, table.c.nonce).in_(stale))
    session.execute(old)


def _nonce_seen(session, node: SyncNode, now: datetime):
    def seen(nonce: str) -> bool:
        # one statement: a nonce already there (seen before, or sent twice at once) inserts nothing
        table = SyncNonce.__table__
        if session.get_bind().dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(table).values(node_id=node.id, nonce=nonce, seen_at=now).on_conflict_do_nothing() \
            .returning(table.c.nonce)
        return session.execute(stmt).first() is None
    return seen


def check_signed(session, *, method: str, path: str, headers, body: bytes, now: datetime) -> SyncNode:
    """The enrolled, live node that signed this request, or a SyncError (401 bad signature, clock or
    replay; 403 revoked). A refusal for time carries central's time and records the node's offset."""
    try:
        node_id = uuid.UUID(headers.get(signing.HEADER_NODE, ""))
    except ValueError:
        node_id = None
    node = session.get(SyncNode, node_id) if node_id else None
    if node is None or node.secret is None:
        raise SyncError(401, "bad_signature", "The request is not signed by an enrolled node.")
    if node.revoked_at is not None:
        raise SyncError(403, "node_revoked", "This node has been revoked at the central server.")
    now_s = now.timestamp()
    purge_nonces(session, now=now)
    verdict = signing.verify(bytes.fromhex(node.secret), method, path, headers, body, now_s,
                             _nonce_seen(session, node, now))
    if verdict.reason == "clock":
        # the signature is good, so the timestamp really is the node's clock
        node.clock_offset_s = int(headers[signing.HEADER_TS]) - int(now_s)
        session.flush()
        raise SyncError(401, "clock", "The node's clock is more than 5 minutes off; re-sign with the "
                                      "offset to server_time.", server_time=int(now_s))
    if verdict.reason == "replay":
        raise SyncError(401, "replay", "This request was already received (replayed nonce).")
    if not verdict.ok:
        raise SyncError(401, verdict.reason or "bad_signature", "The signature does not match.")
    node.last_seen_at = now
    # the node's own clock, before the correction it says it applied (informational: never decides acceptance)
    applied = headers.get(signing.HEADER_OFFSET, "") or "0"
    applied = int(applied) if re.fullmatch(r"-?\d{1,9}", applied) else 0
    node.clock_offset_s = int(headers[signing.HEADER_TS]) - applied - int(now_s)
    # not flushed here: the update of the node's row (which locks it until the commit) waits for the first
    # query of the call, so a push decodes its batch before it queues behind the node's previous batch
    return node


# ---------------------------------------------------------------- push, receipt, pull (central)

def _catalogue(session, *, now: datetime) -> None:
    """The kit products booths point to (same ids everywhere), made by the first push or bundle. When
    several booths send their first batch together, all but one find the rows taken (the insert waits
    for the first one's commit): the catalogue is there, so that is no error (bench/central_load.py)."""
    from booth.settings import defaults
    from booth.settings.models import KitProduct
    from booth.settings.services import ensure_catalogue

    if set(session.scalars(select(KitProduct.code))) >= {p[0] for p in defaults.PRODUCTS}:
        return   # the common case, one cheap query a batch
    try:
        with session.begin_nested():
            ensure_catalogue(session, now=now)
    except IntegrityError:
        pass


def push(session, metadata, node: SyncNode, payload, *, now: datetime) -> dict:
    """Apply one batch from ``node`` (see ``booth.sync.merge``). A malformed batch → 400, nothing written."""
    from booth.sync import merge

    try:
        decoded = merge.decode_batch(metadata, payload)
    except merge.BatchError as e:
        raise SyncError(400, "bad_batch", str(e)) from None
    # one batch of a node at a time, in the order they get here: a push keeps two requests in flight, the
    # second is decoded while the first is applied, then waits here for its commit. FOR NO KEY UPDATE
    # (key_share): the waiting request could still record its nonce (a foreign key's share lock on the row)
    node = session.execute(select(SyncNode).where(SyncNode.id == node.id).with_for_update(key_share=True)
                           .execution_options(populate_existing=True)).scalar_one()
    if node.revoked_at is not None:   # revoked (or linked to another event) while this batch waited: as it is now
        raise SyncError(403, "node_revoked", "This node has been revoked at the central server.")
    _catalogue(session, now=now)
    outcome = merge.apply(session, metadata, node, decoded, now=now)
    if outcome.quarantined:
        audit.record(session, "sync.quarantine", now=now, record_id=node.id)
    if payload.get("last"):
        refresh_summaries(session, node, now=now)
    return outcome.as_dict()


def refresh_summaries(session, node: SyncNode, *, now: datetime) -> int:
    """The central dashboard's summaries of this node's booth-days changed by its push (once the push is over)."""
    from booth.reports.central import refresh_pending
    from booth.sync.models import SyncRecord

    booths = session.scalars(select(SyncRecord.record_id).where(SyncRecord.kind == "booth",
                                                                SyncRecord.node_id == node.id)).all()
    return refresh_pending(session.connection(), now=now, booth_ids=booths)


def receipt(session, metadata, node: SyncNode, *, now: datetime) -> dict:
    """Per kind: how many records central keeps as this node's, and the digest of their ids."""
    from booth.sync import records as R

    refresh_summaries(session, node, now=now)   # a receipt is asked for once a push is over
    ledger = metadata.tables["sync_records"]
    rows = session.execute(select(ledger.c.kind, ledger.c.record_id).where(ledger.c.node_id == node.id))
    ids: dict[str, list] = {}
    for kind, rid in rows:
        ids.setdefault(kind, []).append(rid)
    return {k.name: {"count": len(ids.get(k.name, [])), "digest": R.ids_digest(ids.get(k.name, []))}
            for k in R.KINDS}


def pull(session, metadata, node: SyncNode) -> dict:
    """Central's shared catalogue (kit products; destinations and routing rules that central made, not a
    node's), and the linkage and matched provisional arrivals of this node's own referrals."""
    from booth.sync import records as R

    ledger = metadata.tables["sync_records"]
    out = {}
    for kind in R.PULL_KINDS:
        table = metadata.tables[kind.table]
        q = select(*R.columns(metadata, kind))
        if kind.name in ("destination", "routing_rule"):
            q = q.where(~table.c.id.in_(select(ledger.c.record_id).where(ledger.c.kind == kind.name)))
        elif kind.name in ("linkage", "provisional_arrival"):
            col = table.c.referral_id if kind.name == "linkage" else table.c.matched_referral_id
            q = q.where(col.in_(select(ledger.c.record_id).where(ledger.c.kind == "referral",
                                                                 ledger.c.node_id == node.id)))
        out[kind.name] = [R.encode(r) for r in session.execute(q.order_by(table.c.id)).mappings()]
    return out


def consent_texts(config) -> dict:
    """Central's consent texts ({"es", "en"}): ``CONSENT_TEXTS`` in the configuration, else the built-in ones."""
    from booth.settings import defaults

    texts = config.get("CONSENT_TEXTS") or defaults.default_content()["consent"]
    return {"es": texts.get("es", ""), "en": texts.get("en", "")}


def import_bundle(session, metadata, blob: bytes, *, instance_path, now: datetime) -> tuple[SyncNode, bytes, dict]:
    """Central: apply a bundle file (same exactly-once rules as a push). Returns the node, the receipt file's
    bytes and the counts. A bundle that is not genuine, or from a revoked node, is refused whole."""
    import hashlib

    from booth.sync import bundle, merge

    node = session.get(SyncNode, bundle.bundle_node(blob))
    if node is None or node.secret is None:
        raise bundle.BundleError("This bundle comes from a node this server has not enrolled.")
    if node.revoked_at is not None:
        raise bundle.BundleError("This bundle comes from a revoked node: it was refused.")
    data = bundle.open_bundle(blob, secret_hex=node.secret, central_private=bundle.central_key(instance_path))
    _catalogue(session, now=now)
    outcome = merge.Outcome()
    items = data["records"]
    for start in range(0, len(items), merge.MAX_BATCH):
        try:
            decoded = merge.decode_batch(metadata, {"records": items[start:start + merge.MAX_BATCH]})
        except merge.BatchError as e:
            raise bundle.BundleError(f"The bundle holds a malformed record: {e}") from None
        part = merge.apply(session, metadata, node, decoded, now=now)
        outcome.acked += part.acked
        outcome.quarantined += part.quarantined
        outcome.deferred += part.deferred
    node.last_seen_at = now
    refresh_summaries(session, node, now=now)
    audit.record(session, "sync.bundle_import", now=now, record_id=node.id)
    receipt = bundle.make_receipt(node_id=str(node.id), secret_hex=node.secret,
                                  bundle_sha256=hashlib.sha256(blob).hexdigest(), outcome=outcome.as_dict(), now=now)
    return node, receipt, outcome.counts()


# ---------------------------------------------------------------- the central coordinator's sync screen

def link_node(session, metadata, node: SyncNode, event, *, now: datetime, actor=None) -> int:
    """Link a node to a central event: the event records it pushed (set up offline, each its own) count
    under that event in reports from now on. Returns how many of its event records were linked."""
    from booth.sync.models import SyncRecord

    node.event_id = event.id
    events = metadata.tables["events"]
    own = select(SyncRecord.record_id).where(SyncRecord.kind == "event", SyncRecord.node_id == node.id)
    result = session.execute(events.update().where(events.c.id.in_(own), events.c.id != event.id)
                             .values(central_event_id=event.id))
    audit.record(session, "sync.node_link", now=now, actor=actor, record_id=node.id)
    return result.rowcount


def open_quarantine(session) -> list:
    from booth.sync.models import SyncQuarantine

    return list(session.scalars(select(SyncQuarantine).where(SyncQuarantine.resolved_at.is_(None))
                                .order_by(SyncQuarantine.received_at, SyncQuarantine.id)))


def resolve_quarantine(session, metadata, entry, *, action: str, now: datetime, actor=None) -> None:
    """``apply``: a conflict's incoming copy replaces central's row (same id, same version); ``keep``: central's
    row stays and the entry is closed. Ids owned by another node or refused by the database can only be kept."""
    from booth.sync import merge

    if entry.resolved_at is not None:
        raise SyncError(409, "resolved", "This entry is already resolved.")
    if action not in ("apply", "keep"):
        raise SyncError(400, "bad_action", "Choose apply or keep.")
    if action == "apply":
        if entry.reason != "conflict":
            raise SyncError(409, "not_applicable", "Only a conflict with this node's own record can be applied.")
        decoded = merge.decode_batch(metadata, {"records": [{"kind": entry.kind, "row": entry.payload}]})
        kind, row, _ = decoded[0]
        table = metadata.tables[kind.target]
        session.execute(table.update().where(table.c.id == row["id"]).values({k: v for k, v in row.items() if k != "id"}))
    entry.resolved_at, entry.resolution = now, ("applied" if action == "apply" else "kept")
    entry.resolved_by = actor.code if actor is not None else None
    audit.record(session, f"sync.quarantine_{entry.resolution}", now=now, actor=actor, record_id=entry.id)
