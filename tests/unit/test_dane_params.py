"""Parsing and checking of user-given TLSA and SMIMEA fields."""

from __future__ import annotations

import pytest

from provisioner.dane.params import (
    MatchingType,
    Selector,
    Usage,
    check_association_data,
    parse_association_text,
    parse_parameters,
    parse_record_text,
)
from provisioner.dane.records import smimea_rdata_from_data, tlsa_rdata_from_data
from provisioner.errors import DaneError


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (("3", "1", "1"), (Usage.DANE_EE, Selector.SPKI, MatchingType.SHA2_256)),
        ((3, 1, 1), (Usage.DANE_EE, Selector.SPKI, MatchingType.SHA2_256)),
        (("DANE-EE", "SPKI", "SHA2-256"), (Usage.DANE_EE, Selector.SPKI, MatchingType.SHA2_256)),
        (("dane-ta", "cert", "sha2-512"), (Usage.DANE_TA, Selector.CERT, MatchingType.SHA2_512)),
        (("PKIX-TA", "Cert", "Full"), (Usage.PKIX_TA, Selector.CERT, MatchingType.FULL)),
        (("PKIX-EE", " 0 ", "0"), (Usage.PKIX_EE, Selector.CERT, MatchingType.FULL)),
    ],
)
def test_parameters_parse(given: tuple[object, ...], expected: tuple[object, ...]) -> None:
    parameters = parse_parameters(*given)  # type: ignore[arg-type]
    assert (parameters.usage, parameters.selector, parameters.matching) == expected


@pytest.mark.parametrize(
    ("given", "field"),
    [
        (("4", "1", "1"), "certificate usage"),
        (("-1", "1", "1"), "certificate usage"),
        (("3", "2", "1"), "selector"),
        (("3", "1", "3"), "matching type"),
        (("3", "1", "SHA1"), "matching type"),
        (("DANE", "1", "1"), "certificate usage"),
        ((True, 1, 1), "certificate usage"),
        ((3, 1, 255), "matching type"),
    ],
)
def test_parameters_reject(given: tuple[object, ...], field: str) -> None:
    with pytest.raises(DaneError, match=f"invalid {field}") as raised:
        parse_parameters(*given)  # type: ignore[arg-type]
    assert raised.value.hint is not None
    assert "use one of" in raised.value.hint


@pytest.mark.parametrize(
    ("matching", "length"),
    [(1, 31), (1, 33), (1, 64), (2, 32), (2, 63), (2, 65), (1, 0), (0, 0)],
)
def test_wrong_digest_length_rejected(matching: int, length: int) -> None:
    with pytest.raises(DaneError, match="invalid association data"):
        check_association_data(matching, b"\x01" * length)
    with pytest.raises(DaneError, match="invalid association data"):
        tlsa_rdata_from_data(parse_parameters(3, 1, matching), b"\x01" * length)
    with pytest.raises(DaneError, match="invalid association data"):
        smimea_rdata_from_data(parse_parameters(3, 0, matching), b"\x01" * length)


def test_right_digest_lengths_accepted() -> None:
    check_association_data(1, b"\x00" * 32)
    check_association_data(2, b"\x00" * 64)
    check_association_data(0, b"\x30\x00")


def test_record_text_parses() -> None:
    digest = "ab" * 32
    parameters, data = parse_record_text(f"3 1 1 {digest[:10]} {digest[10:]}")
    assert str(parameters) == "3 1 1"
    assert data == bytes.fromhex(digest)


def test_record_text_rejects_short_digest() -> None:
    with pytest.raises(DaneError, match="32 octets for matching type 2"):
        parse_record_text("3 1 2 " + "ab" * 32)


def test_record_text_rejects_non_hex() -> None:
    with pytest.raises(DaneError, match="not hexadecimal"):
        parse_association_text(3, 1, 1, "zz" * 32)


def test_record_text_rejects_missing_fields() -> None:
    with pytest.raises(DaneError, match="expected usage"):
        parse_record_text("3 1 1")
