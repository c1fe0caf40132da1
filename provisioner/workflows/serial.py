"""SOA serials that only ever increase: date-based (YYYYMMDDnn) while that is ahead."""

from __future__ import annotations

import datetime as dt


def initial_serial(now: dt.datetime) -> int:
    return int(now.strftime("%Y%m%d")) * 100


def next_serial(previous: int, now: dt.datetime) -> int:
    """Return a serial greater than ``previous``: today's YYYYMMDD00, or previous + 1.

    After 99 changes in one day the serial runs ahead of the date, which stays valid since
    only the increase matters (RFC 1982 arithmetic is not needed below 2**31 steps).
    """
    return max(previous + 1, initial_serial(now)) % (2**32)
