"""S/MIME signing and SMIMEA-bound verification, without servers (lookups are stubbed)."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import dns.rdata
import pytest
from cryptography import x509

from provisioner.clock import ManualClock
from provisioner.dane.smimea import smimea_owner, smimea_rdata
from provisioner.pki import ca as pki_ca
from provisioner.pki.keys import generate_private_key, private_key_to_pem
from provisioner.smime.message import sign_message
from provisioner.smime.verify import SmimeaAnswer, verify_message

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
MESSAGE = b"From: alice@example.com\nTo: bob@example.net\nSubject: hello\n\nHello Bob,\nsigned.\n"


@pytest.fixture(scope="module")
def authority() -> pki_ca.CertificateAuthority:
    clock = ManualClock(NOW - dt.timedelta(days=1))
    root = pki_ca.create_root_ca("Lab Root", generate_private_key("ecdsa-p256"), clock)
    return pki_ca.create_intermediate_ca(
        root, "Lab Issuing", generate_private_key("ecdsa-p256"), clock
    )


def issue(authority: pki_ca.CertificateAuthority, address: str, key_type: str = "ecdsa-p256"):  # type: ignore[no-untyped-def]
    clock = ManualClock(NOW - dt.timedelta(days=1))
    return pki_ca.issue_smime_certificate(authority, generate_private_key(key_type), address, clock)


def lookup_for(*certificates: x509.Certificate, secure: bool = True):  # type: ignore[no-untyped-def]
    records: list[dns.rdata.Rdata] = [smimea_rdata(3, 0, 0, c) for c in certificates]

    def lookup(address: str) -> SmimeaAnswer:
        return SmimeaAnswer(smimea_owner(address), secure, records, "stub")

    return lookup


def test_signed_message_verifies(authority: pki_ca.CertificateAuthority) -> None:
    alice = issue(authority, "alice@example.com")
    signed = sign_message(MESSAGE, alice.private_key, alice.certificate, alice.chain)

    verdict = verify_message(signed, lookup_for(alice.certificate), NOW)

    assert verdict.ok, verdict.reason
    assert verdict.matched == ["3 0 0 (DANE-EE)"]


def test_rsa_signer_verifies(authority: pki_ca.CertificateAuthority) -> None:
    alice = issue(authority, "alice@example.com", "rsa-2048")
    signed = sign_message(MESSAGE, alice.private_key, alice.certificate)

    assert verify_message(signed, lookup_for(alice.certificate), NOW).ok


def test_certificate_not_in_dns(authority: pki_ca.CertificateAuthority) -> None:
    published = issue(authority, "alice@example.com")
    other = issue(authority, "alice@example.com")
    signed = sign_message(MESSAGE, other.private_key, other.certificate)

    verdict = verify_message(signed, lookup_for(published.certificate), NOW)

    assert not verdict.ok
    assert "not in the DNS" in verdict.reason


def test_no_smimea_record(authority: pki_ca.CertificateAuthority) -> None:
    alice = issue(authority, "alice@example.com")
    signed = sign_message(MESSAGE, alice.private_key, alice.certificate)

    verdict = verify_message(signed, lookup_for(), NOW)

    assert not verdict.ok
    assert "has no SMIMEA record" in verdict.reason


def test_insecure_answer_rejected(authority: pki_ca.CertificateAuthority) -> None:
    alice = issue(authority, "alice@example.com")
    signed = sign_message(MESSAGE, alice.private_key, alice.certificate)

    verdict = verify_message(signed, lookup_for(alice.certificate, secure=False), NOW)

    assert not verdict.ok
    assert "not DNSSEC-secure" in verdict.reason


def test_changed_body_rejected(authority: pki_ca.CertificateAuthority) -> None:
    alice = issue(authority, "alice@example.com")
    signed = sign_message(MESSAGE, alice.private_key, alice.certificate)

    verdict = verify_message(
        signed.replace(b"Hello Bob", b"Hello Eve"), lookup_for(alice.certificate), NOW
    )

    assert not verdict.ok
    assert "changed after it was signed" in verdict.reason


def test_from_address_mismatch(authority: pki_ca.CertificateAuthority) -> None:
    hugh = issue(authority, "hugh@example.com")
    signed = sign_message(MESSAGE, hugh.private_key, hugh.certificate)

    verdict = verify_message(signed, lookup_for(hugh.certificate), NOW)

    assert not verdict.ok
    assert "not for the From address alice@example.com" in verdict.reason


def test_certificate_taken_from_smimea(authority: pki_ca.CertificateAuthority) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

    alice = issue(authority, "alice@example.com")
    content = b"Content-Type: text/plain\r\n\r\nHello Bob\r\n"
    body = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(alice.certificate, alice.private_key, hashes.SHA256())
        .sign(Encoding.SMIME, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.NoCerts])
    )
    signed = b"From: alice@example.com\r\nTo: bob@example.net\r\n" + body

    verdict = verify_message(signed, lookup_for(alice.certificate), NOW)

    assert verdict.ok, verdict.reason
    assert any("taken from SMIMEA" in step for step in verdict.steps)


def test_crlf_transport_verifies(authority: pki_ca.CertificateAuthority) -> None:
    alice = issue(authority, "alice@example.com")
    signed = sign_message(MESSAGE, alice.private_key, alice.certificate)

    verdict = verify_message(signed.replace(b"\n", b"\r\n"), lookup_for(alice.certificate), NOW)

    assert verdict.ok, verdict.reason


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_agrees_both_ways(tmp_path: Path, authority: pki_ca.CertificateAuthority) -> None:
    alice = issue(authority, "alice@example.com")
    (tmp_path / "ca.pem").write_bytes(authority.root.public_bytes(serialization_pem()))
    (tmp_path / "key.pem").write_bytes(private_key_to_pem(alice.private_key))
    (tmp_path / "cert.pem").write_bytes(alice.fullchain_pem())
    (tmp_path / "msg.txt").write_bytes(MESSAGE.split(b"\n\n", 1)[1])

    ours = sign_message(MESSAGE, alice.private_key, alice.certificate, alice.chain)
    (tmp_path / "ours.eml").write_bytes(ours)
    checked = subprocess.run(
        [
            "openssl",
            "smime",
            "-verify",
            "-in",
            tmp_path / "ours.eml",
            "-CAfile",
            tmp_path / "ca.pem",
            "-out",
            "/dev/null",
            "-purpose",
            "any",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr

    signed = subprocess.run(
        [
            "openssl",
            "smime",
            "-sign",
            "-in",
            tmp_path / "msg.txt",
            "-signer",
            tmp_path / "cert.pem",
            "-inkey",
            tmp_path / "key.pem",
            "-from",
            "alice@example.com",
            "-to",
            "bob@example.net",
            "-subject",
            "hello",
        ],
        capture_output=True,
        check=True,
    ).stdout
    verdict = verify_message(signed, lookup_for(alice.certificate), NOW)
    assert verdict.ok, verdict.reason


def serialization_pem():  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives import serialization

    return serialization.Encoding.PEM
