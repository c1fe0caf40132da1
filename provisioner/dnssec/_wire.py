"""Wire-format helpers of the signer: canonical names, RRSIG signing input, NSEC3 hashes.

These work on bytes and tuples rather than dnspython's per-RRset machinery, because the signer
handles zones of a million RRsets. verify.py deliberately does not use them, so that the
self-check does not share the signer's code path.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import struct
import time
import zlib

import dns.dnssectypes
import dns.immutable
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.NSEC
import dns.rdtypes.ANY.NSEC3
import dns.rdtypes.ANY.RRSIG
import dns.rdtypes.util
import dns.rrset
import dns.wire

from provisioner.zone.compact import CompactRRset, new_compact
from provisioner.zone.model import name_text

RdataType = dns.rdatatype.RdataType
RRSIG = dns.rdtypes.ANY.RRSIG.RRSIG
NSEC = dns.rdtypes.ANY.NSEC.NSEC
NSEC3 = dns.rdtypes.ANY.NSEC3.NSEC3

CanonicalKey = tuple[bytes, ...]

_IN = dns.rdataclass.IN
_RRSIG_HEADER = struct.Struct("!HBBIIIH")
_RR_HEADER = struct.Struct("!HHIH")


# Tables that turn each octet c into one base-9 digit of c (c % 9, c // 9 % 9, c // 81).
_BASE9_DIGITS = [
    bytes.maketrans(bytes(range(256)), bytes(b"012345678"[c // 9**k % 9] for c in range(256)))
    for k in range(3)
]


def name_hash(labels: tuple[bytes, ...]) -> int:
    """Return the value of dnspython's Name.__hash__ for ``labels``, several times faster.

    dnspython 2.x computes h = 9 * h + c over the lower-cased octets of all labels, which is a
    base-9 polynomial. Splitting each octet into three base-9 digits turns it into three numerals
    that int(..., 9) parses in C.
    """
    text = b"".join(labels).lower()
    if not text:
        return 0
    value = (
        int(text.translate(_BASE9_DIGITS[0]), 9)
        + 9 * int(text.translate(_BASE9_DIGITS[1]), 9)
        + 81 * int(text.translate(_BASE9_DIGITS[2]), 9)
    )
    return value if value < 2**63 else hash(value)


@dns.immutable.immutable
class HashedName(dns.name.Name):
    """A dns.name.Name that computes its hash once.

    dnspython recomputes a name's hash on every dictionary look-up, which dominated the signer's
    time. Instances equal and hash like the plain Name, so either finds the other in a dict.
    """

    __slots__ = ["_hash"]

    def __init__(self, labels: tuple[bytes, ...]) -> None:
        super().__init__(labels)
        self._hash = name_hash(self.labels)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        # dnspython's fullcompare() costs about 15 microseconds; dict look-ups call this often.
        if self is other:
            return True
        if not isinstance(other, dns.name.Name):
            return False
        if isinstance(other, HashedName) and other._hash != self._hash:
            return False
        mine = self.labels
        theirs = other.labels
        if mine == theirs:
            return True
        if len(mine) != len(theirs):
            return False
        return all(a == b or a.lower() == b.lower() for a, b in zip(mine, theirs, strict=True))

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __setstate__(self, state: dict[str, object]) -> None:
        super().__setstate__(state)
        object.__setattr__(self, "_hash", name_hash(self.labels))


def hashed_name(name: dns.name.Name) -> HashedName:
    """Return ``name`` as a HashedName (itself when it already is one)."""
    if isinstance(name, HashedName):
        return name
    # The labels of an existing Name are already valid, so share the tuple instead of copying.
    hashed = object.__new__(HashedName)
    object.__setattr__(hashed, "labels", name.labels)
    object.__setattr__(hashed, "_hash", name_hash(name.labels))
    return hashed


def canonical_key(name: dns.name.Name, origin_length: int) -> CanonicalKey:
    """Return a tuple whose ordering is the DNSSEC canonical order of names (RFC 4034, 6.1).

    The tuple holds the labels of ``name`` above the zone origin (which has ``origin_length``
    labels, root included), lower-cased and most significant first. Python's tuple and bytes
    comparison then does the work of dnspython's much slower Name comparison. A label that is
    already lower-case is kept as the same object, to save memory.
    """
    labels = name.labels
    key = []
    for index in range(len(labels) - origin_length - 1, -1, -1):
        label = labels[index]
        lowered = label.lower()
        key.append(label if lowered == label else lowered)
    return tuple(key)


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


def rrset_wire(owner_wire: bytes, rdtype: int, ttl: int, rdata_wires: list[bytes]) -> bytes:
    """Return the RRs of an RRset in the canonical form an RRSIG signs (RFC 4034, 3.1.8.1).

    The signing input is the RRSIG header (rrsig_header), the signer's name in canonical wire
    form, then these bytes. ``rdata_wires`` must be canonical and sorted (RFC 4034, 6.3).
    """
    rr_prefix = owner_wire + _RR_HEADER.pack(rdtype, 1, ttl, 0)[:-2]
    parts = []
    for rdata in rdata_wires:
        parts.append(rr_prefix)
        parts.append(len(rdata).to_bytes(2, "big"))
        parts.append(rdata)
    return b"".join(parts)


def new_rrsig(
    header: bytes,
    signer: dns.name.Name,
    signature: bytes,
    shared: dict[int, int] | None = None,
) -> RRSIG:
    """Build an RRSIG rdata from its packed fixed fields without dnspython's per-field checks.

    ``header`` is the packed type covered, algorithm, labels, original TTL, expiration,
    inception and key tag, as in the signing input. ``shared`` maps each integer to one object
    for all RRSIGs of a pass: equal TTLs, times and key tags then cost no memory each.
    """
    fields = _RRSIG_HEADER.unpack(header)
    if shared is not None:
        fields = tuple(shared.setdefault(field, field) for field in fields)
    rdata = object.__new__(SignerRRSIG)
    setattr_ = object.__setattr__
    setattr_(rdata, "rdclass", _IN)
    setattr_(rdata, "rdtype", RdataType.RRSIG)
    setattr_(rdata, "rdcomment", None)
    setattr_(rdata, "type_covered", RdataType(fields[0]))
    setattr_(rdata, "algorithm", dns.dnssectypes.Algorithm(fields[1]))
    setattr_(rdata, "labels", fields[2])
    setattr_(rdata, "original_ttl", fields[3])
    setattr_(rdata, "expiration", fields[4])
    setattr_(rdata, "inception", fields[5])
    setattr_(rdata, "key_tag", fields[6])
    setattr_(rdata, "signer", signer)
    setattr_(rdata, "signature", signature)
    return rdata


def rrsig_header(
    rdtype: int, algorithm: int, labels: int, ttl: int, expiration: int, inception: int, tag: int
) -> bytes:
    return _RRSIG_HEADER.pack(rdtype, algorithm, labels, ttl, expiration, inception, tag)


class BitmapCache:
    """Type bitmaps of NSEC or NSEC3 records, built once per distinct set of types."""

    def __init__(self, rdtype: RdataType) -> None:
        # NSEC and NSEC3 each accept only their own Bitmap subclass without conversion.
        self._class: type[dns.rdtypes.util.Bitmap] = dns.rdtypes.ANY.NSEC.Bitmap
        if rdtype == RdataType.NSEC3:
            self._class = dns.rdtypes.ANY.NSEC3.Bitmap
        self._cache: dict[frozenset[int], tuple[dns.rdtypes.util.Bitmap, bytes]] = {}

    def get(self, types: frozenset[int]) -> tuple[dns.rdtypes.util.Bitmap, bytes]:
        """Return the bitmap of ``types`` and its wire form."""
        entry = self._cache.get(types)
        if entry is None:
            bitmap = self._class.from_rdtypes(sorted(RdataType(t) for t in types))
            entry = (bitmap, bitmap_wire(bitmap))
            self._cache[types] = entry
        return entry


def nsec3_hash(owner_wire: bytes, salt: bytes, iterations: int) -> bytes:
    """Hash a canonical owner name as NSEC3 does (RFC 5155, section 5): SHA-1, iterated."""
    digest = hashlib.sha1(owner_wire + salt).digest()
    for _ in range(iterations):
        digest = hashlib.sha1(digest + salt).digest()
    return digest


def nsec3_label(digest: bytes) -> bytes:
    """Encode an NSEC3 hash as the lower-case Base32hex owner label (no padding for SHA-1)."""
    return base64.b32hexencode(digest).rstrip(b"=").lower()


def bitmap_wire(bitmap: dns.rdtypes.util.Bitmap) -> bytes:
    """Encode a type bitmap as NSEC and NSEC3 carry it (RFC 4034, section 4.1.2)."""
    return b"".join(bytes((window, len(octets))) + octets for window, octets in bitmap.windows)


def name_wire(name: dns.name.Name) -> bytes:
    """Return the uncompressed wire form of ``name``, keeping its case."""
    return b"".join(bytes((len(label),)) + label for label in name.labels)


# The signer builds RRSIG, NSEC and NSEC3 rdata in bulk. SignerNSEC and SignerNSEC3 carry their
# canonical wire form, computed by the signer, so that hashing and comparing them (which dnspython
# does by rendering the wire form each time) costs nothing. SignerRRSIG hashes its fields
# directly. They behave as their dnspython base classes otherwise. replace() returns a plain
# base-class instance, because a cached wire form would be wrong for the changed rdata.


class _CachedWire:
    __slots__ = ()
    _wire: bytes

    def __hash__(self) -> int:
        return hash(self._wire)

    def to_digestable(self, origin: dns.name.Name | None = None) -> bytes:
        return self._wire

    def replace(self, **kwargs: object) -> dns.rdata.Rdata:
        base = type(self).__mro__[2]
        plain = base.from_wire_parser(
            self.rdclass,
            self.rdtype,
            dns.wire.Parser(self._wire),  # type: ignore[attr-defined]
        )
        return plain.replace(**kwargs)


class SignerRRSIG(RRSIG):
    """An RRSIG that hashes its fields directly instead of rendering itself as dnspython does.

    It stores neither its hash nor its wire form, because a signed zone contains one RRSIG per
    RRset and is hashed rarely (CompactRRset keeps one RR without a dictionary).
    """

    def __hash__(self) -> int:
        header = rrsig_header(
            self.type_covered,
            self.algorithm,
            self.labels,
            self.original_ttl,
            self.expiration,
            self.inception,
            self.key_tag,
        )
        return hash(header + canonical_wire(self.signer) + self.signature)

    def __eq__(self, other: object) -> bool:
        return super().__eq__(other)

    def replace(self, **kwargs: object) -> dns.rdata.Rdata:
        plain = RRSIG.from_wire_parser(self.rdclass, self.rdtype, dns.wire.Parser(self.to_wire()))
        return plain.replace(**kwargs)


class SignerNSEC(_CachedWire, NSEC):
    __slots__ = ["_wire"]


class SignerNSEC3(_CachedWire, NSEC3):
    __slots__ = ["_wire"]


def new_nsec(
    following: dns.name.Name, bitmap: dns.rdtypes.util.Bitmap, windows_wire: bytes
) -> NSEC:
    """Build an NSEC rdata without dnspython's per-field checks."""
    rdata = object.__new__(SignerNSEC)
    setattr_ = object.__setattr__
    setattr_(rdata, "rdclass", _IN)
    setattr_(rdata, "rdtype", RdataType.NSEC)
    setattr_(rdata, "rdcomment", None)
    setattr_(rdata, "next", following)
    setattr_(rdata, "windows", bitmap.windows)
    # NSEC's next name is not lower-cased in the canonical form (RFC 6840, section 5.1).
    setattr_(rdata, "_wire", name_wire(following) + windows_wire)
    return rdata


def new_nsec3(
    flags: int,
    iterations: int,
    salt: bytes,
    following: bytes,
    bitmap: dns.rdtypes.util.Bitmap,
    windows_wire: bytes,
) -> NSEC3:
    """Build an NSEC3 rdata (hash algorithm 1, SHA-1) without dnspython's per-field checks."""
    rdata = object.__new__(SignerNSEC3)
    setattr_ = object.__setattr__
    setattr_(rdata, "rdclass", _IN)
    setattr_(rdata, "rdtype", RdataType.NSEC3)
    setattr_(rdata, "rdcomment", None)
    setattr_(rdata, "algorithm", 1)
    setattr_(rdata, "flags", flags)
    setattr_(rdata, "iterations", iterations)
    setattr_(rdata, "salt", salt)
    setattr_(rdata, "next", following)
    setattr_(rdata, "windows", bitmap.windows)
    wire = (
        struct.pack("!BBHB", 1, flags, iterations, len(salt))
        + salt
        + bytes((len(following),))
        + following
        + windows_wire
    )
    setattr_(rdata, "_wire", wire)
    return rdata


class SignerRRSIGset(CompactRRset):
    """A CompactRRset of one RRSIG, stored as its packed fixed fields and signature.

    That takes about 120 bytes, where the rdata object would take about 300, so each read
    builds a new SignerRRSIG (equal, but not the same object) until ``items`` is created.
    """

    __slots__ = ["_signer"]
    _signer: dns.name.Name

    def _one(self) -> dns.rdata.Rdata:
        packed: bytes = self._rdata
        size = _RRSIG_HEADER.size
        return new_rrsig(packed[:size], self._signer, packed[size:])

    def _one_text(self) -> str:
        packed: bytes = self._rdata
        covered, algorithm, labels, ttl, expiration, inception, tag = _RRSIG_HEADER.unpack_from(
            packed
        )
        signature = base64.b64encode(packed[_RRSIG_HEADER.size :]).decode()
        # dnspython breaks base64 into words of 32 characters.
        words = " ".join(signature[i : i + 32] for i in range(0, len(signature), 32))
        return (
            f"{_type_text(covered)} {algorithm} {labels} {ttl} {_sigtime(expiration)} "
            f"{_sigtime(inception)} {tag} {_absolute_text(self._signer)} {words}"
        )


def new_rrsig_rrset(
    owner: dns.name.Name,
    covers: RdataType,
    ttl: int,
    header: bytes,
    signer: dns.name.Name,
    signature: bytes,
) -> SignerRRSIGset:
    """Build a SignerRRSIGset of one RRSIG from its packed fixed fields (see new_rrsig)."""
    rrset = new_compact(
        SignerRRSIGset, owner, RdataType.RRSIG, ttl, header + signature, covers=covers
    )
    rrset._signer = signer
    return rrset


class SignerNSECset(CompactRRset):
    """A CompactRRset of one NSEC, stored as its next name and its shared type bitmap.

    Each read builds a new SignerNSEC (equal, but not the same object) until ``items`` is
    created, which saves about 200 bytes per owner name.
    """

    __slots__ = ["_bitmap"]
    _bitmap: tuple[dns.rdtypes.util.Bitmap, bytes]

    def _one(self) -> dns.rdata.Rdata:
        bitmap, windows_wire = self._bitmap
        return new_nsec(self._rdata, bitmap, windows_wire)

    def _one_text(self) -> str:
        return name_text(self._rdata) + _bitmap_text(*self._bitmap)


class SignerNSEC3set(CompactRRset):
    """A CompactRRset of one NSEC3, stored as its next hashed owner and shared fields.

    ``_fields`` is (flags, iterations, salt, bitmap, bitmap wire form), one tuple for all
    NSEC3 records with the same types. Each read builds a new SignerNSEC3 until ``items`` is
    created.
    """

    __slots__ = ["_fields"]
    _fields: tuple[int, int, bytes, dns.rdtypes.util.Bitmap, bytes]

    def _one(self) -> dns.rdata.Rdata:
        flags, iterations, salt, bitmap, windows_wire = self._fields
        return new_nsec3(flags, iterations, salt, self._rdata, bitmap, windows_wire)

    def _one_text(self) -> str:
        flags, iterations, salt, bitmap, windows_wire = self._fields
        salt_text = salt.hex() if salt else "-"
        following = base64.b32hexencode(self._rdata).rstrip(b"=").lower().decode()
        return f"1 {flags} {iterations} {salt_text} {following}{_bitmap_text(bitmap, windows_wire)}"


# Caches for rendering: a signed zone repeats a few types, times, signer names and bitmaps.


@functools.lru_cache(maxsize=256)
def _type_text(rdtype: int) -> str:
    return dns.rdatatype.to_text(rdtype)


@functools.lru_cache(maxsize=4096)
def _sigtime(posix_time: int) -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(posix_time))


@functools.lru_cache(maxsize=64)
def _absolute_text(name: dns.name.Name) -> str:
    return name_text(name)


_BITMAP_TEXTS: dict[bytes, str] = {}


def _bitmap_text(bitmap: dns.rdtypes.util.Bitmap, windows_wire: bytes) -> str:
    text = _BITMAP_TEXTS.get(windows_wire)
    if text is None:
        if len(_BITMAP_TEXTS) >= 4096:
            _BITMAP_TEXTS.clear()
        text = _BITMAP_TEXTS[windows_wire] = bitmap.to_text()
    return text


def new_nsec_rrset(
    owner: dns.name.Name,
    ttl: int,
    following: dns.name.Name,
    bitmap: tuple[dns.rdtypes.util.Bitmap, bytes],
) -> SignerNSECset:
    """Build a SignerNSECset; ``bitmap`` is an entry of BitmapCache.get."""
    rrset = new_compact(SignerNSECset, owner, RdataType.NSEC, ttl, following)
    rrset._bitmap = bitmap
    return rrset


def new_nsec3_rrset(
    owner: dns.name.Name,
    ttl: int,
    following: bytes,
    fields: tuple[int, int, bytes, dns.rdtypes.util.Bitmap, bytes],
) -> SignerNSEC3set:
    """Build a SignerNSEC3set; see SignerNSEC3set for ``fields``."""
    rrset = new_compact(SignerNSEC3set, owner, RdataType.NSEC3, ttl, following)
    rrset._fields = fields
    return rrset
