"""Issue certificates from an ACME CA, with DNS-01 published through the zone's own backend.

The challenge TXT RRsets are added to the desired state of their zone and published like any
other change. The zone is built from the spec and the certificates on record, signed when
provisioner signs it, diffed and applied by the zone's Backend, and recorded in the store.
After every name server of the zone serves them, the challenges are answered. The challenge
RRsets are removed again whether issuance succeeds or fails.

Renewal keeps the key (the caller hands it in), so TLSA records with selector 1 stay valid.
A new key goes through the rollover engine, whose CertificateManager.issue_next_server ends up
in ``issue_for_hosts``. ``issue_acme_certificate`` is the entry point for other callers.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.rrset
from cryptography import x509

from provisioner.clock import Clock
from provisioner.errors import PKIError, ProvisionerError
from provisioner.pki import ca as pki_ca
from provisioner.pki.acme.csr import make_csr
from provisioner.pki.encoding import load_certificates
from provisioner.pki.keys import (
    PrivateKey,
    generate_private_key,
    load_private_key,
    private_key_to_pem,
    public_key_matches,
)
from provisioner.spec.models import AcmeAuthority, MailServerSpec, NameServer, Spec, ZoneSpec
from provisioner.store.local import LocalStore
from provisioner.workflows import apply as apply_workflow
from provisioner.zone.builder import BuildInputs, PublishedCertificate

if TYPE_CHECKING:
    from provisioner.pki.acme.client import AcmeConnection, Dns01Challenge

log = logging.getLogger(__name__)

ACCOUNT_PURPOSE = "acme-account"
ACCOUNT_KEY_TYPE = "ecdsa-p256"
# TTL of a challenge TXT RRset: short, because the RRset lives only while the order is open.
CHALLENGE_TTL = 60
# Seconds between two rounds of queries to the name servers, and the timeout of one query.
SERVED_POLL_INTERVAL = 1.0
QUERY_TIMEOUT = 3.0


def issue_acme_certificate(
    spec: Spec,
    store: LocalStore,
    clock: Clock,
    server_spec: MailServerSpec,
    key: PrivateKey,
    *,
    warnings: list[str] | None = None,
) -> pki_ca.IssuedCertificate:
    """Issue a certificate for the MX host of ``server_spec`` with ``key`` from its ACME CA.

    The caller saves the result in the store (as "current" on renewal, or "next" in a key
    rollover). Problems that did not stop issuance are appended to ``warnings``.
    """
    name = server_spec.certificate.authority
    authority = acme_authority(spec, name or "")
    return issue_for_hosts(spec, store, clock, authority, [server_spec.host], key, warnings)


def acme_authority(spec: Spec, name: str) -> AcmeAuthority:
    """Return the ACME authority ``name`` of the spec; raise PKIError for any other."""
    try:
        authority = spec.authority(name)
    except KeyError:
        raise PKIError(f"unknown authority {name!r}", hint="declare it under authorities") from None
    if not isinstance(authority, AcmeAuthority):
        raise PKIError(f"authority {name!r} is of type {authority.type}, not acme")
    return authority


def issue_for_hosts(
    spec: Spec,
    store: LocalStore,
    clock: Clock,
    authority: AcmeAuthority,
    hosts: Sequence[str],
    key: PrivateKey,
    warnings: list[str] | None = None,
) -> pki_ca.IssuedCertificate:
    """Order, validate with DNS-01 and download a certificate for ``hosts`` with ``key``."""
    names = [host.rstrip(".").lower() for host in hosts]
    connection = open_account(spec, store, clock, authority)
    csr = make_csr(key, names)
    try:
        order = connection.new_order(csr, names)
    except acme_client_module().AcmeRejected as error:
        if error.code != "accountDoesNotExist":
            raise
        log.warning("the ACME CA %s lost the account; registering it again", authority.directory)
        connection = open_account(spec, store, clock, authority, register_again=True)
        order = connection.new_order(csr, names)

    order_timeout = dt.timedelta(seconds=authority.order_timeout)
    challenges = connection.dns01_challenges(order)
    pending = [challenge for challenge in challenges if challenge.pending]
    if pending:
        publisher = ChallengePublisher(spec, store, clock, pending)
        try:
            publisher.publish()
            wait_until_served(spec, authority, publisher.rrsets, clock)
            for challenge in pending:
                connection.answer(challenge)
            connection.wait_for_authorizations(pending, clock, clock.now() + order_timeout)
        finally:
            removal_problem = publisher.remove()
        if removal_problem is not None and warnings is not None:
            warnings.append(removal_problem)

    fullchain = connection.finalize(order, clock, clock.now() + order_timeout)
    issued = _issued_certificate(fullchain, key, names, authority)
    log.info(
        "issued a certificate for %s by the ACME CA %s (serial %x, expires %s)",
        ", ".join(names),
        authority.name,
        issued.certificate.serial_number,
        issued.certificate.not_valid_after_utc.isoformat(),
    )
    return issued


def plan_placeholder(
    key: PrivateKey, hosts: Sequence[str], clock: Clock, validity: dt.timedelta
) -> pki_ca.IssuedCertificate:
    """Return an in-memory stand-in for an ACME certificate, for plan (which contacts no CA).

    It has ``key`` and a throwaway root and issuing CA, so DANE records of any usage can be
    derived. Records with selector 1 (SPKI) of the end entity equal those of the real one.
    """
    root_key = generate_private_key("ecdsa-p256")
    root = pki_ca.create_root_ca("provisioner plan placeholder root", root_key, clock)
    issuing_key = generate_private_key("ecdsa-p256")
    issuing = pki_ca.create_intermediate_ca(
        root, "provisioner plan placeholder issuing CA", issuing_key, clock
    )
    return pki_ca.issue_server_certificate(issuing, key, list(hosts), clock, validity=validity)


# --- account ----------------------------------------------------------------------------------


def account_key_id(authority: AcmeAuthority) -> str:
    return f"{ACCOUNT_PURPOSE}-{authority.name}"


def open_account(
    spec: Spec,
    store: LocalStore,
    clock: Clock,
    authority: AcmeAuthority,
    *,
    register_again: bool = False,
) -> AcmeConnection:
    """Connect to the CA with the account key in the store, registering the account if needed.

    The account key is made on first use and kept in the store (purpose "acme-account",
    mode 0600). The account URL is kept in the key's data beside the directory URL.
    """
    key_id = account_key_id(authority)
    record = store.key(key_id)
    if record is None:
        key = generate_private_key(ACCOUNT_KEY_TYPE)
        record = store.save_key(
            key_id,
            private_key_to_pem(key),
            purpose=ACCOUNT_PURPOSE,
            owner=authority.name,
            algorithm=ACCOUNT_KEY_TYPE,
            created=clock.now(),
        )
        log.info("created the ACME account key of authority %s", authority.name)
    else:
        key = load_private_key(store.load_key_pem(key_id))

    ca_bundle = spec.resolve(authority.ca_bundle) if authority.ca_bundle is not None else None
    connection = acme_client_module().AcmeConnection.open(
        authority.directory, key, ca_bundle=ca_bundle
    )

    account_url = record.data.get("account_url")
    if account_url and record.data.get("directory") == authority.directory and not register_again:
        connection.use_account(account_url)
        return connection

    terms = connection.terms_of_service
    if terms and not authority.agree_terms_of_service:
        raise PKIError(
            f"the ACME CA at {authority.directory} asks to agree to its terms of service ({terms})",
            hint=f"read them, then set agree_terms_of_service: true on authority {authority.name}",
        )
    binding = _external_account(spec, authority)
    if binding is None and connection.external_account_required:
        raise PKIError(
            f"the ACME CA at {authority.directory} requires external account binding, and "
            f"authority {authority.name} has none",
            hint="add external_account_binding with key_id and hmac_key_file or hmac_key_env "
            "(the values the CA handed out)",
        )
    account_url = connection.register(
        authority.contact,
        agree_terms_of_service=authority.agree_terms_of_service,
        external_account=binding,
    )
    store.update_key_data(
        key_id, {**record.data, "directory": authority.directory, "account_url": account_url}
    )
    log.info("registered the ACME account of authority %s: %s", authority.name, account_url)
    return connection


def acme_client_module() -> ModuleType:
    """Import the ACME client; raise PKIError when the optional acme packages are missing."""
    try:
        from provisioner.pki.acme import client
    except ImportError as error:
        raise PKIError(
            f"ACME authorities need the Python packages acme and josepy: {error}",
            hint="install them with: pip install 'provisioner[acme]'",
        ) from error
    return client


def _external_account(spec: Spec, authority: AcmeAuthority) -> tuple[str, str] | None:
    """Return (key id, HMAC key) of the authority's external account binding, or None."""
    binding = authority.external_account_binding
    if binding is None:
        return None
    if binding.hmac_key_env is not None:
        value = os.environ.get(binding.hmac_key_env, "").strip()
        if not value:
            raise PKIError(
                f"the environment variable {binding.hmac_key_env} (EAB HMAC key of authority "
                f"{authority.name}) is not set or empty",
                hint="export it before running provisioner",
            )
        return binding.key_id, value
    assert binding.hmac_key_file is not None
    path = spec.resolve(binding.hmac_key_file)
    try:
        value = path.read_text().strip()
    except OSError as error:
        raise PKIError(
            f"cannot read the EAB HMAC key file {path} of authority {authority.name}: "
            f"{error.strerror}",
            hint="check the path and that the file is readable",
        ) from error
    if not value:
        raise PKIError(f"the EAB HMAC key file {path} of authority {authority.name} is empty")
    return binding.key_id, value


# --- challenge publication --------------------------------------------------------------------


@dataclass
class ChallengePublisher:
    """Adds the TXT RRsets of DNS-01 challenges to their zones, and removes them again."""

    spec: Spec
    store: LocalStore
    clock: Clock
    challenges: Sequence[Dns01Challenge]

    def __post_init__(self) -> None:
        self.rrsets = challenge_rrsets(self.spec, self.challenges)
        self._attempted = False

    def publish(self) -> None:
        self._attempted = True
        try:
            publish_zones(self.spec, self.store, self.clock, self.rrsets)
        except ProvisionerError as error:
            owners = ", ".join(
                rrset.name.to_text() for rrsets in self.rrsets.values() for rrset in rrsets
            )
            raise PKIError(
                f"cannot publish the ACME DNS-01 challenge {owners} in zone "
                f"{', '.join(self.rrsets)}: {error.message}",
                hint=error.hint or "fix the zone's publication, then run apply again",
            ) from error
        log.info("published DNS-01 challenges in %s", ", ".join(self.rrsets))

    def remove(self) -> str | None:
        """Publish the zones without the challenges; return a warning when that failed.

        It catches ProvisionerError, so that it can run while another error is raised.
        """
        if not self._attempted:
            return None
        try:
            publish_zones(self.spec, self.store, self.clock, {zone: [] for zone in self.rrsets})
        except ProvisionerError as error:
            message = (
                f"the DNS-01 challenge records in {', '.join(self.rrsets)} could not be removed: "
                f"{error.message}; the next apply removes them"
            )
            log.error("%s", message)
            return message
        log.info("removed DNS-01 challenges from %s", ", ".join(self.rrsets))
        return None


def challenge_rrsets(
    spec: Spec, challenges: Sequence[Dns01Challenge]
) -> dict[str, list[dns.rrset.RRset]]:
    """Return the TXT RRsets of ``challenges`` by the name of the spec zone that contains them."""
    by_owner: dict[str, list[str]] = {}
    for challenge in challenges:
        by_owner.setdefault(challenge.owner, []).append(challenge.value)

    result: dict[str, list[dns.rrset.RRset]] = {}
    for owner, values in by_owner.items():
        zone = spec.zone_for(owner)
        if zone is None:
            raise PKIError(
                f"no zone of the spec contains {owner}, so its DNS-01 challenge cannot be "
                "published",
                hint="declare the zone of the host under zones",
            )
        rrset = dns.rrset.from_text_list(
            owner, CHALLENGE_TTL, "IN", "TXT", [f'"{value}"' for value in sorted(set(values))]
        )
        result.setdefault(zone.name, []).append(rrset)
    return result


def publish_zones(
    spec: Spec,
    store: LocalStore,
    clock: Clock,
    extra_rrsets: Mapping[str, Sequence[dns.rrset.RRset]],
) -> None:
    """Publish the zones named in ``extra_rrsets`` as apply would, plus those RRsets.

    Child zones that provisioner signs are prepared too (not published), so the parent keeps
    their DS RRsets. Certificates come from the store as last recorded.
    """
    # NOTE: this runs apply's private zone steps (_prepare_zone, _ds_for_parent, _publish),
    # so a change of their signatures breaks challenge publication. The Pebble tests run it.
    inputs = published_inputs(spec, store)
    inputs.extra_rrsets = dict(extra_rrsets)
    targets = [dns.name.from_text(name) for name in extra_rrsets]
    by_depth = sorted(spec.zones, key=lambda zone: -len(dns.name.from_text(zone.name)))
    for zone_spec in by_depth:
        origin = dns.name.from_text(zone_spec.name)
        if not any(origin.is_subdomain(target) for target in targets):
            continue
        zone = apply_workflow._prepare_zone(spec, zone_spec, store, clock, inputs, dry_run=False)
        # Only a zone below a target zone hands a DS RRset up. A target zone is not asked,
        # because for Route 53 that call also sets up the zone's signing.
        below_target = any(origin != target and origin.is_subdomain(target) for target in targets)
        if below_target:
            ds = apply_workflow._ds_for_parent(zone)
            if ds is not None:
                inputs.child_ds = {**inputs.child_ds, zone_spec.name: ds}
        if zone_spec.name in extra_rrsets:
            apply_workflow._publish(zone, store, clock)


def published_inputs(spec: Spec, store: LocalStore) -> BuildInputs:
    """Return BuildInputs with the certificates on record: current, next and previous."""
    servers = {server.host: _current(store, "server", server.host) for server in spec.mail_servers}
    users = {user.address: _current(store, "smime", user.address) for user in spec.users}
    inputs = BuildInputs()
    inputs.servers = apply_workflow._with_extra_published(store, servers, "server")
    inputs.users = apply_workflow._with_extra_published(store, users, "smime")
    return inputs


def _current(store: LocalStore, purpose: str, owner: str) -> list[PublishedCertificate]:
    record = store.current_certificate(purpose, owner)
    if record is None:
        return []
    loaded = load_certificates(store.read_certificate(record.id))
    return [PublishedCertificate(loaded[0], tuple(loaded[1:]))]


# --- waiting for the name servers -------------------------------------------------------------


def wait_until_served(
    spec: Spec,
    authority: AcmeAuthority,
    rrsets_by_zone: Mapping[str, Sequence[dns.rrset.RRset]],
    clock: Clock,
) -> None:
    """Query every name server of each zone directly until it serves the challenge TXT RRsets.

    Raise PKIError naming the server when ``propagation_timeout`` of the authority passes.
    """
    deadline = clock.now() + dt.timedelta(seconds=authority.propagation_timeout)
    for zone_name, rrsets in rrsets_by_zone.items():
        servers = nameserver_addresses(spec.zone(zone_name))
        waiting = [(server, rrset) for server in servers for rrset in rrsets]
        while waiting:
            waiting = [
                (server, rrset)
                for server, rrset in waiting
                if not _serves(server[1], authority.nameserver_port, rrset)
            ]
            if not waiting:
                break
            if clock.now() >= deadline:
                (name, address), rrset = waiting[0]
                raise PKIError(
                    f"the name server {name} ({address} port {authority.nameserver_port}) did "
                    f"not serve the TXT record {rrset.name} within "
                    f"{authority.propagation_timeout} s",
                    hint="check that the server loads the zone (its reload command or "
                    "transfers), or raise propagation_timeout of the authority",
                )
            clock.sleep(SERVED_POLL_INTERVAL)
        log.info("every name server of %s serves the DNS-01 challenges", zone_name)


def nameserver_addresses(zone_spec: ZoneSpec) -> list[tuple[str, str]]:
    """Return (name, address) of each name server: the addresses of the spec, else resolved."""
    result: list[tuple[str, str]] = []
    for entry in zone_spec.nameservers:
        name = entry.name if isinstance(entry, NameServer) else entry
        addresses = list(entry.addresses) if isinstance(entry, NameServer) else []
        if not addresses:
            addresses = _resolve(name, zone_spec.name)
        result.extend((name, address) for address in addresses)
    return result


def _resolve(name: str, zone: str) -> list[str]:
    absolute = name if "." in name.rstrip(".") else f"{name}.{zone}"
    addresses: list[str] = []
    for rdtype in ("A", "AAAA"):
        try:
            answer = dns.resolver.resolve(absolute, rdtype)
        except dns.exception.DNSException:
            continue
        addresses.extend(rdata.to_text() for rdata in answer)
    if not addresses:
        raise PKIError(
            f"cannot find an address of the name server {absolute} of zone {zone}",
            hint="give its addresses in the spec: nameservers: [{name: ..., addresses: [...]}]",
        )
    return addresses


def _serves(address: str, port: int, expected: dns.rrset.RRset) -> bool:
    query = dns.message.make_query(expected.name, dns.rdatatype.TXT)
    try:
        response = dns.query.udp(query, address, port=port, timeout=QUERY_TIMEOUT)
        if response.flags & dns.flags.TC:
            response = dns.query.tcp(query, address, port=port, timeout=QUERY_TIMEOUT)
    except (dns.exception.DNSException, OSError) as error:
        log.debug("query to %s port %d failed: %s", address, port, error)
        return False
    served = response.get_rrset(
        response.answer, expected.name, dns.rdataclass.IN, dns.rdatatype.TXT
    )
    if served is None:
        return False
    expected_values = {b"".join(rdata.strings) for rdata in expected}
    present = {b"".join(rdata.strings) for rdata in served}
    return expected_values <= present


# --- result -----------------------------------------------------------------------------------


def _issued_certificate(
    fullchain: str, key: PrivateKey, names: Sequence[str], authority: AcmeAuthority
) -> pki_ca.IssuedCertificate:
    try:
        certificates = load_certificates(fullchain.encode())
    except ProvisionerError as error:
        raise PKIError(
            f"the ACME CA {authority.name} returned a certificate chain that cannot be read: "
            f"{error.message}"
        ) from error
    if not certificates:
        raise PKIError(f"the ACME CA {authority.name} returned no certificate")
    leaf = certificates[0]
    if not public_key_matches(leaf, key):
        raise PKIError(
            f"the ACME CA {authority.name} returned a certificate for another key",
            hint="this is a CA bug; nothing was saved",
        )
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        present = {name.lower() for name in san.get_values_for_type(x509.DNSName)}
    except x509.ExtensionNotFound:
        present = set()
    missing = [name for name in names if name not in present]
    if missing:
        raise PKIError(
            f"the ACME CA {authority.name} returned a certificate without the names "
            f"{', '.join(missing)}",
            hint="this is a CA bug; nothing was saved",
        )
    return pki_ca.IssuedCertificate(leaf, tuple(certificates[1:]), None, key)
