"""The mapping from a spec to check targets."""

from __future__ import annotations

from pathlib import Path

import dns.name

from provisioner.check.spec_targets import build_targets
from provisioner.check.targets import Server
from provisioner.spec.loader import load_spec

SPEC = """zones:
  - name: example.org
    nameservers:
      - name: ns1.example.org
        addresses: [192.0.2.53, 2001:db8::53]
      - ns2.example.net
  - name: plain.example
    nameservers: [ns1.example.org]
    dnssec:
      signer: none
mail_servers:
  - host: mx1.example.org
    mx_for: [example.org, plain.example]
    addresses: [192.0.2.25]
    ports: [25, 2525]
    certificate:
      self_signed: true
users:
  - address: alice@example.org
    certificate:
      self_signed: true
"""


def load(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    return load_spec(path)


def test_zones_and_servers(tmp_path: Path) -> None:
    target = build_targets(load(tmp_path), None, dns_port=5353)
    assert [zone.name.to_text() for zone in target.zones] == ["example.org."]
    assert target.zones[0].servers == [
        Server("192.0.2.53", 5353, "ns1.example.org."),
        Server("2001:db8::53", 5353, "ns1.example.org."),
    ]
    assert target.dns_port == 5353


def test_mail_servers_per_port(tmp_path: Path) -> None:
    target = build_targets(load(tmp_path), None)
    assert [(mx.host.to_text(), mx.port) for mx in target.mx_hosts] == [
        ("mx1.example.org.", 25),
        ("mx1.example.org.", 2525),
    ]
    mx = target.mx_hosts[0]
    assert mx.zone == dns.name.from_text("example.org.")
    assert mx.addresses == ["192.0.2.25"]
    assert mx.reference_names == ["example.org", "plain.example"]


def test_users_without_store(tmp_path: Path) -> None:
    target = build_targets(load(tmp_path), None)
    assert [(user.address, user.zone.to_text()) for user in target.users] == [
        ("alice@example.org", "example.org.")
    ]
    assert target.users[0].certificates == []
