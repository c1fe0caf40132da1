"""An enterprise certificate authority: root and issuing CA certificates, and issuance.

Issuance takes the subject's public key (or its private key) from the caller, so a renewal
that passes the same key keeps the SubjectPublicKeyInfo, and TLSA or SMIMEA records with
selector 1 (SPKI) stay valid across the renewal.

The profiles follow RFC 5280. The S/MIME key usages are those of the CA/Browser Forum S/MIME
Baseline Requirements (section 7.1.2.3, version 1.0.16) for strict and multipurpose
mailbox-validated certificates. The certificatePolicies and cRLDistributionPoints extensions
that the Baseline Requirements ask of publicly-trusted CAs are left out: an enterprise CA
here publishes no CRL and asserts no CA/Browser Forum policy.
"""

from __future__ import annotations

import datetime as dt
import enum
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provisioner.clock import Clock
from provisioner.errors import PKIError
from provisioner.pki.encoding import certificate_to_pem, certificates_to_pem
from provisioner.pki.keys import (
    PrivateKey,
    PublicKey,
    private_key_to_pem,
    signature_hash_for,
)
from provisioner.pki.names import normalize_address, normalize_host

# notBefore lies this far before the clock's now, so that peers whose clocks run behind
# still accept a certificate that was just issued.
BACKDATE = dt.timedelta(hours=1)

ROOT_VALIDITY = dt.timedelta(days=3650)
INTERMEDIATE_VALIDITY = dt.timedelta(days=1825)
SERVER_VALIDITY = dt.timedelta(days=90)
SMIME_VALIDITY = dt.timedelta(days=365)

SERIAL_BITS = 128


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA certificate with its private key.

    ``chain`` contains the CA certificates between this CA and the root, nearest first,
    excluding the root. ``root`` is the self-signed trust anchor (this CA's own certificate
    for a root CA).
    """

    certificate: x509.Certificate
    private_key: PrivateKey
    root: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def is_root(self) -> bool:
        return self.certificate == self.root

    def certificate_pem(self) -> bytes:
        return certificate_to_pem(self.certificate)

    def private_key_pem(self, password: bytes | None = None) -> bytes:
        return private_key_to_pem(self.private_key, password)


@dataclass(frozen=True)
class IssuedCertificate:
    """An end-entity certificate, the chain a server or mail client sends with it, and its root.

    ``chain`` is the issuing CA first, then any further intermediates, without the root.
    ``private_key`` is set when the caller handed the private key to issuance.
    """

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()
    root: x509.Certificate | None = None
    private_key: PrivateKey | None = field(default=None, repr=False)

    def certificate_pem(self) -> bytes:
        return certificate_to_pem(self.certificate)

    def chain_pem(self) -> bytes:
        return certificates_to_pem(self.chain)

    def fullchain_pem(self) -> bytes:
        """Return the certificate followed by the chain, the order MTAs read from one file."""
        return certificates_to_pem((self.certificate, *self.chain))

    def private_key_pem(self, password: bytes | None = None) -> bytes:
        if self.private_key is None:
            raise PKIError("no private key is held for this certificate")
        return private_key_to_pem(self.private_key, password)


class SmimeKeyPurpose(enum.StrEnum):
    """The purpose an S/MIME key is certified for: signing, key management (encryption), or both."""

    SIGNING = "signing"
    KEY_MANAGEMENT = "key-management"
    DUAL_USE = "dual-use"


def random_serial_number() -> int:
    """Return a random positive serial number of at most 128 bits."""
    serial = 0
    while serial == 0:
        serial = secrets.randbits(SERIAL_BITS)
    return serial


def _split_key(key: PrivateKey | PublicKey) -> tuple[PublicKey, PrivateKey | None]:
    if isinstance(key, PrivateKey):
        return key.public_key(), key
    return key, None


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = []
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _subject_key_identifier(cert: x509.Certificate) -> x509.SubjectKeyIdentifier:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(cert.public_key())


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: PublicKey,
    issuer_key_identifier: x509.SubjectKeyIdentifier,
    clock: Clock,
    validity: dt.timedelta,
    not_after_limit: dt.datetime | None = None,
) -> x509.CertificateBuilder:
    """Start a certificate with serial, validity, SKI and AKI (key identifier only)."""
    if validity <= dt.timedelta(0):
        raise PKIError(f"invalid validity {validity}: it must be positive")
    now = clock.now()
    not_after = now + validity
    if not_after_limit is not None and not_after > not_after_limit:
        # A certificate outliving its issuer fails validation once the issuer expires.
        not_after = not_after_limit
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_key_identifier),
            critical=False,
        )
    )


def _sign(builder: x509.CertificateBuilder, key: PrivateKey) -> x509.Certificate:
    return builder.sign(key, signature_hash_for(key))


def _key_usage(
    *,
    digital_signature: bool = False,
    key_encipherment: bool = False,
    key_agreement: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=key_agreement,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _ca_builder(
    builder: x509.CertificateBuilder, path_length: int | None
) -> x509.CertificateBuilder:
    return builder.add_extension(
        x509.BasicConstraints(ca=True, path_length=path_length), critical=True
    ).add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)


def create_root_ca(
    common_name: str,
    private_key: PrivateKey,
    clock: Clock,
    *,
    organization: str | None = None,
    validity: dt.timedelta = ROOT_VALIDITY,
    path_length: int | None = 1,
) -> CertificateAuthority:
    """Create a self-signed root CA certificate for ``private_key``.

    ``path_length`` limits how many intermediate CAs may follow the root (None: no limit).
    """
    name = _name(common_name, organization)
    own_identifier = x509.SubjectKeyIdentifier.from_public_key(private_key.public_key())
    builder = _builder(name, name, private_key.public_key(), own_identifier, clock, validity)
    certificate = _sign(_ca_builder(builder, path_length), private_key)
    return CertificateAuthority(certificate=certificate, private_key=private_key, root=certificate)


def create_intermediate_ca(
    parent: CertificateAuthority,
    common_name: str,
    private_key: PrivateKey,
    clock: Clock,
    *,
    organization: str | None = None,
    validity: dt.timedelta = INTERMEDIATE_VALIDITY,
    path_length: int | None = 0,
    extended_key_usages: Sequence[x509.ObjectIdentifier] | None = None,
) -> CertificateAuthority:
    """Create an issuing CA whose certificate ``parent`` signs.

    ``extended_key_usages``, when given, restricts what the CA may issue for (for example
    serverAuth and emailProtection); None leaves the extension out.
    """
    builder = _builder(
        _name(common_name, organization),
        parent.certificate.subject,
        private_key.public_key(),
        _subject_key_identifier(parent.certificate),
        clock,
        validity,
        parent.certificate.not_valid_after_utc,
    )
    builder = _ca_builder(builder, path_length)
    if extended_key_usages:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(list(extended_key_usages)), critical=False
        )
    certificate = _sign(builder, parent.private_key)
    chain = () if parent.is_root else (parent.certificate, *parent.chain)
    return CertificateAuthority(
        certificate=certificate, private_key=private_key, root=parent.root, chain=chain
    )


def _server_key_usage(public_key: PublicKey) -> x509.KeyUsage:
    # keyEncipherment lets TLS 1.2 clients use RSA key transport; EC and Ed25519 keys only sign.
    return _key_usage(
        digital_signature=True, key_encipherment=isinstance(public_key, rsa.RSAPublicKey)
    )


def _host_names(hosts: Sequence[str]) -> list[str]:
    if not hosts:
        raise PKIError("no host name given for the server certificate")
    names: list[str] = []
    for host in hosts:
        name = normalize_host(host, allow_wildcard=True)
        if name not in names:
            names.append(name)
    return names


def _add_server_extensions(
    builder: x509.CertificateBuilder, public_key: PublicKey, names: list[str]
) -> x509.CertificateBuilder:
    return (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_server_key_usage(public_key), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False
        )
    )


def issue_server_certificate(
    ca: CertificateAuthority,
    subject_key: PrivateKey | PublicKey,
    hosts: Sequence[str],
    clock: Clock,
    *,
    validity: dt.timedelta = SERVER_VALIDITY,
) -> IssuedCertificate:
    """Issue a TLS server certificate (for example an MX host's) for ``hosts``.

    Every host becomes a dNSName; the first is also the subject common name. ``subject_key``
    may be the private key, which the result then carries, or only the public key.
    """
    public_key, private_key = _split_key(subject_key)
    names = _host_names(hosts)
    builder = _builder(
        _name(names[0]),
        ca.certificate.subject,
        public_key,
        _subject_key_identifier(ca.certificate),
        clock,
        validity,
        ca.certificate.not_valid_after_utc,
    )
    certificate = _sign(_add_server_extensions(builder, public_key, names), ca.private_key)
    return IssuedCertificate(
        certificate=certificate,
        chain=_chain_below(ca),
        root=ca.root,
        private_key=private_key,
    )


def _chain_below(ca: CertificateAuthority) -> tuple[x509.Certificate, ...]:
    """Return the chain an end entity of ``ca`` sends: the CAs up to, not including, the root."""
    if ca.is_root:
        return ()
    return (ca.certificate, *ca.chain)


def create_self_signed_server_certificate(
    private_key: PrivateKey,
    hosts: Sequence[str],
    clock: Clock,
    *,
    validity: dt.timedelta = SERVER_VALIDITY,
) -> IssuedCertificate:
    """Create a self-signed server certificate for ``hosts``, for use with DANE-EE (usage 3)."""
    names = _host_names(hosts)
    name = _name(names[0])
    public_key = private_key.public_key()
    own_identifier = x509.SubjectKeyIdentifier.from_public_key(public_key)
    builder = _builder(name, name, public_key, own_identifier, clock, validity)
    certificate = _sign(_add_server_extensions(builder, public_key, names), private_key)
    return IssuedCertificate(certificate=certificate, private_key=private_key)


def _smime_key_usage(public_key: PublicKey, purpose: SmimeKeyPurpose) -> x509.KeyUsage:
    """Return the key usages the S/MIME Baseline Requirements set for this key and purpose.

    RSA key management is keyEncipherment, EC key management is keyAgreement, and an
    Ed25519 key can only sign.
    """
    signs = purpose in (SmimeKeyPurpose.SIGNING, SmimeKeyPurpose.DUAL_USE)
    manages_keys = purpose in (SmimeKeyPurpose.KEY_MANAGEMENT, SmimeKeyPurpose.DUAL_USE)
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        if purpose is SmimeKeyPurpose.KEY_MANAGEMENT:
            raise PKIError(
                "an Ed25519 key cannot be certified for S/MIME key management",
                hint="use an RSA or ECDSA key for encryption certificates",
            )
        return _key_usage(digital_signature=True)
    return _key_usage(
        digital_signature=signs,
        key_encipherment=manages_keys and isinstance(public_key, rsa.RSAPublicKey),
        key_agreement=manages_keys and isinstance(public_key, ec.EllipticCurvePublicKey),
    )


def issue_smime_certificate(
    ca: CertificateAuthority,
    subject_key: PrivateKey | PublicKey,
    address: str,
    clock: Clock,
    *,
    validity: dt.timedelta = SMIME_VALIDITY,
    purpose: SmimeKeyPurpose = SmimeKeyPurpose.DUAL_USE,
) -> IssuedCertificate:
    """Issue a mailbox-validated S/MIME certificate for ``address``.

    The address is the rfc822Name and the subject common name. The only extended key usage
    is emailProtection, as in the strict profile. ``subject_key`` may be the private key,
    which the result then carries, or only the public key.
    """
    public_key, private_key = _split_key(subject_key)
    mailbox = normalize_address(address)
    builder = _builder(
        _name(mailbox),
        ca.certificate.subject,
        public_key,
        _subject_key_identifier(ca.certificate),
        clock,
        validity,
        ca.certificate.not_valid_after_utc,
    )
    builder = (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_smime_key_usage(public_key, purpose), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(mailbox)]), critical=False)
    )
    certificate = _sign(builder, ca.private_key)
    return IssuedCertificate(
        certificate=certificate,
        chain=_chain_below(ca),
        root=ca.root,
        private_key=private_key,
    )
