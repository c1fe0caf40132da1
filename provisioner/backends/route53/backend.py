"""The Route 53 backend: publish a zone's RRsets to an Amazon Route 53 hosted zone.

Route 53 keeps the apex SOA and NS RRsets of a hosted zone itself, so they are never changed
or deleted here. Record sets that are not plain RRsets (alias records, routing policies) are
neither read nor changed. The other RRsets follow the core's ownership rules: only RRsets
that provisioner created (the state store's ``owned`` table) are updated or deleted.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from typing import Any

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from provisioner.backends.route53.batches import (
    BatchLimits,
    Change,
    route53_changes,
    split_batches,
)
from provisioner.backends.route53.calls import (
    Caller,
    ClientFactory,
    RetryPolicy,
    error_code,
    error_message,
    make_client,
)
from provisioner.backends.route53.records import (
    MAX_VALUE_CHARACTERS,
    SUPPORTED_TYPES,
    decode_name,
    from_record_set,
    is_plain,
    rdata_value,
)
from provisioner.clock import Clock, SystemClock
from provisioner.errors import BackendError
from provisioner.spec.models import Route53Publish
from provisioner.store.local import LocalStore
from provisioner.zone.model import NONE, RRsetKey, ZoneData, describe_key, rrset_key
from provisioner.zone.plan import RRsetChange, ZonePlan

log = logging.getLogger(__name__)

SMIMEA_REMEDY = (
    "serve the SMIMEA records from a child zone that provisioner signs: add to this zone "
    "'smimea: {delegate: true, nameservers: [NS, ...], publish: {backend: zonefile}}' "
    "(or an rfc2136 publish section); provisioner then publishes _smimecert.<domain> there "
    "and puts its NS and DS RRsets into this hosted zone"
)


class Route53Backend:
    """One Route 53 hosted zone, found by ``hosted_zone_id`` or by the zone's name."""

    name = "route53"
    owns_whole_zone = False

    def __init__(
        self,
        origin: str,
        publish: Route53Publish,
        store: LocalStore | None,
        *,
        clients: ClientFactory = make_client,
        clock: Clock | None = None,
        retry: RetryPolicy = RetryPolicy(),
        rng: random.Random | None = None,
        limits: BatchLimits = BatchLimits(),
        poll_interval: float = 5.0,
    ) -> None:
        self.origin = dns.name.from_text(origin)
        self.publish = publish
        self.store = store
        self.clients = clients
        self.clock = clock or SystemClock()
        self.caller = Caller(self.clock, retry, rng)
        self.limits = limits
        self.poll_interval = poll_interval
        self.client = clients("route53", publish)
        self._zone_id = _bare_zone_id(publish.hosted_zone_id) if publish.hosted_zone_id else None
        self._checked_zone_id = False
        self.unmanaged: set[RRsetKey] = set()
        self.change_ids: list[str] = []
        self.applied: list[Change] = []
        self.current: ZoneData | None = None

    # --- the hosted zone ----------------------------------------------------------------------

    def call(self, operation: str, **parameters: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            return self.caller.call(self.client, operation, **parameters)
        except ClientError as error:
            raise BackendError(
                f"Route 53 {operation} failed for zone {self.origin}: "
                f"{error_code(error)}: {error_message(error)}",
                hint=_hint_for(error_code(error)),
            ) from error

    @property
    def zone_id(self) -> str:
        """Return the hosted zone's id, looking the zone up by name on first use."""
        if self._zone_id is None:
            self._zone_id = self._find_zone_id()
            self._checked_zone_id = True
        elif not self._checked_zone_id:
            response = self.call("get_hosted_zone", Id=self._zone_id)
            name = decode_name(response["HostedZone"]["Name"])
            if name != self.origin:
                raise BackendError(
                    f"hosted zone {self._zone_id} is {name}, not {self.origin}",
                    hint="correct publish.hosted_zone_id, or remove it to find the zone by name",
                )
            self._checked_zone_id = True
        return self._zone_id

    def _find_zone_id(self) -> str:
        wanted = self.origin.to_text()
        response = self.call("list_hosted_zones_by_name", DNSName=wanted, MaxItems="100")
        matches = [
            zone
            for zone in response.get("HostedZones", [])
            if decode_name(zone["Name"]) == self.origin
        ]
        if not matches:
            raise BackendError(
                f"no Route 53 hosted zone is named {wanted}",
                hint="create it (aws route53 create-hosted-zone --name "
                f"{wanted} --caller-reference ...), or give publish.hosted_zone_id",
            )
        if len(matches) > 1:
            ids = ", ".join(_bare_zone_id(zone["Id"]) for zone in matches)
            raise BackendError(
                f"{len(matches)} Route 53 hosted zones are named {wanted}: {ids}",
                hint="choose one with publish.hosted_zone_id",
            )
        return _bare_zone_id(matches[0]["Id"])

    # --- Backend protocol ---------------------------------------------------------------------

    def read(self) -> ZoneData | None:
        """Return every plain RRset of the hosted zone, reading all pages."""
        zone = ZoneData(self.origin)
        self.unmanaged = set()
        parameters: dict[str, Any] = {"HostedZoneId": self.zone_id, "MaxItems": "300"}
        while True:
            response = self.call("list_resource_record_sets", **parameters)
            for record_set in response.get("ResourceRecordSets", []):
                if not is_plain(record_set):
                    name = decode_name(record_set["Name"])
                    rdtype = dns.rdatatype.from_text(record_set["Type"])
                    self.unmanaged.add((name, rdtype, NONE))
                    continue
                rrset = self._parse_record_set(record_set)
                if len(rrset):
                    zone.replace(rrset)
            if not response.get("IsTruncated"):
                break
            parameters["StartRecordName"] = response["NextRecordName"]
            parameters["StartRecordType"] = response["NextRecordType"]
            if "NextRecordIdentifier" in response:
                parameters["StartRecordIdentifier"] = response["NextRecordIdentifier"]
            else:
                parameters.pop("StartRecordIdentifier", None)
        self.current = zone
        return zone

    def check_plan(self, plan: ZonePlan, desired: ZoneData) -> None:
        """Leave Route 53's apex SOA and NS alone; reject what Route 53 cannot serve."""
        self._leave_apex_alone(plan, desired)
        self._check_types(desired)
        self._check_unmanaged(plan)
        self._check_values(plan)
        split_batches(route53_changes(plan.changes, self.limits), self.limits)

    def apply(self, plan: ZonePlan, desired: ZoneData) -> None:
        """Send the plan's changes in batches; a failed batch records what already landed."""
        changes = route53_changes(
            [c for c in plan.changes if not self._is_apex_soa_or_ns(c.key)], self.limits
        )
        batches = split_batches(changes, self.limits)
        self.applied = []
        for index, batch in enumerate(batches, start=1):
            try:
                response = self._send(batch, index, len(batches))
            except BackendError:
                self._record_landed(self.applied)
                raise
            self.change_ids.append(response["ChangeInfo"]["Id"])
            self.applied.extend(batch)
            log.info(
                "zone %s: change batch %d of %d (%d changes) accepted as %s",
                self.origin,
                index,
                len(batches),
                len(batch),
                response["ChangeInfo"]["Id"],
            )

    def wait_insync(self, timeout: float | None = None) -> None:
        """Wait until every change sent by apply is INSYNC; raise BackendError on timeout."""
        limit = self.publish.wait_timeout if timeout is None else timeout
        start = self.clock.now()
        pending = list(self.change_ids)
        while pending:
            response = self.call("get_change", Id=pending[0])
            if response["ChangeInfo"]["Status"] == "INSYNC":
                pending.pop(0)
                continue
            waited = (self.clock.now() - start).total_seconds()
            if waited >= limit:
                raise BackendError(
                    f"zone {self.origin}: change {pending[0]} is still PENDING after "
                    f"{waited:.0f} s",
                    hint="Route 53 normally propagates within a minute; raise "
                    "publish.wait_timeout or check the change later with aws route53 get-change",
                )
            self.clock.sleep(min(self.poll_interval, max(limit - waited, 0.0)))

    # --- helpers ------------------------------------------------------------------------------

    def _parse_record_set(self, record_set: dict[str, Any]) -> dns.rrset.RRset:
        try:
            return from_record_set(record_set)
        except BackendError:
            # The apex SOA is Route 53's and never changed here, so an unreadable one is
            # dropped instead of failing the run. NOTE: moto 5.2 returns it as the text of
            # a Python dict; Route 53 itself returns a plain SOA value.
            if decode_name(record_set["Name"]) == self.origin and record_set["Type"] == "SOA":
                log.debug("zone %s: ignoring an unreadable apex SOA value", self.origin)
                return dns.rrset.RRset(self.origin, dns.rdataclass.IN, dns.rdatatype.SOA)
            raise

    def _is_apex_soa_or_ns(self, key: RRsetKey) -> bool:
        return key[0] == self.origin and key[1] in (dns.rdatatype.SOA, dns.rdatatype.NS)

    def _leave_apex_alone(self, plan: ZonePlan, desired: ZoneData) -> None:
        kept: list[RRsetChange] = []
        for change in plan.changes:
            if self._is_apex_soa_or_ns(change.key):
                plan.left_alone.append(change.key)
            else:
                kept.append(change)
        plan.changes[:] = kept

        served = self.current.get(self.origin, "NS") if self.current is not None else None
        wanted = desired.get(self.origin, "NS")
        if served is not None and wanted is not None and set(served) != set(wanted):
            names = ", ".join(sorted(r.to_text() for r in served))
            plan.warnings.append(
                f"zone {self.origin}: Route 53 serves its own apex NS RRset ({names}), not the "
                "spec's nameservers; list Route 53's name servers under nameservers to match"
            )
        plan.left_alone.sort(key=lambda k: (k[0], int(k[1]), int(k[2])))

    def _check_types(self, desired: ZoneData) -> None:
        unsupported: dict[str, list[str]] = {}
        for key in desired.rrsets:
            if self._is_apex_soa_or_ns(key):
                continue
            type_name = dns.rdatatype.to_text(key[1])
            if type_name not in SUPPORTED_TYPES:
                unsupported.setdefault(type_name, []).append(key[0].to_text())
        if not unsupported:
            return
        if "SMIMEA" in unsupported:
            owners = unsupported["SMIMEA"]
            raise BackendError(
                f"zone {self.origin} is published to Route 53, which does not accept SMIMEA "
                f"records; {len(owners)} SMIMEA RRset(s) would be published, such as "
                f"{owners[0]}",
                hint=SMIMEA_REMEDY,
            )
        listed = "; ".join(
            f"{type_name} at {', '.join(owners[:3])}" for type_name, owners in unsupported.items()
        )
        raise BackendError(
            f"zone {self.origin} is published to Route 53, which does not accept these record "
            f"types: {listed}",
            hint="Route 53 accepts " + ", ".join(sorted(SUPPORTED_TYPES)) + "; publish the "
            "zone with another backend, or drop those records",
        )

    def _check_unmanaged(self, plan: ZonePlan) -> None:
        for change in plan.changes:
            if change.action == "create" and change.key in self.unmanaged:
                raise BackendError(
                    f"{describe_key(change.key)} exists in hosted zone {self.zone_id} as an "
                    "alias record or with a routing policy, which provisioner does not manage",
                    hint="delete that record set in Route 53, or drop the RRset from the spec",
                )

    def _check_values(self, plan: ZonePlan) -> None:
        for change in plan.changes:
            if change.after is None:
                continue
            for rdata in change.after:
                length = len(rdata_value(rdata))
                if length > MAX_VALUE_CHARACTERS:
                    raise BackendError(
                        f"a {describe_key(change.key)} value has {length} characters; Route 53 "
                        f"accepts at most {MAX_VALUE_CHARACTERS} per value",
                        hint="use a hashed matching type (SHA2-256) for TLSA, or shorten the value",
                    )

    def _send(self, batch: Sequence[Change], index: int, total: int) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        request = {
            "Comment": f"provisioner: zone {self.origin}, batch {index} of {total}",
            "Changes": [change.as_api() for change in batch],
        }
        try:
            return self.caller.call(
                self.client,
                "change_resource_record_sets",
                HostedZoneId=self.zone_id,
                ChangeBatch=request,
            )
        except ClientError as error:
            code = error_code(error)
            landed = f"{index - 1} of {total} batches were applied before it"
            raise BackendError(
                f"Route 53 rejected change batch {index} of {total} for zone {self.origin} "
                f"({code}): {_rejection_text(error)}; {landed}",
                hint=_hint_for(code),
            ) from error

    def _record_landed(self, landed: Sequence[Change]) -> None:
        """Mark RRsets that earlier batches created as owned, so a later apply manages them.

        The core records ownership only after the whole apply succeeded. Without this, an
        RRset created by batch 1 of a run whose batch 2 was rejected would look foreign to
        the next run and be left alone forever once the spec drops it.
        """
        if self.store is None or not landed:
            return
        zone = self.origin.to_text()
        owned = set(self.store.owned(zone))
        for change in landed:
            key = rrset_key(change.rrset)
            entry = (key[0].to_text(), key[1].name)
            if change.action == "DELETE":
                owned.discard(entry)
            else:
                owned.add(entry)
        self.store.set_owned(zone, owned)
        log.info(
            "zone %s: recorded %d changes of a partly applied run in the state store",
            zone,
            len(landed),
        )


def _bare_zone_id(zone_id: str) -> str:
    return zone_id.rsplit("/", 1)[-1]


def _rejection_text(error: Exception) -> str:
    """Return the messages of an InvalidChangeBatch error, or its plain message."""
    response = getattr(error, "response", None) or {}
    # botocore puts the modeled member "messages" of InvalidChangeBatch beside "Error".
    messages = response.get("messages") or response.get("Error", {}).get("Messages")
    if isinstance(messages, list) and messages:
        return "; ".join(str(m) for m in messages)
    return error_message(error)


def _hint_for(code: str) -> str:
    if code == "InvalidChangeBatch":
        return (
            "the hosted zone changed since the plan was made, or a value is invalid; run "
            "'provisioner plan' to see the current difference, then apply again"
        )
    if code in ("AccessDenied", "AccessDeniedException"):
        return "grant the caller the route53 permissions listed in docs/route53.md"
    if code == "NoSuchHostedZone":
        return "check publish.hosted_zone_id, or remove it to find the zone by name"
    if code in ("Throttling", "PriorRequestNotComplete", "ThrottlingException"):
        return "Route 53 kept throttling after several retries; wait a minute and apply again"
    return "see the AWS error above; apply again after fixing it"
