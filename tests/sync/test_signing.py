"""Signed sync requests (pure): a good signature passes; tampering, wrong secret, clock and replay fail."""
import secrets

from hypothesis import given
from hypothesis import strategies as st

from booth.sync import signing

SECRET = secrets.token_bytes(32)


def seen_factory():
    seen = set()

    def seen_nonce(n):
        if n in seen:
            return True
        seen.add(n)
        return False
    return seen_nonce


@given(st.binary(max_size=2000), st.sampled_from(["/api/sync/push", "/api/sync/pull"]))
def test_signed_request_verifies_once(body, path):
    h = signing.headers("node-1", SECRET, "POST", path, body, 1_800_000_000)
    seen = seen_factory()
    assert signing.verify(SECRET, "POST", path, h, body, 1_800_000_010, seen).ok
    replay = signing.verify(SECRET, "POST", path, h, body, 1_800_000_011, seen)
    assert (replay.ok, replay.status, replay.reason) == (False, 401, "replay")


@given(st.binary(min_size=1, max_size=200))
def test_any_change_breaks_the_signature(body):
    h = signing.headers("node-1", SECRET, "POST", "/api/sync/push", body, 1_800_000_000)
    now = 1_800_000_000
    assert signing.verify(SECRET, "POST", "/api/sync/push", h, body + b"x", now, seen_factory()).reason == "bad_signature"
    assert signing.verify(SECRET, "POST", "/api/sync/pull", h, body, now, seen_factory()).reason == "bad_signature"
    assert signing.verify(SECRET, "PUT", "/api/sync/push", h, body, now, seen_factory()).reason == "bad_signature"
    assert signing.verify(secrets.token_bytes(32), "POST", "/api/sync/push", h, body, now,
                          seen_factory()).reason == "bad_signature"
    forged = dict(h, **{signing.HEADER_TS: str(now + 1)})
    assert signing.verify(SECRET, "POST", "/api/sync/push", forged, body, now, seen_factory()).reason == "bad_signature"


def test_clock_more_than_five_minutes_off_is_refused():
    h = signing.headers("n", SECRET, "POST", "/p", b"{}", 1_800_000_000)
    assert signing.verify(SECRET, "POST", "/p", h, b"{}", 1_800_000_000 + 300, seen_factory()).ok
    h = signing.headers("n", SECRET, "POST", "/p", b"{}", 1_800_000_000)
    v = signing.verify(SECRET, "POST", "/p", h, b"{}", 1_800_000_000 + 301, seen_factory())
    assert (v.ok, v.reason) == (False, "clock")
