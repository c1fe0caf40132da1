"""The one source of time: every module that needs "now" takes a Clock.

Tests and simulations pass a FixedClock (or a ManualClock they advance) so that signing,
serials and rollover timing are deterministic.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """Return the current time as an aware UTC datetime."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait for ``seconds``; a simulated clock advances instead of waiting."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class ManualClock:
    """A clock that moves only when told to: ``sleep`` and ``advance`` add to it."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start

    def now(self) -> dt.datetime:
        return self._now

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self._now += dt.timedelta(seconds=seconds)

    def set(self, moment: dt.datetime) -> None:
        self._now = moment


def epoch(moment: dt.datetime) -> int:
    """Return ``moment`` as whole seconds since the Unix epoch."""
    return int(moment.timestamp())
