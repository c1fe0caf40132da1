"""Route 53 DNSSEC signing, end to end through apply, against botocore's Stubber.

moto has no DNSSEC write calls (CreateKeySigningKey, EnableHostedZoneDNSSEC) and does not
model KMS key policies for Route 53, so every AWS answer here is stubbed, shaped as the
Route 53, KMS and STS API references give them. The parent zone is a real zone file,
signed by provisioner.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import dns.rdatatype
import pytest
from botocore.stub import ANY, Stubber

from provisioner.backends.route53 import calls
from provisioner.backends.route53_dnssec import key_alias, key_policy
from provisioner.clock import ManualClock
from provisioner.errors import BackendError
from provisioner.spec.loader import load_spec_text
from provisioner.spec.models import Spec
from provisioner.store.local import LocalStore
from provisioner.workflows.apply import RunResult, apply, plan
from provisioner.workflows.ds import ds_records
from provisioner.zone.model import ZoneData

START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
ZONE_ID = "Z0123456789ABCDEFGHIJ"
ACCOUNT = "111122223333"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{KEY_ID}"
DIGEST = "A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90"
DS_RECORD = f"23456 13 2 {DIGEST}"

SPEC = f"""
state: state
output: out
zones:
  - name: example.com
    nameservers: [{{name: ns1.example.com, addresses: [192.0.2.53]}}]
    records:
      - {{name: sub, type: NS, value: ns-1.awsdns-01.org.}}
  - name: sub.example.com
    nameservers: [ns-1.awsdns-01.org]
    dnssec: {{signer: route53}}
    publish: {{backend: route53, hosted_zone_id: {ZONE_ID}}}
    records:
      - {{name: www, type: A, value: 192.0.2.80}}
"""


class Aws:
    """Stubbed Route 53, KMS and STS clients, handed to the backend by its client factory."""

    def __init__(self) -> None:
        def client(service: str) -> Any:
            return boto3.client(
                service,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )

        self.clients = {name: client(name) for name in ("route53", "kms", "sts")}
        self.route53 = Stubber(self.clients["route53"])
        self.kms = Stubber(self.clients["kms"])
        self.sts = Stubber(self.clients["sts"])

    def factory(self, service: str, publish: object) -> Any:
        return self.clients[service]

    def activate(self) -> None:
        for stub in (self.route53, self.kms, self.sts):
            stub.activate()

    def assert_done(self) -> None:
        for stub in (self.route53, self.kms, self.sts):
            stub.assert_no_pending_responses()

    # --- Route 53 responses ---------------------------------------------------------------------

    def hosted_zone(self) -> None:
        self.route53.add_response(
            "get_hosted_zone",
            {
                "HostedZone": {
                    "Id": f"/hostedzone/{ZONE_ID}",
                    "Name": "sub.example.com.",
                    "CallerReference": "created-by-hand",
                    "ResourceRecordSetCount": 2,
                },
                "DelegationSet": {"NameServers": ["ns-1.awsdns-01.org"]},
            },
            {"Id": ZONE_ID},
        )

    def records(self, *extra: dict[str, Any]) -> None:
        record_sets = [
            {
                "Name": "sub.example.com.",
                "Type": "NS",
                "TTL": 172800,
                "ResourceRecords": [{"Value": "ns-1.awsdns-01.org."}],
            },
            {
                "Name": "sub.example.com.",
                "Type": "SOA",
                "TTL": 900,
                "ResourceRecords": [
                    {
                        "Value": "ns-1.awsdns-01.org. awsdns-hostmaster.amazon.com. 1 7200 900 "
                        "1209600 86400"
                    }
                ],
            },
            *extra,
        ]
        self.route53.add_response(
            "list_resource_record_sets",
            {"ResourceRecordSets": record_sets, "IsTruncated": False, "MaxItems": "300"},
            {"HostedZoneId": ZONE_ID, "MaxItems": "300"},
        )

    def dnssec(self, serve: str, ksk_status: str | None = None, message: str = "") -> None:
        keys = []
        if ksk_status is not None:
            keys.append(
                {
                    "Name": "provisioner_ksk",
                    "KmsArn": KEY_ARN,
                    "Flag": 257,
                    "SigningAlgorithmMnemonic": "ECDSAP256SHA256",
                    "SigningAlgorithmType": 13,
                    "DigestAlgorithmMnemonic": "SHA-256",
                    "DigestAlgorithmType": 2,
                    "KeyTag": 23456,
                    "DigestValue": DIGEST,
                    "PublicKey": "AAAA",
                    "DSRecord": DS_RECORD,
                    "DNSKEYRecord": "257 3 13 AAAA",
                    "Status": ksk_status,
                    "StatusMessage": message,
                    "CreatedDate": START,
                    "LastModifiedDate": START,
                }
            )
        status: dict[str, str] = {"ServeSignature": serve}
        if message:
            status["StatusMessage"] = message
        self.route53.add_response(
            "get_dnssec", {"Status": status, "KeySigningKeys": keys}, {"HostedZoneId": ZONE_ID}
        )

    def change(self, operation: str, change_id: str, expected: dict[str, Any]) -> None:
        info = {"Id": f"/change/{change_id}", "Status": "PENDING", "SubmittedAt": START}
        response: dict[str, Any] = {"ChangeInfo": info}
        if operation == "create_key_signing_key":
            response["KeySigningKey"] = {"Name": "provisioner_ksk", "KmsArn": KEY_ARN}
            response["Location"] = (
                f"https://route53.amazonaws.com/2013-04-01/keysigningkey/{ZONE_ID}/provisioner_ksk"
            )
        self.route53.add_response(operation, response, expected)

    def insync(self, change_id: str) -> None:
        info = {"Id": f"/change/{change_id}", "Status": "INSYNC", "SubmittedAt": START}
        self.route53.add_response(
            "get_change", {"ChangeInfo": info}, {"Id": f"/change/{change_id}"}
        )

    # --- KMS and STS responses -----------------------------------------------------------------

    def key_missing(self) -> None:
        self.kms.add_client_error(
            "describe_key",
            service_error_code="NotFoundException",
            service_message=f"Alias arn:aws:kms:us-east-1:{ACCOUNT}:"
            f"{key_alias('sub.example.com.')} is not found.",
            http_status_code=400,
            expected_params={"KeyId": key_alias("sub.example.com.")},
        )

    def key_created(self) -> None:
        self.sts.add_response(
            "get_caller_identity",
            {
                "UserId": "AIDAEXAMPLE",
                "Account": ACCOUNT,
                "Arn": f"arn:aws:iam::{ACCOUNT}:user/provisioner",
            },
            {},
        )
        metadata = {
            "AWSAccountId": ACCOUNT,
            "KeyId": KEY_ID,
            "Arn": KEY_ARN,
            "CreationDate": START,
            "Enabled": True,
            "KeyUsage": "SIGN_VERIFY",
            "KeyState": "Enabled",
            "Origin": "AWS_KMS",
            "KeyManager": "CUSTOMER",
            "KeySpec": "ECC_NIST_P256",
            "SigningAlgorithms": ["ECDSA_SHA_256"],
        }
        self.kms.add_response(
            "create_key",
            {"KeyMetadata": metadata},
            {
                "Policy": json.dumps(key_policy(ACCOUNT)),
                "Description": ANY,
                "KeyUsage": "SIGN_VERIFY",
                "KeySpec": "ECC_NIST_P256",
                "Tags": ANY,
            },
        )
        self.kms.add_response(
            "create_alias",
            {},
            {"AliasName": key_alias("sub.example.com."), "TargetKeyId": KEY_ID},
        )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    stubs = Aws()
    monkeypatch.setattr(calls, "client_factory", stubs.factory)
    stubs.activate()
    yield stubs
    stubs.assert_done()


def load(tmp_path: Path, text: str = SPEC) -> Spec:
    path = tmp_path / "provisioner.yaml"
    path.write_text(text)
    return load_spec_text(text, str(path))


def run(spec: Spec, *, dry_run: bool = False) -> RunResult:
    with LocalStore(spec.state_dir()) as store:
        return (plan if dry_run else apply)(spec, store, ManualClock(START))


def parent_zone(spec: Spec) -> ZoneData:
    path = spec.output_dir() / "zones" / "example.com.zone"
    return ZoneData.from_text(path.read_text(), "example.com.")


def test_dnssec_flow_publishes_ds_in_parent(aws: Aws, tmp_path: Path) -> None:
    spec = load(tmp_path)
    aws.hosted_zone()
    aws.records()
    aws.dnssec("NOT_SIGNING")
    aws.key_missing()
    aws.key_created()
    aws.change(
        "create_key_signing_key",
        "CKSK",
        {
            "CallerReference": ANY,
            "HostedZoneId": ZONE_ID,
            "KeyManagementServiceArn": KEY_ARN,
            "Name": "provisioner_ksk",
            "Status": "ACTIVE",
        },
    )
    aws.change("enable_hosted_zone_dnssec", "CENABLE", {"HostedZoneId": ZONE_ID})
    aws.insync("CKSK")
    aws.insync("CENABLE")
    aws.dnssec("SIGNING", "ACTIVE")
    aws.route53.add_response(
        "change_resource_record_sets",
        {"ChangeInfo": {"Id": "/change/CREC", "Status": "PENDING", "SubmittedAt": START}},
        {"HostedZoneId": ZONE_ID, "ChangeBatch": ANY},
    )

    result = run(spec)

    parent = parent_zone(spec)
    ds = parent.get("sub.example.com.", "DS")
    assert ds is not None
    assert [rdata.to_text().upper() for rdata in ds] == [DS_RECORD]
    assert ds.ttl == 86400
    assert parent.get("sub.example.com.", "RRSIG", dns.rdatatype.DS) is not None
    assert not [warning for warning in result.warnings if "ACTION_NEEDED" in warning]
    assert any("Route 53 now signs the zone" in warning for warning in result.warnings)


def test_second_apply_changes_nothing(aws: Aws, tmp_path: Path) -> None:
    spec = load(tmp_path)
    test_dnssec_flow_publishes_ds_in_parent(aws, tmp_path)
    www = {
        "Name": "www.sub.example.com.",
        "Type": "A",
        "TTL": 3600,
        "ResourceRecords": [{"Value": "192.0.2.80"}],
    }
    aws.hosted_zone()
    aws.records(www)
    aws.dnssec("SIGNING", "ACTIVE")

    result = run(spec)

    assert not result.has_changes


def test_plan_lists_signing_steps_without_changing(aws: Aws, tmp_path: Path) -> None:
    spec = load(tmp_path)
    aws.hosted_zone()
    aws.records()
    aws.dnssec("NOT_SIGNING")

    result = run(spec, dry_run=True)

    assert any("apply will create key-signing key provisioner_ksk" in w for w in result.warnings)
    assert any("apply will enable DNSSEC signing" in w for w in result.warnings)
    assert not (spec.output_dir() / "zones" / "example.com.zone").exists()


def test_action_needed_is_a_warning(aws: Aws, tmp_path: Path) -> None:
    spec = load(tmp_path)
    message = "The KMS key is disabled."
    aws.hosted_zone()
    aws.records()
    aws.dnssec("ACTION_NEEDED", "ACTION_NEEDED", message)

    result = run(spec, dry_run=True)

    assert any("key-signing key provisioner_ksk is ACTION_NEEDED" in w for w in result.warnings)
    assert any("DNSSEC status is ACTION_NEEDED: " + message in w for w in result.warnings)


def test_ds_command_reads_route53(aws: Aws, tmp_path: Path) -> None:
    spec = load(tmp_path)
    aws.hosted_zone()
    aws.dnssec("SIGNING", "ACTIVE")

    with LocalStore(spec.state_dir()) as store:
        lines = ds_records(spec, store, "sub.example.com", None)

    assert [line.upper() for line in lines] == [f"SUB.EXAMPLE.COM. 86400 IN DS {DS_RECORD}"]


def test_given_key_without_route53_policy_fails(aws: Aws, tmp_path: Path) -> None:
    text = SPEC.replace(
        f"hosted_zone_id: {ZONE_ID}", f"hosted_zone_id: {ZONE_ID}, kms_key_arn: '{KEY_ARN}'"
    )
    spec = load(tmp_path, text)
    aws.hosted_zone()
    aws.records()
    aws.dnssec("NOT_SIGNING")
    aws.kms.add_response(
        "describe_key",
        {
            "KeyMetadata": {
                "KeyId": KEY_ID,
                "Arn": KEY_ARN,
                "KeyUsage": "SIGN_VERIFY",
                "KeySpec": "ECC_NIST_P256",
                "KeyState": "Enabled",
            }
        },
        {"KeyId": KEY_ARN},
    )
    policy = {"Version": "2012-10-17", "Statement": []}
    aws.kms.add_response(
        "get_key_policy",
        {"Policy": json.dumps(policy), "PolicyName": "default"},
        {"KeyId": KEY_ARN, "PolicyName": "default"},
    )

    with pytest.raises(BackendError) as raised:
        run(spec)

    assert "does not name dnssec-route53.amazonaws.com" in raised.value.message


def test_key_policy_allows_route53() -> None:
    policy = key_policy(ACCOUNT)

    route53 = [s for s in policy["Statement"] if s["Principal"].get("Service")]
    actions = set()
    for statement in route53:
        assert statement["Principal"]["Service"] == "dnssec-route53.amazonaws.com"
        listed = statement["Action"]
        actions |= set(listed if isinstance(listed, list) else [listed])
    assert actions == {"kms:DescribeKey", "kms:GetPublicKey", "kms:Sign", "kms:CreateGrant"}
    admin = [s for s in policy["Statement"] if s["Principal"].get("AWS")]
    assert admin[0]["Principal"]["AWS"] == f"arn:aws:iam::{ACCOUNT}:root"
