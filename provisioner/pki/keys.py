"""Private keys: generation, PKCS#8 serialisation, loading, and matching against certificates."""

from __future__ import annotations

import enum

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from provisioner.errors import PKIError

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

# Public exponent 65537 is the value every current CA and TLS stack expects.
RSA_PUBLIC_EXPONENT = 65537


class KeyType(enum.StrEnum):
    """A key algorithm and size that provisioner generates and accepts."""

    ECDSA_P256 = "ecdsa-p256"
    ECDSA_P384 = "ecdsa-p384"
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"
    ED25519 = "ed25519"


_RSA_BITS = {KeyType.RSA_2048: 2048, KeyType.RSA_3072: 3072, KeyType.RSA_4096: 4096}
_CURVES: dict[KeyType, type[ec.EllipticCurve]] = {
    KeyType.ECDSA_P256: ec.SECP256R1,
    KeyType.ECDSA_P384: ec.SECP384R1,
}


def generate_private_key(key_type: KeyType | str) -> PrivateKey:
    """Generate a new private key of ``key_type``."""
    key_type = _parse_key_type(key_type)
    if key_type in _RSA_BITS:
        return rsa.generate_private_key(RSA_PUBLIC_EXPONENT, _RSA_BITS[key_type])
    if key_type in _CURVES:
        return ec.generate_private_key(_CURVES[key_type]())
    return ed25519.Ed25519PrivateKey.generate()


def _parse_key_type(key_type: KeyType | str) -> KeyType:
    try:
        return KeyType(key_type)
    except ValueError:
        allowed = ", ".join(member.value for member in KeyType)
        raise PKIError(
            f"unsupported key type {key_type!r}", hint=f"use one of: {allowed}"
        ) from None


def key_type_of(key: PrivateKey | PublicKey) -> KeyType:
    """Return the KeyType of a private or public key; raise PKIError for other keys."""
    public = key.public_key() if hasattr(key, "public_key") else key
    if isinstance(public, rsa.RSAPublicKey):
        for key_type, bits in _RSA_BITS.items():
            if public.key_size == bits:
                return key_type
        raise PKIError(
            f"unsupported RSA key size {public.key_size} bits",
            hint="use an RSA key of 2048, 3072 or 4096 bits, or an ECDSA or Ed25519 key",
        )
    if isinstance(public, ec.EllipticCurvePublicKey):
        for key_type, curve in _CURVES.items():
            if isinstance(public.curve, curve):
                return key_type
        raise PKIError(
            f"unsupported elliptic curve {public.curve.name}",
            hint="use an ECDSA key on P-256 or P-384",
        )
    if isinstance(public, ed25519.Ed25519PublicKey):
        return KeyType.ED25519
    raise PKIError(
        f"unsupported key algorithm {type(public).__name__}",
        hint="use an RSA, ECDSA (P-256, P-384) or Ed25519 key",
    )


def private_key_to_pem(key: PrivateKey, password: bytes | None = None) -> bytes:
    """Serialise ``key`` as PKCS#8 PEM, encrypted with ``password`` when one is given."""
    encryption: serialization.KeySerializationEncryption
    if password:
        encryption = serialization.BestAvailableEncryption(password)
    else:
        encryption = serialization.NoEncryption()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def load_private_key(data: bytes, password: bytes | None = None) -> PrivateKey:
    """Load a private key from PEM (PKCS#8 or traditional) or DER; raise PKIError if invalid."""
    loader = (
        serialization.load_pem_private_key
        if b"-----BEGIN" in data
        else serialization.load_der_private_key
    )
    try:
        key = loader(data, password=password)
    except TypeError as error:
        # cryptography raises TypeError when a password is missing or was not expected.
        raise PKIError(
            f"cannot load the private key: {error}",
            hint="give the password of an encrypted key, and none for an unencrypted one",
        ) from None
    except (ValueError, UnsupportedAlgorithm) as error:
        raise PKIError(
            f"cannot load the private key: {error}",
            hint="give a PEM or DER private key (PKCS#8 or traditional), with the right password",
        ) from None
    if not isinstance(key, PrivateKey):
        raise PKIError(
            f"unsupported private key algorithm {type(key).__name__}",
            hint="use an RSA, ECDSA (P-256, P-384) or Ed25519 key",
        )
    return key


def public_key_der(key: PrivateKey | PublicKey) -> bytes:
    """Return the DER SubjectPublicKeyInfo of a private or public key."""
    public = key.public_key() if hasattr(key, "public_key") else key
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_matches(cert: x509.Certificate, key: PrivateKey | PublicKey) -> bool:
    """Return whether ``key`` (private or public) is the key pair of ``cert``'s public key."""
    certified = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return certified == public_key_der(key)


def signature_hash_for(key: PrivateKey) -> hashes.HashAlgorithm | None:
    """Return the hash a signature by ``key`` uses: SHA-384 for P-384, none for Ed25519."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP384R1):
        return hashes.SHA384()
    return hashes.SHA256()
