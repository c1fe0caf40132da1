"""Import of existing certificates and keys from PEM, DER and PKCS#12 files, with checks.

The format is detected from the content, not the file name. A PKCS#12 or key password
comes from a file or an environment variable (``PasswordSource``), never from a literal,
so it does not end up in a spec, a shell history or a process list.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from provisioner.clock import Clock
from provisioner.errors import PKIError
from provisioner.pki.ca import IssuedCertificate
from provisioner.pki.checks import (
    check_chain,
    check_covers_address,
    check_covers_host,
    check_key_matches,
    check_validity,
    is_self_signed,
    order_chain,
)
from provisioner.pki.encoding import is_pem, load_certificates
from provisioner.pki.keys import PrivateKey, load_private_key, public_key_matches

_PFX_VERSION = 3
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.DOTALL)


class CertificateFormat(enum.StrEnum):
    PEM = "pem"
    DER = "der"
    PKCS12 = "pkcs12"


@dataclass(frozen=True)
class PasswordSource:
    """The origin of a password: a file (its first line) or an environment variable."""

    file: Path | None = None
    env: str | None = None

    def __post_init__(self) -> None:
        if (self.file is None) == (self.env is None):
            raise PKIError(
                "a password source needs exactly one of a file or an environment variable"
            )

    def read(self, environ: Mapping[str, str] | None = None) -> bytes:
        """Return the password; raise PKIError when the file or variable is missing."""
        if self.file is not None:
            try:
                text = Path(self.file).read_bytes()
            except OSError as error:
                raise PKIError(
                    f"{self.file}: cannot read the password file: {error.strerror}"
                ) from None
            return text.splitlines()[0] if text else b""
        environment = os.environ if environ is None else environ
        if self.env is None or self.env not in environment:
            raise PKIError(
                f"the password environment variable {self.env} is not set",
                hint=f"export {self.env} before running, or give a password file",
            )
        return environment[self.env].encode()


@dataclass(frozen=True)
class ImportedCertificate:
    """A certificate read from files, with its chain (issuing CA first) and private key."""

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    private_key: PrivateKey | None = field(repr=False)
    source: str
    format: CertificateFormat

    def as_issued(self) -> IssuedCertificate:
        """Return the same material as an IssuedCertificate, splitting off a sent root."""
        chain = self.chain
        root = None
        if chain and is_self_signed(chain[-1]):
            root = chain[-1]
        return IssuedCertificate(
            certificate=self.certificate, chain=chain, root=root, private_key=self.private_key
        )


def detect_format(data: bytes) -> CertificateFormat:
    """Return the format of certificate file content: PEM text, DER certificate, or PKCS#12.

    A PKCS#12 PFX and an X.509 certificate are both a DER SEQUENCE. The PFX starts with
    the INTEGER version 3, while a certificate starts with the tbsCertificate SEQUENCE.
    """
    if is_pem(data):
        return CertificateFormat.PEM
    header = _sequence_header_length(data)
    if header is not None and data[header : header + 3] == bytes((0x02, 0x01, _PFX_VERSION)):
        return CertificateFormat.PKCS12
    return CertificateFormat.DER


def _sequence_header_length(data: bytes) -> int | None:
    if len(data) < 2 or data[0] != 0x30:
        return None
    if data[1] < 0x80:
        return 2
    return 2 + (data[1] & 0x7F)


def _read(path: Path, description: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise PKIError(
            f"{path}: cannot read the {description} file: {error.strerror}",
            hint="check the path and the file's permissions",
        ) from None


def _with_source(error: PKIError, source: str) -> PKIError:
    return PKIError(f"{source}: {error.message}", hint=error.hint)


def _load_certificates(data: bytes, source: str) -> list[x509.Certificate]:
    try:
        return load_certificates(data)
    except PKIError as error:
        raise _with_source(error, source) from None


def _load_key(data: bytes, source: str, password: bytes | None) -> PrivateKey:
    try:
        return load_private_key(data, password)
    except PKIError as error:
        raise _with_source(error, source) from None


def _load_pkcs12(
    data: bytes, source: str, password: bytes | None
) -> tuple[x509.Certificate, list[x509.Certificate], PrivateKey | None]:
    try:
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, password)
        except ValueError:
            if password is not None:
                raise
            # "openssl pkcs12 -passout pass:" encrypts with the empty password, which
            # is not the same as no password at all.
            key, cert, extra = pkcs12.load_key_and_certificates(data, b"")
    except ValueError as error:
        hint = (
            "give the PKCS#12 password through a password file or environment variable"
            if password is None
            else "check the password; a PKCS#12 file with legacy RC2 or 3DES encryption can "
            "be re-exported with: openssl pkcs12 -export (OpenSSL 3 defaults)"
        )
        raise PKIError(f"{source}: cannot read the PKCS#12 file: {error}", hint=hint) from None
    if cert is None:
        raise PKIError(f"{source}: the PKCS#12 file contains no certificate")
    if key is not None and not isinstance(key, PrivateKey):
        raise PKIError(
            f"{source}: unsupported private key algorithm {type(key).__name__}",
            hint="use an RSA, ECDSA (P-256, P-384) or Ed25519 key",
        )
    return cert, list(extra), key


def parse_certificate_file(
    data: bytes, source: str, password: bytes | None = None
) -> tuple[CertificateFormat, x509.Certificate, list[x509.Certificate], PrivateKey | None]:
    """Parse certificate file content: (format, certificate, further certificates, key or None).

    A PEM file may contain the certificate followed by its chain and a private key. A DER
    file contains one certificate, and a PKCS#12 file contains all three.
    """
    file_format = detect_format(data)
    if file_format is CertificateFormat.PKCS12:
        cert, chain, key = _load_pkcs12(data, source, password)
        return file_format, cert, chain, key
    certs = _load_certificates(data, source)
    key = None
    key_block = _pem_key_block(data) if file_format is CertificateFormat.PEM else None
    if key_block is not None:
        key = _load_key(key_block, source, password)
    # openssl pkcs12 output may list CA certificates before the end entity, so the
    # certificate of the key in the same file comes first when there is one.
    if key is not None:
        certs.sort(key=lambda cert: not public_key_matches(cert, key))
    return file_format, certs[0], certs[1:], key


def _pem_key_block(data: bytes) -> bytes | None:
    """Return the first PEM block whose label ends in PRIVATE KEY, or None."""
    for block in _PEM_BLOCK.finditer(data):
        if block.group(1).endswith(b"PRIVATE KEY"):
            return block.group(0) + b"\n"
    return None


def import_certificate(
    cert_path: Path | str,
    clock: Clock,
    *,
    key_path: Path | str | None = None,
    chain_path: Path | str | None = None,
    password: PasswordSource | None = None,
    hosts: Sequence[str] = (),
    addresses: Sequence[str] = (),
    require_key: bool = True,
    environ: Mapping[str, str] | None = None,
) -> ImportedCertificate:
    """Read a certificate, its private key and chain from files, and check them.

    Each check raises PKIError naming the file to fix. The files must be readable and
    parse, and the key must match the certificate. The certificate and every chain
    certificate must be valid at ``clock.now()``. Each of ``hosts`` must be covered by a
    dNSName (RFC 6125 wildcards) and each of ``addresses`` by an rfc822Name. The chain
    must link by issuer name and signature. ``password`` decrypts a PKCS#12 file or an
    encrypted key.
    """
    cert_path = Path(cert_path)
    source = str(cert_path)
    secret = password.read(environ) if password is not None else None
    file_format, cert, chain, key = parse_certificate_file(
        _read(cert_path, "certificate"), source, secret
    )

    key_source = source
    if key_path is not None:
        key_source = str(key_path)
        key = _load_key(_read(Path(key_path), "private key"), key_source, secret)
    if key is None and require_key:
        raise PKIError(
            f"{source}: no private key found in the certificate file and no key file given",
            hint="give the key file, or a PEM or PKCS#12 file that contains the key",
        )
    if key is not None:
        check_key_matches(cert, key, key_source)

    chain_source = source
    if chain_path is not None:
        chain_source = str(chain_path)
        chain += _load_certificates(_read(Path(chain_path), "chain"), chain_source)
    unique_chain = _without_duplicates(cert, chain)

    check_validity(cert, clock, source)
    for host in hosts:
        check_covers_host(cert, host, source)
    for address in addresses:
        check_covers_address(cert, address, source)
    ordered = check_chain(cert, unique_chain, clock, chain_source)
    return ImportedCertificate(
        certificate=cert,
        chain=tuple(ordered),
        private_key=key,
        source=source,
        format=file_format,
    )


def read_certificate_chain(
    cert_path: Path | str,
    *,
    chain_path: Path | str | None = None,
    password: PasswordSource | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[x509.Certificate, tuple[x509.Certificate, ...]]:
    """Read a certificate and its chain (issuing CA first), checking only that the chain links.

    This is for deriving records from a certificate: it needs no private key, and neither
    names nor the validity period are checked.
    """
    cert_path = Path(cert_path)
    secret = password.read(environ) if password is not None else None
    _, cert, chain, _ = parse_certificate_file(
        _read(cert_path, "certificate"), str(cert_path), secret
    )
    chain_source = str(cert_path)
    if chain_path is not None:
        chain_source = str(chain_path)
        chain += _load_certificates(_read(Path(chain_path), "chain"), chain_source)
    return cert, tuple(order_chain(cert, _without_duplicates(cert, chain), chain_source))


def _without_duplicates(
    cert: x509.Certificate, chain: Sequence[x509.Certificate]
) -> list[x509.Certificate]:
    """Drop repeats and the end-entity certificate, which a "fullchain" file starts with."""
    unique: list[x509.Certificate] = []
    for extra in chain:
        if extra != cert and extra not in unique:
            unique.append(extra)
    return unique
