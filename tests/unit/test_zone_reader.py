"""The fast zone reader gives the same ZoneData as dnspython's zone parser, or steps aside."""

from __future__ import annotations

import datetime as dt
import random

import dns.exception
import dns.name
import dns.rrset
import dns.zone
import pytest

from provisioner.dnssec.keys import generate_key
from provisioner.dnssec.policy import DnssecPolicy
from provisioner.dnssec.signer import KeyAssignment, KeyRole, sign_zone
from provisioner.zone.model import ZoneData
from provisioner.zone.reader import read_canonical

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
ORIGIN = dns.name.from_text("example.org.")
SMIMEA = "3 1 1 " + "ab" * 32


def _unsigned() -> ZoneData:
    zone = ZoneData(ORIGIN)
    for line in [
        "example.org. 300 IN SOA ns1.example.org. h.example.org. 7 3600 600 604800 300",
        "example.org. 300 IN NS ns1.example.org.",
        "example.org. 300 IN MX 10 mx1.example.org.",
        'example.org. 300 IN TXT "v=spf1 mx -all" "two words; with a semicolon"',
        'example.org. 300 IN CAA 0 issue "ca.example"',
        "ns1.example.org. 300 IN A 127.0.0.1",
        "ns1.example.org. 300 IN AAAA ::1",
        "www.example.org. 300 IN CNAME example.org.",
        "*.wild.example.org. 300 IN TXT wildcard",
        "a\\032b.example.org. 300 IN A 127.0.0.2",
        "_25._tcp.mx1.example.org. 300 IN TLSA 3 1 1 " + "cd" * 32,
        "_25._tcp.mx1.example.org. 300 IN TLSA 2 0 0 " + "ef" * 300,
        "u1._smimecert.example.org. 300 IN SMIMEA " + SMIMEA,
        "child.example.org. 300 IN NS ns.child.example.org.",
        "child.example.org. 300 IN DS 12345 13 2 " + "01" * 32,
        "ns.child.example.org. 300 IN A 127.0.0.3",
    ]:
        zone.add(dns.rrset.from_text(*_split(line)))
    return zone


def _split(line: str) -> tuple[str, int, str, str, str]:
    owner, ttl, rdclass, rdtype, rdata = line.split(" ", 4)
    return owner, int(ttl), rdclass, rdtype, rdata


def _with_dnspython(text: str) -> ZoneData:
    zone = dns.zone.from_text(text, ORIGIN, relativize=False, check_origin=False)
    return ZoneData.from_dns_zone(zone)


def _signed(denial: str, algorithm: int, salt: str, second_zsk: bool) -> ZoneData:
    keys = [
        KeyAssignment(generate_key(algorithm, 257), KeyRole.KSK),
        KeyAssignment(generate_key(algorithm, 256), KeyRole.ZSK),
    ]
    if second_zsk:
        # Two active ZSKs give RRSIG RRsets of two RRs, as during an algorithm rollover.
        keys.append(KeyAssignment(generate_key(13, 256), KeyRole.ZSK))
    policy = DnssecPolicy.model_validate(
        {"algorithm": algorithm, "denial": denial, "nsec3": {"salt": salt}}
    )
    return sign_zone(_unsigned(), keys, policy, NOW)


@pytest.mark.parametrize(
    ("denial", "algorithm", "salt", "second_zsk"),
    [
        ("nsec", 13, "", False),
        ("nsec3", 13, "", False),
        ("nsec3", 8, "aabb", True),
        ("nsec", 15, "", True),
    ],
)
def test_signed_zone_reads_like_dnspython(
    denial: str, algorithm: int, salt: str, second_zsk: bool
) -> None:
    text = _signed(denial, algorithm, salt, second_zsk).to_text()
    fast = read_canonical(text, ORIGIN)
    assert fast is not None
    assert fast == _with_dnspython(text)
    assert fast.to_text() == text


def test_unsigned_zone_reads_like_dnspython() -> None:
    text = _unsigned().to_text()
    fast = read_canonical(text, ORIGIN)
    assert fast is not None
    assert fast == _with_dnspython(text)
    assert fast.to_text() == text


def test_rrs_of_one_rrset_merge() -> None:
    text = (
        "$ORIGIN example.org.\n"
        "a.example.org. 300 IN A 127.0.0.1\n"
        "a.example.org. 60 IN A 127.0.0.2\n"
    )
    fast = read_canonical(text, ORIGIN)
    assert fast is not None
    assert fast == _with_dnspython(text)
    rrset = fast.get("a.example.org.", "A")
    assert rrset is not None
    assert len(rrset) == 2
    assert rrset.ttl == 60


@pytest.mark.parametrize(
    "text",
    [
        "$ORIGIN example.org.\n$TTL 300\na.example.org. IN A 127.0.0.1\n",
        "$ORIGIN example.org.\n; a comment\na.example.org. 300 IN A 127.0.0.1\n",
        "$ORIGIN example.org.\na 300 IN A 127.0.0.1\n",
        "$ORIGIN example.org.\na.example.org. 300 IN A (\n 127.0.0.1 )\n",
        "$ORIGIN example.org.\na.example.org.  300 IN A 127.0.0.1\n",
        "$ORIGIN example.org.\na.example.org. 300 in A 127.0.0.1\n",
        "$ORIGIN example.org.\na.example.org. 5m IN A 127.0.0.1\n",
        "a.example.org. 300 IN A 127.0.0.1\n",
    ],
)
def test_other_text_goes_to_dnspython(text: str) -> None:
    assert read_canonical(text, ORIGIN) is None
    zone = ZoneData.from_text(text, ORIGIN)
    assert zone.get("a.example.org.", "A") is not None


def test_ttl_out_of_range_goes_to_dnspython() -> None:
    text = "$ORIGIN example.org.\na.example.org. 4294967296 IN NSEC b.example.org. A\n"
    assert read_canonical(text, ORIGIN) is None


def test_owner_outside_zone_goes_to_dnspython() -> None:
    text = "$ORIGIN example.org.\na.example.net. 300 IN A 127.0.0.1\n"
    assert read_canonical(text, ORIGIN) is None


def test_bad_rdata_goes_to_dnspython() -> None:
    text = "$ORIGIN example.org.\na.example.org. 300 IN A 300.0.0.1\n"
    assert read_canonical(text, ORIGIN) is None
    with pytest.raises(dns.exception.SyntaxError):
        ZoneData.from_text(text, ORIGIN)


def _random_zone(generator: random.Random) -> ZoneData:
    zone = ZoneData(ORIGIN)
    zone.add(
        dns.rrset.from_text(
            ORIGIN, 300, "IN", "SOA", "ns1.example.org. h.example.org. 1 3600 600 604800 300"
        )
    )
    alphabet = 'abcXYZ09-_*.\\ ;"()'
    for _ in range(40):
        label = "".join(generator.choice(alphabet) for _ in range(generator.randrange(1, 8)))
        owner = dns.name.Name([label.encode()]).concatenate(ORIGIN)
        rdtype, rdata = generator.choice(
            [
                ("A", f"192.0.2.{generator.randrange(256)}"),
                ("AAAA", f"2001:db8::{generator.randrange(65536):x}"),
                ("TXT", '"' + label.replace("\\", "\\\\").replace('"', '\\"') + '" x'),
                ("MX", f"{generator.randrange(100)} mx.example.org."),
                ("SRV", "0 5 25 mx.example.org."),
                ("CAA", '0 iodef "mailto:a@example.org"'),
                ("TLSA", f"3 1 1 {generator.randbytes(32).hex()}"),
                ("SMIMEA", f"3 0 0 {generator.randbytes(generator.randrange(1, 300)).hex()}"),
            ]
        )
        zone.add(dns.rrset.from_text(owner, generator.randrange(1, 86400), "IN", rdtype, rdata))
    return zone


@pytest.mark.parametrize("seed", range(12))
def test_random_zones_read_like_dnspython(seed: int) -> None:
    generator = random.Random(seed)
    zone = _random_zone(generator)
    if seed % 2:
        keys = [
            KeyAssignment(generate_key(13, 257), KeyRole.KSK),
            KeyAssignment(generate_key(13, 256), KeyRole.ZSK),
        ]
        denial = "nsec3" if seed % 4 == 1 else "nsec"
        zone = sign_zone(zone, keys, DnssecPolicy(denial=denial), NOW)
    text = zone.to_text()
    fast = read_canonical(text, ORIGIN)
    assert fast is not None
    assert fast == _with_dnspython(text)
    assert fast.to_text() == text
