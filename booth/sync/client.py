"""Sync, booth side: the node's sync state in ``instance/sync.json`` (0600) and the HTTP transport
that signs every request to central (standard library only: urllib).

The state holds the node id, the per-node secret, central's URL and the last measured clock offset;
it never goes into the database (a database copy or a backup must not carry the secret).
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from booth.instance import write_private
from booth.sync import signing

STATE_FILE = "sync.json"
API = "/api/sync"


@dataclass
class NodeState:
    node: str
    secret: str            # hex, 256 bits
    central_url: str       # where the sync API answers (scheme://host[:port])
    central_base_url: str  # central's public base URL (QR codes)
    clock_offset_s: int = 0
    central_public_key: str = ""  # central's X25519 key for bundles (and backups), text form
    event: dict | None = None     # the central event this node was registered for (set up before setup)


def state_path(instance_path) -> Path:
    return Path(instance_path) / STATE_FILE


def load_state(instance_path) -> NodeState | None:
    path = state_path(instance_path)
    if not path.exists():
        return None
    return NodeState(**json.loads(path.read_text()))


def save_state(instance_path, state: NodeState) -> None:
    write_private(state_path(instance_path), json.dumps(asdict(state), indent=2).encode())


class SyncFailed(Exception):
    """Central refused the request (``status`` ≥ 400, ``body`` its JSON) or could not be reached (status 0)."""

    def __init__(self, status: int, body: dict):
        self.status, self.body = status, body
        super().__init__(body.get("message") or body.get("error") or f"HTTP {status}")


def _post(url: str, body: bytes, headers: dict, timeout: float) -> dict:
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Accept": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (URL typed by the operator)
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        try:
            data = json.loads(e.read() or b"{}")
        except ValueError:
            data = {}
        raise SyncFailed(e.code, data if isinstance(data, dict) else {}) from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise SyncFailed(0, {"error": "unreachable", "message": f"central server not reachable: {e}"}) from None


def enroll(central_url: str, code: str, *, node_id: str | None, referral_key: bytes, timeout: float = 30) -> dict:
    """Trade the one-time code for the node's secret; returns {node, secret, central_base_url}."""
    payload = {"code": code, "referral_key": referral_key.hex()}
    if node_id:
        payload["node"] = node_id
    return _post(central_url.rstrip("/") + API + "/enroll", json.dumps(payload).encode(), {}, timeout)


@dataclass
class Reply:
    body: dict
    clock_offset_s: int       # the correction applied to this node's clock
    resigned: bool            # refused for time once, then re-signed with the measured offset


class Transport:
    """Signs each request with the node's secret; a refusal for time is answered by measuring the
    offset to central's clock and re-signing once."""

    def __init__(self, state: NodeState, now_s: Callable[[], float], timeout: float = 30):
        self.state, self.now_s, self.timeout = state, now_s, timeout

    def _send(self, path: str, body: bytes) -> dict:
        offset = self.state.clock_offset_s
        headers = signing.headers(self.state.node, bytes.fromhex(self.state.secret), "POST", path, body,
                                  self.now_s() + offset)
        if offset:
            headers[signing.HEADER_OFFSET] = str(offset)
        return _post(self.state.central_url.rstrip("/") + path, body, headers, self.timeout)

    def post(self, endpoint: str, payload: dict | bytes | None = None) -> Reply:
        """POST ``payload`` (a JSON-ready object, or a body already in JSON) to the sync API, signed."""
        path = f"{API}/{endpoint}"
        body = payload if isinstance(payload, bytes) else json.dumps(payload or {}).encode()
        try:
            return Reply(self._send(path, body), self.state.clock_offset_s, False)
        except SyncFailed as e:
            if e.status != 401 or e.body.get("error") != "clock" or not isinstance(e.body.get("server_time"), int):
                raise
            self.state.clock_offset_s = int(e.body["server_time"] - self.now_s())
        return Reply(self._send(path, body), self.state.clock_offset_s, True)
