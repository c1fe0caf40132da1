"""The Backend protocol: how a zone's data is read from, and written to, where it is served."""

from __future__ import annotations

from typing import Protocol

from provisioner.zone.model import ZoneData
from provisioner.zone.plan import ZonePlan


class Backend(Protocol):
    """One publication target of one zone.

    ``owns_whole_zone`` is true when provisioner writes every RRset of the zone (a zone file it
    generates); backends that edit a zone on a server it shares with others set it false and
    use the ownership records of the state store.
    """

    name: str
    owns_whole_zone: bool

    def read(self) -> ZoneData | None:
        """Return the zone as currently published, or None when nothing is published yet."""
        ...

    def check_plan(self, plan: ZonePlan, desired: ZoneData) -> None:
        """Raise BackendError when the target cannot serve ``desired`` (such as a record type)."""
        ...

    def apply(self, plan: ZonePlan, desired: ZoneData) -> None:
        """Make the served zone equal to ``desired`` by carrying out ``plan``."""
        ...
