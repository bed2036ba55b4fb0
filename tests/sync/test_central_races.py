"""Races bench/central_load.py found at central when 20 booths enroll and push at once: both used to
answer 500 to all but one of the requests that arrived together."""
from __future__ import annotations

import threading

from sqlalchemy import func, select

from booth.settings import defaults
from booth.settings.models import KitProduct
from booth.sync import bundle, services


def test_booths_enrolling_together_get_the_one_bundle_key(tmp_path):
    """Central's bundle key is made by the first request that needs it: every request of a simultaneous
    first batch gets the key that stays on disk (none fails, none gets a key that is then replaced)."""
    for round_ in range(20):
        folder = tmp_path / f"central{round_}"
        start = threading.Barrier(4)
        got: list = []

        def enroll():
            start.wait()
            try:
                got.append(bundle.central_public_text(folder))
            except Exception as e:  # noqa: BLE001 - what the test looks for
                got.append(e)

        threads = [threading.Thread(target=enroll) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        kept = bundle.central_public_text(folder)
        assert got == [kept] * 4
        assert sorted(p.name for p in folder.iterdir()) == [bundle.KEY_FILE]   # no file left half-way
        assert (folder / bundle.KEY_FILE).stat().st_mode & 0o777 == 0o600


def test_first_batches_arriving_together_both_find_the_catalogue(pg_app, clock):
    """Two pushes make the kit catalogue in transactions open at the same time: the second one's insert
    waits for the first one's commit and then finds the rows taken, which is no error."""
    from booth.extensions import db

    second_done = threading.Event()
    outcome: list = []

    def second():
        with pg_app.app_context():
            try:
                services._catalogue(db.session, now=clock.now())
                db.session.commit()
                outcome.append("ok")
            except Exception as e:  # noqa: BLE001 - what the test looks for
                outcome.append(e)
            finally:
                db.session.remove()
                second_done.set()

    with pg_app.app_context():
        services._catalogue(db.session, now=clock.now())       # the first batch, not committed yet
        other = threading.Thread(target=second)
        other.start()
        assert not second_done.wait(0.5)                        # the second waits on the first's rows
        db.session.commit()
        other.join(timeout=30)
        assert outcome == ["ok"]
        assert db.session.scalar(select(func.count()).select_from(KitProduct)) == len(defaults.PRODUCTS)
