"""The OpenAPI 3 document of the sync API, generated from the code with apispec: each view's docstring
(YAML after ``---``) gives its operation, and the record schemas come from the synced tables' columns
(``booth.sync.records``), the same definitions the central server validates a batch with."""
from __future__ import annotations

import sqlalchemy as sa
from apispec import APISpec
from apispec_webframeworks.flask import FlaskPlugin

from booth.db import UTCDateTime
from booth.sync import merge, records as R
from booth.sync import signing

SIGNED = [{"node": [], "timestamp": [], "nonce": [], "signature": []}]


def column_schema(col: sa.Column) -> dict:
    t = col.type
    if isinstance(t, sa.Uuid):
        out = {"type": "string", "format": "uuid"}
    elif isinstance(t, UTCDateTime):
        out = {"type": "string", "format": "date-time"}
    elif isinstance(t, sa.Date):
        out = {"type": "string", "format": "date"}
    elif isinstance(t, sa.Boolean):
        out = {"type": "boolean"}
    elif isinstance(t, sa.Integer):
        out = {"type": "integer", "minimum": -(2**31) + 1, "maximum": 2**31 - 1}
        if col.name == "version":
            out["minimum"] = 1
    elif isinstance(t, sa.Float):
        out = {"type": "number", "minimum": -1e9, "maximum": 1e9}
    elif isinstance(t, sa.String):
        out = {"type": "string"}
        if t.length:
            out["maxLength"] = t.length
    elif isinstance(t, sa.JSON):
        out = {"oneOf": [{"type": "object"}, {"type": "array"}]}
    else:  # pragma: no cover - every synced column type is listed above
        raise TypeError(f"no schema for {col.name}: {t!r}")
    if col.nullable:
        out["nullable"] = True
    return out


def record_schema(metadata, kind: R.Kind) -> dict:
    cols = R.columns(metadata, kind)
    return {"type": "object", "additionalProperties": False, "required": [c.name for c in cols],
            "properties": {c.name: column_schema(c) for c in cols}}


def build(app, metadata) -> dict:
    spec = APISpec(title="Vínculo sync API", version="1", openapi_version="3.0.3", plugins=[FlaskPlugin()],
                   info={"description": "Booth nodes push their records to the central server and pull its catalogue. "
                                        "Every call but enrollment is signed with the node's secret: HMAC-SHA256 over "
                                        "METHOD, path, timestamp, nonce and the SHA-256 of the body "
                                        "(docs/ARCHITECTURE.md §3)."})
    for name, header in (("node", signing.HEADER_NODE), ("timestamp", signing.HEADER_TS),
                         ("nonce", signing.HEADER_NONCE), ("signature", signing.HEADER_SIG)):
        spec.components.security_scheme(name, {"type": "apiKey", "in": "header", "name": header})
    for kind in R.KINDS + tuple(k for k in R.PULL_KINDS if k.name not in R.BY_NAME):
        spec.components.schema(f"Row_{kind.name}", record_schema(metadata, kind))
    spec.components.schema("Record", {"oneOf": [
        {"type": "object", "additionalProperties": False, "required": ["kind", "row"],
         "properties": {"kind": {"type": "string", "enum": [k.name]},
                        "row": {"$ref": f"#/components/schemas/Row_{k.name}"}}} for k in R.KINDS]})
    spec.components.schema("Batch", {"type": "object", "additionalProperties": False, "required": ["records"],
                                     "properties": {"records": {"type": "array", "maxItems": merge.MAX_BATCH,
                                                                "items": {"$ref": "#/components/schemas/Record"}},
                                                    "last": {"type": "boolean", "description":
                                                             "the push's last batch: central then recomputes the "
                                                             "dashboard summaries of the booth-days it changed"}}})
    entry = {"type": "array", "items": {"type": "array", "minItems": 4, "maxItems": 4}}
    spec.components.schema("PushResult", {"type": "object", "required": ["acked", "quarantined", "deferred"],
                                          "properties": {"acked": entry, "quarantined": entry, "deferred": entry}})
    spec.components.schema("Refusal", {"type": "object", "required": ["error", "message"],
                                       "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                                                      "server_time": {"type": "integer"}}})
    spec.components.schema("Enroll", {"type": "object", "required": ["code", "referral_key"],
                                      "properties": {"code": {"type": "string"}, "node": {"type": "string"},
                                                     "referral_key": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}})
    spec.components.schema("Empty", {"type": "object"})
    refusal = {"application/json": {"schema": {"$ref": "#/components/schemas/Refusal"}}}
    spec.components.response("Malformed", {"description": "malformed body (nothing written)", "content": refusal})
    spec.components.response("Unsigned", {"description": "bad signature, clock off by more than 5 minutes (with "
                                                         "server_time), or replayed nonce", "content": refusal})
    spec.components.response("Revoked", {"description": "revoked node", "content": refusal})
    with app.test_request_context():
        for endpoint in ("enroll", "ping", "push", "receipt", "pull"):
            spec.path(view=app.view_functions[f"sync_api.{endpoint}"], app=app)
    return spec.to_dict()
