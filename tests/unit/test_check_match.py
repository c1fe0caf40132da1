"""TLSA matching with RFC 7672 rules for SMTP, and SMIMEA owner names."""

from __future__ import annotations

import datetime as dt
import hashlib

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from provisioner.check.match import (
    association_data,
    match_tlsa_smtp,
    name_matches,
    record_matches,
    smimea_owner,
    tlsa_owner,
)

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)


def make_cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None = None,
    names: list[str] | None = None,
    *,
    expired: bool = False,
    ca: bool = False,
) -> x509.Certificate:
    issuer_name, issuer_key = issuer or (subject, key)
    end = NOW - dt.timedelta(days=1) if expired else NOW + dt.timedelta(days=30)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=60))
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki() -> dict[str, object]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    other_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    ca = make_cert("Mail CA", ca_key, ca=True)
    other_ca = make_cert("Mail CA", other_key, ca=True)  # same name, different key
    leaf = make_cert("mx1", leaf_key, ("Mail CA", ca_key), ["mx1.example.org"])
    expired = make_cert("mx1", leaf_key, ("Mail CA", ca_key), ["mx1.example.org"], expired=True)
    wildcard = make_cert("mx", leaf_key, ("Mail CA", ca_key), ["*.example.org"])
    return {"ca": ca, "other_ca": other_ca, "leaf": leaf, "expired": expired, "wildcard": wildcard}


def tlsa(text: str) -> object:
    return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TLSA, text)


def record_for(cert: x509.Certificate, usage: int, selector: int, mtype: int) -> object:
    data = association_data(cert, selector, mtype)
    assert data is not None
    return tlsa(f"{usage} {selector} {mtype} {data.hex()}")


REFERENCE = ["mx1.example.org"]


@pytest.mark.parametrize("selector", [0, 1])
@pytest.mark.parametrize("mtype", [0, 1, 2])
def test_dane_ee_matches_each_form(pki: dict, selector: int, mtype: int) -> None:
    record = record_for(pki["leaf"], 3, selector, mtype)
    verdict = match_tlsa_smtp([record], [pki["leaf"], pki["ca"]], REFERENCE, NOW)
    assert verdict.authenticated, verdict.reason


def test_association_data_spki_sha256(pki: dict) -> None:
    spki = (
        pki["leaf"]
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert association_data(pki["leaf"], 1, 1) == hashlib.sha256(spki).digest()


def test_dane_ee_ignores_name_and_expiry(pki: dict) -> None:
    record = record_for(pki["expired"], 3, 1, 1)
    verdict = match_tlsa_smtp([record], [pki["expired"]], ["other.example.net"], NOW)
    assert verdict.authenticated, verdict.reason


def test_dane_ee_mismatch(pki: dict) -> None:
    verdict = match_tlsa_smtp([tlsa("3 1 1 " + "00" * 32)], [pki["leaf"]], REFERENCE, NOW)
    assert not verdict.authenticated
    assert "does not match the leaf certificate" in verdict.reason


def test_dane_ta_matches(pki: dict) -> None:
    record = record_for(pki["ca"], 2, 0, 1)
    verdict = match_tlsa_smtp([record], [pki["leaf"], pki["ca"]], REFERENCE, NOW)
    assert verdict.authenticated, verdict.reason


def test_dane_ta_absent_from_chain(pki: dict) -> None:
    record = record_for(pki["ca"], 2, 0, 1)
    verdict = match_tlsa_smtp([record], [pki["leaf"]], REFERENCE, NOW)
    assert not verdict.authenticated
    assert "matches no certificate in the presented chain" in verdict.reason


def test_dane_ta_signature_broken(pki: dict) -> None:
    record = record_for(pki["other_ca"], 2, 1, 1)
    verdict = match_tlsa_smtp([record], [pki["leaf"], pki["other_ca"]], REFERENCE, NOW)
    assert not verdict.authenticated
    assert "does not verify" in verdict.reason


def test_dane_ta_name_mismatch(pki: dict) -> None:
    record = record_for(pki["ca"], 2, 0, 1)
    verdict = match_tlsa_smtp([record], [pki["leaf"], pki["ca"]], ["mx2.example.org"], NOW)
    assert not verdict.authenticated
    assert "do not include mx2.example.org" in verdict.reason


def test_dane_ta_next_domain_accepted(pki: dict) -> None:
    record = record_for(pki["ca"], 2, 0, 1)
    chain = [pki["wildcard"], pki["ca"]]
    verdict = match_tlsa_smtp([record], chain, ["mx9.other.net", "relay.example.org"], NOW)
    assert verdict.authenticated, verdict.reason


def test_dane_ta_expired_leaf(pki: dict) -> None:
    record = record_for(pki["ca"], 2, 0, 1)
    verdict = match_tlsa_smtp([record], [pki["expired"], pki["ca"]], REFERENCE, NOW)
    assert not verdict.authenticated
    assert "the leaf certificate expired at" in verdict.reason


def test_pkix_usages_unusable(pki: dict) -> None:
    records = [record_for(pki["leaf"], 1, 1, 1), record_for(pki["ca"], 0, 0, 1)]
    verdict = match_tlsa_smtp(records, [pki["leaf"], pki["ca"]], REFERENCE, NOW)
    assert not verdict.authenticated
    assert verdict.unusable
    assert len(verdict.unsupported) == 2


def test_pkix_beside_dane_ee(pki: dict) -> None:
    records = [record_for(pki["leaf"], 1, 1, 1), record_for(pki["leaf"], 3, 1, 1)]
    verdict = match_tlsa_smtp(records, [pki["leaf"]], REFERENCE, NOW)
    assert verdict.authenticated
    assert verdict.unsupported == ["1 1 1 (PKIX-EE SPKI SHA2-256)"]


def test_empty_chain() -> None:
    verdict = match_tlsa_smtp([tlsa("3 1 1 " + "00" * 32)], [], REFERENCE, NOW)
    assert not verdict.authenticated


@pytest.mark.parametrize(
    ("pattern", "reference", "expected"),
    [
        ("mx1.example.org", "MX1.example.org.", True),
        ("*.example.org", "mx1.example.org", True),
        ("*.example.org", "example.org", False),
        ("*.example.org", "a.mx1.example.org", False),
        ("mx*.example.org", "mx1.example.org", False),
    ],
)
def test_name_matches(pattern: str, reference: str, expected: bool) -> None:
    assert name_matches(pattern, reference) is expected


def test_record_matches_smimea(pki: dict) -> None:
    der = pki["leaf"].public_bytes(serialization.Encoding.DER)
    record = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.SMIMEA, f"3 0 0 {der.hex()}")
    assert record_matches(record, pki["leaf"])
    assert not record_matches(record, pki["ca"])


def test_smimea_owner_hashes_local_part() -> None:
    digest = hashlib.sha256(b"hugh").digest()[:28].hex()
    assert smimea_owner("hugh@example.com").to_text() == f"{digest}._smimecert.example.com."


def test_smimea_owner_rejects_non_address() -> None:
    with pytest.raises(ValueError):
        smimea_owner("example.com")


def test_tlsa_owner() -> None:
    assert tlsa_owner("mx1.example.org.", 25).to_text() == "_25._tcp.mx1.example.org."
