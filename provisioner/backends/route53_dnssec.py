"""DNSSEC signing by Route 53 (``dnssec: {signer: route53}``): KMS key, KSK, DS for the parent.

Route 53 signs a hosted zone with a zone-signing key that it manages and a key-signing key
(KSK) whose private key stays in a customer-managed KMS key. That KMS key must be in
us-east-1, of key spec ECC_NIST_P256 and key usage SIGN_VERIFY, and its key policy must let
the service principal dnssec-route53.amazonaws.com call kms:DescribeKey, kms:GetPublicKey,
kms:Sign and kms:CreateGrant. This module creates that key (or checks a given one), creates
and activates the KSK, enables signing, and reads the DS RRset from GetDNSSEC.

The DS RRset is handed to the parent only once Route 53 reports SIGNING and the change that
enabled signing is INSYNC, so a parent never points at a zone that is not served signed.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from provisioner.backends.route53.backend import Route53Backend
from provisioner.backends.route53.calls import error_code, error_message
from provisioner.clock import epoch
from provisioner.errors import BackendError, DnssecError
from provisioner.spec.models import Route53Publish, ZoneSpec

log = logging.getLogger(__name__)

ROUTE53_DNSSEC_PRINCIPAL = "dnssec-route53.amazonaws.com"
KEY_SPEC = "ECC_NIST_P256"
KEY_USAGE = "SIGN_VERIFY"
DEFAULT_KSK_NAME = "provisioner_ksk"

# KSK statuses whose DNSKEY Route 53 still publishes, so the parent keeps their DS.
_PUBLISHED_KSK_STATUSES = ("ACTIVE", "ACTION_NEEDED")


@dataclass
class SigningReport:
    """The signing status, DS RRset, actions and warnings of the route53 signer for one zone."""

    zone: str
    serve_signature: str
    ds: dns.rrset.RRset | None = None
    actions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def key_policy(account: str, partition: str = "aws") -> dict[str, Any]:
    """Return the KMS key policy that lets Route 53 sign with the key and the account manage it."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountManagesKey",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "Route53DnssecSigns",
                "Effect": "Allow",
                "Principal": {"Service": ROUTE53_DNSSEC_PRINCIPAL},
                "Action": ["kms:DescribeKey", "kms:GetPublicKey", "kms:Sign"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account},
                    "ArnLike": {"aws:SourceArn": f"arn:{partition}:route53:::hostedzone/*"},
                },
            },
            {
                "Sid": "Route53DnssecCreatesGrant",
                "Effect": "Allow",
                "Principal": {"Service": ROUTE53_DNSSEC_PRINCIPAL},
                "Action": "kms:CreateGrant",
                "Resource": "*",
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": True}},
            },
        ],
    }


def key_alias(zone: str) -> str:
    """Return the KMS alias under which provisioner finds the key it created for ``zone``."""
    label = re.sub(r"[^A-Za-z0-9_-]", "_", zone.rstrip(".")) or "root"
    return f"alias/provisioner-dnssec-{label}"


def parse_ds(zone: str, record: str) -> dns.rdata.Rdata:
    """Parse a KeySigningKey's DSRecord ("keytag algorithm digest-type digest")."""
    try:
        return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.DS, record)
    except Exception as error:  # dnspython raises several types for bad rdata
        raise DnssecError(
            f"Route 53 returned a DS record for {zone} that cannot be parsed: {record!r}"
        ) from error


class Route53Signer:
    """Keep Route 53's DNSSEC signing of one hosted zone on, and read its DS RRset."""

    def __init__(self, backend: Route53Backend, zone_spec: ZoneSpec) -> None:
        if not isinstance(zone_spec.publish, Route53Publish):
            raise DnssecError(f"zone {zone_spec.name} is not published to Route 53")
        self.backend = backend
        self.zone_spec = zone_spec
        self.publish: Route53Publish = zone_spec.publish
        self.ksk_name = self.publish.ksk_name or DEFAULT_KSK_NAME
        self._kms: Any = None
        self._sts: Any = None

    # --- AWS calls ----------------------------------------------------------------------------

    def _aws(self, service: str, operation: str, **parameters: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        if service == "route53":
            return self.backend.call(operation, **parameters)
        client = self._client(service)
        try:
            return self.backend.caller.call(client, operation, **parameters)
        except ClientError as error:
            raise BackendError(
                f"{service.upper()} {operation} failed for zone {self.zone_spec.name}: "
                f"{error_code(error)}: {error_message(error)}",
                hint="the caller needs kms:CreateKey, kms:CreateAlias, kms:DescribeKey and "
                "kms:GetKeyPolicy; see docs/route53.md",
            ) from error

    def _client(self, service: str) -> Any:
        if service == "kms":
            if self._kms is None:
                self._kms = self.backend.clients("kms", self.publish)
            return self._kms
        if self._sts is None:
            self._sts = self.backend.clients("sts", self.publish)
        return self._sts

    def dnssec_state(self) -> dict[str, Any]:
        return self.backend.call("get_dnssec", HostedZoneId=self.backend.zone_id)

    # --- the flow -----------------------------------------------------------------------------

    def ensure(self, *, dry_run: bool) -> SigningReport:
        """Bring the zone to SIGNING with an active KSK; return the DS RRset once it is safe.

        With ``dry_run`` nothing is created or changed; the report lists what apply would do.
        """
        zone = self.zone_spec.name
        state = self.dnssec_state()
        report = SigningReport(zone, state["Status"]["ServeSignature"])
        changes: list[str] = []

        ksk = self._our_ksk(state)
        if ksk is None:
            report.actions.append(f"create key-signing key {self.ksk_name} (status ACTIVE)")
            if not dry_run:
                key_arn = self._kms_key_arn(report)
                changes.append(self._create_ksk(key_arn))
        elif ksk["Status"] == "INACTIVE":
            report.actions.append(f"activate key-signing key {self.ksk_name}")
            if not dry_run:
                response = self.backend.call(
                    "activate_key_signing_key",
                    HostedZoneId=self.backend.zone_id,
                    Name=self.ksk_name,
                )
                changes.append(response["ChangeInfo"]["Id"])

        if report.serve_signature == "NOT_SIGNING":
            report.actions.append("enable DNSSEC signing of the hosted zone")
            if not dry_run:
                response = self.backend.call(
                    "enable_hosted_zone_dnssec", HostedZoneId=self.backend.zone_id
                )
                changes.append(response["ChangeInfo"]["Id"])

        in_sync = True
        if changes:
            in_sync = self._wait_insync(changes, report)
            state = self.dnssec_state()
            report.serve_signature = state["Status"]["ServeSignature"]

        self._collect_warnings(state, report)
        if report.serve_signature == "SIGNING" and in_sync:
            report.ds = self._ds_rrset(state)
            if changes and report.ds is not None:
                records = "; ".join(rdata.to_text() for rdata in report.ds)
                report.warnings.append(
                    f"zone {zone}: Route 53 now signs the zone; the parent needs the DS RRset "
                    f"{records} (published there when the spec holds the parent, else hand it "
                    "to the parent's operator: provisioner ds SPEC ZONE prints it)"
                )
        elif dry_run and report.actions:
            report.warnings.append(
                f"zone {zone}: Route 53 will sign the zone after apply; the parent's DS RRset "
                "is published by the apply after Route 53 reports SIGNING"
            )
        for action in report.actions:
            log.info("zone %s: %s%s", zone, "would " if dry_run else "", action)
        return report

    def _our_ksk(self, state: dict[str, Any]) -> dict[str, Any] | None:
        for ksk in state.get("KeySigningKeys", []):
            if ksk.get("Name") == self.ksk_name:
                return dict(ksk)
        return None

    def _create_ksk(self, key_arn: str) -> str:
        reference = f"provisioner-{self.ksk_name}-{epoch(self.backend.clock.now())}"
        response = self.backend.call(
            "create_key_signing_key",
            CallerReference=reference,
            HostedZoneId=self.backend.zone_id,
            KeyManagementServiceArn=key_arn,
            Name=self.ksk_name,
            Status="ACTIVE",
        )
        return str(response["ChangeInfo"]["Id"])

    def _wait_insync(self, change_ids: list[str], report: SigningReport) -> bool:
        self.backend.change_ids.extend(change_ids)
        try:
            self.backend.wait_insync()
        except BackendError as error:
            report.warnings.append(
                f"zone {self.zone_spec.name}: DNSSEC changes are not yet INSYNC "
                f"({error.message}); the parent's DS RRset waits for the next apply"
            )
            return False
        return True

    def _collect_warnings(self, state: dict[str, Any], report: SigningReport) -> None:
        zone = self.zone_spec.name
        status = state["Status"]
        if report.serve_signature not in ("SIGNING", "NOT_SIGNING"):
            message = status.get("StatusMessage") or "no status message"
            report.warnings.append(
                f"zone {zone}: Route 53 DNSSEC status is {report.serve_signature}: {message}"
            )
        for ksk in state.get("KeySigningKeys", []):
            if ksk.get("Status") in ("ACTION_NEEDED", "INTERNAL_FAILURE"):
                report.warnings.append(
                    f"zone {zone}: key-signing key {ksk.get('Name')} is {ksk['Status']}: "
                    f"{ksk.get('StatusMessage') or 'no status message'} (KMS key "
                    f"{ksk.get('KmsArn')}); check that the KMS key is enabled and that its "
                    f"policy allows {ROUTE53_DNSSEC_PRINCIPAL}"
                )

    def _ds_rrset(self, state: dict[str, Any]) -> dns.rrset.RRset | None:
        zone = self.zone_spec.name
        rrset = dns.rrset.RRset(dns.name.from_text(zone), dns.rdataclass.IN, dns.rdatatype.DS)
        for ksk in state.get("KeySigningKeys", []):
            if ksk.get("Status") in _PUBLISHED_KSK_STATUSES and ksk.get("DSRecord"):
                rrset.add(parse_ds(zone, ksk["DSRecord"]), self.zone_spec.dnssec.ds_ttl)
        return rrset if len(rrset) else None

    # --- the KMS key --------------------------------------------------------------------------

    def _kms_key_arn(self, report: SigningReport) -> str:
        if self.publish.kms_key_arn:
            self._check_given_key(self.publish.kms_key_arn)
            return self.publish.kms_key_arn
        alias = key_alias(self.zone_spec.name)
        existing = self._describe_key(alias)
        if existing is not None:
            self._check_key_metadata(existing, alias)
            return str(existing["Arn"])
        return self._create_key(alias, report)

    def _describe_key(self, key_id: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            response = self.backend.caller.call(self._client("kms"), "describe_key", KeyId=key_id)
        except ClientError as error:
            if error_code(error) == "NotFoundException":
                return None
            raise BackendError(
                f"KMS DescribeKey of {key_id} failed: {error_code(error)}: {error_message(error)}",
                hint="the caller needs kms:DescribeKey on the key",
            ) from error
        return dict(response["KeyMetadata"])

    def _check_given_key(self, key_arn: str) -> None:
        metadata = self._describe_key(key_arn)
        if metadata is None:
            raise BackendError(
                f"KMS key {key_arn} (publish.kms_key_arn) does not exist",
                hint="give the ARN of an existing key, or remove kms_key_arn to let "
                "provisioner create one",
            )
        self._check_key_metadata(metadata, key_arn)
        policy = self._aws("kms", "get_key_policy", KeyId=key_arn, PolicyName="default")
        if ROUTE53_DNSSEC_PRINCIPAL not in policy.get("Policy", ""):
            raise BackendError(
                f"the key policy of KMS key {key_arn} does not name {ROUTE53_DNSSEC_PRINCIPAL}",
                hint="allow that service principal kms:DescribeKey, kms:GetPublicKey, kms:Sign "
                "and kms:CreateGrant (docs/route53.md shows the statements)",
            )

    def _check_key_metadata(self, metadata: dict[str, Any], name: str) -> None:
        problems = []
        if metadata.get("KeySpec") != KEY_SPEC:
            problems.append(f"key spec {metadata.get('KeySpec')} (needs {KEY_SPEC})")
        if metadata.get("KeyUsage") != KEY_USAGE:
            problems.append(f"key usage {metadata.get('KeyUsage')} (needs {KEY_USAGE})")
        if metadata.get("KeyState") != "Enabled":
            problems.append(f"key state {metadata.get('KeyState')} (needs Enabled)")
        arn = str(metadata.get("Arn", ""))
        if arn.split(":")[3:4] != ["us-east-1"]:
            problems.append(f"ARN {arn} (the key must be in us-east-1)")
        if problems:
            raise BackendError(
                f"KMS key {name} cannot hold a Route 53 key-signing key: " + "; ".join(problems),
                hint="use an enabled ECC_NIST_P256 SIGN_VERIFY key in us-east-1",
            )

    def _create_key(self, alias: str, report: SigningReport) -> str:
        identity = self._aws("sts", "get_caller_identity")
        account = str(identity["Account"])
        partition = str(identity.get("Arn", "arn:aws:")).split(":")[1] or "aws"
        response = self._aws(
            "kms",
            "create_key",
            Policy=json.dumps(key_policy(account, partition)),
            Description=f"Route 53 DNSSEC key-signing key of {self.zone_spec.name} "
            "(created by provisioner)",
            KeyUsage=KEY_USAGE,
            KeySpec=KEY_SPEC,
            Tags=[{"TagKey": "provisioner:zone", "TagValue": self.zone_spec.name}],
        )
        metadata = response["KeyMetadata"]
        self._aws("kms", "create_alias", AliasName=alias, TargetKeyId=metadata["KeyId"])
        report.actions.append(f"created KMS key {metadata['Arn']} ({alias})")
        return str(metadata["Arn"])


def ensure_route53_signing(backend: object, zone_spec: ZoneSpec, *, dry_run: bool) -> SigningReport:
    """Run the route53 signer for ``zone_spec``, whose backend must be a Route53Backend."""
    if not isinstance(backend, Route53Backend):
        raise DnssecError(
            f"zone {zone_spec.name} has signer 'route53' but is published with "
            f"{getattr(backend, 'name', 'another backend')}",
            hint="set publish.backend: route53, or choose another signer",
        )
    return Route53Signer(backend, zone_spec).ensure(dry_run=dry_run)


def route53_ds_lines(backend: object, zone_spec: ZoneSpec) -> list[str]:
    """Return the zone's DS RRs as zone-file lines, read from GetDNSSEC without changing it."""
    report = ensure_route53_signing(backend, zone_spec, dry_run=True)
    if report.ds is None:
        raise DnssecError(
            f"Route 53 does not sign zone {zone_spec.name} yet (status {report.serve_signature})",
            hint="run 'provisioner apply' to create the key-signing key and enable signing",
        )
    rrset = report.ds
    return [
        f"{rrset.name.to_text()} {rrset.ttl} IN DS {rdata.to_text()}"
        for rdata in sorted(rrset, key=lambda r: r.to_text())
    ]
