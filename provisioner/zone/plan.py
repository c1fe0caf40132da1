"""The difference between the RRsets a zone serves and the ones it should serve.

A plan is computed per zone and per RRset. Only RRsets that provisioner owns are changed or
deleted; an RRset it did not create is left as it is and listed in ``left_alone``, unless
``takeover`` is set, in which case an RRset that the spec also declares is taken over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import dns.rrset

from provisioner.zone.model import NONE, RRsetKey, ZoneData, describe_key

Action = Literal["create", "update", "delete"]


@dataclass(frozen=True)
class RRsetChange:
    action: Action
    key: RRsetKey
    before: dns.rrset.RRset | None
    after: dns.rrset.RRset | None

    def describe(self) -> str:
        return f"{self.action} {describe_key(self.key)}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "owner": self.key[0].to_text(),
            "type": self.key[1].name,
            "covers": self.key[2].name if self.key[2] != NONE else None,
            "before": _rrset_lines(self.before),
            "after": _rrset_lines(self.after),
        }


@dataclass
class ZonePlan:
    zone: str
    backend: str
    serial_before: int | None
    serial_after: int
    changes: list[RRsetChange] = field(default_factory=list)
    left_alone: list[RRsetKey] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def counts(self) -> dict[str, int]:
        result = {"create": 0, "update": 0, "delete": 0}
        for change in self.changes:
            result[change.action] += 1
        return result

    def as_dict(self) -> dict[str, Any]:
        return {
            "zone": self.zone,
            "backend": self.backend,
            "serial_before": self.serial_before,
            "serial_after": self.serial_after,
            "counts": self.counts(),
            "changes": [change.as_dict() for change in self.changes],
            "left_alone": [describe_key(key) for key in self.left_alone],
            "warnings": self.warnings,
        }


def diff_zone(
    current: ZoneData | None,
    desired: ZoneData,
    *,
    owned: set[RRsetKey] | None = None,
    takeover: bool = False,
) -> tuple[list[RRsetChange], list[RRsetKey]]:
    """Return (changes, left_alone) turning ``current`` into ``desired``.

    ``owned`` is None when provisioner owns the whole zone (the zone file backend); otherwise
    it is the set of RRset keys that provisioner created before.
    """
    changes: list[RRsetChange] = []
    left_alone: list[RRsetKey] = []
    current_rrsets = current.rrsets if current is not None else {}

    for key, wanted in desired.rrsets.items():
        existing = current_rrsets.get(key)
        if existing is None:
            changes.append(RRsetChange("create", key, None, wanted))
        elif not _same(existing, wanted):
            if owned is None or key in owned or takeover or key[1].name == "SOA":
                changes.append(RRsetChange("update", key, existing, wanted))
            else:
                left_alone.append(key)

    for key, existing in current_rrsets.items():
        if key in desired.rrsets:
            continue
        if owned is None or key in owned:
            changes.append(RRsetChange("delete", key, existing, None))
        else:
            left_alone.append(key)

    order = {"delete": 0, "update": 1, "create": 2}
    changes.sort(key=lambda c: (order[c.action], c.key[0], int(c.key[1]), int(c.key[2])))
    left_alone.sort(key=lambda k: (k[0], int(k[1]), int(k[2])))
    return changes, left_alone


def _same(a: dns.rrset.RRset, b: dns.rrset.RRset) -> bool:
    return a.ttl == b.ttl and set(a) == set(b)


def _rrset_lines(rrset: dns.rrset.RRset | None) -> list[str] | None:
    if rrset is None:
        return None
    return sorted(f"{rrset.ttl} {rdata.to_text()}" for rdata in rrset)
