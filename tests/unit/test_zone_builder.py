"""The zone builder: delegations to child zones of the spec."""

from __future__ import annotations

import dns.rrset

from provisioner.spec.loader import load_spec_text
from provisioner.zone.builder import BuildInputs, build_zones

SPEC = """\
version: 1
zones:
  - name: example.org
    nameservers: [{name: ns1.example.org, addresses: [127.0.0.1]}]
  - name: child.example.org
    ttl: 600
    nameservers:
      - {name: ns1.child.example.org, addresses: [127.0.0.2, "::2"]}
      - {name: ns.elsewhere.test, addresses: [127.0.0.3]}
"""


def test_parent_gets_ns_and_glue() -> None:
    spec = load_spec_text(SPEC)
    zones = build_zones(spec, BuildInputs(), {})
    parent = zones["example.org."]

    ns = parent.get("child.example.org.", "NS")
    assert ns is not None
    assert ns.ttl == 600
    assert sorted(r.target.to_text() for r in ns) == [
        "ns.elsewhere.test.",
        "ns1.child.example.org.",
    ]
    assert [r.address for r in parent.get("ns1.child.example.org.", "A")] == ["127.0.0.2"]
    assert [r.address for r in parent.get("ns1.child.example.org.", "AAAA")] == ["::2"]
    assert parent.get("ns.elsewhere.test.", "A") is None


def test_child_ds_lands_in_parent() -> None:
    spec = load_spec_text(SPEC)
    ds = dns.rrset.from_text("child.example.org.", 86400, "IN", "DS", "12345 13 2 " + "ab" * 32)
    zones = build_zones(spec, BuildInputs(child_ds={"child.example.org.": ds}), {})
    assert zones["example.org."].get("child.example.org.", "DS") == ds
    assert zones["child.example.org."].get("child.example.org.", "DS") is None


def test_name_text_matches_dnspython() -> None:
    import dns.name

    from provisioner.zone.model import name_text

    for text in (
        "example.com.",
        "*.a.example.",
        "_25._tcp.mx.example.",
        "a\\ b.example.",
        "a\\.b.example.",
        ".",
        "x\\200.example.",
        "a(b.example.",
        "A-b.Example.",
    ):
        name = dns.name.from_text(text)
        assert name_text(name) == name.to_text(), text
