"""PEM and DER encoding of certificates."""

from __future__ import annotations

from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from provisioner.errors import PKIError

PEM_MARKER = b"-----BEGIN"


def is_pem(data: bytes) -> bool:
    """Return whether ``data`` looks like PEM text (it contains a BEGIN line)."""
    return PEM_MARKER in data


def certificate_to_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def certificates_to_pem(certs: Iterable[x509.Certificate]) -> bytes:
    """Concatenate the PEM encodings of ``certs`` in the order given."""
    return b"".join(certificate_to_pem(cert) for cert in certs)


def certificate_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Load every certificate in PEM ``data``, or the one certificate in DER ``data``.

    Raise PKIError when ``data`` contains no certificate or cannot be parsed.
    """
    try:
        if is_pem(data):
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError as error:
        raise PKIError(
            f"cannot parse the certificate: {error}",
            hint="give an X.509 certificate in PEM or DER",
        ) from None
    if not certs:
        raise PKIError("no certificate found", hint="give an X.509 certificate in PEM or DER")
    return certs
