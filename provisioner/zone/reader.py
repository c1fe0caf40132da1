"""A fast reader for zone text in the form ZoneData.to_text() writes.

apply reads both the zone file it last wrote and the copy in the state store. For a signed zone
of 20,000 users (80,000 RRs), dnspython's zone file parser took about 40 s of a 65-second apply
that changed nothing. With this reader the same apply took 24 s (2 vCPUs, Python 3.11).

The form to_text() writes is simple: a ``$ORIGIN`` line, then one RR per line as
"owner TTL IN TYPE rdata", with absolute owner names and single spaces. This reader splits those
lines itself, builds RRSIG, NSEC, NSEC3, TLSA and SMIMEA RRs of one RR in the compact forms the
signer and the zone builder use, and hands other rdata to dns.rdata.from_text one line at a time.

Any other text (comments, $TTL, records spread over several lines, relative owner names, a
class other than IN) makes read_canonical return None, and the caller parses with dnspython.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import time

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SMIMEA
import dns.rdtypes.ANY.TLSA
import dns.rrset

from provisioner.dnssec import _wire
from provisioner.zone.compact import CompactRRset, new_compact
from provisioner.zone.model import NONE, RRsetKey, ZoneData

RdataType = dns.rdatatype.RdataType

_IN = dns.rdataclass.IN
_MAX_TTL = 2**32 - 1  # the largest TTL dnspython's zone parser accepts
_DANE = {
    RdataType.TLSA: dns.rdtypes.ANY.TLSA.TLSA,
    RdataType.SMIMEA: dns.rdtypes.ANY.SMIMEA.SMIMEA,
}


class _NotCanonical(Exception):
    """The text is not in the form to_text() writes; the caller falls back to dnspython."""


class _Reader:
    def __init__(self, origin: dns.name.Name) -> None:
        self.origin = origin
        self.names: dict[str, dns.name.Name] = {}
        self.owners: dict[str, dns.name.Name] = {}
        self.types: dict[str, RdataType] = {}
        self.times: dict[str, int] = {}
        self.nsec_bitmaps = _wire.BitmapCache(RdataType.NSEC)
        self.nsec3_bitmaps = _wire.BitmapCache(RdataType.NSEC3)
        self.nsec3_fields: dict[tuple[str, str, str, str], tuple] = {}

    def name(self, text: str) -> dns.name.Name:
        name = self.names.get(text)
        if name is None:
            if not text.endswith("."):
                raise _NotCanonical
            name = _wire.hashed_name(dns.name.from_text(text))
            self.names[text] = name
        return name

    def owner(self, text: str) -> dns.name.Name:
        owner = self.owners.get(text)
        if owner is None:
            owner = self.name(text)
            if not owner.is_subdomain(self.origin):
                raise _NotCanonical
            self.owners[text] = owner
        return owner

    def rdtype(self, text: str) -> RdataType:
        rdtype = self.types.get(text)
        if rdtype is None:
            rdtype = self.types[text] = RdataType(dns.rdatatype.from_text(text))
        return rdtype

    def sigtime(self, text: str) -> int:
        value = self.times.get(text)
        if value is None:
            if len(text) != 14 or not text.isdigit():
                raise _NotCanonical
            value = calendar.timegm(time.strptime(text, "%Y%m%d%H%M%S"))
            self.times[text] = value
        return value

    def read_line(self, line: str) -> tuple[RRsetKey, dns.rrset.RRset]:
        """Return the key of one line's RR and an RRset that contains only that RR."""
        fields = line.split(" ", 4)
        if len(fields) != 5 or fields[2] != "IN" or not fields[1].isdigit():
            raise _NotCanonical
        owner = self.owner(fields[0])
        ttl = int(fields[1])
        if ttl > _MAX_TTL:
            raise _NotCanonical
        rdtype = self.rdtype(fields[3])
        words = fields[4].split(" ")
        if rdtype == RdataType.RRSIG:
            return self._rrsig(owner, ttl, words)
        if rdtype == RdataType.NSEC:
            return self._nsec(owner, ttl, words)
        if rdtype == RdataType.NSEC3:
            return self._nsec3(owner, ttl, words)
        dane = _DANE.get(rdtype)
        if dane is not None:
            usage, selector, matching = int(words[0]), int(words[1]), int(words[2])
            data = bytes.fromhex("".join(words[3:]))
            rdata: dns.rdata.Rdata = dane(_IN, rdtype, usage, selector, matching, data)
        else:
            rdata = dns.rdata.from_text(_IN, rdtype, fields[4], self.origin, relativize=False)
        # RRSIG, the only type with a covered type, is read above.
        return (owner, rdtype, NONE), new_compact(CompactRRset, owner, rdtype, ttl, rdata)

    def _rrsig(
        self, owner: dns.name.Name, ttl: int, words: list[str]
    ) -> tuple[RRsetKey, dns.rrset.RRset]:
        if len(words) < 9:
            raise _NotCanonical
        covered = self.rdtype(words[0])
        header = _wire.rrsig_header(
            covered,
            int(words[1]),
            int(words[2]),
            int(words[3]),
            self.sigtime(words[4]),
            self.sigtime(words[5]),
            int(words[6]),
        )
        signature = base64.b64decode("".join(words[8:]), validate=True)
        rrsig = _wire.new_rrsig_rrset(owner, covered, ttl, header, self.name(words[7]), signature)
        return (owner, RdataType.RRSIG, covered), rrsig

    def _nsec(
        self, owner: dns.name.Name, ttl: int, words: list[str]
    ) -> tuple[RRsetKey, dns.rrset.RRset]:
        following = self.name(words[0])
        types = frozenset(self.rdtype(word) for word in words[1:])
        nsec = _wire.new_nsec_rrset(owner, ttl, following, self.nsec_bitmaps.get(types))
        return (owner, RdataType.NSEC, NONE), nsec

    def _nsec3(
        self, owner: dns.name.Name, ttl: int, words: list[str]
    ) -> tuple[RRsetKey, dns.rrset.RRset]:
        if len(words) < 5 or words[0] != "1":
            raise _NotCanonical
        # Flags, iterations, salt and bitmap repeat across the chain, so they are shared.
        shared_key = (words[1], words[2], words[3], " ".join(words[5:]))
        shared = self.nsec3_fields.get(shared_key)
        if shared is None:
            salt = b"" if words[3] == "-" else binascii.unhexlify(words[3])
            types = frozenset(self.rdtype(word) for word in words[5:])
            shared = (int(words[1]), int(words[2]), salt, *self.nsec3_bitmaps.get(types))
            self.nsec3_fields[shared_key] = shared
        encoded = words[4].upper()
        following = base64.b32hexdecode(encoded + "=" * (-len(encoded) % 8))
        nsec3 = _wire.new_nsec3_rrset(owner, ttl, following, shared)
        return (owner, RdataType.NSEC3, NONE), nsec3


def read_canonical(text: str, origin: dns.name.Name) -> ZoneData | None:
    """Parse zone text in the form ZoneData.to_text() writes; return None for any other text."""
    lines = text.split("\n")
    if not lines or lines[0] != f"$ORIGIN {origin}":
        return None
    reader = _Reader(origin)
    zone = ZoneData(origin)
    rrsets = zone.rrsets
    try:
        for line in lines[1:]:
            if not line:
                continue
            key, rrset = reader.read_line(line)
            existing = rrsets.get(key)
            if existing is None:
                rrsets[key] = rrset
                continue
            # More RRs of an RRset: the first one's compact form makes its dictionary here.
            existing.update(rrset)
            existing.update_ttl(rrset.ttl)
    except (_NotCanonical, ValueError, dns.exception.DNSException):
        return None
    return zone
