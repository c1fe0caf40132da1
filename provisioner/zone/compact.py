"""CompactRRset: an RRset of one RR that saves dnspython's per-RRset dictionary.

Public API:
    CompactRRset            behaves as dns.rrset.RRset; see its docstring
        .rdata_text()       the text of its RR, or None once its RRs may have changed
    compact(rrset)          the same RRs as a CompactRRset when it contains exactly one RR
    new_compact(cls, ...)   a CompactRRset (or subclass) built from its compact RR directly
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.set

# The slot of dns.set.Set that stores its dictionary of items. CompactRRset uses it directly.
_SET_ITEMS = dns.set.Set.items  # type: ignore[misc]


CompactType = TypeVar("CompactType", bound="CompactRRset")


class CompactRRset(dns.rrset.RRset):
    """An RRset of one RR that creates its dictionary of RRs only when code uses ``items``.

    Most RRsets of a large zone hold one RR: each user's SMIMEA RRset, and in a signed zone
    about three more per owner name (two RRSIG and one NSEC or NSEC3). dnspython gives each a
    dictionary of about 220 bytes, so these RRsets store the RR in the ``_rdata`` slot instead
    (the signer's subclasses store an even more compact form and override ``_one``).
    Iterating, indexing, len() and == read the slot. Any other use of ``items``, including
    every change of the RRset, creates the dictionary first, and the RRset then behaves as a
    plain RRset. Copies are plain RRsets.
    """

    __slots__ = ["_rdata"]
    _clone_class = dns.rrset.RRset
    _rdata: Any

    @property  # type: ignore[override]
    def items(self) -> dict[dns.rdata.Rdata, None]:
        try:
            return _SET_ITEMS.__get__(self, CompactRRset)  # type: ignore[no-any-return]
        except AttributeError:
            items = {self._one(): None}
            _SET_ITEMS.__set__(self, items)
            return items

    @items.setter
    def items(self, value: dict[dns.rdata.Rdata, None]) -> None:
        _SET_ITEMS.__set__(self, value)

    def _rdatas(self) -> dict[dns.rdata.Rdata, None] | tuple[dns.rdata.Rdata]:
        """Return the dictionary of RRs if it exists, else a tuple of the one RR."""
        try:
            return _SET_ITEMS.__get__(self, CompactRRset)  # type: ignore[no-any-return]
        except AttributeError:
            return (self._one(),)

    def _one(self) -> dns.rdata.Rdata:
        return self._rdata  # type: ignore[no-any-return]

    def rdata_text(self) -> str | None:
        """Return the one RR's rdata as dnspython's to_text() writes it (absolute names).

        Returns None once the dictionary of RRs exists, because the RRs may have changed since.
        """
        try:
            _SET_ITEMS.__get__(self, CompactRRset)
        except AttributeError:
            return self._one_text()
        return None

    def _one_text(self) -> str:
        # Subclasses that store a compact form write its text without building an rdata.
        return self._one().to_text()  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[dns.rdata.Rdata]:
        return iter(self._rdatas())

    def __len__(self) -> int:
        try:
            return len(_SET_ITEMS.__get__(self, CompactRRset))
        except AttributeError:
            return 1

    def __getitem__(self, index: int | slice) -> object:
        rdatas = self._rdatas()
        if isinstance(rdatas, dict):
            return super().__getitem__(index)
        # A list, so that a slice returns a list as dns.set.Set does.
        return list(rdatas)[index]

    def __eq__(self, other: object) -> bool:
        # The checks of dns.rrset.RRset.__eq__ and dns.rdataset.Rdataset.__eq__, then the RRs
        # as a set, without creating dictionaries.
        if isinstance(other, dns.rrset.RRset):
            if self.name != other.name:
                return False
        elif not isinstance(other, dns.rdataset.Rdataset):
            return False
        if (
            self.rdclass != other.rdclass
            or self.rdtype != other.rdtype
            or self.covers != other.covers
        ):
            return False
        mine = self._rdatas()
        theirs = other._rdatas() if isinstance(other, CompactRRset) else other.items
        if len(mine) != len(theirs):
            return False
        return all(rdata in theirs for rdata in mine)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]


def new_compact(
    cls: type[CompactType],
    owner: dns.name.Name,
    rdtype: int,
    ttl: int,
    rdata: Any,
    *,
    covers: int = dns.rdatatype.TYPE0,
    rdclass: int = dns.rdataclass.IN,
) -> CompactType:
    """Create a ``cls`` RRset holding ``rdata`` in its compact form, without a dictionary."""
    rrset = object.__new__(cls)
    rrset.name = owner
    rrset.deleting = None
    rrset.rdclass = rdclass
    rrset.rdtype = rdtype
    rrset.covers = covers
    rrset.ttl = ttl
    rrset._rdata = rdata
    return rrset


def compact(rrset: dns.rrset.RRset) -> dns.rrset.RRset:
    """Return ``rrset`` as a CompactRRset when it contains one RR, else ``rrset`` itself."""
    if isinstance(rrset, CompactRRset) or len(rrset) != 1 or rrset.deleting is not None:
        return rrset
    return new_compact(
        CompactRRset,
        rrset.name,
        rrset.rdtype,
        rrset.ttl,
        rrset[0],
        covers=rrset.covers,
        rdclass=rrset.rdclass,
    )
