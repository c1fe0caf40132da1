"""The zone signer, checked by verify_zone and by dnssec-verify, ldns-verify-zone and kzonecheck."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import shutil
import subprocess
from pathlib import Path

import dns.name
import dns.rdata
import dns.rdatatype
import dns.rrset
import pytest

from provisioner.dnssec import _wire
from provisioner.dnssec.keys import (
    KSK_FLAGS,
    ZSK_FLAGS,
    InMemoryKey,
    cds_delete_rrsets,
    generate_key,
)
from provisioner.dnssec.policy import DnssecPolicy
from provisioner.dnssec.signer import KeyAssignment, KeyRole, SignedZone, ZoneSigner, sign_zone
from provisioner.dnssec.verify import verify_zone
from provisioner.zone.model import NONE, ZoneData

T = dns.rdatatype.RdataType
ORIGIN = "example.com."
NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
SMIMEA_OWNER = hashlib.sha256(b"alice").hexdigest()[:56] + "._smimecert"

SAMPLE_ZONE = f"""
@ 3600 IN SOA ns1 hostmaster 2026120401 7200 3600 1209600 300
@ 3600 IN NS ns1
@ 3600 IN NS ns2.example.net.
@ 3600 IN MX 10 mx1
ns1 3600 IN A 192.0.2.1
mx1 3600 IN A 192.0.2.25
mx1 3600 IN AAAA 2001:db8::25
_25._tcp.mx1 3600 IN TLSA 3 1 1 {"ab" * 32}
{SMIMEA_OWNER} 3600 IN SMIMEA 3 1 1 {"cd" * 32}
sub 3600 IN NS ns.sub
sub 3600 IN DS 12345 13 2 {"ef" * 32}
ns.sub 3600 IN A 192.0.2.53
insecure 3600 IN NS ns.insecure
ns.insecure 3600 IN A 192.0.2.54
*.wild 3600 IN TXT "wildcard"
"""

KEYS: dict[int, list[InMemoryKey]] = {}


def sample_zone() -> ZoneData:
    return ZoneData.from_text(SAMPLE_ZONE, ORIGIN)


def assignments(algorithm: int) -> list[KeyAssignment]:
    if algorithm not in KEYS:
        KEYS[algorithm] = [generate_key(algorithm, KSK_FLAGS), generate_key(algorithm, ZSK_FLAGS)]
    ksk, zsk = KEYS[algorithm]
    return [KeyAssignment(ksk, KeyRole.KSK), KeyAssignment(zsk, KeyRole.ZSK)]


def policy_for(algorithm: int, denial: str, opt_out: bool = False) -> DnssecPolicy:
    return DnssecPolicy(algorithm=algorithm, denial=denial, nsec3={"opt_out": opt_out})


def run_tool(arguments: list[str]) -> subprocess.CompletedProcess[str]:
    if shutil.which(arguments[0]) is None:
        pytest.skip(f"{arguments[0]} is not installed")
    return subprocess.run(arguments, capture_output=True, text=True, timeout=120, check=False)


CASES = [
    (8, "nsec", False),
    (8, "nsec3", False),
    (13, "nsec", False),
    (13, "nsec3", False),
    (13, "nsec3", True),
    (14, "nsec", False),
    (14, "nsec3", False),
    (15, "nsec", False),
    (15, "nsec3", False),
]


@pytest.mark.parametrize(("algorithm", "denial", "opt_out"), CASES)
def test_sample_zone_passes_external_verifiers(
    tmp_path: Path, algorithm: int, denial: str, opt_out: bool
) -> None:
    signed = ZoneSigner(assignments(algorithm), policy_for(algorithm, denial, opt_out)).sign(
        sample_zone(), dt.datetime.now(dt.UTC)
    )
    path = tmp_path / "example.com.zone"
    path.write_text(signed.zone.to_text())

    bind = run_tool(["dnssec-verify", "-o", "example.com", str(path)])
    assert bind.returncode == 0, bind.stderr + bind.stdout
    ldns = run_tool(["ldns-verify-zone", str(path)])
    assert ldns.returncode == 0, ldns.stderr + ldns.stdout
    knot = run_tool(["kzonecheck", "-o", "example.com", "--dnssec", "on", str(path)])
    assert knot.returncode == 0, knot.stderr + knot.stdout


@pytest.mark.parametrize(("algorithm", "denial", "opt_out"), CASES)
def test_sample_zone_passes_verify_zone(algorithm: int, denial: str, opt_out: bool) -> None:
    signed = ZoneSigner(assignments(algorithm), policy_for(algorithm, denial, opt_out)).sign(
        sample_zone(), NOW
    )
    assert [str(problem) for problem in verify_zone(signed.zone, NOW)] == []


def test_external_verifier_rejects_corrupted_signature(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    signed = sign_zone(sample_zone(), assignments(13), policy_for(13, "nsec"), now)
    corrupt_signature(signed, "_25._tcp.mx1.example.com.", T.TLSA)
    path = tmp_path / "bad.zone"
    path.write_text(signed.to_text())
    assert run_tool(["dnssec-verify", "-o", "example.com", str(path)]).returncode != 0
    assert run_tool(["ldns-verify-zone", str(path)]).returncode != 0
    assert run_tool(["kzonecheck", "-o", "example.com", str(path)]).returncode != 0


def corrupt_signature(zone: ZoneData, owner: str, covered: T) -> None:
    name = dns.name.from_text(owner)
    key = (name, T.RRSIG, covered)
    sigs = zone.rrsets[key]
    first = next(iter(sigs))
    broken = bytearray(first.signature)
    broken[5] ^= 0x01
    replacement = dns.rrset.RRset(name, sigs.rdclass, T.RRSIG, covered)
    replacement.add(first.replace(signature=bytes(broken)), sigs.ttl)
    zone.rrsets[key] = replacement


@pytest.mark.parametrize("denial", ["nsec", "nsec3"])
def test_verify_zone_names_corrupted_rrset(denial: str) -> None:
    signed = sign_zone(sample_zone(), assignments(13), policy_for(13, denial), NOW)
    owner = f"{SMIMEA_OWNER}.{ORIGIN}"
    corrupt_signature(signed, owner, T.SMIMEA)
    problems = verify_zone(signed, NOW)
    assert problems
    assert {problem.key for problem in problems} == {(dns.name.from_text(owner), T.SMIMEA, NONE)}
    assert "does not validate" in str(problems[0])
    assert str(problems[0]).startswith(owner + " SMIMEA")


def test_verify_zone_reports_missing_signature_and_broken_chain() -> None:
    signed = sign_zone(sample_zone(), assignments(13), policy_for(13, "nsec"), NOW)
    mx1 = dns.name.from_text("mx1.example.com.")
    del signed.rrsets[(mx1, T.RRSIG, T.AAAA)]
    del signed.rrsets[(mx1, T.NSEC, NONE)]
    messages = [str(problem) for problem in verify_zone(signed, NOW)]
    assert "mx1.example.com. AAAA: not signed: no RRSIG covers this RRset" in messages
    assert any(m.startswith("mx1.example.com. NSEC: missing") for m in messages)


def test_verify_zone_reports_expired_signatures() -> None:
    signed = sign_zone(sample_zone(), assignments(13), policy_for(13, "nsec"), NOW)
    later = NOW + dt.timedelta(days=15)
    problems = verify_zone(signed, later)
    assert problems
    assert all(
        "does not validate" in p.message or "no valid signature" in p.message for p in problems
    )


def test_glue_and_delegation_ns_are_not_signed() -> None:
    signed = sign_zone(sample_zone(), assignments(13), policy_for(13, "nsec"), NOW)
    name = dns.name.from_text
    assert signed.get(name("ns.sub.example.com."), T.RRSIG, T.A) is None
    assert signed.get(name("sub.example.com."), T.RRSIG, T.NS) is None
    assert signed.get(name("sub.example.com."), T.RRSIG, T.DS) is not None
    assert signed.get(name("ns.sub.example.com."), T.NSEC) is None
    assert signed.get(name("insecure.example.com."), T.NSEC) is not None
    assert signed.get(ORIGIN, T.RRSIG, T.NS) is not None


def test_nsec_ttl_is_min_of_soa_ttl_and_minimum() -> None:
    signed = sign_zone(sample_zone(), assignments(13), policy_for(13, "nsec"), NOW)
    nsec_ttls = {rrset.ttl for key, rrset in signed.rrsets.items() if key[1] == T.NSEC}
    assert nsec_ttls == {300}
    high_minimum = SAMPLE_ZONE.replace("1209600 300", "1209600 86400")
    signed = sign_zone(
        ZoneData.from_text(high_minimum, ORIGIN), assignments(13), policy_for(13, "nsec3"), NOW
    )
    nsec3_ttls = {rrset.ttl for key, rrset in signed.rrsets.items() if key[1] == T.NSEC3}
    assert nsec3_ttls == {3600}


def test_nsec3_chain_has_empty_non_terminals_and_param() -> None:
    signed = sign_zone(sample_zone(), assignments(13), policy_for(13, "nsec3"), NOW)
    param = signed.get(ORIGIN, T.NSEC3PARAM)
    assert param is not None
    assert param[0].iterations == 0
    assert param[0].salt == b""
    assert param[0].flags == 0
    owners = {key[0] for key in signed.rrsets if key[1] == T.NSEC3}
    for empty_non_terminal in ["_tcp.mx1", "_smimecert", "wild"]:
        label = dns.dnssec.nsec3_hash(f"{empty_non_terminal}.{ORIGIN}", b"", 0, 1).lower()
        assert dns.name.from_text(f"{label}.{ORIGIN}") in owners


def test_nsec3_opt_out_skips_insecure_delegation() -> None:
    signed = sign_zone(sample_zone(), assignments(13), policy_for(13, "nsec3", True), NOW)
    owners = {key[0] for key in signed.rrsets if key[1] == T.NSEC3}
    insecure = dns.dnssec.nsec3_hash(f"insecure.{ORIGIN}", b"", 0, 1).lower()
    secure = dns.dnssec.nsec3_hash(f"sub.{ORIGIN}", b"", 0, 1).lower()
    assert dns.name.from_text(f"{insecure}.{ORIGIN}") not in owners
    assert dns.name.from_text(f"{secure}.{ORIGIN}") in owners
    assert all(rrset[0].flags == 1 for key, rrset in signed.rrsets.items() if key[1] == T.NSEC3)


def test_signature_timing_uses_offset_and_jitter() -> None:
    policy = policy_for(13, "nsec")
    signed = sign_zone(sample_zone(), assignments(13), policy, NOW)
    now = int(NOW.timestamp())
    expirations = set()
    for key, rrset in signed.rrsets.items():
        if key[1] != T.RRSIG:
            continue
        for sig in rrset:
            assert sig.inception == now - policy.inception_offset
            latest = now + policy.signature_validity
            assert latest - policy.jitter <= sig.expiration <= latest
            expirations.add(sig.expiration)
    assert len(expirations) > 5


@pytest.mark.parametrize("denial", ["nsec", "nsec3"])
def test_repeated_signing_changes_nothing(denial: str) -> None:
    signer = ZoneSigner(assignments(13), policy_for(13, denial))
    first = signer.sign(sample_zone(), NOW)
    second = signer.sign(sample_zone(), NOW + dt.timedelta(hours=1), first)
    assert second.made == 0
    assert second.reused == first.made
    assert second.zone.to_text() == first.zone.to_text()
    third = signer.sign(sample_zone(), NOW + dt.timedelta(hours=2), first.zone)
    assert third.zone.to_text() == first.zone.to_text()


def test_signatures_in_refresh_window_are_renewed() -> None:
    policy = policy_for(13, "nsec")
    signer = ZoneSigner(assignments(13), policy)
    first = signer.sign(sample_zone(), NOW)
    # Halfway through the jitter range, part of the signatures reached the refresh window.
    later = NOW + dt.timedelta(
        seconds=policy.signature_validity - policy.refresh - policy.jitter // 2
    )
    zone = sample_zone()
    second = signer.sign(zone, later, first)
    assert 0 < second.made < first.made
    assert second.made + second.reused == first.made
    limit = int(later.timestamp()) + policy.refresh
    for key, rrset in first.zone.rrsets.items():
        if key[1] != T.RRSIG:
            assert second.zone.rrsets[key] == rrset
            assert second.zone.rrsets[key].ttl == rrset.ttl
            continue
        old = next(iter(rrset))
        new = next(iter(second.zone.rrsets[key]))
        if old.expiration <= limit:
            assert new.inception == int(later.timestamp()) - policy.inception_offset
        else:
            assert new == old
    assert verify_zone(second.zone, later) == []
    assert second.refresh_due > int(later.timestamp())


def test_changed_rrset_is_resigned_alone() -> None:
    signer = ZoneSigner(assignments(13), policy_for(13, "nsec"))
    first = signer.sign(sample_zone(), NOW)
    zone = sample_zone()
    zone.replace(dns.rrset.from_text("mx1.example.com.", 3600, "IN", "A", "192.0.2.26"))
    second = signer.sign(zone, NOW, first)
    assert second.made == 1
    assert verify_zone(second.zone, NOW) == []


def test_published_and_active_roles() -> None:
    ksk, zsk = generate_key(13, KSK_FLAGS), generate_key(13, ZSK_FLAGS)
    standby = generate_key(13, ZSK_FLAGS)
    incoming = generate_key(15, ZSK_FLAGS)
    keys = [
        KeyAssignment(ksk, KeyRole.KSK),
        KeyAssignment(zsk, KeyRole.ZSK),
        KeyAssignment(standby, KeyRole.ZSK, published=True, active=False),
        KeyAssignment(incoming, KeyRole.ZSK, published=False, active=True),
    ]
    signed = sign_zone(sample_zone(), keys, policy_for(13, "nsec"), NOW)
    dnskeys = signed.get(ORIGIN, T.DNSKEY)
    assert {ksk.dnskey, zsk.dnskey, standby.dnskey} == set(dnskeys)
    tags = {
        sig.key_tag for key, rrset in signed.rrsets.items() if key[1] == T.RRSIG for sig in rrset
    }
    assert standby.key_tag not in tags
    assert incoming.key_tag in tags
    dnskey_sigs = signed.get(ORIGIN, T.RRSIG, T.DNSKEY)
    assert {sig.key_tag for sig in dnskey_sigs} == {ksk.key_tag}
    mx_sigs = signed.get(ORIGIN, T.RRSIG, T.MX)
    assert {sig.key_tag for sig in mx_sigs} == {zsk.key_tag, incoming.key_tag}


def test_verify_zone_ignores_unpublished_signer() -> None:
    unpublished = KeyAssignment(generate_key(15, ZSK_FLAGS), KeyRole.ZSK, published=False)
    signed = sign_zone(sample_zone(), [*assignments(13), unpublished], policy_for(13, "nsec"), NOW)
    assert verify_zone(signed, NOW) == []


def test_cds_and_cdnskey_are_published_and_signed_by_ksk() -> None:
    keys = assignments(13)
    signed = sign_zone(sample_zone(), keys, policy_for(13, "nsec"), NOW)
    cds = signed.get(ORIGIN, T.CDS)
    assert cds is not None
    assert {rdata.key_tag for rdata in cds} == {keys[0].key.key_tag}
    assert signed.get(ORIGIN, T.CDNSKEY) is not None
    cds_sigs = signed.get(ORIGIN, T.RRSIG, T.CDS)
    assert {sig.key_tag for sig in cds_sigs} == {keys[0].key.key_tag}


def test_keyset_ttls_follow_policy() -> None:
    policy = DnssecPolicy(dnskey_ttl=7200, cds_ttl=600)
    signed = sign_zone(sample_zone(), assignments(13), policy, NOW)
    assert signed.get(ORIGIN, T.DNSKEY).ttl == 7200
    assert signed.get(ORIGIN, T.RRSIG, T.DNSKEY).ttl == 7200
    assert signed.get(ORIGIN, T.CDS).ttl == 600
    assert signed.get(ORIGIN, T.CDNSKEY).ttl == 600


def test_cds_delete_form_is_signed_as_given() -> None:
    zone = sample_zone()
    for rrset in cds_delete_rrsets(ORIGIN, 3600):
        zone.add(rrset)
    signed = sign_zone(zone, assignments(13), policy_for(13, "nsec"), NOW)
    assert signed.get(ORIGIN, T.CDS)[0].to_text() == "0 0 0 00"
    assert signed.get(ORIGIN, T.RRSIG, T.CDS) is not None
    assert verify_zone(signed, NOW) == []


def test_csk_signs_everything() -> None:
    csk = generate_key(15, KSK_FLAGS)
    policy = DnssecPolicy(algorithm=15, key_layout="csk")
    signed = sign_zone(sample_zone(), [KeyAssignment(csk, KeyRole.CSK)], policy, NOW)
    assert verify_zone(signed, NOW) == []


def test_signer_requires_keys_for_both_roles() -> None:
    ksk = generate_key(13, KSK_FLAGS)
    with pytest.raises(Exception, match="no active ZSK or CSK"):
        ZoneSigner([KeyAssignment(ksk, KeyRole.KSK)], DnssecPolicy())


def test_signer_requires_soa() -> None:
    zone = ZoneData(ORIGIN, [dns.rrset.from_text(ORIGIN, 3600, "IN", "NS", "ns1.example.com.")])
    with pytest.raises(Exception, match="has no SOA"):
        sign_zone(zone, assignments(13), DnssecPolicy(), NOW)


# ---------------------------------------------------------------------------------------
# Incremental update


def mail_zone(users: int) -> ZoneData:
    zone = sample_zone()
    for index in range(users):
        zone.replace(smimea(index, "00"))
    return zone


def smimea(index: int, data: str) -> dns.rrset.RRset:
    owner = hashlib.sha256(f"user{index}".encode()).hexdigest()[:56] + "._smimecert." + ORIGIN
    return dns.rrset.from_text(owner, 3600, "IN", "SMIMEA", f"3 1 1 {data * 32}")


@pytest.mark.parametrize("denial", ["nsec", "nsec3"])
def test_update_resigns_one_changed_rrset(denial: str) -> None:
    signer = ZoneSigner(assignments(13), policy_for(13, denial))
    first = signer.sign(mail_zone(50), NOW)
    zone = ZoneData(ORIGIN)
    zone.rrsets = dict(first._state.unsigned)
    zone.replace(smimea(7, "11"))
    second = signer.update(first, zone, NOW + dt.timedelta(minutes=5))
    assert second.made == 1
    assert verify_zone(second.zone, NOW) == []
    full = signer.sign(zone, NOW + dt.timedelta(minutes=5), first)
    changed = smimea(7, "11")
    assert_same_data(full.zone, second.zone, except_signatures_of={(changed.name, T.SMIMEA)})


@pytest.mark.parametrize("denial", ["nsec", "nsec3"])
def test_update_adds_and_removes_names(denial: str) -> None:
    signer = ZoneSigner(assignments(13), policy_for(13, denial))
    first = signer.sign(mail_zone(30), NOW)
    zone = ZoneData(ORIGIN)
    zone.rrsets = dict(first._state.unsigned)
    zone.replace(smimea(1000, "22"))
    removed = smimea(3, "00")
    del zone.rrsets[(removed.name, T.SMIMEA, NONE)]
    second = signer.update(first, zone, NOW)
    assert [str(p) for p in verify_zone(second.zone, NOW)] == []
    assert second.zone.get(removed.name, T.NSEC) is None
    third = signer.update(second, mail_zone(30), NOW)
    assert [str(p) for p in verify_zone(third.zone, NOW)] == []
    assert_same_data(first.zone, third.zone, except_signatures_of=None)


def assert_same_data(
    expected: ZoneData, actual: ZoneData, except_signatures_of: set[tuple[object, T]] | None
) -> None:
    """Check equal RRsets, and equal RRSIGs except where fresh ECDSA signatures must differ."""
    assert set(expected.rrsets) == set(actual.rrsets)
    for key, rrset in expected.rrsets.items():
        fresh = except_signatures_of is None or (key[0], key[2]) in except_signatures_of
        if key[1] == T.RRSIG and fresh:
            continue
        assert actual.rrsets[key] == rrset, key
        assert actual.rrsets[key].ttl == rrset.ttl, key


@pytest.mark.parametrize("denial", ["nsec", "nsec3"])
def test_update_adds_type_at_existing_name(denial: str) -> None:
    signer = ZoneSigner(assignments(13), policy_for(13, denial))
    first = signer.sign(mail_zone(10), NOW)
    zone = ZoneData(ORIGIN)
    zone.rrsets = dict(first._state.unsigned)
    zone.replace(dns.rrset.from_text("ns1.example.com.", 3600, "IN", "AAAA", "2001:db8::53"))
    second = signer.update(first, zone, NOW)
    assert [str(p) for p in verify_zone(second.zone, NOW)] == []
    assert second.zone.get("ns1.example.com.", T.RRSIG, T.AAAA) is not None


def test_update_without_changes_returns_previous() -> None:
    signer = ZoneSigner(assignments(13), policy_for(13, "nsec"))
    first = signer.sign(mail_zone(5), NOW)
    zone = ZoneData(ORIGIN)
    zone.rrsets = dict(first._state.unsigned)
    again = signer.update(first, zone, NOW)
    assert again.zone is first.zone
    assert again.made == 0


def test_update_after_refresh_due_renews() -> None:
    policy = policy_for(13, "nsec")
    signer = ZoneSigner(assignments(13), policy)
    first = signer.sign(mail_zone(5), NOW)
    zone = ZoneData(ORIGIN)
    zone.rrsets = dict(first._state.unsigned)
    later = dt.datetime.fromtimestamp(first.refresh_due + 1, dt.UTC)
    second = signer.update(first, zone, later)
    assert second.made > 0
    assert verify_zone(second.zone, later) == []


def test_update_with_new_delegation_falls_back_to_full_pass() -> None:
    signer = ZoneSigner(assignments(13), policy_for(13, "nsec"))
    first = signer.sign(mail_zone(5), NOW)
    zone = ZoneData(ORIGIN)
    zone.rrsets = dict(first._state.unsigned)
    delegation = dns.rrset.from_text(
        "child.example.com.", 3600, "IN", "NS", "ns.child.example.com."
    )
    zone.replace(delegation)
    zone.replace(dns.rrset.from_text("ns.child.example.com.", 3600, "IN", "A", "192.0.2.9"))
    second = signer.update(first, zone, NOW)
    assert [str(p) for p in verify_zone(second.zone, NOW)] == []
    assert second.zone.get("ns.child.example.com.", T.RRSIG, T.A) is None


def test_parallel_signing_matches_verify(tmp_path: Path) -> None:
    signer = ZoneSigner(assignments(13), policy_for(13, "nsec3"), threads=2)
    signed = signer.sign(mail_zone(2100), NOW)
    assert signed.made > 4000
    assert verify_zone(signed.zone, NOW) == []


# ---------------------------------------------------------------------------------------
# Wire helpers


def test_hashed_name_hashes_and_compares_like_name() -> None:
    generator = random.Random(5)
    for _ in range(300):
        labels = [
            bytes(generator.randrange(256) for _ in range(generator.randrange(0, 20)))
            for _ in range(generator.randrange(1, 4))
        ]
        try:
            name = dns.name.Name([*[label for label in labels if label], b""])
        except dns.name.NameTooLong:
            continue
        hashed = _wire.hashed_name(name)
        assert hash(hashed) == hash(name)
        assert hashed == name
        assert name == hashed
        upper = dns.name.Name([label.upper() for label in name.labels])
        assert hashed == upper
        assert hash(hashed) == hash(upper)
    assert _wire.hashed_name(dns.name.from_text("a.example.")) != dns.name.from_text("b.example.")


def test_canonical_key_orders_like_dnspython() -> None:
    origin = dns.name.from_text("example.")
    texts = [
        "example.",
        "a.example.",
        "yljkjljk.a.example.",
        "Z.a.example.",
        "zABC.a.EXAMPLE.",
        "z.example.",
        "\\001.z.example.",
        "*.z.example.",
        "\\200.z.example.",
    ]
    names = [dns.name.from_text(text) for text in texts]
    by_key = sorted(names, key=lambda name: _wire.canonical_key(name, len(origin.labels)))
    assert by_key == sorted(names)


def test_nsec3_hash_rfc5155_appendix_a() -> None:
    # RFC 5155, Appendix A: salt aabbccdd, 12 iterations.
    expected = {
        "example.": "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom",
        "a.example.": "35mthgpgcu1qg68fab165klnsnk3dpvl",
        "ai.example.": "gjeqe526plbf1g8mklp59enfd789njgi",
        "ns1.example.": "2t7b4g4vsa5smi47k61mv5bv1a22bojr",
        "ns2.example.": "q04jkcevqvmu85r014c7dkba38o0ji5r",
        "w.example.": "k8udemvp1j2f7eg6jebps17vp3n8i58h",
        "*.w.example.": "r53bq7cc2uvmubfu5ocmm6pers9tk9en",
        "x.w.example.": "b4um86eghhds6nea196smvmlo4ors995",
        "y.w.example.": "ji6neoaepv8b5o6k4ev33abha8ht9fgc",
        "x.y.w.example.": "2vptu5timamqttgl4luu9kg21e0aor3s",
        "xx.example.": "t644ebqk9bibcna874givr6joj62mlhv",
    }
    for text, label in expected.items():
        wire = _wire.canonical_wire(dns.name.from_text(text))
        digest = _wire.nsec3_hash(wire, bytes.fromhex("aabbccdd"), 12)
        assert _wire.nsec3_label(digest).decode() == label, text


def test_ed25519_signature_reproduces_rfc8080_errata() -> None:
    # RFC 8080, section 6.1 with the signature as corrected by erratum 4935. Ed25519 is
    # deterministic, so the signer must reproduce it bit for bit.
    import base64

    from cryptography.hazmat.primitives.asymmetric import ed25519

    private = base64.b64decode("ODIyNjAzODQ2MjgwODAxMjI2NDUxOTAyMDQxNDIyNjI=")
    key = InMemoryKey(ed25519.Ed25519PrivateKey.from_private_bytes(private), 15, KSK_FLAGS)
    zone = ZoneData.from_text(
        "@ 3600 IN SOA ns hostmaster 1 7200 3600 86400 3600\n@ 3600 IN MX 10 mail.example.com.\n",
        ORIGIN,
    )
    inception, expiration = 1438207200, 1440021600
    policy = DnssecPolicy(
        algorithm=15,
        key_layout="csk",
        signature_validity=expiration - inception - 3600,
        inception_offset=3600,
        jitter=0,
        refresh=86400,
        publish_cds=False,
    )
    now = dt.datetime.fromtimestamp(inception + 3600, dt.UTC)
    signed = sign_zone(zone, [KeyAssignment(key, KeyRole.CSK)], policy, now)
    rrsig = next(iter(signed.get(ORIGIN, T.RRSIG, T.MX)))
    expected = dns.rdata.from_text(
        "IN",
        "RRSIG",
        "MX 15 2 3600 1440021600 1438207200 3613 example.com. oL9krJun7xfBOIWcGHi7mag5/hdZrKWw15jP"
        "GrHpjQeRAvTdszaPD+QLs3fx8A4M3e23mRZ9VrbpMngwcrqNAg==",
    )
    assert rrsig == expected
    assert rrsig.signature == expected.signature


def test_signer_rdata_behave_like_dnspython_rdata() -> None:
    signed = sign_zone(sample_zone(), assignments(13), policy_for(13, "nsec3"), NOW)
    for key, rrset in signed.rrsets.items():
        if key[1] not in (T.RRSIG, T.NSEC3):
            continue
        for rdata in rrset:
            plain = dns.rdata.from_text("IN", key[1], rdata.to_text())
            assert plain == rdata
            assert hash(plain) == hash(rdata)
            assert plain.to_digestable() == rdata.to_digestable()
    any_rrsig = next(iter(signed.get(ORIGIN, T.RRSIG, T.SOA)))
    assert any_rrsig.replace(expiration=5).expiration == 5


def test_sign_zone_result_is_signed_zone_type() -> None:
    signer = ZoneSigner(assignments(13), policy_for(13, "nsec"))
    assert isinstance(signer.sign(sample_zone(), NOW), SignedZone)
