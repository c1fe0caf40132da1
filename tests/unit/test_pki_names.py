"""Host name and mailbox address normalisation, and RFC 6125 matching."""

from __future__ import annotations

import pytest

from provisioner.errors import PKIError
from provisioner.pki.names import (
    address_matches,
    host_matches,
    normalize_address,
    normalize_host,
)


@pytest.mark.parametrize(
    ("presented", "reference", "expected"),
    [
        ("mx1.example.org", "mx1.example.org", True),
        ("MX1.Example.ORG", "mx1.example.org.", True),
        ("*.example.org", "mx1.example.org", True),
        ("*.example.org", "MX1.EXAMPLE.ORG", True),
        ("*.example.org", "example.org", False),
        ("*.example.org", "a.mx1.example.org", False),
        ("*.org", "example.org", False),
        ("mx*.example.org", "mx1.example.org", False),
        ("*mx.example.org", "amx.example.org", False),
        ("mx1.*.org", "mx1.example.org", False),
        ("*.bücher.example", "mx.xn--bcher-kva.example", True),
        ("mx.xn--bcher-kva.example", "mx.bücher.example", True),
        ("mx1.example.org", "mx2.example.org", False),
    ],
)
def test_host_matching(presented: str, reference: str, expected: bool) -> None:
    assert host_matches(presented, reference) is expected


@pytest.mark.parametrize(
    ("presented", "reference", "expected"),
    [
        ("hugh@example.com", "hugh@example.com", True),
        ("hugh@example.com", "hugh@EXAMPLE.COM", True),
        ("hugh@example.com", "Hugh@example.com", False),
        ("hugh@example.com", "hugh@example.org", False),
        ("hugh@xn--bcher-kva.example", "hugh@bücher.example", True),
        ("not-an-address", "hugh@example.com", False),
    ],
)
def test_address_matching(presented: str, reference: str, expected: bool) -> None:
    assert address_matches(presented, reference) is expected


def test_normalize_host() -> None:
    assert normalize_host("Mail.Bücher.Example.") == "mail.xn--bcher-kva.example"
    assert normalize_host("*.example.org", allow_wildcard=True) == "*.example.org"


@pytest.mark.parametrize(
    "host", ["", ".", "a..b", "-a.example", "a-.example", "a_b.example", "*.example.org", "a" * 64]
)
def test_normalize_host_rejects(host: str) -> None:
    with pytest.raises(PKIError, match="invalid host name"):
        normalize_host(host)


def test_normalize_address() -> None:
    assert normalize_address("Hugh@Bücher.Example") == "Hugh@xn--bcher-kva.example"
    with pytest.raises(PKIError, match="invalid mailbox address"):
        normalize_address("hugh")
