"""Durations in the spec: an integer number of seconds, or a string such as "14d", "1h30m"."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+)([smhdw])")


def parse_duration(value: object) -> int:
    """Return ``value`` in seconds; accept 3600, "3600", "1h", "2d12h"."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string such as '14d' or '1h'")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a duration must not be negative, got {value}")
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text.isdigit():
            return int(text)
        if text and _PART.sub("", text) == "":
            return sum(int(number) * _UNITS[unit] for number, unit in _PART.findall(text))
    raise ValueError(
        f"invalid duration {value!r}: use seconds (3600) or a number with a unit "
        "s, m, h, d or w (such as '1h', '14d', '2d12h')"
    )


def format_duration(seconds: int) -> str:
    """Render seconds in the largest whole units, such as "1d2h"."""
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


Duration = Annotated[int, BeforeValidator(parse_duration)]
