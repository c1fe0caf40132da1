"""NSEC and NSEC3 denial proofs (RFC 4035 section 5.4, RFC 5155 section 8)."""

from __future__ import annotations

import base64

import dns.dnssec
import dns.name
import dns.rdatatype
import dns.rrset

from provisioner.check.denial import (
    prove_nsec,
    prove_nsec3,
    prove_wildcard_expansion,
)

ZONE = dns.name.from_text("example.")


def name(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


def nsec(owner: str, next_name: str, types: str) -> dns.rrset.RRset:
    return dns.rrset.from_text(owner, 300, "IN", "NSEC", f"{next_name} {types}")


# The NSEC chain of a zone with example., a.example. and c.example.
CHAIN = [
    nsec("example.", "a.example.", "SOA NS RRSIG NSEC DNSKEY"),
    nsec("a.example.", "c.example.", "A RRSIG NSEC"),
    nsec("c.example.", "example.", "CNAME RRSIG NSEC"),
]


def test_nsec_nxdomain_proven() -> None:
    proof = prove_nsec(name("b.example."), dns.rdatatype.A, CHAIN, nxdomain=True)
    assert proof.proven, proof.reason


def test_nsec_nxdomain_without_wildcard_proof() -> None:
    proof = prove_nsec(name("b.example."), dns.rdatatype.A, CHAIN[1:2], nxdomain=True)
    assert not proof.proven
    assert "wildcard *.example." in proof.reason


def test_nsec_nxdomain_without_covering_record() -> None:
    proof = prove_nsec(name("d.example."), dns.rdatatype.A, CHAIN[:2], nxdomain=True)
    assert not proof.proven
    assert "no NSEC record matches or covers d.example." in proof.reason


def test_nsec_last_record_wraps_to_apex() -> None:
    proof = prove_nsec(name("z.example."), dns.rdatatype.A, CHAIN, nxdomain=True)
    assert proof.proven, proof.reason


def test_nsec_nodata_proven() -> None:
    proof = prove_nsec(name("a.example."), dns.rdatatype.TLSA, CHAIN, nxdomain=False)
    assert proof.proven, proof.reason


def test_nsec_nodata_type_listed() -> None:
    proof = prove_nsec(name("a.example."), dns.rdatatype.A, CHAIN, nxdomain=False)
    assert not proof.proven
    assert "the type bitmap lists A" in proof.reason


def test_nsec_nodata_cname_listed() -> None:
    proof = prove_nsec(name("c.example."), dns.rdatatype.TLSA, CHAIN, nxdomain=False)
    assert not proof.proven
    assert "CNAME" in proof.reason


def test_nsec_ds_denial_from_child_side() -> None:
    proof = prove_nsec(name("example."), dns.rdatatype.DS, CHAIN, nxdomain=False)
    assert not proof.proven
    assert "child zone" in proof.reason


def test_nsec_no_records() -> None:
    proof = prove_nsec(name("b.example."), dns.rdatatype.A, [], nxdomain=True)
    assert not proof.proven


def hashed(text: str, iterations: int = 0) -> str:
    return dns.dnssec.nsec3_hash(name(text), None, iterations, 1).upper()


def nsec3_chain(
    names: dict[str, str], *, opt_out: bool = False, iterations: int = 0
) -> list[dns.rrset.RRset]:
    """Build the NSEC3 chain of ``names`` (owner -> type list) under example."""
    entries = sorted((hashed(owner, iterations), types) for owner, types in names.items())
    flags = 1 if opt_out else 0
    chain = []
    for index, (owner_hash, types) in enumerate(entries):
        next_hash = entries[(index + 1) % len(entries)][0]
        chain.append(
            dns.rrset.from_text(
                f"{owner_hash}.example.",
                300,
                "IN",
                "NSEC3",
                f"1 {flags} {iterations} - {next_hash} {types}",
            )
        )
    return chain


NAMES = {
    "example.": "SOA NS RRSIG DNSKEY NSEC3PARAM",
    "a.example.": "A RRSIG",
    "x.a.example.": "TXT RRSIG",
}


def covering(chain: list[dns.rrset.RRset], text: str) -> dns.rrset.RRset:
    value = hashed(text)
    for rrset in chain:
        owner = rrset.name.labels[0].decode().upper()
        following = base64.b32hexencode(rrset[0].next).decode()
        if owner < following:
            if owner < value < following:
                return rrset
        elif value > owner or value < following:
            return rrset
    raise AssertionError(f"nothing covers {text}")


def test_nsec3_nxdomain_closest_encloser() -> None:
    chain = nsec3_chain(NAMES)
    proof = prove_nsec3(name("b.example."), dns.rdatatype.A, ZONE, chain, nxdomain=True)
    assert proof.proven, proof.reason
    assert "closest encloser example." in proof.reason


def test_nsec3_nxdomain_deep_name() -> None:
    chain = nsec3_chain(NAMES)
    proof = prove_nsec3(name("q.r.a.example."), dns.rdatatype.A, ZONE, chain, nxdomain=True)
    assert proof.proven, proof.reason
    assert "closest encloser a.example." in proof.reason


def test_nsec3_nxdomain_without_next_closer_cover() -> None:
    chain = nsec3_chain(NAMES)
    cover = covering(chain, "b.example.")
    remaining = [rrset for rrset in chain if rrset is not cover]
    proof = prove_nsec3(name("b.example."), dns.rdatatype.A, ZONE, remaining, nxdomain=True)
    assert not proof.proven
    assert "b.example." in proof.reason or "*.example." in proof.reason


def test_nsec3_nodata_proven() -> None:
    chain = nsec3_chain(NAMES)
    proof = prove_nsec3(name("a.example."), dns.rdatatype.TLSA, ZONE, chain, nxdomain=False)
    assert proof.proven, proof.reason


def test_nsec3_nodata_type_listed() -> None:
    chain = nsec3_chain(NAMES)
    proof = prove_nsec3(name("a.example."), dns.rdatatype.A, ZONE, chain, nxdomain=False)
    assert not proof.proven
    assert "the type bitmap lists A" in proof.reason


def test_nsec3_opt_out_ds() -> None:
    chain = nsec3_chain(NAMES, opt_out=True)
    proof = prove_nsec3(name("child.example."), dns.rdatatype.DS, ZONE, chain, nxdomain=False)
    assert proof.proven, proof.reason
    assert proof.opt_out


def test_nsec3_ds_without_opt_out() -> None:
    chain = nsec3_chain(NAMES)
    proof = prove_nsec3(name("child.example."), dns.rdatatype.DS, ZONE, chain, nxdomain=False)
    assert not proof.proven


def test_nsec3_too_many_iterations_is_insecure() -> None:
    chain = nsec3_chain(NAMES, iterations=200)
    proof = prove_nsec3(name("b.example."), dns.rdatatype.A, ZONE, chain, nxdomain=True)
    assert not proof.proven
    assert proof.insecure


def test_nsec3_of_another_zone_ignored() -> None:
    chain = nsec3_chain(NAMES)
    proof = prove_nsec3(name("b.other."), dns.rdatatype.A, name("other."), chain, nxdomain=True)
    assert not proof.proven
    assert "no NSEC3 record of the zone" in proof.reason


def test_wildcard_expansion_with_nsec() -> None:
    proof = prove_wildcard_expansion(name("b.example."), ZONE, ZONE, CHAIN, [])
    assert proof.proven, proof.reason


def test_wildcard_expansion_unproven_with_nsec() -> None:
    proof = prove_wildcard_expansion(name("b.example."), ZONE, ZONE, CHAIN[:1], [])
    assert not proof.proven


def test_wildcard_expansion_with_nsec3() -> None:
    chain = nsec3_chain(NAMES)
    proof = prove_wildcard_expansion(name("b.example."), ZONE, ZONE, [], chain)
    assert proof.proven, proof.reason
