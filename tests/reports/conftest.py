"""Fixtures shared by the export tests: one node with two demo days of its booth, built once per run."""
from __future__ import annotations

import shutil
from datetime import datetime, timezone

import pytest

from booth import create_app
from booth.auth import services as auth
from booth.auth.models import Role
from booth.clock import FrozenClock
from booth.demo import generate_day
from booth.events.models import Booth
from booth.extensions import db
from tests.conftest import START, base_config, setup_node

EVENING1 = datetime(2026, 6, 28, 0, 0, tzinfo=timezone.utc)    # 18:00 in Mexico City on day 1
EVENING2 = datetime(2026, 6, 29, 0, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="session")
def world(template_db, tmp_path_factory):
    """A set-up node with two demo days of its booth (400 and 250 visits): (folder, Node)."""
    folder = tmp_path_factory.mktemp("report_world")
    (folder / "instance").mkdir()
    shutil.copy(template_db, folder / "node.sqlite3")
    clock = FrozenClock(START)
    app = create_app(base_config(folder, CLOCK=clock))
    built = setup_node(app, clock)
    with app.app_context():
        booth = db.session.get(Booth, built.booth_id)
        coordinator = auth.staff_by_code(db.session, built.coordinator_code)
        coordinator.clinical_lead = True      # the demo signs the default clinical settings off
        people = [auth.create_staff(db.session, code=code, roles=[role], pin="731945", now=clock.now())
                  for code, role in (("T91", Role.TESTER), ("T92", Role.TESTER), ("K91", Role.COUNSELOR))]
        for when, n, seed in ((EVENING1, 400, 5), (EVENING2, 250, 6)):
            clock.set(when)
            generate_day(db.session, booth=booth, coordinator=coordinator, testers=people[:2],
                         counselors=people[2:], visits_n=n, seed=seed, now=clock.now())
        db.session.commit()
        db.engine.dispose()
    return folder, built
