"""Authenticated denial of existence: NSEC (RFC 4035, section 5.4) and NSEC3 (RFC 5155, section 8).

The functions take NSEC or NSEC3 RRsets whose signatures the caller has already verified and
decide whether they prove that a name (NXDOMAIN) or a type at a name (NODATA) does not exist.
They do no I/O.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Sequence

import dns.dnssec
import dns.name
import dns.rdatatype
import dns.rrset

# RFC 9276 lets validators treat NSEC3 with more iterations than this as insecure; BIND 9.18
# and Unbound 1.17 use 150 as that limit.
MAX_NSEC3_ITERATIONS = 150
NSEC3_OPT_OUT = 0x01
WILDCARD = dns.name.Name([b"*"])


@dataclasses.dataclass
class Proof:
    """The outcome of a denial check: ``proven``, and why (or why not)."""

    proven: bool
    reason: str
    opt_out: bool = False  # NSEC3 opt-out covers the name: an unsigned delegation may exist
    insecure: bool = False  # NSEC3 parameters beyond the validator's limits (RFC 9276)


def _types(rdata: object) -> set[int]:
    types: set[int] = set()
    for window, bitmap in rdata.windows:  # type: ignore[attr-defined]
        for index, byte in enumerate(bitmap):
            for bit in range(8):
                if byte & (0x80 >> bit):
                    types.add(window * 256 + index * 8 + bit)
    return types


def _type_absent(types: set[int], rdtype: dns.rdatatype.RdataType) -> str | None:
    """Return why a bitmap fails to prove ``rdtype`` absent, or None when it proves it."""
    name = dns.rdatatype.to_text(rdtype)
    if rdtype in types:
        return f"the type bitmap lists {name}"

    if dns.rdatatype.CNAME in types and rdtype != dns.rdatatype.CNAME:
        return "the type bitmap lists CNAME"

    return None


def _nsec_covers(owner: dns.name.Name, next_name: dns.name.Name, name: dns.name.Name) -> bool:
    if owner < next_name:
        return owner < name < next_name

    # The last NSEC of the zone points back to the apex.
    return name > owner or name < next_name


def _common_ancestor(first: dns.name.Name, second: dns.name.Name) -> dns.name.Name:
    _, _, common_labels = first.fullcompare(second)
    return dns.name.Name(first.labels[-common_labels:]) if common_labels else dns.name.root


def prove_nsec(
    qname: dns.name.Name,
    rdtype: dns.rdatatype.RdataType,
    nsecs: Sequence[dns.rrset.RRset],
    nxdomain: bool,
) -> Proof:
    """Check NSEC RRsets against a NODATA (``nxdomain`` false) or NXDOMAIN response."""
    if not nsecs:
        return Proof(False, "the response contains no NSEC record")

    type_name = dns.rdatatype.to_text(rdtype)
    if not nxdomain:
        for rrset in nsecs:
            if rrset.name == qname:
                types = _types(rrset[0])
                problem = _type_absent(types, rdtype)
                if problem:
                    return Proof(False, f"the NSEC at {qname} does not deny {type_name}: {problem}")

                if rdtype == dns.rdatatype.DS and dns.rdatatype.SOA in types:
                    return Proof(
                        False, f"the NSEC at {qname} is from the child zone, not the parent"
                    )
                return Proof(True, f"the NSEC at {qname} proves no {type_name} RRset exists")

    covering = [rrset for rrset in nsecs if _nsec_covers(rrset.name, rrset[0].next, qname)]
    if not covering:
        kind = "name" if nxdomain else f"{type_name} RRset"
        return Proof(False, f"no NSEC record matches or covers {qname} to deny the {kind}")

    nsec = covering[0]
    closest = max(
        _common_ancestor(qname, nsec.name), _common_ancestor(qname, nsec[0].next), key=len
    )
    wildcard = WILDCARD.concatenate(closest)
    if nxdomain:
        for rrset in nsecs:
            if _nsec_covers(rrset.name, rrset[0].next, wildcard):
                return Proof(True, f"NSEC records prove {qname} and {wildcard} do not exist")

        return Proof(False, f"no NSEC record proves the wildcard {wildcard} does not exist")

    # NODATA for a name that matched a wildcard: the wildcard's NSEC must deny the type.
    for rrset in nsecs:
        if rrset.name == wildcard:
            problem = _type_absent(_types(rrset[0]), rdtype)
            if problem is None:
                return Proof(True, f"NSEC records prove no {type_name} at {qname} via {wildcard}")

            return Proof(False, f"the NSEC at {wildcard} does not deny {type_name}: {problem}")

    return Proof(False, f"no NSEC record at {qname} denies the {type_name} RRset")


@dataclasses.dataclass
class _Nsec3:
    owner_hash: str
    next_hash: str
    types: set[int]
    opt_out: bool


def _nsec3_records(
    zone: dns.name.Name, nsec3s: Sequence[dns.rrset.RRset]
) -> tuple[list[_Nsec3], tuple[int, int, bytes] | None]:
    records: list[_Nsec3] = []
    params: tuple[int, int, bytes] | None = None
    for rrset in nsec3s:
        if rrset.name.parent() != zone:
            continue

        rdata = rrset[0]
        params = (rdata.algorithm, rdata.iterations, rdata.salt)
        records.append(
            _Nsec3(
                owner_hash=rrset.name.labels[0].decode().upper(),
                next_hash=base64.b32hexencode(rdata.next).decode().rstrip("="),
                types=_types(rdata),
                opt_out=bool(rdata.flags & NSEC3_OPT_OUT),
            )
        )
    return records, params


def _nsec3_covers(record: _Nsec3, hashed: str) -> bool:
    if record.owner_hash < record.next_hash:
        return record.owner_hash < hashed < record.next_hash

    return hashed > record.owner_hash or hashed < record.next_hash


def prove_nsec3(
    qname: dns.name.Name,
    rdtype: dns.rdatatype.RdataType,
    zone: dns.name.Name,
    nsec3s: Sequence[dns.rrset.RRset],
    nxdomain: bool,
) -> Proof:
    """Check NSEC3 RRsets of ``zone`` against a NODATA or NXDOMAIN response (RFC 5155, 8.4-8.7)."""
    records, params = _nsec3_records(zone, nsec3s)
    if not records or params is None:
        return Proof(False, "the response contains no NSEC3 record of the zone")

    algorithm, iterations, salt = params
    if algorithm != 1:
        return Proof(False, f"unknown NSEC3 hash algorithm {algorithm}", insecure=True)

    if iterations > MAX_NSEC3_ITERATIONS:
        return Proof(
            False,
            f"NSEC3 uses {iterations} iterations, more than {MAX_NSEC3_ITERATIONS} (RFC 9276)",
            insecure=True,
        )

    def hashed(name: dns.name.Name) -> str:
        return dns.dnssec.nsec3_hash(name, salt, iterations, algorithm).upper()

    def matching(name: dns.name.Name) -> _Nsec3 | None:
        value = hashed(name)
        return next((r for r in records if r.owner_hash == value), None)

    def covering(name: dns.name.Name) -> _Nsec3 | None:
        value = hashed(name)
        return next((r for r in records if _nsec3_covers(r, value)), None)

    type_name = dns.rdatatype.to_text(rdtype)
    if not nxdomain:
        match = matching(qname)
        if match is not None:
            problem = _type_absent(match.types, rdtype)
            if problem:
                return Proof(
                    False, f"the NSEC3 matching {qname} does not deny {type_name}: {problem}"
                )
            if rdtype == dns.rdatatype.DS and dns.rdatatype.SOA in match.types:
                return Proof(False, f"the NSEC3 matching {qname} is from the child zone")

            return Proof(True, f"the NSEC3 matching {qname} proves no {type_name} RRset exists")

    # Closest encloser proof (RFC 5155, section 8.3): an NSEC3 matches the closest encloser and
    # another covers the next closer name, one label below it on the way to qname.
    closest: dns.name.Name | None = None
    next_closer = qname
    candidate = qname
    while candidate.is_subdomain(zone):
        if matching(candidate) is not None:
            closest = candidate
            break
        next_closer = candidate
        if candidate == zone:
            break
        candidate = candidate.parent()
    if closest is None:
        return Proof(False, f"no NSEC3 record matches an ancestor of {qname} (closest encloser)")

    if closest == qname:
        return Proof(False, f"an NSEC3 record matches {qname}, so the name exists")

    cover = covering(next_closer)
    if cover is None:
        return Proof(False, f"no NSEC3 record covers the next closer name {next_closer}")

    wildcard = WILDCARD.concatenate(closest)
    if nxdomain:
        if covering(wildcard) is None:
            return Proof(False, f"no NSEC3 record covers the wildcard {wildcard}")

        return Proof(
            True, f"NSEC3 records prove {qname} does not exist (closest encloser {closest})"
        )
    if rdtype == dns.rdatatype.DS and cover.opt_out:
        return Proof(
            True,
            f"an opt-out NSEC3 covers {next_closer}: any delegation there is unsigned",
            opt_out=True,
        )
    wildcard_match = matching(wildcard)
    if wildcard_match is not None and _type_absent(wildcard_match.types, rdtype) is None:
        return Proof(True, f"NSEC3 records prove no {type_name} at {qname} via {wildcard}")

    return Proof(False, f"no NSEC3 record matches {qname} to deny the {type_name} RRset")


def prove_wildcard_expansion(
    qname: dns.name.Name,
    encloser: dns.name.Name,
    zone: dns.name.Name,
    nsecs: Sequence[dns.rrset.RRset],
    nsec3s: Sequence[dns.rrset.RRset],
) -> Proof:
    """Check that ``qname`` itself does not exist, for an answer expanded from ``*.encloser``.

    With NSEC an NSEC record must cover qname (RFC 4035, section 5.3.4). With NSEC3 the next
    closer name, one label below the closest encloser, must be covered (RFC 5155, section 8.8).
    """
    if nsec3s:
        records, params = _nsec3_records(zone, nsec3s)
        if params is None:
            return Proof(False, "the response contains no NSEC3 record of the zone")

        algorithm, iterations, salt = params
        next_closer = dns.name.Name(qname.labels[-(len(encloser) + 1) :])
        hashed = dns.dnssec.nsec3_hash(next_closer, salt, iterations, algorithm).upper()
        if any(_nsec3_covers(record, hashed) for record in records):
            return Proof(True, f"an NSEC3 record covers the next closer name {next_closer}")

        return Proof(False, f"no NSEC3 record covers the next closer name {next_closer}")

    for rrset in nsecs:
        if _nsec_covers(rrset.name, rrset[0].next, qname):
            return Proof(True, f"the NSEC at {rrset.name} covers {qname}")

    return Proof(False, f"no NSEC record covers {qname}")
