"""A simulated world for rollover tests: a spec, a store, a manual clock, lagging servers, an MTA.

Every publication (through the real apply and the zonefile backend) is appended to
``history.jsonl`` with the simulated time, and every deploy to ``mta.jsonl``, so that another
process (a crashed and resumed run) sees the same world. Each zone is served by two name
servers: one serves a publication at once, the other ``lag`` seconds later, so the observer
sees a change only after the propagation delay.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.name
import dns.rdatatype
import dns.rrset
from cryptography import x509

from provisioner.clock import ManualClock
from provisioner.pki.encoding import certificate_to_pem, load_certificates
from provisioner.rollover.observe import Observation, serial_at_least
from provisioner.spec.loader import load_spec
from provisioner.spec.models import MailServerSpec, Spec, ZoneSpec
from provisioner.store.local import CertificateRecord, LocalStore
from provisioner.workflows.rollover import RolloverEngine
from provisioner.zone.model import ZoneData

START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)

PARENT = "test."
CHILD = "example.test."
MX = "mx1.example.test."
USER = "alice@example.test"


@dataclass(frozen=True)
class Timings:
    """TTLs and delays of one simulated configuration, in seconds."""

    name: str
    ttl: int
    dnskey_ttl: int
    ds_ttl: int
    minimum: int
    propagation: int
    parent_propagation: int
    safety: int
    tlsa_ttl: int


SECONDS = Timings("seconds", 5, 10, 20, 4, 2, 3, 1, 6)
HOURS = Timings("hours", 3600, 3600, 86400, 900, 600, 1800, 3600, 1800)
DAYS = Timings("days", 86400, 86400, 2 * 86400, 3600, 3600, 7200, 86400, 2 * 86400)


def write_spec(
    folder: Path,
    timings: Timings,
    *,
    layout: str = "ksk-zsk",
    denial: str = "nsec",
    imported: bool = False,
    zsk_lifetime: int = 0,
    ksk_lifetime: int = 0,
    deploy_command: str = '["true"]',
    child_algorithm: int = 13,
) -> Path:
    """Write a spec with a parent zone test. and a child example.test. that has an MX and a user."""
    policy = (
        f"{{algorithm: 13, key_layout: {layout}, denial: {denial}, "
        f"dnskey_ttl: {timings.dnskey_ttl}, ds_ttl: {timings.ds_ttl}, "
        f"propagation_delay: {timings.propagation}, "
        f"parent_propagation_delay: {timings.parent_propagation}, "
        f"publish_safety: {timings.safety}, retire_safety: {timings.safety}, "
        f"zsk_lifetime: {zsk_lifetime}, ksk_lifetime: {ksk_lifetime}}}"
    )
    imported_source = "{import: {certificate: mx.pem, key: mx.key}}"
    certificate = imported_source if imported else "{authority: ca}"
    text = f"""
version: 1
state: state
output: out
authorities:
  - name: ca
    type: enterprise
    subject: {{common_name: Test CA}}
    key_type: ecdsa-p256
zones:
  - name: {PARENT}
    ttl: {timings.ttl}
    soa: {{rname: hostmaster.test, minimum: {timings.minimum}}}
    nameservers:
      - {{name: ns1.test., addresses: [127.0.0.1]}}
    dnssec: {policy}
    publish: {{backend: zonefile, path: zones/test.zone}}
  - name: {CHILD}
    ttl: {timings.ttl}
    soa: {{rname: hostmaster.example.test, minimum: {timings.minimum}}}
    nameservers:
      - {{name: ns1.example.test., addresses: [127.0.0.1]}}
    records:
      - {{name: "@", type: A, value: 127.0.0.1}}
      - {{name: www, type: TXT, value: '"hello"'}}
    dnssec: {policy.replace("algorithm: 13", f"algorithm: {child_algorithm}")}
    publish: {{backend: zonefile, path: zones/example.test.zone}}
mail_servers:
  - host: {MX}
    addresses: [127.0.0.25]
    certificate: {certificate}
    tlsa:
      - {{usage: 3, selector: 1, matching: 1}}
    tlsa_ttl: {timings.tlsa_ttl}
    deploy: {{command: {deploy_command}}}
users:
  - address: {USER}
    certificate: {{authority: ca}}
    smimea_ttl: {timings.tlsa_ttl}
"""
    path = folder / "provisioner.yaml"
    path.write_text(text)
    return path


@dataclass
class Publication:
    zone: str
    at: dt.datetime
    serial: int
    zone_data: ZoneData
    text: str = ""


_PARSED: dict[tuple[str, str], ZoneData] = {}


def parse_zone(text: str, zone: str) -> ZoneData:
    """Parse a zone text once per process; the history repeats the same texts often."""
    key = (zone, text)
    if key not in _PARSED:
        _PARSED[key] = ZoneData.from_text(text, zone)
    return _PARSED[key]


@dataclass
class World:
    """The simulated world around one spec folder; reload() reads what other processes wrote."""

    folder: Path
    clock: ManualClock
    lag: dict[str, int]
    publications: list[Publication] = field(default_factory=list)
    mta: list[tuple[dt.datetime, x509.Certificate]] = field(default_factory=list)
    deploys: int = 0

    @property
    def history_file(self) -> Path:
        return self.folder / "history.jsonl"

    @property
    def mta_file(self) -> Path:
        return self.folder / "mta.jsonl"

    def reload(self) -> None:
        self.publications = []
        if self.history_file.exists():
            for line in self.history_file.read_text().splitlines():
                entry = json.loads(line)
                self.publications.append(
                    Publication(
                        entry["zone"],
                        dt.datetime.fromisoformat(entry["at"]),
                        entry["serial"],
                        parse_zone(entry["text"], entry["zone"]),
                        entry["text"],
                    )
                )
        self.mta = []
        self.deploys = 0
        if self.mta_file.exists():
            for line in self.mta_file.read_text().splitlines():
                entry = json.loads(line)
                certificate = load_certificates(entry["pem"].encode())[0]
                self.mta.append((dt.datetime.fromisoformat(entry["at"]), certificate))
                self.deploys += entry.get("deploy", 0)

    # --- publisher and deployer ---------------------------------------------------------------

    def publish(self, spec: Spec, store: LocalStore, clock: Any) -> None:
        from provisioner.workflows.apply import apply

        apply(spec, store, clock)
        self.record(store)

    def record(self, store: LocalStore) -> None:
        latest = {p.zone: p for p in self.publications}
        lines = []
        for zone in (PARENT, CHILD):
            text = store.last_signed_zone(zone)
            if text is None:
                continue
            if zone in latest and latest[zone].text == text:
                continue
            data = parse_zone(text, zone)
            serial = data.soa[0].serial
            publication = Publication(zone, self.clock.now(), serial, data, text)
            self.publications.append(publication)
            lines.append(
                json.dumps(
                    {
                        "zone": zone,
                        "at": self.clock.now().isoformat(),
                        "serial": serial,
                        "text": text,
                    }
                )
            )
        if lines:
            with self.history_file.open("a") as handle:
                handle.write("".join(line + "\n" for line in lines))

    def present(self, certificate: x509.Certificate, *, deploy: int = 0) -> None:
        self.mta.append((self.clock.now(), certificate))
        self.deploys += deploy
        entry = {
            "at": self.clock.now().isoformat(),
            "pem": certificate_to_pem(certificate).decode(),
            "deploy": deploy,
        }
        with self.mta_file.open("a") as handle:
            handle.write(json.dumps(entry) + "\n")

    def deploy(
        self, spec: Spec, store: LocalStore, server: MailServerSpec, record: CertificateRecord
    ) -> None:
        self.present(load_certificates(store.read_certificate(record.id))[0], deploy=1)

    # --- observer -----------------------------------------------------------------------------

    def served(self, zone: str, now: dt.datetime, lag: int) -> Publication | None:
        found = None
        for publication in self.publications:
            if publication.zone == zone and publication.at + dt.timedelta(seconds=lag) <= now:
                found = publication
        return found

    def zone_serves(self, zone: ZoneSpec, serial: int) -> Observation:
        now = self.clock.now()
        for lag in (0, self.lag[zone.name]):
            publication = self.served(zone.name, now, lag)
            if publication is None or not serial_at_least(publication.serial, serial):
                return Observation(False, f"a name server of {zone.name} lags behind {serial}")
        return Observation(True)

    def parent_serves_ds(
        self, zone: ZoneSpec, parent: ZoneSpec | None, expected: dns.rrset.RRset
    ) -> Observation:
        assert parent is not None
        wanted = {rdata.to_text() for rdata in expected}
        now = self.clock.now()
        for lag in (0, self.lag[parent.name]):
            publication = self.served(parent.name, now, lag)
            served = publication.zone_data.get(zone.name, "DS") if publication else None
            texts = {rdata.to_text() for rdata in served} if served is not None else set()
            if texts != wanted:
                return Observation(
                    False, f"the DS RRset of {zone.name} never appeared at the parent"
                )
        return Observation(True)

    def mta_presents(self, server: MailServerSpec, certificate: x509.Certificate) -> Observation:
        if self.mta and self.mta[-1][1] == certificate:
            return Observation(True)
        return Observation(False, f"the MTA {server.host} presents another certificate")

    def presented_at(self, moment: dt.datetime) -> x509.Certificate | None:
        found = None
        for at, certificate in self.mta:
            if at <= moment:
                found = certificate
        return found


def make_world(folder: Path, timings: Timings, clock: ManualClock) -> World:
    world = World(
        folder,
        clock,
        {PARENT: timings.parent_propagation, CHILD: timings.propagation},
    )
    world.reload()
    return world


def open_engine(spec_path: Path, world: World, store: LocalStore, **options: Any) -> RolloverEngine:
    spec = load_spec(spec_path)
    return RolloverEngine(
        spec, store, world.clock, world, publisher=world.publish, deployer=world.deploy, **options
    )


def first_apply(spec_path: Path, world: World) -> None:
    """Publish the zones for the first time and let the MTA present the first certificate."""
    spec = load_spec(spec_path)
    with LocalStore(spec.state_dir()) as store:
        world.publish(spec, store, world.clock)
        record = store.current_certificate("server", MX)
        assert record is not None
        world.present(load_certificates(store.read_certificate(record.id))[0])


def ds_name(zone: str) -> dns.name.Name:
    return dns.name.from_text(zone)


DS = dns.rdatatype.DS


@functools.cache
def verifier_accepts_unpublished_signers() -> bool:
    """Return True when apply's self-check accepts RRSIGs by keys absent from the DNSKEY RRset.

    The RFC 6781 (section 4.1.4) algorithm rollover adds signatures before their DNSKEYs, and
    the double-DS KSK rollover lets the new KSK sign before it is published. Validators ignore
    such signatures, so a zone carrying them is valid.
    """
    from provisioner.dnssec.keys import generate_key
    from provisioner.dnssec.policy import DnssecPolicy
    from provisioner.dnssec.signer import KeyAssignment, KeyRole, sign_zone
    from provisioner.dnssec.verify import verify_zone

    zone = ZoneData("check.test.")
    zone.add(dns.rrset.from_text("check.test.", 300, "IN", "SOA", "ns. h. 1 7200 3600 1209600 300"))
    zone.add(dns.rrset.from_text("check.test.", 300, "IN", "NS", "ns.example."))
    keys = [
        KeyAssignment(generate_key(13, 257), KeyRole.KSK),
        KeyAssignment(generate_key(13, 256), KeyRole.ZSK),
        KeyAssignment(generate_key(15, 256), KeyRole.ZSK, published=False),
    ]
    signed = sign_zone(zone, keys, DnssecPolicy(), START)
    return not verify_zone(signed, START)


# Rollover kinds whose zones carry signatures by keys outside the DNSKEY RRset.
UNPUBLISHED_SIGNER_KINDS = ("ksk-double-ds", "algorithm")


def skip_unless_verifier_allows(kind: str) -> None:
    """Fail early, naming the cause, when apply's self-check rejects such zones again."""
    if kind in UNPUBLISHED_SIGNER_KINDS:
        assert verifier_accepts_unpublished_signers(), (
            "provisioner.dnssec.verify rejects RRSIGs by keys that are not in the DNSKEY RRset, "
            "which the algorithm and double-DS KSK rollovers publish on purpose"
        )
