"""Compact RRsets (the builder's one-RR RRsets, the signer's RRSIG, NSEC and NSEC3) behave as
plain dnspython RRsets."""

from __future__ import annotations

import copy
import datetime as dt
import pickle

import dns.rdatatype
import dns.rrset
import pytest

from provisioner.dnssec.keys import generate_key
from provisioner.dnssec.policy import DnssecPolicy
from provisioner.dnssec.signer import KeyAssignment, KeyRole, sign_zone
from provisioner.zone.compact import CompactRRset, compact
from provisioner.zone.model import ZoneData

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def _signed(denial: str, algorithm: int = 13, salt: str = "") -> ZoneData:
    zone = ZoneData("example.org.")
    zone.add(
        dns.rrset.from_text(
            "example.org.", 300, "IN", "SOA", "ns1.example.org. h.example.org. 1 2 3 4 5"
        )
    )
    zone.add(dns.rrset.from_text("example.org.", 300, "IN", "NS", "ns1.example.org."))
    zone.add(dns.rrset.from_text("ns1.example.org.", 300, "IN", "A", "127.0.0.1"))
    zone.add(dns.rrset.from_text("www.example.org.", 300, "IN", "A", "127.0.0.2"))
    zone.add(dns.rrset.from_text("*.wild.example.org.", 300, "IN", "TXT", "x"))
    zone.add(dns.rrset.from_text("a.b.c.example.org.", 300, "IN", "AAAA", "::1"))
    keys = [
        KeyAssignment(generate_key(algorithm, 257), KeyRole.KSK),
        KeyAssignment(generate_key(algorithm, 256), KeyRole.ZSK),
    ]
    policy = DnssecPolicy.model_validate(
        {"algorithm": algorithm, "denial": denial, "nsec3": {"salt": salt}}
    )
    return sign_zone(zone, keys, policy, NOW)


@pytest.mark.parametrize("denial", ["nsec", "nsec3"])
def test_compact_rrsets_equal_plain_copies(denial: str) -> None:
    signed = _signed(denial)
    compact = [r for r in signed.rrsets.values() if isinstance(r, CompactRRset)]
    assert compact
    for rrset in compact:
        plain = dns.rrset.RRset(rrset.name, rrset.rdclass, rrset.rdtype, rrset.covers)
        plain.update(rrset)
        plain.update_ttl(rrset.ttl)
        assert rrset == plain
        assert plain == rrset
        assert len(rrset) == len(plain)
        assert [r.to_text() for r in rrset] == [r.to_text() for r in plain]
        assert copy.copy(rrset) == plain
        assert pickle.loads(pickle.dumps(rrset)) == plain


@pytest.mark.parametrize(
    ("denial", "algorithm", "salt"),
    [("nsec", 13, ""), ("nsec3", 13, "ab12"), ("nsec", 8, ""), ("nsec3", 15, "")],
)
def test_rdata_text_equals_dnspython(denial: str, algorithm: int, salt: str) -> None:
    signed = _signed(denial, algorithm, salt)
    compact = [r for r in signed.rrsets.values() if isinstance(r, CompactRRset)]
    denial_type = dns.rdatatype.NSEC if denial == "nsec" else dns.rdatatype.NSEC3
    assert {r.rdtype for r in compact} == {dns.rdatatype.RRSIG, denial_type}
    for rrset in compact:
        assert rrset.rdata_text() == rrset[0].to_text()


def test_rdata_text_after_change_is_none() -> None:
    rrset = compact(dns.rrset.from_text("u._smimecert.example.org.", 300, "IN", "SMIMEA", SMIMEA))
    assert rrset.rdata_text() == SMIMEA
    rrset.add(dns.rrset.from_text(rrset.name, 300, "IN", "SMIMEA", "3 1 0 00")[0])
    assert rrset.rdata_text() is None


def test_compact_rrset_mutation_and_round_trip() -> None:
    signed = _signed("nsec")
    key = next(
        k
        for k, r in signed.rrsets.items()
        if isinstance(r, CompactRRset) and k[1] == dns.rdatatype.RRSIG
    )
    rrset = signed.rrsets[key]
    extra = dns.rrset.from_text(rrset.name, rrset.ttl, "IN", "TXT", "x")
    before = len(rrset)
    rrset.update(dns.rrset.RRset(rrset.name, rrset.rdclass, rrset.rdtype, rrset.covers))
    assert len(rrset) == before
    assert extra.name == rrset.name
    assert ZoneData.from_text(signed.to_text(), "example.org.") == signed


SMIMEA = "3 1 1 " + "ab" * 32


def test_compact_keeps_only_rrsets_of_one_rr() -> None:
    two = dns.rrset.from_text("a.example.org.", 300, "IN", "A", "192.0.2.1", "192.0.2.2")
    assert compact(two) is two
    one = compact(dns.rrset.from_text("u._smimecert.example.org.", 300, "IN", "SMIMEA", SMIMEA))
    assert isinstance(one, CompactRRset)
    assert compact(one) is one


def test_compact_rrset_changes_like_a_plain_one() -> None:
    plain = dns.rrset.from_text("u._smimecert.example.org.", 300, "IN", "SMIMEA", SMIMEA)
    rrset = compact(plain.copy())
    assert rrset == plain
    assert plain == rrset
    assert plain[0] in rrset
    assert copy.copy(rrset) == plain
    assert pickle.loads(pickle.dumps(rrset)) == plain
    other = dns.rrset.from_text("u._smimecert.example.org.", 300, "IN", "SMIMEA", "3 1 0 00")
    rrset.add(other[0], 60)
    plain.add(other[0], 60)
    assert len(rrset) == 2
    assert rrset == plain
    assert rrset.ttl == 60
    assert rrset.difference(plain) == dns.rrset.RRset(rrset.name, rrset.rdclass, rrset.rdtype)
    rrset.remove(other[0])
    assert [r.to_text() for r in rrset] == [SMIMEA]


def test_zone_of_compact_rrsets_round_trips_through_text() -> None:
    zone = ZoneData("example.org.")
    zone.add(
        dns.rrset.from_text(
            "example.org.", 300, "IN", "SOA", "ns1.example.org. h.example.org. 1 2 3 4 5"
        )
    )
    for index in range(3):
        owner = f"u{index}._smimecert.example.org."
        zone.add(compact(dns.rrset.from_text(owner, 300, "IN", "SMIMEA", SMIMEA)))
    zone.add(
        compact(dns.rrset.from_text("u0._smimecert.example.org.", 300, "IN", "SMIMEA", "3 1 0 00"))
    )
    assert len(zone.get("u0._smimecert.example.org.", "SMIMEA")) == 2
    assert ZoneData.from_text(zone.to_text(), "example.org.") == zone
