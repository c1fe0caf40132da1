"""plan and apply: build every zone, sign it, diff it against what is served, publish it.

Zones are processed children first, so that a parent zone in the spec gets the DS RRset of
each child zone that provisioner signs.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rrset

from provisioner.backends.base import Backend
from provisioner.backends.registry import make_backend
from provisioner.clock import Clock
from provisioner.dnssec.keys import ds_rrset
from provisioner.errors import DnssecError
from provisioner.spec.models import Spec, ZoneSpec
from provisioner.store.local import LocalStore
from provisioner.workflows.certificates import CertificateManager
from provisioner.workflows.export import export_certificates
from provisioner.workflows.serial import initial_serial, next_serial
from provisioner.workflows.signing import sign_and_verify
from provisioner.workflows.zonekeys import ZoneKey, ensure_zone_keys
from provisioner.zone.builder import BuildInputs, PublishedCertificate, build_zones
from provisioner.zone.model import ZoneData, rrset_key
from provisioner.zone.plan import ZonePlan, diff_zone

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass
class PreparedZone:
    spec: ZoneSpec
    backend: Backend
    desired: ZoneData
    plan: ZonePlan
    digest: str
    keys: list[ZoneKey] = field(default_factory=list)
    served: ZoneData | None = None
    # desired.to_text(), rendered once for the digest and kept for the state store.
    text: str = ""


@dataclass
class RunResult:
    zones: list[PreparedZone]
    issued: list[str]
    warnings: list[str]

    @property
    def has_changes(self) -> bool:
        return any(z.plan.has_changes for z in self.zones) or bool(self.issued)

    def as_dict(self) -> dict[str, object]:
        return {
            "zones": [z.plan.as_dict() for z in self.zones],
            "certificates_issued": self.issued,
            "warnings": self.warnings,
        }


def plan(
    spec: Spec, store: LocalStore, clock: Clock, progress: Progress | None = None
) -> RunResult:
    """Compute what apply would change, writing nothing to the store or the backends."""
    return _run(spec, store, clock, dry_run=True, progress=progress)


def apply(
    spec: Spec, store: LocalStore, clock: Clock, progress: Progress | None = None
) -> RunResult:
    """Bring every zone and certificate to the spec; a second call changes nothing."""
    return _run(spec, store, clock, dry_run=False, progress=progress)


def _run(
    spec: Spec, store: LocalStore, clock: Clock, *, dry_run: bool, progress: Progress | None
) -> RunResult:
    say = progress or (lambda message: None)
    _check_keyless_zones(spec, store)
    certificates = CertificateManager(spec, store, clock, dry_run=dry_run)
    inputs = BuildInputs()

    say("certificates")
    servers = {s.host: [certificates.server(s).published()] for s in spec.mail_servers}
    users = {}
    for index, user in enumerate(spec.users):
        users[user.address] = [certificates.user(user).published()]
        if index % 1000 == 999:
            say(f"certificates: {index + 1} of {len(spec.users)} users")
    inputs.servers = _with_extra_published(store, servers, "server")
    inputs.users = _with_extra_published(store, users, "smime")

    prepared: list[PreparedZone] = []
    for zone_spec in sorted(spec.zones, key=lambda z: -len(dns.name.from_text(z.name))):
        say(f"zone {zone_spec.name}")
        zone = _prepare_zone(spec, zone_spec, store, clock, inputs, dry_run=dry_run)
        prepared.append(zone)
        ds = _ds_for_parent(zone, dry_run=dry_run)
        if ds is not None:
            inputs.child_ds = {**inputs.child_ds, zone_spec.name: ds}

    prepared.sort(key=lambda z: [zone.name for zone in spec.zones].index(z.spec.name))
    warnings = list(inputs.warnings) + certificates.warnings
    if dry_run and certificates.issued:
        warnings.append(
            "certificates to issue get new keys at apply, so the TLSA and SMIMEA values shown "
            "for them are placeholders"
        )
    for zone in prepared:
        warnings += zone.plan.warnings

    # Certificates reach the output folder only once every zone is ready to publish, so that
    # a run that fails on a zone does not hand servers a certificate whose TLSA is unpublished.
    if not dry_run:
        export_certificates(spec, store)
        for zone in prepared:
            _publish(zone, store, clock)
    return RunResult(prepared, certificates.issued, warnings)


def _with_extra_published(
    store: LocalStore, current: dict[str, list[PublishedCertificate]], purpose: str
) -> dict[str, list[PublishedCertificate]]:
    """Add certificates that a rollover publishes beside the current one ("next" or "old")."""
    from provisioner.pki.encoding import load_certificates

    result = {owner: list(published) for owner, published in current.items()}
    for status in ("next", "previous"):
        for record in store.certificates(purpose=purpose, status=status):
            if record.owner not in result:
                continue
            loaded = load_certificates(store.read_certificate(record.id))
            result[record.owner].append(PublishedCertificate(loaded[0], tuple(loaded[1:])))
    return result


def _prepare_zone(
    spec: Spec,
    zone_spec: ZoneSpec,
    store: LocalStore,
    clock: Clock,
    inputs: BuildInputs,
    *,
    dry_run: bool,
) -> PreparedZone:
    backend = make_backend(spec, zone_spec, store)
    current = backend.read()
    current_serial = _serial_of(current)
    # A server that increments the serial on each UPDATE (rfc2136, unless provisioner signs)
    # owns it, so its serial does not reflect provisioner's content.
    if getattr(backend, "server_owns_serial", False):
        current_serial = None
    previous_state = store.zone_state(zone_spec.name)
    previous_text = store.last_signed_zone(zone_spec.name)
    if previous_text is not None and previous_text == getattr(backend, "text", None):
        previous = current  # the zone file is the copy in the store: parse it once
    else:
        previous = ZoneData.from_text(previous_text, zone_spec.name) if previous_text else None
    if previous is None and backend.owns_whole_zone:
        previous = current
    now = clock.now()
    if previous_state is not None:
        serial = previous_state[0]
    else:
        serial = current_serial if current_serial is not None else initial_serial(now)

    signs = zone_spec.dnssec.signer == "provisioner"
    new_keys = signs and dry_run and not store.keys(purpose="dnssec", owner=zone_spec.name)
    keys = ensure_zone_keys(store, zone_spec, clock, dry_run=dry_run) if signs else []
    if signs:
        _check_served_keys(zone_spec, current, keys, store)
    algorithm_warnings = _algorithm_warnings(zone_spec, keys, store)

    def build(with_serial: int, reuse: ZoneData | None) -> ZoneData:
        unsigned = build_zones_for(spec, zone_spec, inputs, with_serial)
        if not signs:
            return unsigned
        return sign_and_verify(zone_spec, unsigned, keys, reuse, now)

    desired = build(serial, previous)
    text, digest = _render(desired)

    # The serial stays only when nothing changed since the last publication and nothing newer
    # is served (a run killed after writing but before recording leaves a newer serial).
    first = previous_state is None and current is None
    unchanged = (
        previous_state is not None
        and digest == previous_state[1]
        and (current_serial is None or current_serial <= serial)
    )
    differs_from = getattr(backend, "differs_from", None)
    stale = differs_from(text) if differs_from is not None else None
    if not first and (stale is not None or (not unchanged and current != desired)):
        serial = next_serial(max(serial, current_serial or 0), now)
        desired = build(serial, desired)
        text, digest = _render(desired)

    owned = None if backend.owns_whole_zone else _owned_keys(store, zone_spec.name)
    takeover = bool(getattr(zone_spec.publish, "takeover", False))

    def make_plan() -> ZonePlan:
        compared = _comparable(backend, current, desired)
        owned_here = owned
        if owned is not None and signs:
            owned_here = owned | _owned_rrsigs(owned, compared, desired)
        changes, left_alone = diff_zone(compared, desired, owned=owned_here, takeover=takeover)
        return ZonePlan(
            zone=zone_spec.name,
            backend=backend.name,
            serial_before=_serial_of(current),
            serial_after=serial,
            changes=changes,
            left_alone=left_alone,
        )

    plan = make_plan()
    # A server that receives a signed zone by UPDATE increments the serial for each message
    # but the last, which must then carry a greater serial for the signed SOA to be taken.
    minimum_serial = getattr(backend, "minimum_serial", None)
    floor = minimum_serial(plan) if signs and minimum_serial is not None else None
    if floor is not None and floor != serial and (floor - serial) % 2**32 < 2**31:
        serial = floor
        desired = build(serial, desired)
        text, digest = _render(desired)
        plan = make_plan()
    plan.warnings.extend(algorithm_warnings)
    if stale is not None:
        plan.warnings.append(stale)
    if new_keys:
        plan.warnings.append(
            f"zone {zone_spec.name} has no DNSSEC keys yet: apply generates them, so the "
            "DNSKEY, DS and RRSIG values shown are placeholders"
        )
    backend.check_plan(plan, desired)
    return PreparedZone(zone_spec, backend, desired, plan, digest, keys, served=current, text=text)


def _comparable(backend: Backend, current: ZoneData | None, desired: ZoneData) -> ZoneData | None:
    """Return the served zone as the backend compares it with ``desired``.

    The rfc2136 backend leaves out what a signing server makes itself and the serial that
    the server owns. Other backends compare the served zone as it is.
    """
    comparable = getattr(backend, "comparable", None)
    return comparable(current, desired) if comparable is not None else current


def _owned_rrsigs(owned: set, *zones: ZoneData | None) -> set:
    """Return the RRSIG keys at owner names where provisioner owns RRSIGs.

    The store keeps ownership as (owner, type), without the type that an RRSIG covers.
    """
    import dns.rdatatype

    from provisioner.zone.model import NONE

    rrsig = dns.rdatatype.RdataType.RRSIG
    return {
        key
        for zone in zones
        if zone is not None
        for key in zone.rrsets
        if key[1] == rrsig and (key[0], rrsig, NONE) in owned
    }


def _algorithm_warnings(zone_spec: ZoneSpec, keys: list[ZoneKey], store: LocalStore) -> list[str]:
    """Warn when the spec sets an algorithm that no signing key of the zone has."""
    wanted = zone_spec.dnssec.algorithm
    if not keys or any(k.key.algorithm == wanted and k.sign for k in keys):
        return []
    running = [r for r in store.rollovers() if r["data"].get("status") == "running"]
    if any(r["subject"] == zone_spec.name for r in running):
        return []
    return [
        f"zone {zone_spec.name} is signed with algorithm {keys[0].key.algorithm} but the spec "
        f"asks for {wanted}; the algorithm changes only through a rollover (RFC 6781, 4.1.4): "
        "run 'provisioner rollover run SPEC', which starts it"
    ]


def _check_keyless_zones(spec: Spec, store: LocalStore) -> None:
    """Reject the run, before anything is issued, for a served signed zone without keys here.

    A zone that is served signed while the store has no key for it means the store is the
    wrong one (--state) or was lost.
    """
    for zone_spec in spec.zones:
        if zone_spec.dnssec.signer != "provisioner":
            continue
        if store.keys(purpose="dnssec", owner=zone_spec.name):
            continue
        current = make_backend(spec, zone_spec, store).read()
        _check_served_keys(zone_spec, current, [], store)


def _check_served_keys(
    zone_spec: ZoneSpec, current: ZoneData | None, keys: list[ZoneKey], store: LocalStore
) -> None:
    """Raise DnssecError when the served zone is signed by none of the store's keys.

    That happens with the wrong --state, or a lost store: publishing would replace every key
    at once, and the parent's DS would then match none of them, so the zone turns bogus.
    """
    if current is None:
        return
    served = current.get(current.origin, "DNSKEY")
    if served is None or not len(served):
        return
    ours = {key.key.dnskey for key in keys}
    if any(rdata in ours for rdata in served):
        return
    tags = ", ".join(str(dns.dnssec.key_id(rdata)) for rdata in served)
    raise DnssecError(
        f"zone {zone_spec.name} is served signed by DNSKEYs (key tags {tags}) that the state "
        f"store {store.root} does not hold; publishing would replace them all and break "
        "validation at every resolver that follows the parent's DS",
        hint="run with the state store that signed the zone (--state DIR), or restore it from "
        "a backup. To re-key on purpose, remove the published zone first and update the DS at "
        "the parent",
    )


def _serial_of(zone: ZoneData | None) -> int | None:
    if zone is None:
        return None
    soa = zone.get(zone.origin, "SOA")
    return int(soa[0].serial) if soa is not None else None


def build_zones_for(spec: Spec, zone_spec: ZoneSpec, inputs: BuildInputs, serial: int) -> ZoneData:
    return build_zones(spec, inputs, {zone_spec.name: serial}, only=zone_spec.name)[zone_spec.name]


def _owned_keys(store: LocalStore, zone: str) -> set:
    import dns.rdatatype

    from provisioner.zone.model import NONE

    result = set()
    for owner, rdtype in store.owned(zone):
        result.add((dns.name.from_text(owner), dns.rdatatype.RdataType.make(rdtype), NONE))
    return result


def _ds_for_parent(zone: PreparedZone, *, dry_run: bool = False) -> dns.rrset.RRset | None:
    if zone.spec.dnssec.signer == "route53":
        return _ds_from_route53(zone, dry_run=dry_run)
    if zone.spec.dnssec.signer == "server":
        return _ds_from_server(zone)
    if zone.spec.dnssec.signer != "provisioner":
        return None
    ds_keys = [k.key for k in zone.keys if k.ds and k.is_ksk]
    if not ds_keys:
        raise DnssecError(f"zone {zone.spec.name} has no key marked for the parent's DS RRset")
    return ds_rrset(zone.spec.name, ds_keys, zone.spec.dnssec.ds_digests, zone.spec.dnssec.ds_ttl)


def _ds_from_route53(zone: PreparedZone, *, dry_run: bool) -> dns.rrset.RRset | None:
    """Make Route 53 sign the zone (unless ``dry_run``) and return the DS RRset it reports.

    The signing status, keys in ACTION_NEEDED, and in a plan the steps apply would take
    become warnings of the zone's plan.
    """
    from provisioner.backends.route53_dnssec import ensure_route53_signing

    report = ensure_route53_signing(zone.backend, zone.spec, dry_run=dry_run)
    if dry_run:
        zone.plan.warnings += [f"zone {zone.spec.name}: apply will {a}" for a in report.actions]
    zone.plan.warnings += report.warnings
    return report.ds


def _ds_from_server(zone: PreparedZone) -> dns.rrset.RRset | None:
    """Return the DS RRset for a zone that its server signs, from what the server serves."""
    from provisioner.workflows.ds import ds_from_served

    if zone.served is None:
        return None
    return ds_from_served(zone.served, zone.spec)


def _render(zone: ZoneData) -> tuple[str, str]:
    """Return the zone's text and the SHA-256 digest of that text."""
    text = zone.to_text()
    return text, hashlib.sha256(text.encode()).hexdigest()


def _publish(zone: PreparedZone, store: LocalStore, clock: Clock) -> None:
    if zone.plan.has_changes:
        zone.backend.apply(zone.plan, zone.desired)
        log.info(
            "published zone %s serial %d (%s)",
            zone.spec.name,
            zone.plan.serial_after,
            ", ".join(f"{n} {a}" for a, n in zone.plan.counts().items() if n),
        )
    previous = store.zone_state(zone.spec.name)
    if previous is not None and previous == (zone.plan.serial_after, zone.digest):
        return
    if not zone.backend.owns_whole_zone:
        owned = {
            (key[0].to_text(), key[1].name)
            for key in (rrset_key(r) for r in zone.desired)
            if key not in set(zone.plan.left_alone)
        }
        store.set_owned(zone.spec.name, owned)
    store.record_publication(
        zone.spec.name,
        zone.plan.serial_after,
        zone.digest,
        zone.backend.name,
        clock.now(),
        zone.plan.counts(),
        zone_text=zone.text,
    )
