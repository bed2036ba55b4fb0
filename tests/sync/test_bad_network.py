"""Issue 7: three booths × 200 visits (with their tests, counseling and referrals) push through a proxy
that drops 20 % of requests, drops 20 % of responses and duplicates 10 %: central ends with exactly 600
visits, every record once, and every receipt matches. The retry clock does not really wait."""
from __future__ import annotations

import random
import threading
from urllib.parse import urlparse

from sqlalchemy import func, select

from booth.extensions import db
from booth.sync import client, node, records as R
from booth.sync.models import SyncRecord
from tests.sync.conftest import enrolled
from tests.sync.faulty_proxy import FaultyProxy

BOOTHS, VISITS = 3, 200


def transport_via(booth, url):
    state = client.load_state(booth.instance_path)
    state.central_url = url
    return client.Transport(state, lambda: booth.clock.now().timestamp(), timeout=30)


def test_three_booths_through_a_lossy_duplicating_proxy_arrive_exactly_once(central, make_booth):
    booths = [make_booth(f"b{i}", visits=VISITS, seed=100 + i) for i in range(BOOTHS)]
    for i, b in enumerate(booths):
        enrolled(central, b, f"Módulo {i + 1}")
    held = []
    for b in booths:
        with b.app_context():
            held.append({k.name: db.session.scalar(select(func.count()).select_from(db.metadata.tables[k.table]))
                         for k in R.KINDS})
    assert all(h["referral"] > 0 and h["screening_result"] > 0 and h["counseling"] > 0 for h in held)

    reports, errors, waits = {}, [], []
    port = urlparse(central.url).port
    with FaultyProxy(port, seed=7) as proxy:
        def run(i, b):
            try:
                with b.app_context():
                    t = transport_via(b, proxy.url)
                    reports[i] = node.push(db.session, t, sleep=waits.append, rng=random.Random(i), batch_size=200,
                                           attempts=60)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=run, args=(i, b)) for i, b in enumerate(booths)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
    assert not errors, errors
    faults = proxy.counts
    assert faults["dropped_requests"] and faults["dropped_responses"] and faults["duplicated"], faults
    assert sum(r.retries for r in reports.values()) >= faults["dropped_requests"] + faults["dropped_responses"]
    assert waits and all(w > 0 for w in waits)      # backed off (with jitter) every time, without waiting

    with central.app_context():
        visits = db.session.scalar(select(func.count()).select_from(db.metadata.tables["visits"]))
        assert visits == BOOTHS * VISITS
        for kind in R.KINDS:
            ledger = db.session.scalar(select(func.count()).select_from(SyncRecord).where(SyncRecord.kind == kind.name))
            assert ledger == sum(h[kind.name] for h in held), kind.name
        assert db.session.scalar(select(func.count()).select_from(db.metadata.tables["referrals"])) == \
            sum(h["referral"] for h in held)
    for i, b in enumerate(booths):
        r = reports[i]
        assert r.total == sum(held[i].values()) and r.deferred == 0 and r.quarantined == 0, r.as_dict()
        with b.app_context():
            receipt = node.receipt(db.session, transport_via(b, central.url))   # straight to central
            assert receipt["match"], [k for k in receipt["kinds"] if not k["match"]]
            assert sum(node.outbox.pending_counts(db.session, db.metadata).values()) == 0
