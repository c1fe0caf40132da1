"""Keep the certificates of the spec in force: enterprise CAs, MX hosts and users.

Each certificate's key lives in the state store. Renewal keeps the key, so that records
with selector 1 (SPKI) stay valid across renewals; a new key is a rollover.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass

from cryptography import x509

from provisioner.clock import Clock
from provisioner.errors import PKIError
from provisioner.pki import ca as pki_ca
from provisioner.pki.encoding import certificate_to_pem, certificates_to_pem, load_certificates
from provisioner.pki.keys import (
    generate_private_key,
    key_type_of,
    load_private_key,
    private_key_to_pem,
)
from provisioner.spec.models import (
    AcmeAuthority,
    CertificateSource,
    EnterpriseAuthority,
    MailServerSpec,
    Spec,
    UserSpec,
)
from provisioner.spec.semantics import acme_warnings, zone_warnings
from provisioner.store.local import CertificateRecord, LocalStore
from provisioner.zone.builder import PublishedCertificate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeldCertificate:
    """A certificate in the store, with the id of its key and the chain it is sent with."""

    record: CertificateRecord
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]

    def published(self) -> PublishedCertificate:
        return PublishedCertificate(self.certificate, self.chain)


class CertificateManager:
    """Issues, renews and loads certificates. With ``dry_run`` it writes nothing.

    In a dry run (plan), a missing key or certificate is made in memory only, so the plan can
    show that DANE records will be created. Their values are fixed at apply.
    """

    def __init__(self, spec: Spec, store: LocalStore, clock: Clock, *, dry_run: bool) -> None:
        self.spec = spec
        self.store = store
        self.clock = clock
        self.dry_run = dry_run
        self._authorities: dict[str, pki_ca.CertificateAuthority] = {}
        self.issued: list[str] = []
        self.warnings: list[str] = acme_warnings(spec) + zone_warnings(spec)
        self._sources: dict[tuple[str, str], CertificateSource] | None = None

    # --- authorities --------------------------------------------------------------------------

    def authority(self, name: str) -> pki_ca.CertificateAuthority:
        if name not in self._authorities:
            spec_authority = self.spec.authority(name)
            if not isinstance(spec_authority, EnterpriseAuthority):
                raise PKIError(
                    f"authority {name!r} is of type {spec_authority.type}; "
                    "it cannot issue from the state store",
                    hint="ACME certificates are issued by the acme workflow",
                )
            self._authorities[name] = self._enterprise(spec_authority)
        return self._authorities[name]

    def _enterprise(self, spec: EnterpriseAuthority) -> pki_ca.CertificateAuthority:
        root_owner = f"{spec.name}/root"
        issuing_owner = f"{spec.name}/intermediate"
        root_held = self._load("ca-root", root_owner)
        issuing_held = self._load("ca-intermediate", issuing_owner)
        if root_held is not None and issuing_held is not None:
            root = pki_ca.CertificateAuthority(
                root_held[0].certificate, root_held[1], root_held[0].certificate
            )
            return pki_ca.CertificateAuthority(
                issuing_held[0].certificate, issuing_held[1], root.certificate, ()
            )

        subject = spec.subject
        root_key = generate_private_key(spec.key_type)
        root = pki_ca.create_root_ca(
            f"{subject.common_name} Root",
            root_key,
            self.clock,
            organization=subject.organization,
            validity=dt.timedelta(seconds=spec.root_validity),
        )
        issuing_key = generate_private_key(spec.key_type)
        issuing = pki_ca.create_intermediate_ca(
            root,
            f"{subject.common_name} Issuing CA",
            issuing_key,
            self.clock,
            organization=subject.organization,
            validity=dt.timedelta(seconds=spec.intermediate_validity),
        )
        self._save("ca-root", root_owner, root.certificate, (), root_key)
        self._save(
            "ca-intermediate", issuing_owner, issuing.certificate, (root.certificate,), issuing_key
        )
        log.info("created enterprise CA %s", spec.name)
        return issuing

    # --- end entities -------------------------------------------------------------------------

    def server(self, server: MailServerSpec) -> HeldCertificate:
        return self._end_entity("server", server.host, server.certificate, [server.host])

    def user(self, user: UserSpec) -> HeldCertificate:
        return self._end_entity("smime", user.address, user.certificate, [user.address])

    def issue_next_server(self, server: MailServerSpec, rollover: str) -> HeldCertificate:
        """Issue the successor of a server certificate with a new key, saved with status next."""
        return self._issue_next("server", server.host, server.certificate, [server.host], rollover)

    def issue_next_user(self, user: UserSpec, rollover: str) -> HeldCertificate:
        """Issue the successor of an S/MIME certificate with a new key, saved with status next."""
        return self._issue_next("smime", user.address, user.certificate, [user.address], rollover)

    def _issue_next(
        self, purpose: str, owner: str, source: CertificateSource, names: list[str], rollover: str
    ) -> HeldCertificate:
        if source.import_ is not None:
            raise PKIError(
                f"the certificate of {owner} is imported, so provisioner cannot issue "
                "its successor",
                hint="replace the imported file instead",
            )
        key = generate_private_key(source.key_type)
        issued = self._issue(purpose, source, key, names)
        return self._save(
            purpose,
            owner,
            issued.certificate,
            issued.chain,
            key,
            status="next",
            extra={"rollover": rollover},
        )

    def _end_entity(
        self, purpose: str, owner: str, source: CertificateSource, names: list[str]
    ) -> HeldCertificate:
        if source.import_ is not None:
            return self._imported(purpose, owner, source, names)

        held = self._load(purpose, owner)
        now = self.clock.now()
        if held is not None:
            record_held, key = held
            self._warn_key_type(purpose, owner, source, key)
            expires = record_held.certificate.not_valid_after_utc
            renew_at = expires - dt.timedelta(seconds=source.renew_before)
            if now < renew_at and self._issuer_matches(record_held, source):
                return record_held
            log.info(
                "renewing the %s certificate of %s (expires %s), keeping its key",
                purpose,
                owner,
                expires.isoformat(),
            )
        else:
            key = generate_private_key(source.key_type)

        issued = self._issue(purpose, source, key, names)
        return self._save(purpose, owner, issued.certificate, issued.chain, key)

    def _warn_key_type(
        self, purpose: str, owner: str, source: CertificateSource, key: object
    ) -> None:
        """Warn when the spec sets another key type than the key in force.

        The key changes only through a rollover, so that the new key's record is published
        before the MTA or the mail client uses it.
        """
        if key is None:
            return
        held_type = key_type_of(key)  # type: ignore[arg-type]
        if held_type == source.key_type:
            return
        option = f"--mx {owner.rstrip('.')}" if purpose == "server" else f"--user {owner}"
        self.warnings.append(
            f"the {purpose} certificate of {owner} has a key of type {held_type} but the spec "
            f"sets {source.key_type}; the key changes only through a rollover: run "
            f"'provisioner rollover start SPEC {option}'"
        )

    def _issue(
        self, purpose: str, source: CertificateSource, key: object, names: list[str]
    ) -> pki_ca.IssuedCertificate:
        validity = dt.timedelta(seconds=source.validity)
        if source.self_signed:
            if purpose == "smime":
                raise PKIError(
                    f"self-signed S/MIME certificates are not supported ({names[0]})",
                    hint="use an enterprise authority for users",
                )
            return pki_ca.create_self_signed_server_certificate(
                key,
                names,
                self.clock,
                validity=validity,  # type: ignore[arg-type]
            )
        assert source.authority is not None
        if isinstance(self.spec.authority(source.authority), AcmeAuthority):
            return self._issue_acme(purpose, source, key, names)
        authority = self.authority(source.authority)
        if purpose == "smime":
            return pki_ca.issue_smime_certificate(
                authority,
                key,
                names[0],
                self.clock,
                validity=validity,  # type: ignore[arg-type]
            )
        return pki_ca.issue_server_certificate(
            authority,
            key,
            names,
            self.clock,
            validity=validity,  # type: ignore[arg-type]
        )

    def _issue_acme(
        self, purpose: str, source: CertificateSource, key: object, names: list[str]
    ) -> pki_ca.IssuedCertificate:
        from provisioner.workflows import acme as acme_workflow

        assert source.authority is not None
        if purpose != "server":
            raise PKIError(
                f"the ACME authority {source.authority} cannot issue the {purpose} certificate "
                f"of {names[0]}: provisioner orders MX host certificates only",
                hint="use an enterprise authority for users",
            )
        if self.dry_run:
            return acme_workflow.plan_placeholder(
                key,  # type: ignore[arg-type]
                names,
                self.clock,
                dt.timedelta(seconds=source.validity),
            )
        authority = acme_workflow.acme_authority(self.spec, source.authority)
        return acme_workflow.issue_for_hosts(
            self.spec,
            self.store,
            self.clock,
            authority,
            names,
            key,  # type: ignore[arg-type]
            self.warnings,
        )

    def _issuer_matches(self, held: HeldCertificate, source: CertificateSource) -> bool:
        """Return False when the spec now names another source, so the certificate is reissued."""
        origin = held.record.data.get("source")
        return origin == _source_label(source)

    def _imported(
        self, purpose: str, owner: str, source: CertificateSource, names: list[str]
    ) -> HeldCertificate:
        from provisioner.pki.importer import PasswordSource, import_certificate

        assert source.import_ is not None
        spec_import = source.import_
        password = None
        if spec_import.password_file or spec_import.password_env:
            password = PasswordSource(
                file=self.spec.resolve(spec_import.password_file)
                if spec_import.password_file
                else None,
                env=spec_import.password_env,
            )
        material = import_certificate(
            self.spec.resolve(spec_import.certificate),
            self.clock,
            key_path=self.spec.resolve(spec_import.key) if spec_import.key else None,
            chain_path=self.spec.resolve(spec_import.chain) if spec_import.chain else None,
            password=password,
            hosts=[names[0].rstrip(".")] if purpose == "server" else (),
            addresses=[names[0]] if purpose == "smime" else (),
        )
        held = self._load(purpose, owner)
        if held is not None and held[0].certificate == material.certificate:
            return held[0]
        if held is not None and _spki(held[0].certificate) != _spki(material.certificate):
            # Swapping the record now would fail every DANE client that has the old record
            # cached. The emergency rollover publishes the new one beside the old instead.
            record = "TLSA" if purpose == "server" else "SMIMEA"
            self.warnings.append(
                f"EMERGENCY: the imported certificate of {owner} "
                f"({self.spec.resolve(spec_import.certificate)}) has a new key that provisioner "
                f"did not issue; apply keeps publishing the old {record} record. Run "
                f"'provisioner rollover run' now: it publishes the new {record} record at once "
                "and removes the old one when caches have dropped it"
            )
            log.error("imported certificate of %s has a new key; run 'rollover run'", owner)
            return held[0]
        return self._save(
            purpose,
            owner,
            material.certificate,
            tuple(material.chain),
            material.private_key,
            label="import",
        )

    # --- store --------------------------------------------------------------------------------

    def _load(self, purpose: str, owner: str) -> tuple[HeldCertificate, object] | None:
        record = self.store.current_certificate(purpose, owner)
        if record is None:
            return None
        certificates = load_certificates(self.store.read_certificate(record.id))
        key = load_private_key(self.store.load_key_pem(record.key_id)) if record.key_id else None
        held = HeldCertificate(record, certificates[0], tuple(certificates[1:]))
        return held, key

    def _save(
        self,
        purpose: str,
        owner: str,
        certificate: x509.Certificate,
        chain: tuple[x509.Certificate, ...],
        key: object,
        *,
        label: str | None = None,
        status: str = "current",
        extra: dict[str, str] | None = None,
    ) -> HeldCertificate:
        now = self.clock.now()
        serial = format(certificate.serial_number, "x")
        spki = hashlib.sha256(certificate.public_key().public_bytes(*_SPKI_ENCODING)).hexdigest()
        key_id = f"{purpose}-{_slug(owner)}-{spki[:16]}"
        cert_id = f"{purpose}-{_slug(owner)}-{serial[:24]}"
        source_label = label or self._source_label_for(purpose, owner)
        record = CertificateRecord(
            id=cert_id,
            purpose=purpose,
            owner=owner,
            key_id=key_id if key else None,
            serial=serial,
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            status=status,
            created=now,
            data={"spki_sha256": spki, "source": source_label, **(extra or {})},
        )
        held = HeldCertificate(record, certificate, chain)
        if self.dry_run:
            self.issued.append(f"{purpose} {owner}" + (" (imported)" if label == "import" else ""))
            return held

        if key is not None and self.store.key(key_id) is None:
            self.store.save_key(
                key_id,
                private_key_to_pem(key),
                purpose=purpose,
                owner=owner,  # type: ignore[arg-type]
                algorithm=type(key).__name__,
                created=now,
            )
        pem = certificate_to_pem(certificate) + certificates_to_pem(chain)
        self.store.save_certificate(record, pem)
        self.issued.append(f"{purpose} {owner}" + (" (imported)" if label == "import" else ""))
        return held

    def _source_label_for(self, purpose: str, owner: str) -> str:
        if self._sources is None:
            # Built once: a scan of the spec per certificate made a first apply quadratic.
            self._sources = {("server", s.host): s.certificate for s in self.spec.mail_servers}
            self._sources.update({("smime", u.address): u.certificate for u in self.spec.users})
        source = self._sources.get((purpose, owner))
        return purpose if source is None else _source_label(source)


def _spki(certificate: x509.Certificate) -> bytes:
    return certificate.public_key().public_bytes(*_SPKI_ENCODING)


def _source_label(source: CertificateSource) -> str:
    if source.authority is not None:
        return f"authority:{source.authority}"
    if source.self_signed:
        return "self-signed"
    return "import"


def _slug(owner: str) -> str:
    return owner.rstrip(".").replace("@", "_at_").replace("/", "_")


from cryptography.hazmat.primitives import serialization  # noqa: E402

_SPKI_ENCODING = (
    serialization.Encoding.DER,
    serialization.PublicFormat.SubjectPublicKeyInfo,
)
