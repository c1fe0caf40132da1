"""Self-check of a signed zone, independent of the signer's code path.

Public API:
    verify_zone(signed: ZoneData, now: datetime) -> list[Problem]
    Problem                     .key (the failing RRset), .message; str() is "owner TYPE: message"

It checks that every RRSIG validates against the apex DNSKEY RRset (dnspython's validate_rrsig,
which verifies with cryptography), that every authoritative RRset carries a valid signature of
every algorithm in the DNSKEY RRset (RFC 4035, section 2.2), that nothing outside the zone's
authority (glue, occluded data, the NS RRset at a delegation) is signed, and that the NSEC or
NSEC3 chain covers every name, is in order, closes on itself, and has the right type bitmaps and
TTL (min(SOA TTL, SOA minimum), RFC 9077). It uses dnspython Name objects throughout, so it is
much slower than the signer: about a minute per 100,000 RRsets.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt

import dns.dnssec
import dns.exception
import dns.name
import dns.rdatatype
import dns.rrset

from provisioner.clock import epoch
from provisioner.zone.model import NONE, RRsetKey, ZoneData, describe_key

RdataType = dns.rdatatype.RdataType
_DENIAL_TYPES = {RdataType.NSEC, RdataType.NSEC3, RdataType.NSEC3PARAM}


@dataclasses.dataclass(frozen=True)
class Problem:
    """One failed check, naming the RRset it concerns."""

    key: RRsetKey
    message: str

    def __str__(self) -> str:
        return f"{describe_key(self.key)}: {self.message}"


def verify_zone(signed: ZoneData, now: dt.datetime) -> list[Problem]:
    """Validate the signatures and the denial chain of ``signed`` at time ``now``."""
    origin = signed.origin
    problems: list[Problem] = []
    dnskey_key = (origin, RdataType.DNSKEY, NONE)
    dnskeys = signed.rrsets.get(dnskey_key)
    if dnskeys is None:
        return [Problem(dnskey_key, "missing: the zone has no DNSKEY RRset at the apex")]
    algorithms = {rdata.algorithm for rdata in dnskeys if rdata.flags & 0x0100}
    keyring = {origin: dnskeys}
    when = float(epoch(now))

    authority = _Authority(signed)
    for key, rrset in signed.rrsets.items():
        name, rdtype, covers = key
        if rdtype == RdataType.RRSIG:
            covered = signed.rrsets.get((name, covers, NONE))
            if covered is None:
                problems.append(Problem(key, "RRSIG covers an RRset that does not exist"))
            elif not authority.is_signed(name, covers):
                problems.append(Problem(key, "RRSIG over data the zone is not authoritative for"))
            continue
        if not authority.is_signed(name, rdtype):
            continue
        problems.extend(_check_signatures(signed, key, rrset, keyring, algorithms, when))

    soa = signed.soa
    negative_ttl = min(soa.ttl, soa[0].minimum)
    if signed.get(origin, RdataType.NSEC3PARAM) is not None:
        problems.extend(_check_nsec3(signed, authority, negative_ttl))
    else:
        problems.extend(_check_nsec(signed, authority, negative_ttl))
    return problems


class _Authority:
    """Which names and RRsets of the zone are authoritative, found with plain dnspython."""

    def __init__(self, zone: ZoneData) -> None:
        self.origin = zone.origin
        self.types: dict[dns.name.Name, set[RdataType]] = {}
        for name, rdtype, _covers in zone.rrsets:
            if rdtype not in _DENIAL_TYPES and rdtype != RdataType.RRSIG:
                self.types.setdefault(name, set()).add(rdtype)
        self.cuts = {
            name
            for name, types in self.types.items()
            if name != self.origin and RdataType.NS in types
        }
        self.dnames = {name for name, types in self.types.items() if RdataType.DNAME in types}
        self.occluded = {name for name in self.types if self._below_cut(name)}

    def _below_cut(self, name: dns.name.Name) -> bool:
        parent = name
        while parent != self.origin:
            parent = parent.parent()
            if parent in self.cuts or parent in self.dnames:
                return True
        return False

    def is_signed(self, name: dns.name.Name, rdtype: RdataType) -> bool:
        if rdtype in (RdataType.NSEC, RdataType.NSEC3):
            return True
        if name in self.occluded:
            return False
        if name in self.cuts:
            return rdtype == RdataType.DS
        return True

    def owners(self) -> list[dns.name.Name]:
        """Return the names that own authoritative data or a delegation, in canonical order."""
        return sorted(name for name in self.types if name not in self.occluded)


def _check_signatures(
    zone: ZoneData,
    key: RRsetKey,
    rrset: dns.rrset.RRset,
    keyring: dict[dns.name.Name, dns.rrset.RRset],
    algorithms: set[int],
    when: float,
) -> list[Problem]:
    name, rdtype, _covers = key
    sigs = zone.rrsets.get((name, RdataType.RRSIG, rdtype))
    if sigs is None:
        return [Problem(key, "not signed: no RRSIG covers this RRset")]
    problems = []
    valid: set[int] = set()
    for sig in sigs:
        if not _signer_published(sig, keyring):
            # A validator ignores an RRSIG whose key is not in the DNSKEY RRset (RFC 4035,
            # section 5.3.1), and rollovers make such signatures on purpose: an algorithm
            # rollover signs with the new algorithm before its DNSKEY is published.
            continue
        try:
            dns.dnssec.validate_rrsig(rrset, sig, keyring, zone.origin, when)
        except dns.dnssec.ValidationFailure as error:
            problems.append(
                Problem(
                    key,
                    f"RRSIG by key tag {sig.key_tag} (algorithm {int(sig.algorithm)}) "
                    f"does not validate: {error}",
                )
            )
        except dns.exception.DNSException as error:
            problems.append(Problem(key, f"RRSIG by key tag {sig.key_tag} is invalid: {error}"))
        else:
            if sig.original_ttl != rrset.ttl:
                problems.append(
                    Problem(key, f"RRSIG original TTL {sig.original_ttl} != TTL {rrset.ttl}")
                )
            valid.add(int(sig.algorithm))
    for algorithm in sorted(algorithms - valid):
        problems.append(
            Problem(key, f"no valid signature of DNSKEY algorithm {algorithm} (RFC 4035, 2.2)")
        )
    return problems


def _signer_published(sig: object, keyring: dict[dns.name.Name, dns.rrset.RRset]) -> bool:
    dnskeys = keyring.get(sig.signer)  # type: ignore[attr-defined]
    if dnskeys is None:
        return False
    return any(
        dnskey.algorithm == sig.algorithm  # type: ignore[attr-defined]
        and dns.dnssec.key_id(dnskey) == sig.key_tag  # type: ignore[attr-defined]
        for dnskey in dnskeys
    )


def _expected_types(authority: _Authority, name: dns.name.Name, nsec3: bool) -> set[int]:
    types = set(authority.types[name])
    if name in authority.cuts:
        types &= {RdataType.NS, RdataType.DS}
        if nsec3:
            if RdataType.DS in types:
                types.add(RdataType.RRSIG)
            return types
    else:
        types.add(RdataType.RRSIG)
    if nsec3:
        if name == authority.origin:
            types.add(RdataType.NSEC3PARAM)
    else:
        types |= {RdataType.NSEC, RdataType.RRSIG}
    return types


def _bitmap_types(rdata: object) -> set[int]:
    types = set()
    for window, octets in rdata.windows:  # type: ignore[attr-defined]
        for index, octet in enumerate(octets):
            for bit in range(8):
                if octet & (0x80 >> bit):
                    types.add(window * 256 + index * 8 + bit)
    return types


def _check_nsec(zone: ZoneData, authority: _Authority, ttl: int) -> list[Problem]:
    problems = []
    owners = authority.owners()
    for position, name in enumerate(owners):
        key = (name, RdataType.NSEC, NONE)
        nsec = zone.rrsets.get(key)
        if nsec is None:
            problems.append(Problem(key, "missing: the NSEC chain skips this name"))
            continue
        if len(nsec) != 1:
            problems.append(Problem(key, f"{len(nsec)} NSEC records at one name"))
        rdata = nsec[0]
        following = owners[(position + 1) % len(owners)]
        if rdata.next != following:
            problems.append(Problem(key, f"next name is {rdata.next}, expected {following}"))
        expected = _expected_types(authority, name, nsec3=False)
        if _bitmap_types(rdata) != expected:
            problems.append(
                Problem(
                    key,
                    f"type bitmap {_type_list(_bitmap_types(rdata))}, "
                    f"expected {_type_list(expected)}",
                )
            )
        if nsec.ttl != ttl:
            problems.append(Problem(key, f"TTL {nsec.ttl}, expected min(SOA TTL, minimum) {ttl}"))
    owner_set = set(owners)
    for name, rdtype, covers in zone.rrsets:
        if rdtype == RdataType.NSEC and name not in owner_set:
            problems.append(Problem((name, rdtype, covers), "NSEC at a name without data"))
    return problems


def _check_nsec3(zone: ZoneData, authority: _Authority, ttl: int) -> list[Problem]:
    origin = zone.origin
    problems = []
    param = zone.get(origin, RdataType.NSEC3PARAM)
    assert param is not None
    salt, iterations = param[0].salt, param[0].iterations

    records = {
        name: rrset
        for (name, rdtype, _covers), rrset in zone.rrsets.items()
        if rdtype == RdataType.NSEC3
    }
    opt_out = any(rrset[0].flags & 1 for rrset in records.values())
    expected: dict[dns.name.Name, set[int]] = {}
    for name in authority.owners():
        if opt_out and name in authority.cuts and RdataType.DS not in authority.types[name]:
            continue
        expected[name] = _expected_types(authority, name, nsec3=True)
    for name in list(expected):
        parent = name
        while parent != origin:
            parent = parent.parent()
            expected.setdefault(parent, set())

    hashes: dict[dns.name.Name, dns.name.Name] = {}
    for name, types in expected.items():
        label = dns.dnssec.nsec3_hash(name, salt, iterations, 1).lower()
        owner = dns.name.Name((label.encode(), *origin.labels))
        hashes[owner] = name
        key = (owner, RdataType.NSEC3, NONE)
        rrset = records.get(owner)
        if rrset is None:
            problems.append(Problem(key, f"missing: no NSEC3 record for {name}"))
            continue
        if _bitmap_types(rrset[0]) != types:
            problems.append(
                Problem(
                    key,
                    f"type bitmap of {name} is "
                    f"{_type_list(_bitmap_types(rrset[0]))}, expected "
                    f"{_type_list(types)}",
                )
            )
        if rrset.ttl != ttl:
            problems.append(Problem(key, f"TTL {rrset.ttl}, expected min(SOA TTL, minimum) {ttl}"))

    ordered = sorted(records, key=lambda owner: _hash_of(owner))
    for position, owner in enumerate(ordered):
        key = (owner, RdataType.NSEC3, NONE)
        if owner not in hashes:
            problems.append(Problem(key, "NSEC3 record for no name of the zone"))
        rdata = records[owner][0]
        following = _hash_of(ordered[(position + 1) % len(ordered)])
        if rdata.next != following:
            problems.append(Problem(key, "next hashed owner name breaks the chain order"))
        if rdata.salt != salt or rdata.iterations != iterations:
            problems.append(Problem(key, "salt or iterations differ from NSEC3PARAM"))
    return problems


def _hash_of(owner: dns.name.Name) -> bytes:
    return base64.b32hexdecode(owner.labels[0].upper())


def _type_list(types: set[int]) -> str:
    return " ".join(dns.rdatatype.to_text(t) for t in sorted(types)) or "(empty)"
