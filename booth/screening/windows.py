"""Read windows of rapid tests: a result may be read from ``read_from`` after the buffer was added and
not after ``read_until``. Outside the window the device is invalid (DOMAIN.md)."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta


class TimerState(str, enum.Enum):
    DEVELOPING = "developing"
    READY = "ready"
    TOO_LATE = "too_late"


@dataclass(frozen=True)
class ReadWindow:
    read_from: timedelta
    read_until: timedelta

    def __post_init__(self):
        if self.read_from < timedelta(0) or self.read_until <= self.read_from:
            raise ValueError("a read window needs 0 ≤ read_from < read_until")

    @classmethod
    def minutes(cls, start: float, end: float) -> "ReadWindow":
        return cls(timedelta(minutes=start), timedelta(minutes=end))

    def opens_at(self, started_at: datetime) -> datetime:
        return started_at + self.read_from

    def closes_at(self, started_at: datetime) -> datetime:
        return started_at + self.read_until

    def is_early(self, started_at: datetime, now: datetime) -> bool:
        return now < self.opens_at(started_at)

    def is_late(self, started_at: datetime, now: datetime) -> bool:
        """At the closing second the result is still readable; one second after, it is too late."""
        return now > self.closes_at(started_at)

    def state(self, started_at: datetime, now: datetime) -> TimerState:
        if self.is_early(started_at, now):
            return TimerState.DEVELOPING
        if self.is_late(started_at, now):
            return TimerState.TOO_LATE
        return TimerState.READY

    def wait(self, started_at: datetime, now: datetime) -> timedelta:
        """Time still to wait before the result may be read (zero when readable)."""
        return max(timedelta(0), self.opens_at(started_at) - now)
