"""Check targets: server addresses and trust anchor files."""

from __future__ import annotations

from pathlib import Path

import dns.name
import pytest

from provisioner.check.targets import (
    ROOT_ANCHOR_DS,
    Server,
    load_trust_anchor,
    root_trust_anchor,
)
from provisioner.errors import CheckError

DS = "example.org. IN DS 12345 13 2 " + "AB" * 32


@pytest.mark.parametrize(
    ("text", "address", "port"),
    [
        ("192.0.2.1", "192.0.2.1", 53),
        ("192.0.2.1:5353", "192.0.2.1", 5353),
        ("2001:db8::1", "2001:db8::1", 53),
        ("[2001:db8::1]:5353", "2001:db8::1", 5353),
    ],
)
def test_server_parse(text: str, address: str, port: int) -> None:
    server = Server.parse(text)
    assert server.address == address
    assert server.port == port


def test_server_parse_bad_port() -> None:
    with pytest.raises(CheckError, match="not a number"):
        Server.parse("192.0.2.1:dns")


def test_server_text() -> None:
    assert str(Server("192.0.2.1", 5353, "ns1")) == "ns1 (192.0.2.1:5353)"
    assert str(Server("2001:db8::1")) == "[2001:db8::1]"


def test_root_anchor() -> None:
    anchor = root_trust_anchor()
    assert anchor.zone == dns.name.root
    assert anchor.ds is not None
    assert sorted(ds.key_tag for ds in anchor.ds) == [20326, 38696]
    assert len(ROOT_ANCHOR_DS) == 2


def test_load_anchor_with_servers(tmp_path: Path) -> None:
    path = tmp_path / "anchor"
    path.write_text(f"{DS}\nns1.example.org. IN A 192.0.2.53\n")
    anchor = load_trust_anchor(path, port=5353)
    assert anchor.zone == dns.name.from_text("example.org.")
    assert anchor.ds is not None
    assert anchor.servers == [Server("192.0.2.53", 5353, "ns1.example.org.")]


def test_load_anchor_without_keys(tmp_path: Path) -> None:
    path = tmp_path / "anchor"
    path.write_text("ns1.example.org. IN A 192.0.2.53\n")
    with pytest.raises(CheckError, match="contains no DS or DNSKEY record"):
        load_trust_anchor(path)


def test_load_anchor_two_zones(tmp_path: Path) -> None:
    path = tmp_path / "anchor"
    path.write_text(f"{DS}\n{DS.replace('example.org.', 'example.net.')}\n")
    with pytest.raises(CheckError, match="names two zones"):
        load_trust_anchor(path)


def test_load_anchor_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckError, match="cannot read the trust anchor file"):
        load_trust_anchor(tmp_path / "absent")


def test_load_anchor_invalid(tmp_path: Path) -> None:
    path = tmp_path / "anchor"
    path.write_text("example.org. IN DS not-a-number\n")
    with pytest.raises(CheckError, match="invalid trust anchor file"):
        load_trust_anchor(path)
