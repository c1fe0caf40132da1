"""ZoneData: the RRsets of one zone, keyed by (owner name, type, covered type).

This is the currency between the zone builder, the signer, the planner and the backends.
It stays a plain mapping of dnspython RRsets (no dns.zone.Zone) because the signer handles
zones of a million RRsets and needs cheap, ordered access. Owner names are absolute.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

from provisioner.zone.compact import CompactRRset

RdataType = dns.rdatatype.RdataType
RRsetKey = tuple[dns.name.Name, RdataType, RdataType]

NONE = RdataType.TYPE0


def rrset_key(rrset: dns.rrset.RRset) -> RRsetKey:
    return (rrset.name, RdataType(rrset.rdtype), RdataType(rrset.covers))


def describe_key(key: RRsetKey) -> str:
    """Return "owner TYPE" (or "owner RRSIG(TYPE)") for messages."""
    name, rdtype, covers = key
    if covers != NONE:
        return f"{name} {rdtype.name}({covers.name})"
    return f"{name} {rdtype.name}"


class ZoneData:
    """The RRsets of the zone at ``origin``; at most one RRset per key."""

    def __init__(self, origin: dns.name.Name | str, rrsets: Iterable[dns.rrset.RRset] = ()) -> None:
        if isinstance(origin, str):
            origin = dns.name.from_text(origin)
        self.origin = origin
        self.rrsets: dict[RRsetKey, dns.rrset.RRset] = {}
        for rrset in rrsets:
            self.add(rrset)

    def add(self, rrset: dns.rrset.RRset) -> None:
        """Add ``rrset``, merging its RRs into an existing RRset of the same key."""
        if not rrset.name.is_subdomain(self.origin):
            raise ValueError(f"{rrset.name} is outside the zone {self.origin}")
        key = rrset_key(rrset)
        existing = self.rrsets.get(key)
        if existing is None:
            self.rrsets[key] = rrset
        else:
            existing.update(rrset)
            existing.update_ttl(rrset.ttl)

    def replace(self, rrset: dns.rrset.RRset) -> None:
        self.rrsets[rrset_key(rrset)] = rrset

    def remove(self, key: RRsetKey) -> dns.rrset.RRset | None:
        return self.rrsets.pop(key, None)

    def get(
        self, name: dns.name.Name | str, rdtype: RdataType | str, covers: RdataType = NONE
    ) -> dns.rrset.RRset | None:
        if isinstance(name, str):
            name = dns.name.from_text(name, self.origin)
        return self.rrsets.get((name, RdataType.make(rdtype), covers))

    @property
    def soa(self) -> dns.rrset.RRset:
        soa = self.get(self.origin, RdataType.SOA)
        if soa is None:
            raise ValueError(f"zone {self.origin} has no SOA RRset")
        return soa

    def names(self) -> list[dns.name.Name]:
        """Return the owner names in DNSSEC canonical order (RFC 4034, section 6.1)."""
        return sorted({key[0] for key in self.rrsets}, key=canonical_name_key)

    def __iter__(self) -> Iterator[dns.rrset.RRset]:
        """Iterate RRsets in canonical order of owner name, then type, then covered type."""
        for key in self._ordered_keys():
            yield self.rrsets[key]

    def _ordered_keys(self) -> list[RRsetKey]:
        # A signed zone has about four keys per owner name, which share one Name object, so
        # the sort key of each name is made once.
        name_keys: dict[int, tuple[bytes, ...]] = {}

        def sort_key(key: RRsetKey) -> tuple[tuple[bytes, ...], int, int]:
            name = key[0]
            name_key = name_keys.get(id(name))
            if name_key is None:
                name_key = name_keys[id(name)] = canonical_name_key(name)
            return (name_key, key[1], key[2])

        return sorted(self.rrsets, key=sort_key)

    def __eq__(self, other: object) -> bool:
        """Compare origin, RRsets, RRs and TTLs (dnspython's RRset equality ignores TTLs)."""
        if not isinstance(other, ZoneData):
            return NotImplemented
        if self.origin != other.origin or self.rrsets.keys() != other.rrsets.keys():
            return False
        for key, rrset in self.rrsets.items():
            theirs = other.rrsets[key]
            if rrset.ttl != theirs.ttl or rrset != theirs:
                return False
        return True

    __hash__ = None  # type: ignore[assignment]

    def __len__(self) -> int:
        return len(self.rrsets)

    def copy(self) -> ZoneData:
        clone = ZoneData(self.origin)
        clone.rrsets = dict(self.rrsets)
        return clone

    def unsigned(self) -> ZoneData:
        """Return a copy without RRSIG, NSEC, NSEC3 and NSEC3PARAM (what a signer adds)."""
        signer_types = {RdataType.RRSIG, RdataType.NSEC, RdataType.NSEC3, RdataType.NSEC3PARAM}
        clone = ZoneData(self.origin)
        clone.rrsets = {k: v for k, v in self.rrsets.items() if k[1] not in signer_types}
        return clone

    def to_text(self) -> str:
        """Render the zone in master-file format, SOA first, deterministic for equal content."""
        lines = [f"$ORIGIN {self.origin}"]
        soa_key = (self.origin, RdataType.SOA, NONE)
        ordered = self._ordered_keys()
        if soa_key in self.rrsets:
            ordered.remove(soa_key)
            ordered.insert(0, soa_key)
        # An owner name has several RRsets (data, RRSIG, NSEC) that share one Name object, so
        # its text is made once. The Name objects stay alive, so their id() values are unique.
        owner_texts: dict[int, str] = {}
        type_texts: dict[int, str] = {}
        for key in ordered:
            rrset = self.rrsets[key]
            owner = owner_texts.get(id(rrset.name))
            if owner is None:
                owner = owner_texts[id(rrset.name)] = name_text(rrset.name)
            type_text = type_texts.get(rrset.rdtype)
            if type_text is None:
                type_text = type_texts[rrset.rdtype] = dns.rdatatype.to_text(rrset.rdtype)
            prefix = f"{owner} {rrset.ttl} IN {type_text} "
            if isinstance(rrset, CompactRRset):
                text = rrset.rdata_text()
                if text is not None:
                    lines.append(prefix + text)
                    continue
            if len(rrset) == 1:
                lines.append(prefix + rrset[0].to_text())
                continue
            for rdata in sorted(rrset, key=lambda r: r.to_digestable(self.origin)):
                lines.append(prefix + rdata.to_text())
        return "\n".join(lines) + "\n"

    @classmethod
    def from_text(cls, text: str, origin: dns.name.Name | str) -> ZoneData:
        if isinstance(origin, str):
            origin = dns.name.from_text(origin)
        # Zone text that to_text() wrote is read much faster without dnspython's zone parser.
        from provisioner.zone.reader import read_canonical

        fast = read_canonical(text, origin)
        if fast is not None:
            return fast
        zone = dns.zone.from_text(text, origin, relativize=False, check_origin=False)
        return cls.from_dns_zone(zone)

    @classmethod
    def from_dns_zone(cls, zone: dns.zone.Zone) -> ZoneData:
        data = cls(zone.origin)
        for name, rdataset in zone.iterate_rdatasets():
            absolute = name.derelativize(zone.origin)
            rrset = dns.rrset.RRset(absolute, rdataset.rdclass, rdataset.rdtype, rdataset.covers)
            rrset.update(rdataset)
            rrset.update_ttl(rdataset.ttl)
            data.add(rrset)
        return data


_PLAIN_LABEL = re.compile(rb"[A-Za-z0-9_*-]+\Z")


def name_text(name: dns.name.Name) -> str:
    """Return ``name`` in master-file text, as dns.name.Name.to_text does, only faster.

    Labels of letters, digits, '-', '_' and '*' need no escaping and are joined directly;
    any other name goes through dnspython.
    """
    labels = name.labels
    if not name.is_absolute() or len(labels) == 1:
        return name.to_text()
    if not all(_PLAIN_LABEL.match(label) for label in labels[:-1]):
        return name.to_text()
    return b".".join(labels).decode("ascii")


def canonical_name_key(name: dns.name.Name) -> tuple[bytes, ...]:
    """Return a sort key giving DNSSEC canonical order (RFC 4034, section 6.1).

    Labels compare right to left as lowercase octet strings, and a name sorts before the
    names below it; a tuple of the reversed lowercased labels compares exactly so, and far
    faster than dns.name.Name comparisons.
    """
    return tuple(label.lower() for label in reversed(name.labels))
