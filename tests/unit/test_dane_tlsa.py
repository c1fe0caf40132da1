"""TLSA derivation checked against what the openssl command computes from the same files."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import dns.rdatatype
import pytest

from provisioner.clock import ManualClock
from provisioner.dane.params import (
    DaneParameters,
    MatchingType,
    Selector,
    Usage,
    compute_matching_data,
    parse_parameters,
)
from provisioner.dane.records import AnchorChoice, association_data, certificate_for_usage
from provisioner.dane.tlsa import derive_tlsa, tlsa_owner, tlsa_rdata, usage_warnings
from provisioner.errors import DaneError
from provisioner.pki.ca import (
    CertificateAuthority,
    IssuedCertificate,
    create_intermediate_ca,
    create_root_ca,
    issue_server_certificate,
)
from provisioner.pki.keys import KeyType, generate_private_key

START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
OPENSSL = shutil.which("openssl")


def openssl(*args: str, stdin: bytes | None = None) -> bytes:
    if OPENSSL is None:
        pytest.skip("openssl is not installed (Debian package openssl)")
    return subprocess.run([OPENSSL, *args], input=stdin, capture_output=True, check=True).stdout


def openssl_digest(data: bytes, matching: MatchingType) -> bytes:
    if matching is MatchingType.FULL:
        return data
    name = "-sha256" if matching is MatchingType.SHA2_256 else "-sha512"
    return openssl("dgst", name, "-binary", stdin=data)


@pytest.fixture(scope="module")
def issuing() -> CertificateAuthority:
    clock = ManualClock(START)
    root = create_root_ca("Test Root", generate_private_key(KeyType.ECDSA_P256), clock)
    return create_intermediate_ca(
        root, "Test Issuing", generate_private_key(KeyType.ECDSA_P256), clock
    )


def issue(
    issuing: CertificateAuthority, key_type: KeyType = KeyType.ECDSA_P256
) -> IssuedCertificate:
    return issue_server_certificate(
        issuing, generate_private_key(key_type), ["mx1.example.org"], ManualClock(START)
    )


@pytest.mark.parametrize("key_type", list(KeyType))
def test_tlsa_data_equals_openssl(
    key_type: KeyType, issuing: CertificateAuthority, tmp_path: Path
) -> None:
    issued = issue(issuing, key_type)
    cert_file = tmp_path / "cert.pem"
    cert_file.write_bytes(issued.certificate_pem())
    cert_der = openssl("x509", "-in", str(cert_file), "-outform", "DER")
    public_pem = openssl("x509", "-in", str(cert_file), "-pubkey", "-noout")
    spki_der = openssl("pkey", "-pubin", "-outform", "DER", stdin=public_pem)
    selected = {Selector.CERT: cert_der, Selector.SPKI: spki_der}

    for selector in Selector:
        for matching in MatchingType:
            expected = openssl_digest(selected[selector], matching)
            assert association_data(issued.certificate, selector, matching) == expected, (
                key_type,
                selector,
                matching,
            )
            rdata = tlsa_rdata(3, selector, matching, issued.certificate)
            assert rdata.cert == expected


def test_tlsa_owner_for_smtp() -> None:
    assert tlsa_owner("mx1.example.org").to_text() == "_25._tcp.mx1.example.org."


def test_tlsa_owner_other_port_and_idn() -> None:
    assert tlsa_owner("Mail.Bücher.example.", 465).to_text() == (
        "_465._tcp.mail.xn--bcher-kva.example."
    )
    assert tlsa_owner("mx1.example.org", 853, "udp").to_text() == "_853._udp.mx1.example.org."


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_tlsa_owner_rejects_port(port: int) -> None:
    with pytest.raises(DaneError, match="invalid port"):
        tlsa_owner("mx1.example.org", port)


def test_tlsa_owner_rejects_bad_host() -> None:
    with pytest.raises(DaneError, match="invalid host name"):
        tlsa_owner("mx1..example.org")
    with pytest.raises(DaneError, match="invalid host name"):
        tlsa_owner("mx_1.example.org")


def test_pkix_usages_on_port_25_warn() -> None:
    assert usage_warnings(Usage.PKIX_TA, 25)
    assert usage_warnings(Usage.PKIX_EE, 25)
    assert "RFC 7672" in usage_warnings(1, 25)[0]
    assert usage_warnings(Usage.DANE_TA, 25) == []
    assert usage_warnings(Usage.DANE_EE, 25) == []
    assert usage_warnings(Usage.PKIX_EE, 443) == []


def test_derive_tlsa_warns_for_pkix_ee(issuing: CertificateAuthority) -> None:
    issued = issue(issuing)
    record = derive_tlsa(
        issued.certificate,
        "mx1.example.org",
        parameters=parse_parameters("PKIX-EE", "SPKI", "SHA2-256"),
    )
    assert len(record.warnings) == 1
    assert "port 25" in record.warnings[0]
    default = derive_tlsa(issued.certificate, "mx1.example.org")
    assert default.warnings == ()
    assert default.rdata.rdtype == dns.rdatatype.TLSA
    assert (default.rdata.usage, default.rdata.selector, default.rdata.mtype) == (3, 1, 1)


def test_dane_ta_uses_issuing_ca_by_default(issuing: CertificateAuthority) -> None:
    issued = issue(issuing)
    record = derive_tlsa(
        issued.certificate,
        "mx1.example.org",
        parameters=DaneParameters(Usage.DANE_TA, Selector.SPKI, MatchingType.SHA2_256),
        chain=issued.chain,
        root=issued.root,
    )
    expected = association_data(issuing.certificate, 1, 1)
    assert record.rdata.cert == expected
    assert record.warnings == ()


def test_dane_ta_root_anchor_warns_when_not_sent(issuing: CertificateAuthority) -> None:
    issued = issue(issuing)
    parameters = DaneParameters(Usage.DANE_TA, Selector.CERT, MatchingType.SHA2_256)
    record = derive_tlsa(
        issued.certificate,
        "mx1.example.org",
        parameters=parameters,
        chain=issued.chain,
        root=issued.root,
        anchor=AnchorChoice.ROOT,
    )
    assert issued.root is not None
    assert record.rdata.cert == association_data(issued.root, 0, 1)
    assert any("not in the chain" in warning for warning in record.warnings)

    with_root = derive_tlsa(
        issued.certificate,
        "mx1.example.org",
        parameters=parameters,
        chain=(*issued.chain, issued.root),
        anchor="root",
    )
    assert with_root.rdata.cert == record.rdata.cert
    assert with_root.warnings == ()


def test_dane_ta_without_chain_is_rejected(issuing: CertificateAuthority) -> None:
    issued = issue(issuing)
    with pytest.raises(DaneError, match="issuing CA"):
        certificate_for_usage(Usage.DANE_TA, issued.certificate)
    with pytest.raises(DaneError, match="root certificate"):
        certificate_for_usage(Usage.DANE_TA, issued.certificate, issued.chain, anchor="root")


@pytest.mark.parametrize("matching", [MatchingType.FULL, MatchingType.SHA2_256, 2])
def test_empty_input_is_rejected(matching: MatchingType | int) -> None:
    with pytest.raises(DaneError, match="empty"):
        compute_matching_data(b"", matching)


def test_record_text_is_one_zone_line(issuing: CertificateAuthority) -> None:
    issued = issue(issuing)
    record = derive_tlsa(issued.certificate, "mx1.example.org")
    digest = association_data(issued.certificate, 1, 1).hex()
    assert record.to_text() == f"_25._tcp.mx1.example.org. IN TLSA 3 1 1 {digest}"
    assert record.to_text(3600) == f"_25._tcp.mx1.example.org. 3600 IN TLSA 3 1 1 {digest}"
