"""The rollover engine: persisted state machines that change keys and certificates step by step.

A rollover is a row of the store's ``rollovers`` table. Its JSON data contains the planned steps
(provisioner.rollover.machines), the ids of the old and new keys or certificates, the index of
the current step and its phase:

    generating   the new keys or certificate are being made (found again by their
                 ``rollover`` tag after a crash, never made twice)
    acting       the step's change is recorded in the store and is being published
                 (and deployed); a crash here repeats the publication, which apply makes
                 idempotent, and the deploy, which is skipped when the MTA already presents
                 the new certificate
    waiting      the step is published; the next one runs when the step's wait has passed
                 and its observations hold

The flag changes of a step and the phase "acting" are written in one SQLite transaction, so a
crash never leaves the flags changed but the step unrecorded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import dns.name
import dns.rrset
from cryptography import x509

from provisioner.clock import Clock
from provisioner.dnssec.keys import ds_rrset
from provisioner.errors import DeployError, ProvisionerError, RolloverError
from provisioner.pki.encoding import load_certificates
from provisioner.rollover import machines
from provisioner.rollover.machines import (
    OBSERVE_MTA,
    OBSERVE_PARENT_DS,
    OBSERVE_ZONE,
    Step,
)
from provisioner.rollover.observe import Observation, Observer, describe_ds, ds_set
from provisioner.rollover.timing import ZoneTimes
from provisioner.spec.models import MailServerSpec, Spec, UserSpec, ZoneSpec
from provisioner.store.local import CertificateRecord, LocalStore

if TYPE_CHECKING:
    from provisioner.check.targets import Server
from provisioner.zone.model import ZoneData

log = logging.getLogger(__name__)


class Publisher(Protocol):
    def __call__(self, spec: Spec, store: LocalStore, clock: Clock) -> None:
        """Publish every zone as the store now records it (provisioner apply)."""
        ...


class Deployer(Protocol):
    def __call__(
        self, spec: Spec, store: LocalStore, server: MailServerSpec, record: CertificateRecord
    ) -> None:
        """Install ``record`` (the new current certificate) on the MTA ``server``."""
        ...


def apply_publisher(spec: Spec, store: LocalStore, clock: Clock) -> None:
    from provisioner.workflows.apply import apply

    apply(spec, store, clock)


def spec_deployer(
    spec: Spec, store: LocalStore, server: MailServerSpec, record: CertificateRecord
) -> None:
    """Run the mail server's deploy hook: ``deploy.command``, else provisioner.deploy (Ansible).

    The command gets the certificate in the environment: PROVISIONER_HOST,
    PROVISIONER_CERTIFICATE (full chain, PEM), PROVISIONER_KEY (private key file in the store)
    and PROVISIONER_CERTIFICATE_ID.
    """
    command = server.deploy.command if server.deploy is not None else None
    if command:
        if isinstance(command, str):
            command = [command]
        environment = dict(os.environ)
        environment.update(
            {
                "PROVISIONER_HOST": server.host.rstrip("."),
                "PROVISIONER_CERTIFICATE": str(store.certificate_path(record.id)),
                "PROVISIONER_KEY": str(store.key_path(record.key_id)) if record.key_id else "",
                "PROVISIONER_CERTIFICATE_ID": record.id,
            }
        )
        completed = subprocess.run(
            [str(part) for part in command],
            env=environment,
            cwd=spec.resolve(Path(".")),
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            raise DeployError(
                f"the deploy command of mail server {server.host} failed with exit code "
                f"{completed.returncode}: {completed.stderr.strip()[-500:]}",
                hint="fix the command; 'provisioner rollover run' retries the deploy",
            )
        return
    from provisioner.deploy import deploy

    host = (server.deploy.inventory_host if server.deploy else None) or server.host.rstrip(".")
    result = deploy(spec, store, hosts=[host])
    if result.failed:
        raise DeployError(
            f"deploying the new certificate to mail server {server.host} failed",
            hint="see 'provisioner deploy' output; 'provisioner rollover run' retries",
        )


@dataclass
class RolloverStatus:
    """The state of one rollover, as ``rollover status`` shows it."""

    id: str
    kind: str
    subject: str
    state: str
    step: str
    waiting_for: str
    next_step_at: dt.datetime | None
    stuck: str | None
    history: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "subject": self.subject,
            "state": self.state,
            "step": self.step,
            "waiting_for": self.waiting_for,
            "next_step_at": self.next_step_at.isoformat() if self.next_step_at else None,
            "stuck": self.stuck,
            "history": self.history,
        }


@dataclass
class RunReport:
    """The outcome of one ``rollover run``."""

    started: list[str] = field(default_factory=list)
    advanced: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    emergencies: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    statuses: list[RolloverStatus] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "advanced": self.advanced,
            "completed": self.completed,
            "emergencies": self.emergencies,
            "errors": self.errors,
            "rollovers": [status.as_dict() for status in self.statuses],
        }


# A rollover is stuck when its observation has failed this long after the step's full wait.
STUCK_AFTER = dt.timedelta(hours=1)


class RolloverEngine:
    """Start, advance, abort and report rollovers of one spec and store.

    ``on_persist`` is called after every committed write of a rollover's state (tests use it
    to kill the process between persisted steps).
    """

    def __init__(
        self,
        spec: Spec,
        store: LocalStore,
        clock: Clock,
        observer: Observer,
        *,
        publisher: Publisher = apply_publisher,
        deployer: Deployer = spec_deployer,
        on_persist: Callable[[str, str], None] | None = None,
    ) -> None:
        self.spec = spec
        self.store = store
        self.clock = clock
        self.observer = observer
        self.publisher = publisher
        self.deployer = deployer
        self.on_persist = on_persist

    # --- records ------------------------------------------------------------------------------

    def records(self, *, active_only: bool = False) -> list[dict[str, Any]]:
        found = self.store.rollovers()
        if active_only:
            found = [r for r in found if r["data"].get("status") == "running"]
        return found

    def record(self, rollover_id: str) -> dict[str, Any]:
        for record in self.store.rollovers():
            if record["id"] == rollover_id:
                return record
        raise RolloverError(
            f"rollover {rollover_id} not found",
            hint="list them with 'provisioner rollover status SPEC'",
        )

    def _persist(
        self, record: dict[str, Any], event: str | None = None, *, notify: bool = True
    ) -> None:
        data = record["data"]
        now = self.clock.now()
        if event is not None:
            step = data["step"]
            name = data["steps"][step]["name"] if 0 <= step < len(data["steps"]) else "-"
            data["history"].append({"step": step, "name": name, "event": event, "at": _iso(now)})
        record["state"] = _state_label(data)
        self.store.save_rollover(
            record["id"], record["kind"], record["subject"], record["state"], now, data
        )
        if notify:
            self._notify(record)

    def _notify(self, record: dict[str, Any]) -> None:
        if self.on_persist is not None:
            self.on_persist(record["id"], record["state"])

    def _busy(self, subject: str) -> dict[str, Any] | None:
        """Return the running rollover of ``subject`` (a zone's keys, a host or an address)."""
        for record in self.records(active_only=True):
            if record["subject"] == subject:
                return record
        return None

    def _new_record(
        self, kind: str, subject: str, zone: str, steps: list[Step], extra: dict[str, Any]
    ) -> dict[str, Any]:
        busy = self._busy(subject)
        if busy is not None:
            raise RolloverError(
                f"a rollover of {subject} is already running: {busy['id']} ({busy['state']})",
                hint="wait for it to finish, or abort it with 'provisioner rollover abort'",
            )
        now = self.clock.now()
        rollover_id = f"{kind}-{subject.rstrip('.')}-{now.strftime('%Y%m%dT%H%M%S')}"
        data: dict[str, Any] = {
            "kind": kind,
            "subject": subject,
            "zone": zone,
            "steps": [step.as_dict() for step in steps],
            "step": 0,
            "phase": "generating",
            "status": "running",
            "old": [],
            "new": [],
            "applied_at": None,
            "observed_at": None,
            "blocked": None,
            "history": [],
        }
        data.update(extra)
        return {"id": rollover_id, "kind": kind, "subject": subject, "state": "", "data": data}

    # --- start --------------------------------------------------------------------------------

    def start_dnssec(
        self, zone_name: str, key: str, *, algorithm: int | None = None, method: str | None = None
    ) -> str:
        """Start a rollover of ``key`` (ksk, zsk, csk or algorithm) in ``zone_name``.

        ``method`` (double-ds or double-ksk) applies to KSKs; None chooses by ksk_method().
        """
        from provisioner.workflows.zonekeys import load_zone_keys

        zone = self._zone(zone_name)
        if method is None:
            method = self.ksk_method(zone)
        elif key == "ksk" and method == "double-ds" and self._parent(zone) is None:
            log.warning(
                "zone %s: its parent is not in the spec and the CDS RRset lists only KSKs "
                "in the DNSKEY RRset, so the add-ds step waits until the new DS is handed to "
                "the parent as 'provisioner ds' prints it",
                zone.name,
            )
        if zone.dnssec.signer != "provisioner":
            raise RolloverError(
                f"zone {zone.name} is signed by {zone.dnssec.signer}, not provisioner, so "
                "provisioner does not roll its keys",
                hint="roll the keys where they are held (the primary or Route 53)",
            )
        kind = _dnssec_kind(key, method)
        keys = load_zone_keys(self.store, zone.name)
        if not keys:
            raise RolloverError(
                f"zone {zone.name} has no keys yet", hint="run 'provisioner apply' first"
            )
        layout_roles = {"zsk": ("zsk",), "csk": ("csk",)}
        if kind == "algorithm":
            if algorithm is None:
                raise RolloverError(
                    "an algorithm rollover needs the new algorithm", hint="pass --algorithm N"
                )
            if algorithm != zone.dnssec.algorithm:
                raise RolloverError(
                    f"the spec sets algorithm {zone.dnssec.algorithm} for zone {zone.name}, "
                    f"not {algorithm}, so 'rollover run' would roll the zone back",
                    hint=f"set dnssec.algorithm: {algorithm} in the spec; 'provisioner rollover "
                    "run' then starts the algorithm rollover by itself",
                )
            old = [k for k in keys if k.sign or k.publish]
            if any(k.key.algorithm == algorithm for k in old):
                raise RolloverError(
                    f"zone {zone.name} already has keys of algorithm {algorithm}",
                    hint="choose another algorithm, or roll single keys with --key",
                )
            roles = sorted({k.role for k in old})
        else:
            wanted = layout_roles.get(key, ("ksk",))
            old = [k for k in keys if k.role in wanted and (k.publish or k.ds) and k.sign]
            if not old:
                raise RolloverError(
                    f"zone {zone.name} has no active {key.upper()} to roll",
                    hint=f"its key layout is {zone.dnssec.key_layout}; roll the keys it has",
                )
            roles = [key if key != "ksk" else "ksk"]
            algorithm = old[0].key.algorithm
        steps = machines.dnssec_steps(kind, zone.dnssec, self.zone_times(zone))
        record = self._new_record(
            kind,
            zone.name,
            zone.name,
            steps,
            {"old": [k.id for k in old], "roles": roles, "algorithm": algorithm},
        )
        self._persist(record, "started")
        self._generate_keys(record)
        self.advance(record)
        return record["id"]

    def start_mx(self, host: str) -> str:
        server = self._server(host)
        if server.certificate.import_ is not None:
            raise RolloverError(
                f"the certificate of {server.host} is imported from a file, so provisioner "
                "cannot issue its successor",
                hint="replace the imported file with the new certificate; 'provisioner rollover "
                "run' then keeps the old TLSA record until caches have dropped it",
            )
        current = self.store.current_certificate("server", server.host)
        if current is None:
            raise RolloverError(
                f"mail server {server.host} has no certificate yet", hint="run 'provisioner apply'"
            )
        zone = self._record_zone(server.zone or server.host)
        steps = machines.certificate_steps(
            "mx",
            zone.dnssec.propagation_delay,
            server.tlsa_ttl or zone.ttl,
            record="TLSA",
            deploy=True,
        )
        record = self._new_record(
            "mx", server.host, zone.name, steps, {"old": [current.id], "purpose": "server"}
        )
        self._persist(record, "started")
        self._issue_next(record)
        self.advance(record)
        return record["id"]

    def start_user(self, address: str) -> str:
        user = self._user(address)
        if user.certificate.import_ is not None:
            raise RolloverError(
                f"the certificate of {user.address} is imported from a file",
                hint="replace the file; 'provisioner rollover run' handles the change",
            )
        current = self.store.current_certificate("smime", user.address)
        if current is None:
            raise RolloverError(
                f"user {user.address} has no certificate yet", hint="run 'provisioner apply'"
            )
        zone = self._record_zone(user.domain)
        steps = machines.certificate_steps(
            "smime",
            zone.dnssec.propagation_delay,
            user.smimea_ttl or zone.ttl,
            record="SMIMEA",
            deploy=False,
        )
        record = self._new_record(
            "smime", user.address, zone.name, steps, {"old": [current.id], "purpose": "smime"}
        )
        self._persist(record, "started")
        self._issue_next(record)
        self.advance(record)
        return record["id"]

    def start_emergency(self, purpose: str, owner: str, entry: MailServerSpec | UserSpec) -> str:
        """Publish the record of an imported certificate with a new key at once, keeping the old."""
        current = self.store.current_certificate(purpose, owner)
        assert current is not None
        if isinstance(entry, MailServerSpec):
            zone = self._record_zone(entry.zone or entry.host)
            ttl, label = entry.tlsa_ttl or zone.ttl, "TLSA"
        else:
            zone = self._record_zone(entry.domain)
            ttl, label = entry.smimea_ttl or zone.ttl, "SMIMEA"
        steps = machines.emergency_steps(zone.dnssec.propagation_delay, ttl, label)
        record = self._new_record(
            "emergency", owner, zone.name, steps, {"old": [current.id], "purpose": purpose}
        )
        record["data"]["phase"] = "acting"
        self._persist(record, "started")
        self.advance(record)
        return record["id"]

    def _generate_keys(self, record: dict[str, Any]) -> None:
        from provisioner.workflows.zonekeys import create_key

        data = record["data"]
        zone = self._zone(data["zone"])
        tagged = [
            k.id
            for k in self.store.keys(purpose="dnssec", owner=zone.name)
            if k.data.get("rollover") == record["id"]
        ]
        missing = [role for role in data["roles"] if not any(f"-{role}-" in i for i in tagged)]
        for role in missing:
            made = create_key(
                self.store,
                zone,
                role,
                self.clock,
                algorithm=data["algorithm"],
                state={
                    "publish": False,
                    "sign": False,
                    "ds": False,
                    "state": "generated",
                    "rollover": record["id"],
                },
            )
            tagged.append(made.id)
        data["new"] = tagged
        data["phase"] = "acting"
        self._persist(record, "generated")

    def _issue_next(self, record: dict[str, Any]) -> None:
        from provisioner.workflows.certificates import CertificateManager

        data = record["data"]
        purpose = data["purpose"]
        tagged = [
            c.id
            for c in self.store.certificates(purpose=purpose, owner=record["subject"])
            if c.data.get("rollover") == record["id"]
        ]
        if not tagged:
            manager = CertificateManager(self.spec, self.store, self.clock, dry_run=False)
            if purpose == "server":
                held = manager.issue_next_server(self._server(record["subject"]), record["id"])
            else:
                held = manager.issue_next_user(self._user(record["subject"]), record["id"])
            tagged = [held.record.id]
        data["new"] = tagged
        data["phase"] = "acting"
        self._persist(record, "generated")

    # --- advancing ----------------------------------------------------------------------------

    def run(self) -> RunReport:
        """Detect emergencies, start due rollovers, and advance every rollover as far as is safe."""
        from provisioner.rollover.triggers import detect_replaced_imports, due_rollovers

        report = RunReport()
        for rollover_id, message in detect_replaced_imports(self):
            log.error("%s", message)
            report.emergencies.append(message)
            report.started.append(rollover_id)
        for zone_name, key, algorithm in due_rollovers(self):
            try:
                report.started.append(self.start_dnssec(zone_name, key, algorithm=algorithm))
            except ProvisionerError as error:
                report.errors.append(str(error))
        for record in self.records(active_only=True):
            before = record["state"]
            try:
                self.advance(record)
            except ProvisionerError as error:
                log.error("rollover %s failed at %s: %s", record["id"], record["state"], error)
                report.errors.append(f"{record['id']}: {error}")
                continue
            if record["data"]["status"] == "complete":
                report.completed.append(record["id"])
            elif record["state"] != before:
                report.advanced.append(record["id"])
        report.statuses = self.status()
        return report

    def advance(self, record: dict[str, Any]) -> None:
        """Run the steps of one rollover while their waits have passed and observations hold."""
        data = record["data"]
        while data["status"] == "running":
            if data["phase"] == "generating":
                if record["kind"] in machines.DNSSEC_KINDS:
                    self._generate_keys(record)
                else:
                    self._issue_next(record)
                continue
            step = Step.from_dict(data["steps"][data["step"]])
            if data["phase"] == "acting":
                self._act(record, step)
                continue
            if not self._ready(record, step):
                return
            if data["step"] + 1 >= len(data["steps"]):
                data["status"] = "complete"
                data["blocked"] = None
                self._persist(record, "complete")
                log.info("rollover %s is complete", record["id"])
                return
            data["step"] += 1
            data["phase"] = "acting"
            data["observed_at"] = None
            self._change(record, Step.from_dict(data["steps"][data["step"]]))

    def _change(self, record: dict[str, Any], step: Step) -> None:
        """Write the step's flags or statuses and the phase "acting" in one transaction."""
        with self.store.transaction():
            self._set_flags(record, step)
            self._persist(record, "started", notify=False)
        self._notify(record)
        log.info("rollover %s: %s", record["id"], step.description)

    def _set_flags(self, record: dict[str, Any], step: Step) -> None:
        data = record["data"]
        now = _iso(self.clock.now())
        if record["kind"] in machines.DNSSEC_KINDS:
            for which, flags in (("old", step.old), ("new", step.new)):
                if not flags:
                    continue
                for key_id in data[which]:
                    key = self.store.key(key_id)
                    if key is None:
                        raise RolloverError(f"key {key_id} of rollover {record['id']} is missing")
                    updated = dict(key.data)
                    updated.update(flags)
                    if flags.get("state") == "active" and "activated" not in key.data:
                        updated["activated"] = now
                    if flags.get("state") == "removed":
                        updated.setdefault("removed", now)
                    self.store.update_key_data(key_id, updated)
        else:
            for which, flags in (("old", step.old), ("new", step.new)):
                if "status" in flags:
                    for cert_id in data[which]:
                        self.store.set_certificate_status(cert_id, flags["status"])

    def _act(self, record: dict[str, Any], step: Step) -> None:
        """Do the step's side effects; they are idempotent, so a resumed step repeats them."""
        data = record["data"]
        # Flags again: a no-op normally, and the repair when the step was persisted by an older
        # run whose transaction wrote only the phase.
        self._set_flags(record, step)
        if step.publish:
            self.publisher(self.spec, self.store, self.clock)
        if record["kind"] == "emergency" and not data["new"]:
            current = self.store.current_certificate(data["purpose"], record["subject"])
            data["new"] = [current.id] if current else []
        if step.deploy:
            self._deploy(record)
        data["phase"] = "waiting"
        data["applied_at"] = _iso(self.clock.now())
        data["observed_at"] = None
        self._persist(record, "applied")

    def _deploy(self, record: dict[str, Any]) -> None:
        server = self._server(record["subject"])
        new = self._certificate(record["data"]["new"][0])
        certificate = load_certificates(self.store.read_certificate(new.id))[0]
        if self.observer.mta_presents(server, certificate).ok:
            log.info("the MTA %s presents the new certificate already", server.host)
            return
        if not server.deploy and self.deployer is spec_deployer:
            log.warning(
                "mail server %s has no deploy settings: install certificate %s on the MTA "
                "yourself; the rollover waits until the MTA presents it",
                server.host,
                new.id,
            )
            return
        self.deployer(self.spec, self.store, server, new)

    def _ready(self, record: dict[str, Any], step: Step) -> bool:
        data = record["data"]
        now = self.clock.now()
        observation = self._observe(record, step)
        if not observation.ok:
            if data["blocked"] != observation.reason:
                data["blocked"] = observation.reason
                self._persist(record)
            return False
        if data["observed_at"] is None or data["blocked"] is not None:
            data["observed_at"] = data["observed_at"] or _iso(now)
            data["blocked"] = None
            self._persist(record, "observed")
        return now >= self._ready_at(data, step)

    @staticmethod
    def _ready_at(data: dict[str, Any], step: Step) -> dt.datetime:
        applied = _time(data["applied_at"])
        ready = applied + dt.timedelta(seconds=step.wait.total)
        if data.get("observed_at"):
            ready = max(ready, _time(data["observed_at"]) + dt.timedelta(seconds=step.wait.settle))
        return ready

    def _observe(self, record: dict[str, Any], step: Step) -> Observation:
        data = record["data"]
        for kind in step.observe:
            if kind == OBSERVE_ZONE:
                zone = self._zone(data["zone"])
                state = self.store.zone_state(zone.name)
                if state is None:
                    return Observation(False, f"zone {zone.name} was never published")
                result = self.observer.zone_serves(zone, state[0])
            elif kind == OBSERVE_PARENT_DS:
                zone = self._zone(data["zone"])
                parent = self._parent(zone)
                expected = self.expected_ds(zone)
                if not _has_servers(parent) and _ds_confirmed(data, expected):
                    result = Observation(True)
                else:
                    result = self.observer.parent_serves_ds(zone, parent, expected)
            elif kind == OBSERVE_MTA:
                server = self._server(record["subject"])
                current = self.store.current_certificate("server", server.host)
                if current is None:
                    return Observation(False, f"mail server {server.host} has no certificate")
                certificate = load_certificates(self.store.read_certificate(current.id))[0]
                result = self.observer.mta_presents(server, certificate)
            else:
                raise RolloverError(f"unknown observation {kind!r} in rollover {record['id']}")
            if not result.ok:
                return result
        return Observation(True)

    def expected_ds(self, zone: ZoneSpec) -> dns.rrset.RRset:
        from provisioner.workflows.zonekeys import load_zone_keys

        keys = [k.key for k in load_zone_keys(self.store, zone.name) if k.ds and k.is_ksk]
        return ds_rrset(zone.name, keys, zone.dnssec.ds_digests, zone.dnssec.ds_ttl)

    # --- abort --------------------------------------------------------------------------------

    def confirm_ds(self, rollover_id: str) -> str:
        """Record that a parent provisioner cannot query now serves the expected DS RRset.

        For a parent outside the spec, the observer looks for its name servers through the
        resolver. Where that fails, the operator who handed the DS records over confirms it.
        The confirmation holds for the current step and for the DS RRset expected now, and the
        step's wait counts from it.
        """
        record = self.record(rollover_id)
        data = record["data"]
        if data["status"] != "running" or record["kind"] not in machines.DNSSEC_KINDS:
            raise RolloverError(f"rollover {rollover_id} is not a running DNSSEC key rollover")
        step = Step.from_dict(data["steps"][data["step"]])
        zone = self._zone(data["zone"])
        if OBSERVE_PARENT_DS not in step.observe:
            raise RolloverError(
                f"step {step.name} of rollover {rollover_id} does not wait for the parent's DS "
                "RRset, so there is nothing to confirm",
                hint="see 'provisioner rollover status' for what the step waits for",
            )
        if _has_servers(self._parent(zone)):
            raise RolloverError(
                f"the parent of {zone.name} is in the spec with name server addresses, so "
                "provisioner checks its DS RRset on those servers itself",
                hint="run 'provisioner rollover run'; 'rollover status' says what it waits for",
            )
        expected = self.expected_ds(zone)
        data["ds_confirmed"] = {
            "step": data["step"],
            "ds": sorted(ds_set(expected)),
            "at": _iso(self.clock.now()),
        }
        self._persist(record, "ds-confirmed", notify=False)
        return (
            f"recorded that the parent of {zone.name} serves {describe_ds(ds_set(expected))}; "
            "'provisioner rollover run' continues the rollover after the step's wait"
        )

    def abort(self, rollover_id: str) -> str:
        """Back out a rollover while that is safe; raise RolloverError saying why when not."""
        record = self.record(rollover_id)
        data = record["data"]
        if data["status"] != "running":
            raise RolloverError(f"rollover {rollover_id} is {data['status']}, not running")
        if record["kind"] == "emergency":
            raise RolloverError(
                f"rollover {rollover_id} publishes the record of a certificate that is already "
                "in use, so it cannot be backed out",
            )
        if data["step"] > 0:
            done = data["steps"][data["step"] - 1]["description"]
            raise RolloverError(
                f"rollover {rollover_id} cannot be backed out safely: it already did "
                f"'{done}', and undoing that at once could leave resolvers or DANE clients "
                "with cached data that no longer validates",
                hint="let 'provisioner rollover run' finish it; start a new rollover afterwards",
            )
        with self.store.transaction():
            if record["kind"] in machines.DNSSEC_KINDS:
                for key_id in data["new"]:
                    key = self.store.key(key_id)
                    if key is not None:
                        updated = dict(key.data)
                        updated.update(
                            {"publish": False, "sign": False, "ds": False, "state": "removed"}
                        )
                        self.store.update_key_data(key_id, updated)
            else:
                for cert_id in data["new"]:
                    self.store.set_certificate_status(cert_id, "retired")
            data["status"] = "aborted"
            self._persist(record, "aborted", notify=False)
        self._notify(record)
        self.publisher(self.spec, self.store, self.clock)
        return (
            f"rollover {rollover_id} aborted: the new "
            f"{'keys were' if record['kind'] in machines.DNSSEC_KINDS else 'certificate was'} "
            "withdrawn and the zones published again"
        )

    # --- status -------------------------------------------------------------------------------

    def status(self) -> list[RolloverStatus]:
        result = []
        now = self.clock.now()
        for record in self.records():
            data = record["data"]
            step_name = "-"
            waiting_for = ""
            next_at = None
            stuck = None
            if data["status"] == "running" and data["phase"] == "waiting":
                step = Step.from_dict(data["steps"][data["step"]])
                step_name = step.name
                if data["blocked"]:
                    waiting_for = data["blocked"]
                    limit = _time(data["applied_at"]) + dt.timedelta(seconds=step.wait.total)
                    if now > limit + STUCK_AFTER:
                        stuck = data["blocked"]
                else:
                    next_at = self._ready_at(data, step)
                    following = (
                        data["steps"][data["step"] + 1]["description"]
                        if data["step"] + 1 < len(data["steps"])
                        else "finish"
                    )
                    waiting_for = f"{step.wait.cause}; then: {following}"
            elif data["status"] == "running":
                step_name = data["steps"][data["step"]]["name"]
                waiting_for = "an interrupted step; 'provisioner rollover run' resumes it"
            result.append(
                RolloverStatus(
                    record["id"],
                    record["kind"],
                    record["subject"],
                    data["status"],
                    step_name,
                    waiting_for,
                    next_at,
                    stuck,
                    data["history"],
                )
            )
        return result

    # --- spec lookups -------------------------------------------------------------------------

    def zone_times(self, zone: ZoneSpec) -> ZoneTimes:
        """Return the TTLs that bound caching in ``zone``, from its last publication and spec."""
        max_ttl = zone.ttl
        soa = zone.soa
        negative = min(getattr(soa, "minimum", zone.ttl), zone.ttl)
        text = self.store.last_signed_zone(zone.name)
        if text:
            published = ZoneData.from_text(text, zone.name)
            max_ttl = max([max_ttl] + [rrset.ttl for rrset in published])
            soa_rrset = published.get(published.origin, "SOA")
            if soa_rrset is not None:
                negative = min(soa_rrset.ttl, soa_rrset[0].minimum)
        for server in self.spec.mail_servers:
            if server.tlsa_ttl:
                max_ttl = max(max_ttl, server.tlsa_ttl)
        for user in self.spec.users:
            if user.smimea_ttl:
                max_ttl = max(max_ttl, user.smimea_ttl)
        keyset_ttl = max(zone.dnssec.dnskey_ttl, zone.dnssec.cds_ttl_effective)
        return ZoneTimes(keyset_ttl, zone.dnssec.ds_ttl, max_ttl, negative)

    def _zone(self, name: str) -> ZoneSpec:
        try:
            return self.spec.zone(name)
        except KeyError:
            raise RolloverError(
                f"zone {name} is not in the spec",
                hint="give one of: " + ", ".join(z.name for z in self.spec.zones),
            ) from None

    def _record_zone(self, name: str) -> ZoneSpec:
        zone = self.spec.zone_for(name)
        if zone is None:
            raise RolloverError(f"no zone of the spec contains {name}")
        return zone

    def ksk_method(self, zone: ZoneSpec) -> str:
        """Return the KSK rollover method for ``zone``: double-ds only when the spec has its parent.

        provisioner then writes the new DS into the parent zone itself. A parent outside the
        spec learns DS records from the CDS RRset (RFC 7344) or from its operator. The CDS RRset
        lists only KSKs in the DNSKEY RRset, so such a parent could not pre-publish the new DS
        of a double-DS rollover. Double-KSK publishes the new KSK first and changes CDS once.
        """
        return "double-ds" if self._parent(zone) is not None else "double-ksk"

    def _parent(self, zone: ZoneSpec) -> ZoneSpec | None:
        name = dns.name.from_text(zone.name)
        if name == dns.name.root:
            return None
        return self.spec.zone_for(name.parent().to_text())

    def _server(self, host: str) -> MailServerSpec:
        wanted = host if host.endswith(".") else host + "."
        for server in self.spec.mail_servers:
            if server.host == wanted:
                return server
        raise RolloverError(
            f"mail server {host} is not in the spec",
            hint="give one of: " + ", ".join(s.host for s in self.spec.mail_servers),
        )

    def _user(self, address: str) -> UserSpec:
        for user in self.spec.users:
            if user.address.lower() == address.lower():
                return user
        raise RolloverError(f"user {address} is not in the spec")

    def _certificate(self, cert_id: str) -> CertificateRecord:
        for record in self.store.certificates():
            if record.id == cert_id:
                return record
        raise RolloverError(f"certificate {cert_id} is missing from the store")

    def certificate(self, cert_id: str) -> x509.Certificate:
        return load_certificates(self.store.read_certificate(cert_id))[0]


def _dnssec_kind(key: str, method: str) -> str:
    if key == "ksk":
        if method not in ("double-ds", "double-ksk"):
            raise RolloverError(
                f"unknown KSK rollover method {method!r}", hint="use double-ds or double-ksk"
            )
        return f"ksk-{method}"
    if key in ("zsk", "csk", "algorithm"):
        return key
    raise RolloverError(f"unknown key kind {key!r}", hint="use ksk, zsk, csk or algorithm")


def _has_servers(zone: ZoneSpec | None) -> bool:
    """Return whether ``zone`` is in the spec with addresses of name servers to query."""
    return zone is not None and any(getattr(entry, "addresses", None) for entry in zone.nameservers)


def _ds_confirmed(data: dict[str, Any], expected: dns.rrset.RRset) -> bool:
    """Return whether the operator confirmed this step's DS RRset (see confirm_ds)."""
    confirmed = data.get("ds_confirmed")
    return (
        confirmed is not None
        and confirmed["step"] == data["step"]
        and confirmed["ds"] == sorted(ds_set(expected))
    )


def _state_label(data: dict[str, Any]) -> str:
    if data["status"] != "running":
        return data["status"]
    if data["phase"] == "generating":
        return "generating"
    return f"{data['steps'][data['step']]['name']}:{data['phase']}"


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat()


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def spki_sha256(certificate: x509.Certificate) -> str:
    from cryptography.hazmat.primitives import serialization

    der = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def live_engine(
    spec: Spec,
    store: LocalStore,
    clock: Clock,
    *,
    dns_port: int = 53,
    resolver: Server | None = None,
) -> RolloverEngine:
    """Return an engine that observes the real name servers and MTAs and publishes with apply.

    ``resolver`` finds the name servers of parent zones outside the spec; without it, the
    resolvers of /etc/resolv.conf do.
    """
    import dns.resolver

    from provisioner.rollover.observe import LiveObserver

    stub = None
    if resolver is not None:
        stub = dns.resolver.Resolver(configure=False)
        stub.nameservers = [resolver.address]
        stub.port = resolver.port
    observer = LiveObserver(clock, dns_port=dns_port, resolver=stub)
    return RolloverEngine(spec, store, clock, observer)


def write_timeline(engine: RolloverEngine, rollover_id: str, path: os.PathLike[str] | str) -> None:
    """Write the SVG timeline of one rollover to ``path``."""
    from provisioner.rollover.timeline import render_svg
    from provisioner.store.atomic import write_atomic

    write_atomic(path, render_svg(engine.record(rollover_id), engine.clock.now()))
