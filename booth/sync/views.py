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
    """Trade a one-time enrollment code for the node's secret.
    ---
    post:
      summary: "Trade a one-time enrollment code for the node's secret (not signed; rate-limited)"
      requestBody: {required: true, content: {application/json: {schema: {$ref: "#/components/schemas/Enroll"}}}}
      responses:
          200: {description: "enrolled: node id, secret (once), central base URL, central's bundle key"}
          400: {description: "malformed body", content: {application/json: {schema: {$ref: "#/components/schemas/Refusal"}}}}
          403: {description: "code invalid, used or expired; node revoked", content: {application/json: {schema: {$ref: "#/components/schemas/Refusal"}}}}
          429: {description: "too many attempts"}
    """
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

    event = None
    if node.event is not None:   # a node enrolled before its setup takes this event
        e = node.event
        event = {"id": str(e.id), "name": e.name, "day": e.day.isoformat(), "place": e.place, "timezone": e.timezone,
                 "version": e.version}
    return jsonify(node=str(node.id), secret=secret, central_base_url=central_base_url(),
                   bundle_key=central_public_text(current_app.instance_path), event=event)


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


def _json_body(optional: bool = False):
    """The request's JSON object; ``optional``: an empty body is an empty object. Anything else → 400."""
    if optional and not request.get_data(cache=True):
        return {}
    data = request.get_json(silent=True, force=True)   # the signature covers the body, whatever its label
    if not isinstance(data, dict):
        raise SyncError(400, "bad_request", "Send a JSON object.")
    return data


def _answer(node, now, **body) -> dict:
    """The answer of a call without a request body of its own (an empty object is fine, anything else 400)."""
    _json_body(optional=True)
    return {"node": str(node.id), "server_time": int(now.timestamp()), **body}


@bp.post("/ping")
@signed_node
@csrf.exempt
def ping():
    """Check the channel: answers the node id and central's time.
    ---
    post:
      summary: "Check the channel: answers the node id and central's time."
      security: [{node: [], timestamp: [], nonce: [], signature: []}]
      requestBody: {required: true, content: {application/json: {schema: {$ref: "#/components/schemas/Empty"}}}}
      responses:
          200: {description: ok, content: {application/json: {schema: {type: object, required: [node, server_time]}}}}
          400: {$ref: "#/components/responses/Malformed"}
          401: {$ref: "#/components/responses/Unsigned"}
          403: {$ref: "#/components/responses/Revoked"}
    """
    return signed_call(_answer)


@bp.post("/push")
@signed_node
@csrf.exempt
def push():
    """Push a batch of the node's records (exactly once): acked, quarantined or deferred per record.
    ---
    post:
      summary: "Push a batch of the node's records (exactly once): acked, quarantined or deferred per record."
      security: [{node: [], timestamp: [], nonce: [], signature: []}]
      requestBody: {required: true, content: {application/json: {schema: {$ref: "#/components/schemas/Batch"}}}}
      responses:
          200: {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/PushResult"}}}}
          400: {$ref: "#/components/responses/Malformed"}
          401: {$ref: "#/components/responses/Unsigned"}
          403: {$ref: "#/components/responses/Revoked"}
    """
    return signed_call(lambda node, now: services.push(db.session, db.metadata, node, _json_body(), now=now))


@bp.post("/receipt")
@signed_node
@csrf.exempt
def receipt():
    """The receipt: per kind, the count and the digest of the ids central keeps as this node's.
    ---
    post:
      summary: "The receipt: per kind, the count and the digest of the ids central keeps as this node's."
      security: [{node: [], timestamp: [], nonce: [], signature: []}]
      requestBody: {required: true, content: {application/json: {schema: {$ref: "#/components/schemas/Empty"}}}}
      responses:
          200: {description: ok, content: {application/json: {schema: {type: object, required: [node, kinds]}}}}
          400: {$ref: "#/components/responses/Malformed"}
          401: {$ref: "#/components/responses/Unsigned"}
          403: {$ref: "#/components/responses/Revoked"}
    """
    return signed_call(lambda node, now: _answer(node, now, kinds=services.receipt(db.session, db.metadata, node, now=now)))


@bp.post("/pull")
@signed_node
@csrf.exempt
def pull():
    """Central's shared catalogue and the linkage of the node's own referrals.
    ---
    post:
      summary: "Central's shared catalogue and the linkage of the node's own referrals."
      security: [{node: [], timestamp: [], nonce: [], signature: []}]
      requestBody: {required: true, content: {application/json: {schema: {$ref: "#/components/schemas/Empty"}}}}
      responses:
          200: {description: ok, content: {application/json: {schema: {type: object, required: [node, records]}}}}
          400: {$ref: "#/components/responses/Malformed"}
          401: {$ref: "#/components/responses/Unsigned"}
          403: {$ref: "#/components/responses/Revoked"}
    """
    return signed_call(lambda node, now: _answer(node, now, records=services.pull(db.session, db.metadata, node),
                                                 consent_texts=services.consent_texts(current_app.config)))


@bp.get("/openapi.json")
@public("the OpenAPI document of the sync API: a description, nothing secret", before_setup=True)
def openapi():
    from booth.sync.openapi import build

    if "SYNC_OPENAPI" not in current_app.extensions:
        current_app.extensions["SYNC_OPENAPI"] = build(current_app, db.metadata)
    return jsonify(current_app.extensions["SYNC_OPENAPI"])


def _text(value) -> str | None:
    return value if isinstance(value, str) else None
