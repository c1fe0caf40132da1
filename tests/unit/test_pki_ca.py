"""Enterprise CA issuance, checked with openssl verify and by reading the extensions."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, SignatureAlgorithmOID

from provisioner.clock import ManualClock
from provisioner.errors import PKIError
from provisioner.pki.ca import (
    BACKDATE,
    CertificateAuthority,
    SmimeKeyPurpose,
    create_intermediate_ca,
    create_root_ca,
    create_self_signed_server_certificate,
    issue_server_certificate,
    issue_smime_certificate,
)
from provisioner.pki.encoding import certificate_to_pem
from provisioner.pki.keys import KeyType, generate_private_key, public_key_matches

START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def openssl_verify(
    tmp_path: Path,
    root: x509.Certificate,
    intermediate: x509.Certificate,
    leaf: x509.Certificate,
    *options: str,
) -> subprocess.CompletedProcess[str]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed (Debian package openssl)")
    files = {}
    for name, cert in (("root", root), ("intermediate", intermediate), ("leaf", leaf)):
        files[name] = tmp_path / f"{name}.pem"
        files[name].write_bytes(certificate_to_pem(cert))
    # -attime pins verification to the ManualClock's moment, not the machine's.
    moment = str(int((START + dt.timedelta(days=1)).timestamp()))
    return subprocess.run(
        [
            openssl,
            "verify",
            "-attime",
            moment,
            "-CAfile",
            str(files["root"]),
            "-untrusted",
            str(files["intermediate"]),
            *options,
            str(files["leaf"]),
        ],
        capture_output=True,
        text=True,
    )


def make_ca(key_type: KeyType, clock: ManualClock) -> CertificateAuthority:
    root = create_root_ca(
        "Example Root", generate_private_key(key_type), clock, organization="Example"
    )
    return create_intermediate_ca(
        root, "Example Issuing", generate_private_key(key_type), clock, organization="Example"
    )


def extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.Extension:
    return cert.extensions.get_extension_for_class(kind)


@pytest.mark.parametrize("key_type", list(KeyType))
def test_server_certificate_verifies(key_type: KeyType, tmp_path: Path) -> None:
    clock = ManualClock(START)
    issuing = make_ca(key_type, clock)
    issued = issue_server_certificate(
        issuing, generate_private_key(key_type), ["mx1.example.org", "mx.example.org"], clock
    )
    result = openssl_verify(
        tmp_path,
        issuing.root,
        issuing.certificate,
        issued.certificate,
        "-purpose",
        "sslserver",
        "-verify_hostname",
        "mx.example.org",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(": OK")


@pytest.mark.parametrize("key_type", list(KeyType))
def test_smime_certificate_verifies(key_type: KeyType, tmp_path: Path) -> None:
    clock = ManualClock(START)
    issuing = make_ca(key_type, clock)
    issued = issue_smime_certificate(
        issuing, generate_private_key(key_type), "hugh@example.com", clock
    )
    result = openssl_verify(
        tmp_path,
        issuing.root,
        issuing.certificate,
        issued.certificate,
        "-purpose",
        "smimesign",
        "-verify_email",
        "hugh@example.com",
    )
    assert result.returncode == 0, result.stderr


def test_server_certificate_not_verified_for_smime(tmp_path: Path) -> None:
    clock = ManualClock(START)
    issuing = make_ca(KeyType.ECDSA_P256, clock)
    issued = issue_server_certificate(
        issuing, generate_private_key(KeyType.ECDSA_P256), ["mx1.example.org"], clock
    )
    result = openssl_verify(
        tmp_path, issuing.root, issuing.certificate, issued.certificate, "-purpose", "smimesign"
    )
    assert result.returncode != 0


def test_root_ca_profile() -> None:
    clock = ManualClock(START)
    root = create_root_ca("Example Root", generate_private_key("ecdsa-p384"), clock)
    cert = root.certificate
    constraints = extension(cert, x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length == 1
    usage = extension(cert, x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    assert not usage.value.digital_signature
    ski = extension(cert, x509.SubjectKeyIdentifier).value
    aki = extension(cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert aki.authority_cert_issuer is None
    assert cert.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA384
    assert root.is_root


def test_intermediate_links_to_root() -> None:
    clock = ManualClock(START)
    issuing = make_ca(KeyType.RSA_2048, clock)
    cert = issuing.certificate
    assert cert.issuer == issuing.root.subject
    cert.verify_directly_issued_by(issuing.root)
    root_ski = extension(issuing.root, x509.SubjectKeyIdentifier).value.digest
    assert extension(cert, x509.AuthorityKeyIdentifier).value.key_identifier == root_ski
    assert extension(cert, x509.BasicConstraints).value.path_length == 0
    assert cert.signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_SHA256
    assert not issuing.is_root
    assert issuing.chain == ()


def test_validity_backdated_and_serial_random() -> None:
    clock = ManualClock(START)
    issuing = make_ca(KeyType.ED25519, clock)
    key = generate_private_key(KeyType.ED25519)
    first = issue_server_certificate(
        issuing, key, ["mx1.example.org"], clock, validity=dt.timedelta(days=30)
    )
    second = issue_server_certificate(issuing, key, ["mx1.example.org"], clock)
    cert = first.certificate
    assert cert.not_valid_before_utc == START - BACKDATE
    assert cert.not_valid_after_utc == START + dt.timedelta(days=30)
    assert 0 < cert.serial_number < 2**128
    assert cert.serial_number != second.certificate.serial_number
    assert cert.signature_algorithm_oid == SignatureAlgorithmOID.ED25519


def test_leaf_never_outlives_issuer() -> None:
    clock = ManualClock(START)
    root = create_root_ca(
        "Short Root", generate_private_key("ecdsa-p256"), clock, validity=dt.timedelta(days=10)
    )
    issued = issue_server_certificate(root, generate_private_key("ecdsa-p256"), ["a.test"], clock)
    assert issued.certificate.not_valid_after_utc == root.certificate.not_valid_after_utc
    assert issued.chain == ()
    assert issued.root == root.certificate


def test_renewal_keeps_public_key() -> None:
    clock = ManualClock(START)
    issuing = make_ca(KeyType.ECDSA_P256, clock)
    key = generate_private_key(KeyType.ECDSA_P256)
    first = issue_server_certificate(issuing, key.public_key(), ["mx1.example.org"], clock)
    clock.advance(60 * 86400)
    renewed = issue_server_certificate(issuing, key, ["mx1.example.org"], clock)
    assert first.private_key is None
    assert renewed.private_key is key
    assert first.certificate.public_key() == renewed.certificate.public_key()
    assert public_key_matches(renewed.certificate, key)
    assert first.certificate != renewed.certificate


@pytest.mark.parametrize(
    ("key_type", "key_encipherment"),
    [(KeyType.RSA_3072, True), (KeyType.ECDSA_P256, False), (KeyType.ED25519, False)],
)
def test_server_profile(key_type: KeyType, key_encipherment: bool) -> None:
    clock = ManualClock(START)
    issuing = make_ca(KeyType.ECDSA_P256, clock)
    issued = issue_server_certificate(
        issuing, generate_private_key(key_type), ["MX1.Example.org.", "*.example.net"], clock
    )
    cert = issued.certificate
    usage = extension(cert, x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert usage.value.key_encipherment is key_encipherment
    assert not usage.value.key_agreement
    assert not extension(cert, x509.BasicConstraints).value.ca
    assert list(extension(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    names = extension(cert, x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["mx1.example.org", "*.example.net"]
    assert issued.chain == (issuing.certificate,)
    assert issued.fullchain_pem() == issued.certificate_pem() + issued.chain_pem()


def test_server_idn_host_becomes_a_label() -> None:
    clock = ManualClock(START)
    issuing = make_ca(KeyType.ECDSA_P256, clock)
    issued = issue_server_certificate(
        issuing, generate_private_key("ecdsa-p256"), ["mx.bücher.example"], clock
    )
    names = extension(issued.certificate, x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["mx.xn--bcher-kva.example"]


@pytest.mark.parametrize("hosts", [[], ["bad host.example"], ["a..example"]])
def test_server_rejects_bad_hosts(hosts: list[str]) -> None:
    clock = ManualClock(START)
    issuing = make_ca(KeyType.ECDSA_P256, clock)
    with pytest.raises(PKIError):
        issue_server_certificate(issuing, generate_private_key("ecdsa-p256"), hosts, clock)


@pytest.mark.parametrize(
    ("key_type", "purpose", "expected"),
    [
        (KeyType.RSA_2048, SmimeKeyPurpose.DUAL_USE, (True, True, False)),
        (KeyType.RSA_2048, SmimeKeyPurpose.SIGNING, (True, False, False)),
        (KeyType.RSA_2048, SmimeKeyPurpose.KEY_MANAGEMENT, (False, True, False)),
        (KeyType.ECDSA_P256, SmimeKeyPurpose.DUAL_USE, (True, False, True)),
        (KeyType.ECDSA_P384, SmimeKeyPurpose.KEY_MANAGEMENT, (False, False, True)),
        (KeyType.ED25519, SmimeKeyPurpose.DUAL_USE, (True, False, False)),
    ],
)
def test_smime_key_usage_follows_baseline_requirements(
    key_type: KeyType, purpose: SmimeKeyPurpose, expected: tuple[bool, bool, bool]
) -> None:
    clock = ManualClock(START)
    issuing = make_ca(KeyType.ECDSA_P256, clock)
    issued = issue_smime_certificate(
        issuing, generate_private_key(key_type), "hugh@example.com", clock, purpose=purpose
    )
    cert = issued.certificate
    usage = extension(cert, x509.KeyUsage)
    assert usage.critical
    actual = (
        usage.value.digital_signature,
        usage.value.key_encipherment,
        usage.value.key_agreement,
    )
    assert actual == expected
    assert not usage.value.content_commitment
    assert not usage.value.data_encipherment
    assert list(extension(cert, x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.EMAIL_PROTECTION
    ]
    names = extension(cert, x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.RFC822Name) == ["hugh@example.com"]
    assert names.get_values_for_type(x509.DNSName) == []
    aki = extension(cert, x509.AuthorityKeyIdentifier).value
    assert aki.authority_cert_issuer is None
    assert aki.authority_cert_serial_number is None


def test_smime_ed25519_key_management_rejected() -> None:
    clock = ManualClock(START)
    issuing = make_ca(KeyType.ECDSA_P256, clock)
    with pytest.raises(PKIError, match="Ed25519"):
        issue_smime_certificate(
            issuing,
            generate_private_key(KeyType.ED25519),
            "hugh@example.com",
            clock,
            purpose=SmimeKeyPurpose.KEY_MANAGEMENT,
        )


def test_smime_rejects_non_ascii_local_part() -> None:
    clock = ManualClock(START)
    issuing = make_ca(KeyType.ECDSA_P256, clock)
    with pytest.raises(PKIError, match="not ASCII"):
        issue_smime_certificate(
            issuing, generate_private_key("ecdsa-p256"), "jürgen@example.com", clock
        )


def test_self_signed_server_certificate(tmp_path: Path) -> None:
    clock = ManualClock(START)
    key = generate_private_key(KeyType.ECDSA_P256)
    issued = create_self_signed_server_certificate(key, ["mx1.example.org"], clock)
    cert = issued.certificate
    assert cert.subject == cert.issuer
    cert.verify_directly_issued_by(cert)
    assert issued.chain == ()
    assert issued.root is None
    assert not extension(cert, x509.BasicConstraints).value.ca
    assert issued.private_key_pem().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_private_key_pem_without_key_rejected() -> None:
    clock = ManualClock(START)
    issuing = make_ca(KeyType.ECDSA_P256, clock)
    issued = issue_server_certificate(
        issuing, generate_private_key("ecdsa-p256").public_key(), ["mx1.example.org"], clock
    )
    with pytest.raises(PKIError, match="no private key"):
        issued.private_key_pem()
