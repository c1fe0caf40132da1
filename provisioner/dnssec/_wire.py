"""Wire-format helpers of the signer: canonical names, RRSIG signing input, NSEC3 hashes.

These work on bytes and tuples rather than dnspython's per-RRset machinery, because the signer
handles zones of a million RRsets. verify.py deliberately does not use them, so that the
self-check does not share the signer's code path.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import zlib

import dns.dnssectypes
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.NSEC
import dns.rdtypes.ANY.NSEC3
import dns.rdtypes.ANY.RRSIG
import dns.rdtypes.util

RdataType = dns.rdatatype.RdataType
RRSIG = dns.rdtypes.ANY.RRSIG.RRSIG
NSEC = dns.rdtypes.ANY.NSEC.NSEC
NSEC3 = dns.rdtypes.ANY.NSEC3.NSEC3

CanonicalKey = tuple[bytes, ...]

_IN = dns.rdataclass.IN
_RRSIG_HEADER = struct.Struct("!HBBIIIH")
_RR_HEADER = struct.Struct("!HHIH")


def canonical_key(name: dns.name.Name) -> CanonicalKey:
    """Return a tuple whose ordering is the DNSSEC canonical order of names (RFC 4034, 6.1).

    Labels are lower-cased and reversed, so Python's tuple and bytes comparison does the work
    that dnspython's slower Name comparison would.
    """
    return tuple(label.lower() for label in reversed(name.labels))


def canonical_wire(name: dns.name.Name) -> bytes:
    """Return the uncompressed wire form of ``name`` with ASCII letters lower-cased."""
    return b"".join(bytes((len(label),)) + label.lower() for label in name.labels)


def rrsig_labels(name: dns.name.Name) -> int:
    """Count the labels of an owner name as the RRSIG Labels field does (no root, no "*")."""
    count = len(name.labels) - 1
    if name.labels and name.labels[0] == b"*":
        count -= 1
    return count


def jittered_expiration(owner_wire: bytes, rdtype: int, base: int, jitter: int) -> int:
    """Return ``base`` minus a jitter in [0, jitter] derived from the owner name and type.

    The jitter is a hash, not a random number, so a fixed clock gives fixed expirations.
    """
    if jitter <= 0:
        return base
    return base - zlib.crc32(owner_wire + rdtype.to_bytes(2, "big")) % (jitter + 1)


def signing_input(
    owner_wire: bytes,
    rdtype: int,
    ttl: int,
    rdata_wires: list[bytes],
    algorithm: int,
    labels: int,
    expiration: int,
    inception: int,
    key_tag: int,
    signer_wire: bytes,
) -> bytes:
    """Build the data an RRSIG signs (RFC 4034, section 3.1.8.1).

    That is the RRSIG rdata without the signature, then every RR in canonical form, ordered by
    canonical rdata (RFC 4034, section 6.3). ``rdata_wires`` must be canonical and sorted.
    """
    prefix = (
        _RRSIG_HEADER.pack(rdtype, algorithm, labels, ttl, expiration, inception, key_tag)
        + signer_wire
    )
    rr_prefix = owner_wire + _RR_HEADER.pack(rdtype, 1, ttl, 0)[:-2]
    parts = [prefix]
    for rdata in rdata_wires:
        parts.append(rr_prefix)
        parts.append(len(rdata).to_bytes(2, "big"))
        parts.append(rdata)
    return b"".join(parts)


def new_rrsig(
    type_covered: RdataType,
    algorithm: int,
    labels: int,
    original_ttl: int,
    expiration: int,
    inception: int,
    key_tag: int,
    signer: dns.name.Name,
    signature: bytes,
) -> RRSIG:
    """Build an RRSIG rdata without dnspython's per-field checks (about 10x faster).

    All fields come from the signer itself and are already in range, and the object is still
    an ordinary immutable dnspython RRSIG.
    """
    rdata = object.__new__(RRSIG)
    setattr_ = object.__setattr__
    setattr_(rdata, "rdclass", _IN)
    setattr_(rdata, "rdtype", RdataType.RRSIG)
    setattr_(rdata, "rdcomment", None)
    setattr_(rdata, "type_covered", type_covered)
    setattr_(rdata, "algorithm", dns.dnssectypes.Algorithm(algorithm))
    setattr_(rdata, "labels", labels)
    setattr_(rdata, "original_ttl", original_ttl)
    setattr_(rdata, "expiration", expiration)
    setattr_(rdata, "inception", inception)
    setattr_(rdata, "key_tag", key_tag)
    setattr_(rdata, "signer", signer)
    setattr_(rdata, "signature", signature)
    return rdata


class BitmapCache:
    """Type bitmaps of NSEC or NSEC3 records, built once per distinct set of types."""

    def __init__(self, rdtype: RdataType) -> None:
        # NSEC and NSEC3 each accept only their own Bitmap subclass without conversion.
        self._class: type[dns.rdtypes.util.Bitmap] = dns.rdtypes.ANY.NSEC.Bitmap
        if rdtype == RdataType.NSEC3:
            self._class = dns.rdtypes.ANY.NSEC3.Bitmap
        self._cache: dict[frozenset[int], dns.rdtypes.util.Bitmap] = {}

    def get(self, types: frozenset[int]) -> dns.rdtypes.util.Bitmap:
        bitmap = self._cache.get(types)
        if bitmap is None:
            bitmap = self._class.from_rdtypes(sorted(RdataType(t) for t in types))
            self._cache[types] = bitmap
        return bitmap


def nsec3_hash(owner_wire: bytes, salt: bytes, iterations: int) -> bytes:
    """Hash a canonical owner name as NSEC3 does (RFC 5155, section 5): SHA-1, iterated."""
    digest = hashlib.sha1(owner_wire + salt).digest()
    for _ in range(iterations):
        digest = hashlib.sha1(digest + salt).digest()
    return digest


def nsec3_label(digest: bytes) -> bytes:
    """Encode an NSEC3 hash as the lower-case Base32hex owner label (no padding for SHA-1)."""
    return base64.b32hexencode(digest).rstrip(b"=").lower()
