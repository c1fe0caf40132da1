"""The certificate signing request sent to an ACME CA when the order is finalized."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from provisioner.errors import PKIError
from provisioner.pki.keys import PrivateKey, signature_hash_for

# RFC 5280 upper bound of the commonName attribute.
_MAX_COMMON_NAME = 64


def make_csr(key: PrivateKey, hosts: Sequence[str]) -> bytes:
    """Return a PEM CSR signed by ``key`` for ``hosts`` (DNS names, with or without a final dot).

    Every host goes into the subjectAltName extension, which is what an ACME CA reads. The
    first one is also the subject's commonName when it fits in 64 characters.
    """
    names = [host.rstrip(".").lower() for host in hosts]
    if not names or any(not name for name in names):
        raise PKIError(f"a certificate request needs at least one host name, got {list(hosts)}")
    subject = []
    if len(names[0]) <= _MAX_COMMON_NAME:
        subject.append(x509.NameAttribute(NameOID.COMMON_NAME, names[0]))
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name(subject))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False
        )
    )
    request = builder.sign(key, signature_hash_for(key))  # type: ignore[arg-type]
    return request.public_bytes(serialization.Encoding.PEM)
