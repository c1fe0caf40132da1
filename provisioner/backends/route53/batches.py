"""Route 53 changes, and their split into change batches that the API accepts.

ChangeResourceRecordSets applies a batch whole or not at all, and rejects a batch with more
than 1,000 ResourceRecord elements or more than 32,000 characters in its Value elements; an
UPSERT counts twice toward both limits (Route 53 API reference, ChangeResourceRecordSets).
Changes are grouped by owner name so that the changes at one name (such as an NS RRset and
the DS RRset beside it) land in one batch whenever the group fits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import dns.name
import dns.rdatatype
import dns.rrset

from provisioner.backends.route53.records import to_record_set, value_characters
from provisioner.errors import BackendError
from provisioner.zone.model import describe_key, rrset_key
from provisioner.zone.plan import RRsetChange

ChangeAction = Literal["CREATE", "DELETE", "UPSERT"]


@dataclass(frozen=True)
class BatchLimits:
    """The per-request limits of ChangeResourceRecordSets."""

    max_elements: int = 1000
    max_characters: int = 32000


@dataclass(frozen=True)
class Change:
    """One Change element: an action on one RRset, carrying the RRset's exact values."""

    action: ChangeAction
    rrset: dns.rrset.RRset

    @property
    def weight(self) -> int:
        return 2 if self.action == "UPSERT" else 1

    @property
    def elements(self) -> int:
        return self.weight * len(self.rrset)

    @property
    def characters(self) -> int:
        return self.weight * value_characters(self.rrset)

    def describe(self) -> str:
        return f"{self.action} {describe_key(rrset_key(self.rrset))}"

    def as_api(self) -> dict[str, Any]:
        return {"Action": self.action, "ResourceRecordSet": to_record_set(self.rrset)}


def fits(change: Change, limits: BatchLimits) -> bool:
    return change.elements <= limits.max_elements and change.characters <= limits.max_characters


def route53_changes(changes: Iterable[RRsetChange], limits: BatchLimits) -> list[Change]:
    """Turn the plan's RRset changes into Route 53 changes.

    A deletion carries the RRset exactly as Route 53 serves it, because Route 53 rejects a
    DELETE whose values or TTL differ. An update is an UPSERT. When the doubled count of that
    UPSERT exceeds a batch, the update becomes a DELETE of the served RRset and a CREATE of
    the new one, which can land in different batches.
    """
    result: list[Change] = []
    for change in changes:
        if change.action == "create":
            assert change.after is not None
            result.append(Change("CREATE", change.after))
        elif change.action == "delete":
            assert change.before is not None
            result.append(Change("DELETE", change.before))
        else:
            assert change.before is not None and change.after is not None
            upsert = Change("UPSERT", change.after)
            if fits(upsert, limits):
                result.append(upsert)
            else:
                result.append(Change("DELETE", change.before))
                result.append(Change("CREATE", change.after))
    return result


def _order_at_owner(change: Change) -> tuple[int, int]:
    """Order the changes at one owner name: deletions, then upserts, then creations.

    A DS RRset needs the NS RRset at its owner name, so DS is deleted before NS and
    created after it.
    """
    phase = {"DELETE": 0, "UPSERT": 1, "CREATE": 2}[change.action]
    rdtype = change.rrset.rdtype
    if rdtype == dns.rdatatype.DS:
        rank = 0 if change.action == "DELETE" else 2
    elif rdtype == dns.rdatatype.NS:
        rank = 2 if change.action == "DELETE" else 0
    else:
        rank = 1
    return (phase, rank)


def split_batches(
    changes: Sequence[Change], limits: BatchLimits = BatchLimits()
) -> list[list[Change]]:
    """Split ``changes`` into batches that each satisfy ``limits``.

    Raise BackendError when one change alone exceeds a limit: Route 53 cannot accept it.
    """
    for change in changes:
        if not fits(change, limits):
            raise BackendError(
                f"{change.describe()} has {change.elements} ResourceRecord elements and "
                f"{change.characters} characters of values, more than one Route 53 change "
                f"batch accepts ({limits.max_elements} elements, {limits.max_characters} "
                "characters)",
                hint="split the RRset's values across several owner names",
            )

    groups: dict[dns.name.Name, list[Change]] = {}
    for change in changes:
        groups.setdefault(change.rrset.name, []).append(change)

    batches: list[list[Change]] = []
    current: list[Change] = []
    elements = characters = 0

    def close() -> None:
        nonlocal current, elements, characters
        if current:
            batches.append(current)
        current, elements, characters = [], 0, 0

    for owner in sorted(groups):
        group = sorted(groups[owner], key=_order_at_owner)
        group_elements = sum(c.elements for c in group)
        group_characters = sum(c.characters for c in group)
        whole_group_fits = (
            group_elements <= limits.max_elements and group_characters <= limits.max_characters
        )
        if whole_group_fits and (
            elements + group_elements > limits.max_elements
            or characters + group_characters > limits.max_characters
        ):
            close()
        for change in group:
            if (
                elements + change.elements > limits.max_elements
                or characters + change.characters > limits.max_characters
            ):
                close()
            current.append(change)
            elements += change.elements
            characters += change.characters
    close()
    return batches
