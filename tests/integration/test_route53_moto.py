"""The Route 53 backend against a moto server process, through boto3 over HTTP."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import boto3
import dns.name
import dns.rrset
import pytest

from provisioner.backends.route53 import Route53Backend
from provisioner.backends.route53.calls import make_client
from provisioner.clock import ManualClock
from provisioner.errors import BackendError
from provisioner.spec.loader import load_spec_text
from provisioner.spec.models import Route53Publish, Spec
from provisioner.store.local import LocalStore
from provisioner.workflows.apply import RunResult, apply, plan
from provisioner.zone.model import ZoneData
from tests.integration.motoserver import (
    MotoServer,
    moto_fixture,  # noqa: F401
    moto_server_fixture,  # noqa: F401
)

START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def route53(endpoint: str) -> Any:
    return boto3.client("route53", endpoint_url=endpoint, region_name="us-east-1")


def create_zone(endpoint: str, name: str = "example.com.") -> str:
    response = route53(endpoint).create_hosted_zone(Name=name, CallerReference=name)
    return str(response["HostedZone"]["Id"]).rsplit("/", 1)[-1]


def record_sets(endpoint: str, zone_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    client = route53(endpoint)
    result = {}
    for page in client.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id):
        for record_set in page["ResourceRecordSets"]:
            result[(record_set["Name"], record_set["Type"])] = record_set
    return result


def write_spec(tmp_path: Path, endpoint: str, extra_zone: str = "", records: str = "") -> Path:
    text = f"""
state: state
output: out
zones:
  - name: example.com
    nameservers: [ns-2048.awsdns-64.com, ns-2049.awsdns-65.net]
    dnssec: {{signer: none}}
    publish: {{backend: route53, endpoint_url: "{endpoint}"}}
    records:
      - {{name: www, type: A, value: [192.0.2.10, 192.0.2.11]}}
      - {{name: "*.wild", type: TXT, value: '"any name"'}}
      - {{name: "@", type: CAA, value: '0 issue "ca.example.net"'}}
{records}
{extra_zone}
mail_servers:
  - host: mx1.example.com
    addresses: [192.0.2.25]
    certificate: {{self_signed: true}}
"""
    path = tmp_path / "provisioner.yaml"
    path.write_text(text)
    return path


def run(spec_path: Path, *, dry_run: bool = False) -> tuple[Spec, RunResult]:
    spec = load_spec_text(spec_path.read_text(), str(spec_path))
    with LocalStore(spec.state_dir()) as store:
        result = (plan if dry_run else apply)(spec, store, ManualClock(START))
    return spec, result


def zone_plan(result: RunResult, name: str = "example.com.") -> Any:
    return next(z.plan for z in result.zones if z.spec.name == name)


def test_apply_twice_changes_nothing(moto: MotoServer, tmp_path: Path) -> None:
    zone_id = create_zone(moto.endpoint)
    spec_path = write_spec(tmp_path, moto.endpoint)

    _, first = run(spec_path)
    counts = zone_plan(first).counts()
    assert counts["create"] >= 5
    assert counts["delete"] == 0

    served = record_sets(moto.endpoint, zone_id)
    assert ("www.example.com.", "A") in served
    assert ("_25._tcp.mx1.example.com.", "TLSA") in served
    assert ("example.com.", "MX") in served
    wildcard = [key for key in served if key[0].endswith("wild.example.com.")]
    assert wildcard, "the wildcard TXT RRset is published"

    _, second = run(spec_path)
    assert zone_plan(second).changes == []
    assert not second.has_changes


def test_apex_soa_and_ns_left_alone(moto: MotoServer, tmp_path: Path) -> None:
    zone_id = create_zone(moto.endpoint)
    before = record_sets(moto.endpoint, zone_id)[("example.com.", "NS")]

    _, result = run(write_spec(tmp_path, moto.endpoint))

    after = record_sets(moto.endpoint, zone_id)[("example.com.", "NS")]
    assert after == before
    described = {(key[0].to_text(), key[1].name) for key in zone_plan(result).left_alone}
    assert ("example.com.", "NS") in described
    assert ("example.com.", "SOA") in described
    assert any("apex NS" in warning for warning in result.warnings)


def test_foreign_rrset_left_alone_owned_deleted(moto: MotoServer, tmp_path: Path) -> None:
    zone_id = create_zone(moto.endpoint)
    foreign = {
        "Name": "legacy.example.com.",
        "Type": "TXT",
        "TTL": 300,
        "ResourceRecords": [{"Value": '"kept"'}],
    }
    route53(moto.endpoint).change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": foreign}]},
    )
    extra = "      - {name: old, type: TXT, value: '\"to be removed\"'}"
    run(write_spec(tmp_path, moto.endpoint, records=extra))
    assert ("old.example.com.", "TXT") in record_sets(moto.endpoint, zone_id)

    _, result = run(write_spec(tmp_path, moto.endpoint))

    served = record_sets(moto.endpoint, zone_id)
    assert ("old.example.com.", "TXT") not in served
    assert served[("legacy.example.com.", "TXT")]["ResourceRecords"] == [{"Value": '"kept"'}]
    assert zone_plan(result).counts()["delete"] == 1


def test_changed_value_is_upserted(moto: MotoServer, tmp_path: Path) -> None:
    zone_id = create_zone(moto.endpoint)
    run(write_spec(tmp_path, moto.endpoint))
    changed = "      - {name: www2, type: A, ttl: 60, value: 192.0.2.99}"
    run(write_spec(tmp_path, moto.endpoint, records=changed))
    changed = "      - {name: www2, type: A, ttl: 120, value: [192.0.2.98, 192.0.2.97]}"

    _, result = run(write_spec(tmp_path, moto.endpoint, records=changed))

    assert zone_plan(result).counts() == {"create": 0, "update": 1, "delete": 0}
    served = record_sets(moto.endpoint, zone_id)[("www2.example.com.", "A")]
    assert served["TTL"] == 120
    assert sorted(r["Value"] for r in served["ResourceRecords"]) == ["192.0.2.97", "192.0.2.98"]


def test_read_follows_pagination(moto: MotoServer) -> None:
    zone_id = create_zone(moto.endpoint)
    changes = [
        {
            "Action": "CREATE",
            "ResourceRecordSet": {
                "Name": f"host{index}.example.com.",
                "Type": "A",
                "TTL": 300,
                "ResourceRecords": [{"Value": f"192.0.2.{index % 250 + 1}"}],
            },
        }
        for index in range(650)
    ]
    route53(moto.endpoint).change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Changes": changes}
    )
    backend = Route53Backend(
        "example.com.",
        Route53Publish(backend="route53", endpoint_url=moto.endpoint),
        None,
        clock=ManualClock(START),
    )

    zone = backend.read()

    assert zone is not None
    hosts = [rrset for rrset in zone if rrset.name.labels[0].startswith(b"host")]
    assert len(hosts) == 650


def test_hosted_zone_not_found(moto: MotoServer) -> None:
    backend = Route53Backend(
        "missing.example.",
        Route53Publish(backend="route53", endpoint_url=moto.endpoint),
        None,
        clock=ManualClock(START),
    )

    with pytest.raises(BackendError) as raised:
        backend.read()

    assert "no Route 53 hosted zone is named missing.example." in raised.value.message
    assert raised.value.hint is not None


def test_hosted_zone_id_must_match_name(moto: MotoServer) -> None:
    zone_id = create_zone(moto.endpoint, "example.org.")
    publish = Route53Publish(backend="route53", endpoint_url=moto.endpoint, hosted_zone_id=zone_id)
    backend = Route53Backend("example.com.", publish, None, clock=ManualClock(START))

    with pytest.raises(BackendError) as raised:
        backend.read()

    assert f"hosted zone {zone_id} is example.org." in raised.value.message


def test_wait_insync_returns_when_in_sync(moto: MotoServer) -> None:
    create_zone(moto.endpoint)
    publish = Route53Publish(backend="route53", endpoint_url=moto.endpoint)
    backend = Route53Backend("example.com.", publish, None, clock=ManualClock(START))
    desired = ZoneData("example.com.")
    desired.add(dns.rrset.from_text("a.example.com.", 300, "IN", "A", "192.0.2.1"))
    from provisioner.zone.plan import ZonePlan, diff_zone

    current = backend.read()
    changes, left_alone = diff_zone(current, desired, owned=set())
    zone_plan_ = ZonePlan("example.com.", "route53", None, 1, changes, left_alone)
    backend.check_plan(zone_plan_, desired)
    backend.apply(zone_plan_, desired)

    backend.wait_insync()

    assert len(backend.change_ids) == 1


def test_smimea_in_route53_zone_fails_plan(moto: MotoServer, tmp_path: Path) -> None:
    create_zone(moto.endpoint)
    spec_path = write_spec(tmp_path, moto.endpoint)
    spec_path.write_text(
        spec_path.read_text()
        + """
authorities:
  - name: org-ca
    type: enterprise
    subject: {common_name: Example Org CA}
users:
  - address: alice@example.com
    certificate: {authority: org-ca}
"""
    )

    with pytest.raises(BackendError) as raised:
        run(spec_path, dry_run=True)

    assert "does not accept SMIMEA" in raised.value.message
    assert raised.value.hint is not None
    assert "smimea: {delegate: true" in raised.value.hint


def test_smimea_delegated_to_child_zone_file(moto: MotoServer, tmp_path: Path) -> None:
    zone_id = create_zone(moto.endpoint)
    spec_path = write_spec(tmp_path, moto.endpoint)
    text = spec_path.read_text().replace(
        "    records:\n",
        "    smimea:\n"
        "      nameservers: [{name: ns1.example.net, addresses: [127.0.0.1]}]\n"
        "      publish: {backend: zonefile}\n"
        "    records:\n",
        1,
    )
    spec_path.write_text(
        text
        + """
authorities:
  - name: org-ca
    type: enterprise
    subject: {common_name: Example Org CA}
users:
  - address: alice@example.com
    certificate: {authority: org-ca}
"""
    )

    spec, result = run(spec_path)

    child = "_smimecert.example.com."
    assert [z.spec.name for z in result.zones if z.spec.smimea_parent] == [child]
    child_file = spec.output_dir() / "zones" / "_smimecert.example.com.zone"
    child_zone = ZoneData.from_text(child_file.read_text(), child)
    types = {key[1].name for key in child_zone.rrsets}
    assert {"SMIMEA", "DNSKEY", "RRSIG", "NSEC"} <= types

    served = record_sets(moto.endpoint, zone_id)
    assert served[(child, "NS")]["ResourceRecords"] == [{"Value": "ns1.example.net."}]
    assert (child, "DS") in served
    assert not [key for key in served if key[1] == "SMIMEA"]

    _, again = run(spec_path)
    assert not again.has_changes


def test_make_client_uses_endpoint(moto: MotoServer) -> None:
    client = make_client("route53", Route53Publish(backend="route53", endpoint_url=moto.endpoint))
    assert client.meta.endpoint_url == moto.endpoint
    assert client.list_hosted_zones()["HostedZones"] == []


class RejectingClient:
    """A moto client whose Nth ChangeResourceRecordSets call is rejected whole.

    moto applies part of a batch that it rejects, while Route 53 applies none of it; this
    wrapper rejects the batch before moto sees it, with an InvalidChangeBatch error shaped as
    botocore parses Route 53's.
    """

    def __init__(self, client: Any, reject_call: int) -> None:
        self.client = client
        self.reject_call = reject_call
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def change_resource_record_sets(self, **parameters: Any) -> Any:
        from botocore.exceptions import ClientError

        self.calls += 1
        if self.calls == self.reject_call:
            raise ClientError(
                {
                    "Error": {"Code": "InvalidChangeBatch", "Message": "Invalid change batch"},
                    "messages": ["RRSet of type TXT with DNS name t7.example.com. is not valid"],
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "ChangeResourceRecordSets",
            )
        return self.client.change_resource_record_sets(**parameters)


def long_txt_records(count: int) -> str:
    value = "v" * 252
    return "\n".join(
        f"      - {{name: t{index}, type: TXT, value: '\"{value}\"'}}" for index in range(count)
    )


def test_rejected_batch_then_next_apply_converges(
    moto: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provisioner.backends.route53 import calls

    zone_id = create_zone(moto.endpoint)
    spec_path = write_spec(tmp_path, moto.endpoint, records=long_txt_records(130))
    rejecting = RejectingClient(route53(moto.endpoint), reject_call=2)
    monkeypatch.setattr(calls, "client_factory", lambda service, publish: rejecting)

    with pytest.raises(BackendError) as raised:
        run(spec_path)

    assert "batch 2 of 2" in raised.value.message
    spec = load_spec_text(spec_path.read_text(), str(spec_path))
    with LocalStore(spec.state_dir()) as store:
        assert store.zone_state("example.com.") is None
        owned = store.owned("example.com.")
    served_before = record_sets(moto.endpoint, zone_id)
    landed = [key for key in served_before if key[1] == "TXT" and key[0].startswith("t")]
    assert 0 < len(landed) < 130
    assert set(landed) <= owned

    monkeypatch.setattr(calls, "client_factory", calls.make_client)
    _, second = run(spec_path)

    served = record_sets(moto.endpoint, zone_id)
    assert all((f"t{index}.example.com.", "TXT") in served for index in range(130))
    assert zone_plan(second).counts() == {
        "create": len(served) - len(served_before),
        "update": 0,
        "delete": 0,
    }

    _, third = run(spec_path)
    assert not third.has_changes


def test_rrsets_of_a_failed_run_are_deleted_later(
    moto: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provisioner.backends.route53 import calls

    zone_id = create_zone(moto.endpoint)
    rejecting = RejectingClient(route53(moto.endpoint), reject_call=2)
    monkeypatch.setattr(calls, "client_factory", lambda service, publish: rejecting)
    with pytest.raises(BackendError):
        run(write_spec(tmp_path, moto.endpoint, records=long_txt_records(130)))
    monkeypatch.setattr(calls, "client_factory", calls.make_client)

    run(write_spec(tmp_path, moto.endpoint))

    served = record_sets(moto.endpoint, zone_id)
    assert not [key for key in served if key[0].startswith("t") and key[1] == "TXT"]


def test_wait_for_zones_asks_route53(moto: MotoServer, tmp_path: Path) -> None:
    from provisioner.workflows.propagation import wait_for_zones

    create_zone(moto.endpoint)
    spec, result = run(write_spec(tmp_path, moto.endpoint))

    def no_queries(*_: object) -> Any:
        raise AssertionError("Route 53 name servers must not be queried")

    outcome = wait_for_zones(spec, result, ManualClock(START), query=no_queries)

    assert outcome == {"example.com.": []}


def test_cli_apply_then_plan_is_clean(moto: MotoServer, tmp_path: Path, cli: Any) -> None:
    create_zone(moto.endpoint)
    spec_path = write_spec(tmp_path, moto.endpoint)

    applied = cli("apply", spec_path, "--json", check=True)
    planned = cli("plan", spec_path, "--detailed-exitcode")

    assert '"create"' in applied.stdout
    assert planned.returncode == 0, planned.stdout + planned.stderr
