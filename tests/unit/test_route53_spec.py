"""The spec side of Route 53 publication: SMIMEA delegation and the route53 fields."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from provisioner.errors import SpecError
from provisioner.spec.loader import load_spec_text
from provisioner.spec.models import Route53Publish, Spec, expand_smimea_delegations

BASE = """
authorities:
  - {name: ca, type: enterprise, subject: {common_name: Example CA}}
zones:
  - name: example.com
    nameservers: [ns-1.awsdns-01.org]
    dnssec: {signer: route53}
    publish: {backend: route53}
    SMIMEA
users:
  - {address: alice@example.com, certificate: {authority: ca}}
  - {address: bob@example.com, certificate: {authority: ca}}
  - {address: carol@lists.example.com, certificate: {authority: ca}}
"""

OPTION = """smimea:
      nameservers:
        - {name: ns1._smimecert.example.com, addresses: [192.0.2.53, "2001:db8::53"]}
        - ns2.example.net
      publish: {backend: zonefile}"""


def load(option: str = OPTION) -> Spec:
    return load_spec_text(BASE.replace("SMIMEA", option))


def records_of(spec: Spec, zone: str) -> list[tuple[str, str, list[str]]]:
    return [(r.name, r.type, r.values) for r in spec.zone(zone).records]


def test_child_zone_per_mail_domain() -> None:
    spec = load()

    children = [zone for zone in spec.zones if zone.smimea_parent == "example.com."]

    assert [zone.name for zone in children] == [
        "_smimecert.example.com.",
        "_smimecert.lists.example.com.",
    ]
    assert children[0].dnssec.signer == "provisioner"
    assert children[0].publish.backend == "zonefile"
    assert children[0].nameserver_names() == ["ns1._smimecert.example.com.", "ns2.example.net."]


def test_parent_gets_ns_and_glue() -> None:
    records = records_of(load(), "example.com.")

    nameservers = ["ns1._smimecert.example.com.", "ns2.example.net."]
    assert ("_smimecert", "NS", nameservers) in records
    assert ("_smimecert.lists", "NS", nameservers) in records
    assert ("ns1._smimecert", "A", ["192.0.2.53"]) in records
    assert ("ns1._smimecert", "AAAA", ["2001:db8::53"]) in records


def test_smimea_owner_falls_in_child() -> None:
    spec = load()

    zone = spec.zone_for("abc._smimecert.example.com.")

    assert zone is not None
    assert zone.name == "_smimecert.example.com."


def test_expansion_runs_once() -> None:
    spec = load()
    zones_before = len(spec.zones)
    records_before = len(spec.zone("example.com.").records)

    expand_smimea_delegations(spec)

    assert len(spec.zones) == zones_before
    assert len(spec.zone("example.com.").records) == records_before


def test_no_delegation_without_option() -> None:
    spec = load("")

    assert [zone.name for zone in spec.zones] == ["example.com."]
    assert spec.zone("example.com.").records == []


def test_delegate_false_adds_nothing() -> None:
    spec = load(OPTION.replace("smimea:", "smimea:\n      delegate: false"))

    assert [zone.name for zone in spec.zones] == ["example.com."]


def test_declared_child_zone_is_kept() -> None:
    text = BASE.replace("SMIMEA", OPTION) + (
        "  - {address: dave@example.org, certificate: {authority: ca}}\n"
    )
    text = text.replace(
        "users:",
        """  - name: _smimecert.example.com
    nameservers: [ns9.example.net]
  - name: example.org
    nameservers: [ns1.example.org]
users:""",
    )

    spec = load_spec_text(text)

    declared = spec.zone("_smimecert.example.com.")
    assert declared.smimea_parent is None
    assert declared.nameserver_names() == ["ns9.example.net."]
    assert [z.name for z in spec.zones].count("_smimecert.example.com.") == 1


def test_shared_zone_file_path_rejected() -> None:
    option = OPTION.replace("{backend: zonefile}", "{backend: zonefile, path: smimea.zone}")

    with pytest.raises(SpecError) as raised:
        load(option)

    assert "cannot share one zone file" in str(raised.value)
    assert "zones[0].smimea.publish.path" in str(raised.value)


def test_child_problem_points_at_option() -> None:
    option = OPTION + "\n      dnssec: {signer: route53}"

    with pytest.raises(SpecError) as raised:
        load(option)

    assert "zones[0].smimea.dnssec.signer: child zone _smimecert.example.com." in str(raised.value)


def test_route53_child_publish_rejected() -> None:
    option = OPTION.replace("{backend: zonefile}", "{backend: route53}")

    with pytest.raises(SpecError) as raised:
        load(option)

    assert "smimea.publish" in str(raised.value)


def test_kms_key_must_be_in_us_east_1() -> None:
    with pytest.raises(ValidationError) as raised:
        Route53Publish(
            backend="route53",
            kms_key_arn="arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        )

    assert "needs a KMS key in us-east-1" in str(raised.value)


def test_hosted_zone_id_prefix_dropped() -> None:
    publish = Route53Publish(backend="route53", hosted_zone_id="/hostedzone/Z123")

    assert publish.hosted_zone_id == "Z123"


def test_route53_zone_rejects_server_signer() -> None:
    with pytest.raises(SpecError) as raised:
        load_spec_text(BASE.replace("SMIMEA", "").replace("signer: route53", "signer: server"))

    assert "signer 'server' needs an rfc2136 primary" in str(raised.value)
