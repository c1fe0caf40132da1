"""Durations in the spec: an integer number of seconds, or a string such as "14d", "1h30m".

The parser and the annotated type live with the DNSSEC policy, which uses them first; they are
re-exported here for the rest of the spec.
"""

from __future__ import annotations

from provisioner.dnssec.policy import Duration, parse_duration

__all__ = ["Duration", "parse_duration"]
