"""Conversion between dnspython RRsets and Route 53 resource record sets.

Route 53 returns owner names in lower case with a trailing dot, and writes every character
outside a-z, 0-9, hyphen, underscore and dot as a three-digit octal escape (``*`` becomes
``\\052``). dnspython reads ``\\DDD`` as a decimal escape, so octal escapes are rewritten
before a name is parsed. Values are the zone-file text of one RR's data.
"""

from __future__ import annotations

import re
from typing import Any

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from provisioner.errors import BackendError

IN = dns.rdataclass.IN

# The record types that ChangeResourceRecordSets accepts (Route 53 API reference,
# ResourceRecordSet.Type). SMIMEA, DNSKEY, RRSIG, NSEC, NSEC3 and CDS are not among them.
SUPPORTED_TYPES = frozenset(
    {
        "A",
        "AAAA",
        "CAA",
        "CNAME",
        "DS",
        "HTTPS",
        "MX",
        "NAPTR",
        "NS",
        "PTR",
        "SOA",
        "SPF",
        "SRV",
        "SSHFP",
        "SVCB",
        "TLSA",
        "TXT",
    }
)

# Route 53's maximum length of one Value element.
MAX_VALUE_CHARACTERS = 4000

_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")
# One escape sequence in a character-string: three digits, or any single escaped character.
_STRING_ESCAPE = re.compile(r"\\(\d{3}|.)", re.DOTALL)

# Types whose values contain character-strings. Route 53 reads and writes an escaped byte in
# them as three octal digits, dnspython as three decimal digits.
_STRING_TYPES = frozenset({dns.rdatatype.TXT, dns.rdatatype.SPF, dns.rdatatype.CAA})
_PLAIN_LABEL_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


def decode_name(text: str) -> dns.name.Name:
    """Parse an owner name as Route 53 returns it, octal escapes included."""

    def to_decimal(match: re.Match[str]) -> str:
        return f"\\{int(match.group(1), 8):03d}"

    absolute = text if text.endswith(".") else text + "."
    return dns.name.from_text(_OCTAL_ESCAPE.sub(to_decimal, absolute))


def encode_name(name: dns.name.Name) -> str:
    """Write ``name`` as Route 53 expects it: lower case, ``*`` as is, other characters octal."""
    labels: list[str] = []
    for label in name.labels[:-1]:
        if label == b"*":
            labels.append("*")
            continue
        text = []
        for byte in label.lower():
            character = chr(byte)
            if character in _PLAIN_LABEL_CHARACTERS:
                text.append(character)
            else:
                text.append(f"\\{byte:03o}")
        labels.append("".join(text))
    return ".".join(labels) + "."


def rdata_value(rdata: dns.rdata.Rdata) -> str:
    """Return one RR's data as a Route 53 Value: names absolute, hex unbroken, octal escapes."""
    text = rdata.to_text(origin=None, relativize=False, chunksize=0)
    if rdata.rdtype in _STRING_TYPES:
        text = _convert_escapes(text, from_base=10, to_base=8)
    return text


def parse_value(rdtype: dns.rdatatype.RdataType, value: str) -> dns.rdata.Rdata:
    """Parse one Route 53 Value of type ``rdtype``; names in it are absolute."""
    if rdtype in _STRING_TYPES:
        value = _convert_escapes(value, from_base=8, to_base=10)
    return dns.rdata.from_text(IN, rdtype, value, origin=dns.name.root, relativize=False)


def _convert_escapes(text: str, *, from_base: int, to_base: int) -> str:
    """Rewrite the three-digit escapes of ``text`` from one base to the other."""

    def convert(match: re.Match[str]) -> str:
        escaped = match.group(1)
        if len(escaped) != 3:
            return match.group(0)
        byte = int(escaped, from_base)
        return "\\" + (f"{byte:03o}" if to_base == 8 else f"{byte:03d}")

    return _STRING_ESCAPE.sub(convert, text)


def to_record_set(rrset: dns.rrset.RRset) -> dict[str, Any]:
    """Return the ResourceRecordSet structure of ``rrset`` for ChangeResourceRecordSets."""
    values = sorted(rdata_value(rdata) for rdata in rrset)
    return {
        "Name": encode_name(rrset.name),
        "Type": dns.rdatatype.to_text(rrset.rdtype),
        "TTL": rrset.ttl,
        "ResourceRecords": [{"Value": value} for value in values],
    }


def from_record_set(record_set: dict[str, Any]) -> dns.rrset.RRset:
    """Parse one plain ResourceRecordSet (no alias, no routing policy) into an RRset."""
    name = decode_name(record_set["Name"])
    rdtype = dns.rdatatype.from_text(record_set["Type"])
    rrset = dns.rrset.RRset(name, IN, rdtype)
    for record in record_set.get("ResourceRecords", []):
        value = record["Value"]
        try:
            rdata = parse_value(rdtype, value)
        except Exception as error:  # dnspython raises several types for bad rdata
            raise BackendError(
                f"Route 53 returned a {record_set['Type']} value at {name} that cannot be "
                f"parsed: {value!r}: {error}",
                hint="fix or delete that record in the hosted zone",
            ) from error
        rrset.add(rdata, int(record_set.get("TTL", 0)))
    return rrset


def is_plain(record_set: dict[str, Any]) -> bool:
    """Return whether a record set is a plain RRset that provisioner can manage.

    Alias records and record sets with a routing policy (weighted, latency, failover,
    geolocation, multivalue answer) carry a SetIdentifier or an AliasTarget; provisioner
    neither reads nor changes them.
    """
    return "AliasTarget" not in record_set and "SetIdentifier" not in record_set


def value_characters(rrset: dns.rrset.RRset) -> int:
    """Return the number of characters of the Value elements of ``rrset``."""
    return sum(len(rdata_value(rdata)) for rdata in rrset)
