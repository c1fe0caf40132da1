"""DnssecPolicy validation, duration and algorithm parsing, and the SOA cross-check."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from provisioner.dnssec.policy import (
    DnssecPolicy,
    check_policy_against_soa,
    parse_algorithm,
    parse_duration,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (3600, 3600),
        ("3600", 3600),
        ("1h", 3600),
        ("14d", 1209600),
        ("2d12h", 216000),
        ("1w", 604800),
        (" 30M ", 1800),
        (0, 0),
    ],
)
def test_parse_duration_accepts(text: object, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1y", "h", "-5", -5, True, 1.5, "1h 30m"])
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "number"),
    [
        (13, 13),
        ("13", 13),
        ("ECDSAP256SHA256", 13),
        ("ecdsap384sha384", 14),
        ("ED25519", 15),
        ("RSASHA256", 8),
    ],
)
def test_parse_algorithm_accepts(value: object, number: int) -> None:
    assert parse_algorithm(value) == number


@pytest.mark.parametrize("value", [1, 3, 5, 6, 7, 12, "RSASHA1", "RSAMD5", "DSA"])
def test_parse_algorithm_rejects_rfc8624_must_not(value: object) -> None:
    with pytest.raises(ValueError, match="RFC 8624") as error:
        parse_algorithm(value)
    assert "ECDSAP256SHA256" in str(error.value)


@pytest.mark.parametrize("value", [16, 10, "FOO", None])
def test_parse_algorithm_rejects_unsupported(value: object) -> None:
    with pytest.raises(ValueError, match="allowed are"):
        parse_algorithm(value)


def test_policy_defaults() -> None:
    policy = DnssecPolicy()
    assert policy.algorithm == 13
    assert policy.key_layout == "ksk-zsk"
    assert policy.denial == "nsec"
    assert policy.nsec3.iterations == 0
    assert policy.nsec3.salt == ""
    assert policy.nsec3.opt_out is False
    assert policy.ds_digests == [2]
    assert policy.publish_cds is True
    assert policy.signature_validity == 14 * 86400
    assert policy.warnings == []


def test_policy_parses_durations_and_names() -> None:
    policy = DnssecPolicy(
        algorithm="ED25519",
        signature_validity="21d",
        refresh="7d",
        jitter="1d",
        inception_offset="2h",
        ds_digests=["SHA-384", 2],
    )
    assert policy.algorithm == 15
    assert policy.signature_validity == 21 * 86400
    assert policy.refresh == 7 * 86400
    assert policy.inception_offset == 7200
    assert policy.ds_digests == [2, 4]


def test_policy_rsa_bits() -> None:
    assert DnssecPolicy(algorithm=8).rsa_bits == 2048
    assert DnssecPolicy(algorithm=8, rsa_bits=4096).rsa_bits == 4096


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"unknown": 1}, "Extra inputs are not permitted"),
        ({"algorithm": 5}, "RFC 8624"),
        ({"algorithm": 8, "rsa_bits": 1024}, "2048 to 4096"),
        ({"algorithm": 13, "rsa_bits": 2048}, "only to algorithm 8"),
        ({"refresh": "13d"}, "at most 90%"),
        ({"jitter": "10d"}, "jitter"),
        ({"ds_digests": [1]}, "SHA-1"),
        ({"ds_digests": []}, "at least one"),
        ({"nsec3": {"iterations": 101}}, "RFC 9276"),
        ({"nsec3": {"salt": "xyz"}}, "hexadecimal"),
        ({"nsec3": {"extra": True}}, "Extra inputs"),
        ({"key_layout": "single"}, "ksk-zsk"),
        ({"denial": "nsec5"}, "nsec3"),
        ({"signature_validity": "10m"}, "too short"),
    ],
)
def test_policy_rejects(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DnssecPolicy(**fields)


def test_policy_warns_about_nsec3_iterations() -> None:
    policy = DnssecPolicy(denial="nsec3", nsec3={"iterations": 10, "salt": "aabb"})
    assert any("iterations" in warning for warning in policy.warnings)
    assert any("salt" in warning for warning in policy.warnings)


def test_soa_expire_longer_than_validity_is_reported() -> None:
    problems = check_policy_against_soa(DnssecPolicy(), 28 * 86400, 3600, 300)
    assert len(problems) == 1
    assert "SOA expire" in problems[0]


def test_soa_within_validity_passes() -> None:
    assert check_policy_against_soa(DnssecPolicy(), 7 * 86400, 3600, 300) == []
