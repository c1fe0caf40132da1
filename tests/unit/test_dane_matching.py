"""Matching of TLSA and SMIMEA records against a presented chain, across a renewal."""

from __future__ import annotations

import datetime as dt

import dns.rdata
import dns.rdataclass
import dns.rdatatype

from provisioner.clock import ManualClock
from provisioner.dane.matching import matching_records, record_matches
from provisioner.dane.params import parse_parameters
from provisioner.dane.smimea import derive_smimea
from provisioner.dane.tlsa import derive_tlsa
from provisioner.pki.ca import (
    create_intermediate_ca,
    create_root_ca,
    issue_server_certificate,
    issue_smime_certificate,
)
from provisioner.pki.keys import KeyType, generate_private_key

START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def test_spki_record_survives_renewal() -> None:
    clock = ManualClock(START)
    root = create_root_ca("Root", generate_private_key(KeyType.ECDSA_P256), clock)
    issuing = create_intermediate_ca(root, "Issuing", generate_private_key("ecdsa-p256"), clock)
    key = generate_private_key(KeyType.ECDSA_P256)
    first = issue_server_certificate(issuing, key, ["mx1.example.org"], clock)
    spki = derive_tlsa(first.certificate, "mx1.example.org").rdata
    whole = derive_tlsa(
        first.certificate, "mx1.example.org", parameters=parse_parameters(3, 0, 1)
    ).rdata
    issuer = derive_tlsa(
        first.certificate,
        "mx1.example.org",
        parameters=parse_parameters(2, 1, 1),
        chain=first.chain,
    ).rdata

    clock.advance(60 * 86400)
    renewed = issue_server_certificate(issuing, key, ["mx1.example.org"], clock)

    assert record_matches(spki, renewed.certificate, renewed.chain)
    assert not record_matches(whole, renewed.certificate, renewed.chain)
    assert record_matches(whole, first.certificate, first.chain)
    assert record_matches(issuer, renewed.certificate, renewed.chain)
    assert not record_matches(issuer, renewed.certificate, ())
    assert matching_records([spki, whole, issuer], renewed.certificate, renewed.chain) == [
        spki,
        issuer,
    ]


def test_new_key_breaks_spki_record() -> None:
    clock = ManualClock(START)
    root = create_root_ca("Root", generate_private_key(KeyType.ED25519), clock)
    first = issue_server_certificate(root, generate_private_key("ed25519"), ["mx.test"], clock)
    rekeyed = issue_server_certificate(root, generate_private_key("ed25519"), ["mx.test"], clock)
    record = derive_tlsa(first.certificate, "mx.test").rdata
    assert not record_matches(record, rekeyed.certificate)


def test_private_use_values_never_match() -> None:
    clock = ManualClock(START)
    root = create_root_ca("Root", generate_private_key(KeyType.ECDSA_P256), clock)
    issued = issue_server_certificate(root, generate_private_key("ecdsa-p256"), ["a.test"], clock)
    record = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TLSA, "3 255 1 " + "00" * 32)
    assert not record_matches(record, issued.certificate)


def test_smimea_full_record_matches() -> None:
    clock = ManualClock(START)
    root = create_root_ca("Root", generate_private_key(KeyType.ECDSA_P256), clock)
    issued = issue_smime_certificate(
        root, generate_private_key("rsa-2048"), "hugh@example.com", clock
    )
    record = derive_smimea(issued.certificate, "hugh@example.com").rdata
    assert record_matches(record, issued.certificate)
