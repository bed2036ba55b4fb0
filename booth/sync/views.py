"""The sync API of the central server (blueprint ``sync_api``, ``/api/sync``): JSON in, JSON out.

No sessions and no CSRF tokens here: enrollment is authenticated by the one-time code in its body,
every other call by the node's signature (``@signed_node``; ``booth.sync.services.check_signed``).
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from booth import clock
from booth.auth.access import public, signed_node
from booth.extensions import csrf, db, limiter
from booth.sync import services
from booth.sync.services import SyncError

bp = Blueprint("sync_api", __name__, url_prefix="/api/sync")


def enroll_limit() -> str:
    return current_app.config.get("SYNC_ENROLL_RATE_LIMIT", "10 per minute")


def refuse(e: SyncError):
    return jsonify(e.body()), e.status


def central_base_url() -> str:
    return (current_app.config.get("BASE_URL") or request.host_url).rstrip("/")


@bp.post("/enroll")
@public("a booth node's enrollment: authenticated by the one-time code in the body, not by a session",
        before_setup=True)
@csrf.exempt
@limiter.limit(enroll_limit)
def enroll():
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return jsonify(error="bad_request", message="Send a JSON object {node, code, referral_key}."), 400
    try:
        node, secret = services.enroll_node(db.session, code=_text(data.get("code")), node_id=_text(data.get("node")),
                                            referral_key=_text(data.get("referral_key")), now=clock.now())
    except SyncError as e:
        db.session.rollback()
        return refuse(e)
    db.session.commit()
    from booth.sync.bundle import central_public_text

    return jsonify(node=str(node.id), secret=secret, central_base_url=central_base_url(),
                   bundle_key=central_public_text(current_app.instance_path))


def signed_call(handler):
    """Check the node's signature, run ``handler(node, now)`` and commit once; a refusal writes nothing
    (but a refusal for time records the node's measured clock offset)."""
    now = clock.now()
    try:
        node = services.check_signed(db.session, method=request.method, path=request.path, headers=request.headers,
                                     body=request.get_data(cache=True), now=now)
    except SyncError as e:
        if e.error == "clock":
            db.session.commit()   # the node's measured clock offset, nothing else
        else:
            db.session.rollback()
        return refuse(e)
    try:
        body = handler(node, now)
    except SyncError as e:
        db.session.rollback()
        return refuse(e)
    db.session.commit()
    return jsonify(body)


def _json_body():
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise SyncError(400, "bad_request", "Send a JSON object.")
    return data


@bp.post("/ping")
@signed_node
@csrf.exempt
def ping():
    return signed_call(lambda node, now: {"node": str(node.id), "server_time": int(now.timestamp())})


@bp.post("/push")
@signed_node
@csrf.exempt
def push():
    """A batch of the node's records: ``{"records": [{"kind", "row"}, …]}`` → acked / quarantined / deferred."""
    return signed_call(lambda node, now: services.push(db.session, db.metadata, node, _json_body(), now=now))


@bp.post("/receipt")
@signed_node
@csrf.exempt
def receipt():
    """Per kind: the count and the digest of the ids central keeps as this node's."""
    return signed_call(lambda node, now: {"node": str(node.id), "server_time": int(now.timestamp()),
                                          "kinds": services.receipt(db.session, db.metadata, node)})


@bp.post("/pull")
@signed_node
@csrf.exempt
def pull():
    """Central's shared catalogue and the linkage of the node's own referrals."""
    return signed_call(lambda node, now: {"node": str(node.id), "server_time": int(now.timestamp()),
                                          "records": services.pull(db.session, db.metadata, node)})


def _text(value) -> str | None:
    return value if isinstance(value, str) else None
