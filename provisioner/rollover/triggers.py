"""What starts a rollover without a command: key lifetimes, and certificates replaced outside.

``due_rollovers`` lists the DNSSEC keys whose policy lifetime ends soon enough that their
rollover must start now for the successor to take over on time. ``detect_replaced_imports``
finds imported certificates whose file now contains a certificate with another key (another ACME
client, a manual replacement) and starts an emergency rollover for each: the new TLSA or
SMIMEA record is published at once, the old one kept until caches have dropped it.
A renewal that keeps the key is not a rollover: records with selector 1 (SPKI) stay valid.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from provisioner.errors import ProvisionerError
from provisioner.rollover import machines

if TYPE_CHECKING:
    from provisioner.workflows.rollover import RolloverEngine

log = logging.getLogger(__name__)


def due_rollovers(engine: RolloverEngine) -> list[tuple[str, str, int | None]]:
    """Return (zone, key kind, new algorithm) for every rollover that must start now.

    A key is due when it has reached its rollover start time; a zone is due for an algorithm
    rollover when the spec names another algorithm than its signing keys have.
    """
    from provisioner.workflows.zonekeys import load_zone_keys

    now = engine.clock.now()
    busy = {r["data"]["zone"] for r in engine.records(active_only=True)}
    due: list[tuple[str, str, int | None]] = []
    for zone in engine.spec.zones:
        if zone.dnssec.signer != "provisioner" or zone.name in busy:
            continue
        policy = zone.dnssec
        times = engine.zone_times(zone)
        keys = load_zone_keys(engine.store, zone.name)
        signing = {k.key.algorithm for k in keys if k.sign}
        if signing and policy.algorithm not in signing:
            log.info(
                "zone %s is signed with algorithm %s but the spec sets %d; starting an "
                "algorithm rollover",
                zone.name,
                ", ".join(str(a) for a in sorted(signing)),
                policy.algorithm,
            )
            due.append((zone.name, "algorithm", policy.algorithm))
            continue
        for key in keys:
            if key.state != "active" or not key.sign:
                continue
            record = engine.store.key(key.id)
            assert record is not None
            since = dt.datetime.fromisoformat(
                record.data.get("activated")
                or record.data.get("created")
                or record.created.isoformat()
            )
            if key.role == "zsk":
                kind, lifetime = "zsk", policy.zsk_lifetime
                steps = machines.zsk_steps(policy, times)
                switch = "activate-new"
            else:
                kind, lifetime = key.role, policy.ksk_lifetime
                method = f"ksk-{engine.ksk_method(zone)}" if key.role == "ksk" else "csk"
                steps = machines.dnssec_steps(method, policy, times)
                switch = "swap-dnskey" if method == "ksk-double-ds" else "swap-ds"
            if lifetime <= 0:
                continue
            lead = machines.lead_time(steps, switch)
            start_at = since + dt.timedelta(seconds=max(0, lifetime - lead))
            if now >= start_at:
                log.info(
                    "the %s %d of %s reaches the end of its lifetime; starting its rollover",
                    key.role.upper(),
                    key.key.key_tag,
                    zone.name,
                )
                due.append((zone.name, kind, None))
                busy.add(zone.name)
                break
    return due


def detect_replaced_imports(engine: RolloverEngine) -> list[tuple[str, str]]:
    """Start an emergency rollover for each imported certificate whose key changed.

    Returns (rollover id, message) for each one started.
    """
    from provisioner.pki.encoding import load_certificates
    from provisioner.workflows.rollover import spki_sha256

    started = []
    entries = [("server", s.host, s.certificate, s) for s in engine.spec.mail_servers] + [
        ("smime", u.address, u.certificate, u) for u in engine.spec.users
    ]
    busy = {r["subject"] for r in engine.records(active_only=True)}
    for purpose, owner, source, entry in entries:
        if source.import_ is None or owner in busy:
            continue
        current = engine.store.current_certificate(purpose, owner)
        if current is None:
            continue
        path = engine.spec.resolve(source.import_.certificate)
        try:
            certificate = load_certificates(path.read_bytes())[0]
        except (OSError, ValueError, IndexError, ProvisionerError) as error:
            log.warning("cannot read the imported certificate %s of %s: %s", path, owner, error)
            continue
        held = engine.certificate(current.id)
        if spki_sha256(certificate) == spki_sha256(held):
            continue
        rollover_id = engine.start_emergency(purpose, owner, entry)
        message = (
            f"EMERGENCY: the certificate of {owner} in {path} has a new key that provisioner "
            f"did not issue (another ACME client or a manual replacement). Its "
            f"{'TLSA' if purpose == 'server' else 'SMIMEA'} record is published now and the "
            f"old one kept until caches drop it (rollover {rollover_id}); DANE clients whose "
            "cache holds only the old record fail until then"
        )
        started.append((rollover_id, message))
    return started
