"""SMIMEA owner names (RFC 8162 section 3) and records."""

from __future__ import annotations

import datetime as dt
import hashlib

import dns.rdatatype
import pytest

from provisioner.clock import ManualClock
from provisioner.dane.params import parse_parameters
from provisioner.dane.records import association_data
from provisioner.dane.smimea import derive_smimea, smimea_owner, smimea_rdata
from provisioner.errors import DaneError
from provisioner.pki.ca import IssuedCertificate, create_root_ca, issue_smime_certificate
from provisioner.pki.encoding import certificate_der
from provisioner.pki.keys import KeyType, generate_private_key

START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def test_owner_of_hugh_example() -> None:
    # The example of RFC 8162 section 3.
    assert smimea_owner("hugh@example.com").to_text() == (
        "c93f1e400f26708f98cb19d936620da35eec8f72e57f9eec01c1afd6._smimecert.example.com."
    )


def test_owner_keeps_local_part_case() -> None:
    lower = smimea_owner("hugh@example.com")
    upper = smimea_owner("Hugh@EXAMPLE.com")
    assert lower.labels[0] != upper.labels[0]
    assert lower.labels[1:] == upper.labels[1:]


def test_owner_hashes_utf8_local_part_and_idna_domain() -> None:
    owner = smimea_owner("jürgen@bücher.example")
    expected_label = hashlib.sha256("jürgen".encode()).digest()[:28].hex()
    assert owner.to_text() == f"{expected_label}._smimecert.xn--bcher-kva.example."


def test_owner_uses_last_at_sign() -> None:
    owner = smimea_owner('"a@b"@example.com')
    expected_label = hashlib.sha256(b'"a@b"').digest()[:28].hex()
    assert owner.to_text() == f"{expected_label}._smimecert.example.com."


@pytest.mark.parametrize("address", ["hugh", "@example.com", "hugh@", "hugh@exa mple.com"])
def test_owner_rejects_bad_address(address: str) -> None:
    with pytest.raises(DaneError, match="invalid"):
        smimea_owner(address)


@pytest.fixture(scope="module")
def smime_certificate() -> IssuedCertificate:
    clock = ManualClock(START)
    root = create_root_ca("Test Root", generate_private_key(KeyType.ECDSA_P256), clock)
    return issue_smime_certificate(
        root, generate_private_key(KeyType.RSA_2048), "hugh@example.com", clock
    )


def test_default_record_is_full_certificate(smime_certificate: IssuedCertificate) -> None:
    record = derive_smimea(smime_certificate.certificate, "hugh@example.com")
    assert record.rdata.rdtype == dns.rdatatype.SMIMEA
    assert (record.rdata.usage, record.rdata.selector, record.rdata.mtype) == (3, 0, 0)
    assert record.rdata.cert == certificate_der(smime_certificate.certificate)
    assert record.warnings == ()
    line = record.to_text(300)
    assert line.startswith(
        "c93f1e400f26708f98cb19d936620da35eec8f72e57f9eec01c1afd6._smimecert.example.com."
        " 300 IN SMIMEA 3 0 0 "
    )


def test_hashed_record_warns(smime_certificate: IssuedCertificate) -> None:
    record = derive_smimea(
        smime_certificate.certificate,
        "hugh@example.com",
        parameters=parse_parameters(3, 1, 1),
    )
    assert record.rdata.cert == association_data(smime_certificate.certificate, 1, 1)
    assert len(record.warnings) == 1


def test_smimea_rdata_sha512(smime_certificate: IssuedCertificate) -> None:
    rdata = smimea_rdata("DANE-EE", "Cert", "SHA2-512", smime_certificate.certificate)
    assert len(rdata.cert) == 64
    assert rdata.cert == hashlib.sha512(certificate_der(smime_certificate.certificate)).digest()
