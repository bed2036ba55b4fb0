"""schemathesis against the sync API's own OpenAPI document, on the real PostgreSQL: cases generated from
the schema (valid and malformed), each signed like a real node so it gets past the signature check.
Every answer is below 500; every 4xx carries an error and a message and wrote nothing. The number of
examples follows the hypothesis profile (``ci`` in make test; ``bench/fuzz_sync.py`` runs ≥ 1,000 per operation and mode).
"""
from __future__ import annotations

import json
import os

import pytest
import sqlalchemy as sa
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from booth.extensions import db
from booth.sync import services, signing

def snapshot(app) -> list:
    """Every row of every table, as one digest per table, in one PostgreSQL round trip."""
    with app.app_context():
        parts = [f"SELECT '{t.name}', count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) "
                 f'FROM "{t.name}" x' for t in db.metadata.sorted_tables]
        return db.session.execute(sa.text(" UNION ALL ".join(parts))).all()


OPERATIONS = ["/api/sync/enroll", "/api/sync/ping", "/api/sync/push", "/api/sync/receipt", "/api/sync/pull"]


@pytest.fixture
def world(pg_app):
    pg_app.config["SYNC_ENROLL_RATE_LIMIT"] = "100000 per minute"   # reach the code behind the limit
    clock = pg_app.config["CLOCK"]
    with pg_app.app_context():
        node, code = services.register_node(db.session, name="fuzz", now=clock.now())
        node, secret = services.enroll_node(db.session, code=code, node_id=None, referral_key="ab" * 32, now=clock.now())
        db.session.commit()
        node_id = str(node.id)
    doc = pg_app.test_client().get("/api/sync/openapi.json").get_json()
    return pg_app, node_id, bytes.fromhex(secret), schemathesis.openapi.from_dict(doc)


def signed_post(app, node_id, secret, path, body: bytes, extra_headers: dict):
    clock = app.config["CLOCK"]
    clock.advance(seconds=1)   # nonces are unique anyway; time moves like a real node's
    headers = {k: v for k, v in extra_headers.items()
               if k.lower() not in ("content-type", "content-length", "host") and not k.lower().startswith("x-vinculo")}
    if path != "/api/sync/enroll":
        headers.update(signing.headers(node_id, secret, "POST", path, body, clock.now().timestamp()))
    return app.test_client().post(path, data=body, headers={**headers, "Content-Type": "application/json"})


@pytest.mark.parametrize("mode", [GenerationMode.NEGATIVE, GenerationMode.POSITIVE], ids=["malformed", "valid"])
@pytest.mark.parametrize("path", OPERATIONS)
def test_sync_api_never_fails_and_a_refusal_writes_nothing(world, path, mode, caplog):
    app, node_id, secret, schema = world
    strategy = schema[path]["POST"].as_strategy(generation_mode=mode)
    seen = {"4xx": 0, "2xx": 0}

    @settings(suppress_health_check=list(HealthCheck), deadline=None)
    @given(strategy)
    def one(case):
        kwargs = case.as_transport_kwargs(base_url="http://localhost")
        if "json" in kwargs:
            body = json.dumps(kwargs["json"]).encode()
        else:
            raw = kwargs.get("data", b"")
            body = raw.encode() if isinstance(raw, str) else (raw or b"")
        before = snapshot(app)
        r = signed_post(app, node_id, secret, path, body, kwargs.get("headers") or {})
        if r.status_code >= 500:
            errors = [rec.exc_text or rec.getMessage() for rec in caplog.records if rec.levelname == "ERROR"]
            raise AssertionError(f"{r.status_code} for {body[:300]!r}: {errors[-1:]}")
        if r.status_code >= 400:
            seen["4xx"] += 1
            data = r.get_json(silent=True) or {}
            assert data.get("error") and data.get("message"), r.get_data(as_text=True)[:300]
            after = snapshot(app)
            assert after == before, f"a refused request wrote: {r.status_code} {data}"
        else:
            seen["2xx"] += 1

    one()
    if os.environ.get("VINCULO_FUZZ_REPORT"):   # bench/fuzz_sync.py adds these up
        with open(os.environ["VINCULO_FUZZ_REPORT"], "a") as out:
            out.write(json.dumps({"path": path, "mode": mode.value, **seen}) + "\n")
    if mode is GenerationMode.NEGATIVE:
        assert seen["4xx"] > 0       # malformed bodies were generated and refused
    assert sum(seen.values()) > 0
