"""DNSSEC keys: the SigningKey protocol, in-memory keys, DNSKEY, key tag, DS, CDS and CDNSKEY.

The signer only uses ``SigningKey``: an algorithm, DNSKEY flags, the DNSKEY rdata, the key tag and
``sign(data) -> bytes``, which returns the signature in DNSSEC wire format (RSA: PKCS #1 v1.5
octets, RFC 5702; ECDSA: r || s, each padded to the curve size, RFC 6605; Ed25519: the 64 octets
of RFC 8080). A PKCS #11 key store can provide another implementation without signer changes.

Public API:
    SigningKey                     the protocol
    InMemoryKey                    a key held as a cryptography private key
    generate_key(algorithm, flags, rsa_bits=None) -> InMemoryKey
    InMemoryKey.to_pem() / load_key(pem, algorithm, flags)    PKCS #8 PEM, unencrypted unless a
                                   password is given; persist it with store.atomic.write_private
    dnskey_rdata(algorithm, flags, public_key) -> DNSKEY rdata
    key_tag(dnskey) -> int         RFC 4034, Appendix B
    make_ds(origin, dnskey, digest_type) -> DS rdata       digest 2 (SHA-256) or 4 (SHA-384)
    ds_rrset / cds_rrset / cdnskey_rrset(origin, keys, ...) -> RRset
    cds_delete_rrsets(origin, ttl) -> (CDS, CDNSKEY)       the RFC 8078 delete form
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CDNSKEY
import dns.rdtypes.ANY.CDS
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.DS
import dns.rrset
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from provisioner.errors import DnssecError

DNSKEY = dns.rdtypes.ANY.DNSKEY.DNSKEY
DS = dns.rdtypes.ANY.DS.DS

# DNSKEY flags: Zone Key (256) and, for key-signing keys, Secure Entry Point (1).
ZSK_FLAGS = 256
KSK_FLAGS = 257

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

_CURVES: dict[int, tuple[type[ec.EllipticCurve], type[hashes.HashAlgorithm], int]] = {
    13: (ec.SECP256R1, hashes.SHA256, 32),
    14: (ec.SECP384R1, hashes.SHA384, 48),
}
_DIGESTS = {2: hashlib.sha256, 4: hashlib.sha384}


@runtime_checkable
class SigningKey(Protocol):
    """A DNSSEC private key that can sign; its private part may live outside this process."""

    @property
    def algorithm(self) -> int: ...

    @property
    def flags(self) -> int: ...

    @property
    def dnskey(self) -> DNSKEY: ...

    @property
    def key_tag(self) -> int: ...

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` (the RRSIG signing input) and return the DNSSEC wire-format signature."""
        ...


class InMemoryKey:
    """A SigningKey backed by a cryptography private key in this process.

    ``parallel_safe`` marks that several threads may sign with the key at once.
    """

    parallel_safe = True

    def __init__(self, private_key: PrivateKey, algorithm: int, flags: int) -> None:
        _check_key_type(private_key, algorithm)
        self.private_key = private_key
        self._algorithm = algorithm
        self._flags = flags
        self._dnskey = dnskey_rdata(algorithm, flags, private_key.public_key())
        self._key_tag = key_tag(self._dnskey)
        if algorithm in _CURVES:
            self._ecdsa = ec.ECDSA(_CURVES[algorithm][1]())
            self._half = _CURVES[algorithm][2]

    @property
    def algorithm(self) -> int:
        return self._algorithm

    @property
    def flags(self) -> int:
        return self._flags

    @property
    def dnskey(self) -> DNSKEY:
        return self._dnskey

    @property
    def key_tag(self) -> int:
        return self._key_tag

    def sign(self, data: bytes) -> bytes:
        key = self.private_key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            # ECDSA signatures are randomized, so two signatures of equal data differ.
            r, s = utils.decode_dss_signature(key.sign(data, self._ecdsa))
            return r.to_bytes(self._half, "big") + s.to_bytes(self._half, "big")
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key.sign(data)
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def to_pem(self, password: bytes | None = None) -> bytes:
        """Serialize the private key as PKCS #8 PEM, encrypted when ``password`` is given."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    def __repr__(self) -> str:
        return f"InMemoryKey(algorithm={self._algorithm}, flags={self._flags}, tag={self._key_tag})"


def generate_key(algorithm: int, flags: int, rsa_bits: int | None = None) -> InMemoryKey:
    """Generate a new key for ``algorithm`` (8, 13, 14 or 15) with DNSKEY ``flags``."""
    private_key: PrivateKey
    if algorithm in _CURVES:
        private_key = ec.generate_private_key(_CURVES[algorithm][0]())
    elif algorithm == 15:
        private_key = ed25519.Ed25519PrivateKey.generate()
    elif algorithm == 8:
        bits = 2048 if rsa_bits is None else rsa_bits
        if not 2048 <= bits <= 4096:
            raise DnssecError(
                f"invalid RSA key size {bits}", hint="use 2048 to 4096 bits for algorithm 8"
            )
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    else:
        raise DnssecError(
            f"cannot generate a key for DNSSEC algorithm {algorithm}",
            hint="use 8 (RSASHA256), 13 (ECDSAP256SHA256), 14 (ECDSAP384SHA384) or 15 (ED25519)",
        )
    return InMemoryKey(private_key, algorithm, flags)


def load_key(pem: bytes, algorithm: int, flags: int, password: bytes | None = None) -> InMemoryKey:
    """Load a PKCS #8 PEM private key and check that it fits ``algorithm``."""
    try:
        private_key = serialization.load_pem_private_key(pem, password=password)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise DnssecError(
            f"cannot read the DNSSEC private key: {error}",
            hint="the key file must be PKCS #8 PEM; check the password if it is encrypted",
        ) from None
    if not isinstance(
        private_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise DnssecError(f"unsupported private key type {type(private_key).__name__}")
    return InMemoryKey(private_key, algorithm, flags)


def _check_key_type(private_key: PrivateKey, algorithm: int) -> None:
    if algorithm in _CURVES:
        expected = _CURVES[algorithm][0].name
        if isinstance(private_key, ec.EllipticCurvePrivateKey) and (
            private_key.curve.name == expected
        ):
            return
        wanted = f"an EC key on {expected}"
    elif algorithm == 15:
        if isinstance(private_key, ed25519.Ed25519PrivateKey):
            return
        wanted = "an Ed25519 key"
    elif algorithm == 8:
        if isinstance(private_key, rsa.RSAPrivateKey):
            return
        wanted = "an RSA key"
    else:
        raise DnssecError(f"unsupported DNSSEC algorithm {algorithm}")
    raise DnssecError(
        f"the private key does not fit DNSSEC algorithm {algorithm}: expected {wanted}",
        hint="check the algorithm recorded for this key in the state store",
    )


def public_key_bytes(algorithm: int, public_key: object) -> bytes:
    """Encode a public key as the DNSKEY public key field of ``algorithm``."""
    if algorithm in _CURVES and isinstance(public_key, ec.EllipticCurvePublicKey):
        size = _CURVES[algorithm][2]
        numbers = public_key.public_numbers()
        return numbers.x.to_bytes(size, "big") + numbers.y.to_bytes(size, "big")
    if algorithm == 15 and isinstance(public_key, ed25519.Ed25519PublicKey):
        return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if algorithm == 8 and isinstance(public_key, rsa.RSAPublicKey):
        # RFC 3110, section 2: exponent length (1 octet, or 0 then 2 octets), exponent, modulus.
        numbers = public_key.public_numbers()
        exponent = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
        modulus = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        if len(exponent) < 256:
            prefix = bytes([len(exponent)])
        else:
            prefix = b"\x00" + struct.pack("!H", len(exponent))
        return prefix + exponent + modulus
    raise DnssecError(f"the public key does not fit DNSSEC algorithm {algorithm}")


def dnskey_rdata(algorithm: int, flags: int, public_key: object) -> DNSKEY:
    """Build the DNSKEY rdata (protocol 3) of a public key."""
    return DNSKEY(
        dns.rdataclass.IN,
        dns.rdatatype.DNSKEY,
        flags,
        3,
        algorithm,
        public_key_bytes(algorithm, public_key),
    )


def key_tag(dnskey: DNSKEY) -> int:
    """Compute the key tag of a DNSKEY (RFC 4034, Appendix B; not for algorithm 1)."""
    wire = dnskey.to_wire()
    total = 0
    for index, octet in enumerate(wire):
        total += octet if index & 1 else octet << 8
    total += (total >> 16) & 0xFFFF
    return total & 0xFFFF


def _as_dnskey(key: SigningKey | DNSKEY) -> DNSKEY:
    return key if isinstance(key, DNSKEY) else key.dnskey


def make_ds(origin: dns.name.Name | str, key: SigningKey | DNSKEY, digest_type: int = 2) -> DS:
    """Build the DS rdata of a key: digest over canonical owner name and DNSKEY rdata (RFC 4034)."""
    if isinstance(origin, str):
        origin = dns.name.from_text(origin)
    if digest_type not in _DIGESTS:
        raise DnssecError(
            f"unsupported DS digest type {digest_type}", hint="use 2 (SHA-256) or 4 (SHA-384)"
        )
    dnskey = _as_dnskey(key)
    digest = _DIGESTS[digest_type](origin.canonicalize().to_wire() + dnskey.to_wire()).digest()
    return DS(
        dns.rdataclass.IN, dns.rdatatype.DS, key_tag(dnskey), dnskey.algorithm, digest_type, digest
    )


def _ds_like_rrset(
    rdtype: dns.rdatatype.RdataType,
    origin: dns.name.Name,
    keys: Iterable[SigningKey | DNSKEY],
    digests: Iterable[int],
    ttl: int,
) -> dns.rrset.RRset:
    rrset = dns.rrset.RRset(origin, dns.rdataclass.IN, rdtype)
    digest_list = list(digests)
    for key in keys:
        for digest_type in digest_list:
            ds = make_ds(origin, key, digest_type)
            if rdtype == dns.rdatatype.CDS:
                ds = dns.rdtypes.ANY.CDS.CDS(
                    ds.rdclass, rdtype, ds.key_tag, ds.algorithm, ds.digest_type, ds.digest
                )
            rrset.add(ds, ttl)
    return rrset


def ds_rrset(
    origin: dns.name.Name | str,
    keys: Iterable[SigningKey | DNSKEY],
    digests: Iterable[int] = (2,),
    ttl: int = 86400,
) -> dns.rrset.RRset:
    """Build the DS RRset to hand to the parent: one DS per key and digest type."""
    name = dns.name.from_text(origin) if isinstance(origin, str) else origin
    return _ds_like_rrset(dns.rdatatype.DS, name, keys, digests, ttl)


def cds_rrset(
    origin: dns.name.Name | str,
    keys: Iterable[SigningKey | DNSKEY],
    digests: Iterable[int] = (2,),
    ttl: int = 3600,
) -> dns.rrset.RRset:
    """Build the CDS RRset (RFC 7344) that asks the parent to publish these keys' DS."""
    name = dns.name.from_text(origin) if isinstance(origin, str) else origin
    return _ds_like_rrset(dns.rdatatype.CDS, name, keys, digests, ttl)


def cdnskey_rrset(
    origin: dns.name.Name | str, keys: Iterable[SigningKey | DNSKEY], ttl: int = 3600
) -> dns.rrset.RRset:
    """Build the CDNSKEY RRset (RFC 7344) carrying these keys' DNSKEY rdata."""
    name = dns.name.from_text(origin) if isinstance(origin, str) else origin
    rrset = dns.rrset.RRset(name, dns.rdataclass.IN, dns.rdatatype.CDNSKEY)
    for key in keys:
        dnskey = _as_dnskey(key)
        rrset.add(
            dns.rdtypes.ANY.CDNSKEY.CDNSKEY(
                dnskey.rdclass,
                dns.rdatatype.CDNSKEY,
                dnskey.flags,
                dnskey.protocol,
                dnskey.algorithm,
                dnskey.key,
            ),
            ttl,
        )
    return rrset


def cds_delete_rrsets(
    origin: dns.name.Name | str, ttl: int = 3600
) -> tuple[dns.rrset.RRset, dns.rrset.RRset]:
    """Build the RFC 8078 delete form: CDS "0 0 0 00" and CDNSKEY "0 3 0 AA=="."""
    name = dns.name.from_text(origin) if isinstance(origin, str) else origin
    cds = dns.rrset.from_text(name, ttl, "IN", "CDS", "0 0 0 00")
    cdnskey = dns.rrset.from_text(name, ttl, "IN", "CDNSKEY", "0 3 0 AA==")
    return cds, cdnskey
