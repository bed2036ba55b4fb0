"""The one source of "now". Services receive ``now`` as an argument; views ask this module.

Tests inject a ``FrozenClock`` through ``test_config={"CLOCK": clock}`` and move it forward
instead of sleeping. There is no route to change the clock in a normal build.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import current_app


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class FrozenClock:
    def __init__(self, start: datetime | None = None):
        self._now = start or datetime.now(timezone.utc).replace(microsecond=0)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta) -> datetime:
        self._now = self._now + timedelta(**delta)
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when


def now() -> datetime:
    return current_app.config["CLOCK"].now()
