"""TLSA and SMIMEA parameters (usage, selector, matching type) and association data checks.

The field values and mnemonics are those of RFC 6698 and RFC 7218; SMIMEA (RFC 8162) uses
the same three fields with the same meanings.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from provisioner.errors import DaneError


class Usage(enum.IntEnum):
    """Certificate usage field."""

    PKIX_TA = 0
    PKIX_EE = 1
    DANE_TA = 2
    DANE_EE = 3


class Selector(enum.IntEnum):
    """Selector field: which part of the certificate is matched."""

    CERT = 0
    SPKI = 1


class MatchingType(enum.IntEnum):
    """Matching type field: how the selected data is presented."""

    FULL = 0
    SHA2_256 = 1
    SHA2_512 = 2


DIGEST_LENGTHS = {MatchingType.SHA2_256: 32, MatchingType.SHA2_512: 64}


@dataclass(frozen=True)
class DaneParameters:
    """The usage, selector and matching type of one TLSA or SMIMEA record."""

    usage: Usage
    selector: Selector
    matching: MatchingType

    def __str__(self) -> str:
        return f"{int(self.usage)} {int(self.selector)} {int(self.matching)}"


TLSA_DEFAULT = DaneParameters(Usage.DANE_EE, Selector.SPKI, MatchingType.SHA2_256)
# 3 0 0 publishes the whole certificate, so a mail client can fetch it and encrypt to it.
SMIMEA_DEFAULT = DaneParameters(Usage.DANE_EE, Selector.CERT, MatchingType.FULL)


def _mnemonic(member: enum.IntEnum) -> str:
    return member.name.replace("_", "-")


def _parse_field(value: int | str, kind: type[enum.IntEnum], field_name: str) -> enum.IntEnum:
    member = None
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            member = kind._value2member_map_.get(int(text))
        else:
            member = kind.__members__.get(text.upper().replace("-", "_"))
    elif isinstance(value, int) and not isinstance(value, bool):
        member = kind._value2member_map_.get(value)
    if member is None:
        allowed = ", ".join(f"{int(item)} ({_mnemonic(item)})" for item in kind)
        raise DaneError(f"invalid {field_name} {value!r}", hint=f"use one of: {allowed}")
    return member  # type: ignore[return-value]


def parse_usage(value: int | str) -> Usage:
    """Parse a usage given as 0-3 or as PKIX-TA, PKIX-EE, DANE-TA, DANE-EE."""
    return Usage(_parse_field(value, Usage, "certificate usage"))


def parse_selector(value: int | str) -> Selector:
    """Parse a selector given as 0-1 or as Cert, SPKI."""
    return Selector(_parse_field(value, Selector, "selector"))


def parse_matching(value: int | str) -> MatchingType:
    """Parse a matching type given as 0-2 or as Full, SHA2-256, SHA2-512."""
    return MatchingType(_parse_field(value, MatchingType, "matching type"))


def parse_parameters(usage: int | str, selector: int | str, matching: int | str) -> DaneParameters:
    """Parse user-given parameters (numbers or RFC 7218 mnemonics); raise DaneError if invalid."""
    return DaneParameters(parse_usage(usage), parse_selector(selector), parse_matching(matching))


def compute_matching_data(selected: bytes, matching: MatchingType | int) -> bytes:
    """Return the association data for ``selected`` (certificate or SPKI DER) and ``matching``.

    Raise DaneError for empty input: a digest of nothing would match no certificate.
    """
    matching = MatchingType(matching)
    if not selected:
        raise DaneError(
            "cannot derive association data from an empty certificate or SubjectPublicKeyInfo",
            hint="check that the certificate file is complete",
        )
    if matching is MatchingType.SHA2_256:
        return hashlib.sha256(selected).digest()
    if matching is MatchingType.SHA2_512:
        return hashlib.sha512(selected).digest()
    return selected


def check_association_data(matching: MatchingType | int, data: bytes) -> None:
    """Raise DaneError unless ``data`` has the length ``matching`` requires.

    SHA2-256 data is 32 octets and SHA2-512 data 64; Full data must not be empty.
    """
    matching = MatchingType(matching)
    expected = DIGEST_LENGTHS.get(matching)
    if expected is None:
        if not data:
            raise DaneError(
                "invalid association data: matching type 0 (Full) with empty data",
                hint="give the DER certificate or SubjectPublicKeyInfo",
            )
        return
    if len(data) != expected:
        raise DaneError(
            f"invalid association data: {len(data)} octets for matching type "
            f"{int(matching)} ({_mnemonic(matching)}), which needs {expected}",
            hint=f"give the {expected * 8}-bit digest as {expected * 2} hexadecimal digits",
        )


def parse_association_text(
    usage: int | str, selector: int | str, matching: int | str, hex_data: str
) -> tuple[DaneParameters, bytes]:
    """Parse and check user-given record fields: three parameters and hexadecimal data."""
    parameters = parse_parameters(usage, selector, matching)
    text = "".join(hex_data.split())
    try:
        data = bytes.fromhex(text)
    except ValueError:
        raise DaneError(
            f"invalid association data {hex_data[:20]!r}: not hexadecimal",
            hint="give the data as hexadecimal digits",
        ) from None
    check_association_data(parameters.matching, data)
    return parameters, data


def parse_record_text(text: str) -> tuple[DaneParameters, bytes]:
    """Parse the rdata text of a TLSA or SMIMEA record, such as ``3 1 1 0a1b...``."""
    fields = text.split()
    if len(fields) < 4:
        raise DaneError(
            f"invalid record data {text!r}: expected usage, selector, matching type and data",
            hint="write it as, for example, 3 1 1 followed by the hexadecimal digest",
        )
    return parse_association_text(fields[0], fields[1], fields[2], "".join(fields[3:]))
