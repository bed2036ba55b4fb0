"""Sync slice 1: a central coordinator registers a node, the booth enrolls over real HTTP (a central
server on a loopback port), and every later request is signed: wrong secret 401, revoked node 403,
a clock 10 minutes off is corrected by re-signing, a replay is refused. Central runs on PostgreSQL."""
from __future__ import annotations

import json
import os
import shutil
import stat
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from booth import create_app
from booth.clock import FrozenClock
from booth.events.models import Event
from booth.extensions import db
from booth.referrals import codes
from booth.referrals.services import known_keys, referral_key
from booth.sync import signing
from booth.sync.models import SyncNode, SyncNonce
from tests.conftest import START, base_config, setup_node
from tests.test_csrf_headers import snapshot


from tests.sync.conftest import central_node, enrolled, event_base_url, register, state_of, sync  # noqa: F401

# ---------------------------------------------------------------- enrollment

def test_register_enroll_and_ping(central, make_booth):
    booth = make_booth()
    reg = register(central)
    assert len(reg["code"].replace("-", "")) == 12
    assert central_node(central, reg["node"]).state == "registered"

    r = sync(booth, "enroll", central.url, reg["code"], "--node", reg["node"])
    assert r.exit_code == 0, r.output
    assert f"enrolled as node {reg['node']}" in r.output

    # the secret lives in instance/sync.json, readable by its owner only — and never in the database
    path = Path(booth.instance_path) / "sync.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    state = state_of(booth)
    node = central_node(central, reg["node"])
    assert state["node"] == reg["node"] and state["central_url"] == central.url
    assert len(bytes.fromhex(state["secret"])) == 32 and state["secret"] == node.secret
    assert state["secret"] not in json.dumps(snapshot(booth))
    # QR codes now point to central
    assert event_base_url(booth) == central.url
    # central knows the node's referral key: a QR token printed by the booth verifies there
    key = referral_key(booth.instance_path)
    assert node.referral_key == key.hex() and node.state == "enrolled"
    token = codes.token_for(key, uuid.uuid4())
    with central.app_context():
        assert any(codes.token_verifies(token, k) for k in known_keys(db.session, central.instance_path))

    r = sync(booth, "ping")
    assert r.exit_code == 0, r.output
    assert f"ok: node {reg['node']}" in r.output and "clock offset" not in r.output
    node = central_node(central, reg["node"])
    assert node.last_seen_at is not None and node.clock_offset_s == 0

    listed = json.loads(sync(central, "nodes", "--json").output)
    assert [(n["node"], n["state"]) for n in listed] == [(reg["node"], "enrolled")]
    assert "secret" not in json.dumps(listed) and node.secret not in sync(central, "nodes").output


def test_used_or_expired_code_is_refused_and_nothing_is_written(central, make_booth, clock):
    first, second = make_booth("first"), make_booth("second")
    reg = enrolled(central, first)

    before = snapshot(central)
    r = sync(second, "enroll", central.url, reg["code"])
    assert r.exit_code != 0 and "already been used" in r.output
    assert snapshot(central) == before
    assert not (Path(second.instance_path) / "sync.json").exists()
    assert event_base_url(second) is None

    reg2 = register(central, "Módulo 2")
    clock.advance(minutes=30, seconds=1)     # central's clock: the code lasted 30 minutes
    before = snapshot(central)
    r = sync(second, "enroll", central.url, reg2["code"])
    assert r.exit_code != 0 and "expired" in r.output
    assert snapshot(central) == before and event_base_url(second) is None

    # the same refusals as JSON, for any client
    body = {"code": reg["code"], "referral_key": "ab" * 32}
    r = central.test_client().post("/api/sync/enroll", json=body)
    assert r.status_code == 403 and r.get_json()["error"] == "code_used"
    r = central.test_client().post("/api/sync/enroll", json={**body, "code": reg2["code"]})
    assert r.status_code == 403 and r.get_json()["error"] == "code_expired"
    r = central.test_client().post("/api/sync/enroll", json={**body, "code": "ABCD-EFGH-JKMN"})
    assert r.status_code == 403 and r.get_json()["error"] == "code_invalid"
    r = central.test_client().post("/api/sync/enroll", json={"code": reg2["code"], "referral_key": "nope"})
    assert r.status_code == 400 and r.get_json()["error"] == "bad_referral_key"
    assert central.test_client().post("/api/sync/enroll", data="not json").status_code == 400
    assert snapshot(central) == before


def test_a_code_for_another_node_id_is_refused(central, make_booth):
    reg = register(central)
    booth = make_booth()
    before = snapshot(central)
    r = sync(booth, "enroll", central.url, reg["code"], "--node", str(uuid.uuid4()))
    assert r.exit_code != 0 and "not valid" in r.output
    assert snapshot(central) == before


def test_enrollment_attempts_are_rate_limited(central):
    client = central.test_client()
    body = {"code": "ABCD-EFGH-JKMN", "referral_key": "ab" * 32}
    assert [client.post("/api/sync/enroll", json=body).status_code for _ in range(10)] == [403] * 10
    assert client.post("/api/sync/enroll", json=body).status_code == 429


# ---------------------------------------------------------------- the signed channel

def test_wrong_secret_is_refused_401(central, make_booth):
    booth = make_booth()
    reg = enrolled(central, booth)
    state = state_of(booth)
    from booth.sync.client import NodeState, save_state
    save_state(booth.instance_path, NodeState(**{**state, "secret": "00" * 32}))
    before = snapshot(central)
    r = sync(booth, "ping")
    assert r.exit_code != 0 and "401" in r.output
    assert snapshot(central) == before
    assert central_node(central, reg["node"]).last_seen_at == central_node(central, reg["node"]).enrolled_at


def test_revoked_node_is_refused_403_and_its_key_is_forgotten(central, make_booth):
    booth = make_booth()
    reg = enrolled(central, booth)
    assert sync(booth, "ping").exit_code == 0
    r = sync(central, "revoke-node", reg["node"])
    assert r.exit_code == 0 and "revoked" in r.output
    r = sync(booth, "ping")
    assert r.exit_code != 0 and "403" in r.output and "revoked" in r.output
    token = codes.token_for(referral_key(booth.instance_path), uuid.uuid4())
    with central.app_context():
        assert not any(codes.token_verifies(token, k) for k in known_keys(db.session, central.instance_path))
    assert json.loads(sync(central, "nodes", "--json").output)[0]["state"] == "revoked"


def test_clock_ten_minutes_off_is_corrected_by_re_signing(central, make_booth, clock):
    booth = make_booth()
    reg = enrolled(central, booth)
    booth.clock.advance(minutes=10)          # the booth's clock runs 10 minutes ahead of central's
    secret = bytes.fromhex(state_of(booth)["secret"])

    # the first request is refused with central's time
    now_s = booth.clock.now().timestamp()
    r = central.test_client().post("/api/sync/ping", data=b"{}",
                                   headers=signing.headers(reg["node"], secret, "POST", "/api/sync/ping", b"{}", now_s))
    assert r.status_code == 401
    assert r.get_json()["error"] == "clock" and r.get_json()["server_time"] == int(clock.now().timestamp())
    assert central_node(central, reg["node"]).clock_offset_s == 600

    # the node re-signs with the measured offset (and shows it); central records the node's real offset
    r = sync(booth, "ping")
    assert r.exit_code == 0, r.output
    assert "clock offset -600 s" in r.output and "ahead of central" in r.output and "ok: node" in r.output
    assert state_of(booth)["clock_offset_s"] == -600
    assert central_node(central, reg["node"]).clock_offset_s == 600
    # the next request uses the stored offset straight away
    r = sync(booth, "ping")
    assert r.exit_code == 0 and "clock offset" not in r.output


def test_replayed_request_is_refused_and_old_nonces_are_purged(central, make_booth, clock):
    booth = make_booth()
    reg = enrolled(central, booth)
    secret = bytes.fromhex(state_of(booth)["secret"])
    body = b'{"hello": 1}'
    headers = signing.headers(reg["node"], secret, "POST", "/api/sync/ping", body, clock.now().timestamp())
    client = central.test_client()
    r = client.post("/api/sync/ping", data=body, headers=headers)
    assert r.status_code == 200 and r.get_json()["node"] == reg["node"]
    clock.advance(seconds=30)
    r = client.post("/api/sync/ping", data=body, headers=headers)
    assert r.status_code == 401 and r.get_json()["error"] == "replay"
    # a changed body under the same signature is a bad signature
    r = client.post("/api/sync/ping", data=b'{"hello": 2}', headers={**headers, signing.HEADER_NONCE: "f" * 32})
    assert r.status_code == 401 and r.get_json()["error"] == "bad_signature"
    # nonces are kept 10 minutes (longer than the 5 minutes a timestamp is accepted), then purged
    clock.advance(minutes=11)
    booth.clock.set(clock.now())
    assert sync(booth, "ping").exit_code == 0
    with central.app_context():
        assert db.session.scalar(select(func.count()).select_from(SyncNonce)) == 1


def test_unsigned_and_unknown_node_requests_are_refused(central):
    client = central.test_client()
    before = snapshot(central)
    assert client.post("/api/sync/ping").status_code == 401
    r = client.post("/api/sync/ping", json={}, headers={signing.HEADER_NODE: str(uuid.uuid4())})
    assert r.status_code == 401 and r.get_json()["error"] == "bad_signature"
    assert client.get("/api/sync/ping").status_code == 405
    assert snapshot(central) == before


def test_sync_commands_refuse_the_wrong_role(central, make_booth):
    booth = make_booth()
    assert "runs on the central server" in sync(booth, "register-node", "X").output
    assert "runs on a booth node" in sync(central, "enroll", "http://x", "CODE").output
    assert "not enrolled" in sync(booth, "ping").output
