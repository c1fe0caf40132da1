"""Build the unsigned desired state of each zone from the spec and the certificates in force.

Pure: certificates and child DS RRsets are handed in, nothing is read from disk or network.
The signer plugs in after this step (see provisioner.workflows.apply).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from cryptography import x509

from provisioner.dane.smimea import smimea_owner, smimea_rdata
from provisioner.dane.tlsa import tlsa_owner, tlsa_rdata, usage_warnings
from provisioner.errors import DaneError
from provisioner.spec.models import DaneParameters, Spec, ZoneSpec
from provisioner.zone.compact import compact
from provisioner.zone.model import ZoneData

IN = dns.rdataclass.IN


@dataclass(frozen=True)
class PublishedCertificate:
    """A certificate whose DANE records are published, with the chain the server sends."""

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()


@dataclass
class BuildInputs:
    """Inputs of the zone builder besides the spec.

    ``servers`` and ``users`` map an MX host name (absolute, text) or a mail address to the
    certificates whose records are published now: one normally, two during a rollover
    ("current + next"). ``child_ds`` maps a child zone name to its DS RRset.
    ``extra_rrsets`` maps a zone name to RRsets added as they are, such as the TXT RRsets of
    ACME DNS-01 challenges while an order is validated.
    """

    servers: Mapping[str, Sequence[PublishedCertificate]] = field(default_factory=dict)
    users: Mapping[str, Sequence[PublishedCertificate]] = field(default_factory=dict)
    child_ds: Mapping[str, dns.rrset.RRset] = field(default_factory=dict)
    extra_rrsets: Mapping[str, Sequence[dns.rrset.RRset]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def build_zones(
    spec: Spec, inputs: BuildInputs, serials: Mapping[str, int], *, only: str | None = None
) -> dict[str, ZoneData]:
    """Return the unsigned ZoneData of every zone of the spec (or of ``only``), by zone name."""
    zones = {
        zone.name: _base_zone(zone, serials.get(zone.name, 1))
        for zone in spec.zones
        if only is None or zone.name == only
    }

    for server in spec.mail_servers:
        zone_spec = spec.zone(server.zone) if server.zone else spec.zone_for(server.host)
        assert zone_spec is not None, "the spec's semantics check guarantees a zone"
        host = dns.name.from_text(server.host)
        ttl = server.tlsa_ttl or zone_spec.ttl

        for domain in server.mx_for or [zone_spec.name]:
            mail_zone = spec.zone_for(domain)
            assert mail_zone is not None
            if mail_zone.name in zones:
                zones[mail_zone.name].add(
                    dns.rrset.from_text(
                        dns.name.from_text(domain),
                        mail_zone.ttl,
                        IN,
                        "MX",
                        f"{server.preference} {host.to_text()}",
                    )
                )

        zone = zones.get(zone_spec.name)
        if zone is None:
            continue
        for address in server.addresses:
            rdtype = "AAAA" if ipaddress.ip_address(address).version == 6 else "A"
            zone.add(dns.rrset.from_text(host, zone_spec.ttl, IN, rdtype, address))

        published = inputs.servers.get(server.host, ())
        for port in server.ports:
            for parameters in server.tlsa:
                for warning in usage_warnings(parameters.usage, port):
                    inputs.warnings.append(f"mail server {server.host}: {warning}")
            owner = tlsa_owner(server.host, port)
            rrset = dns.rrset.RRset(owner, IN, dns.rdatatype.TLSA)
            for certificate in published:
                for parameters in server.tlsa:
                    target = _dane_target(parameters, certificate, f"mail server {server.host}")
                    rrset.add(tlsa_rdata(*parameters.as_tuple(), target), ttl)
            if len(rrset):
                zone.add(rrset)

    zone_of_domain: dict[str, ZoneSpec | None] = {}
    for user in spec.users:
        # The zone that contains the SMIMEA owner name, which is a child zone
        # _smimecert.<domain> when the spec delegates it, else the zone of the domain.
        # Every user of a domain has the same one, so it is looked up once per domain.
        owner = smimea_owner(user.address)
        if user.domain not in zone_of_domain:
            zone_of_domain[user.domain] = spec.zone_for(owner.to_text())
        zone_spec = zone_of_domain[user.domain]
        assert zone_spec is not None
        if zone_spec.name not in zones:
            continue
        published = inputs.users.get(user.address, ())
        ttl = user.smimea_ttl or zone_spec.ttl
        rrset = dns.rrset.RRset(owner, IN, dns.rdatatype.SMIMEA)
        for certificate in published:
            for parameters in user.smimea:
                target = _dane_target(parameters, certificate, f"user {user.address}")
                rrset.add(smimea_rdata(*parameters.as_tuple(), target), ttl)
        if len(rrset):
            # Large zones are mostly these RRsets of one RR; the compact form saves memory.
            zones[zone_spec.name].add(compact(rrset))

    for child_spec in spec.zones:
        parent = _parent_zone(spec, child_spec.name)
        if parent is not None and parent.name in zones:
            _add_delegation(zones[parent.name], child_spec)

    for child, ds in inputs.child_ds.items():
        parent = _parent_zone(spec, child)
        if parent is not None and parent.name in zones:
            zones[parent.name].add(ds)

    for zone_name, rrsets in inputs.extra_rrsets.items():
        if zone_name in zones:
            for rrset in rrsets:
                zones[zone_name].add(rrset)
    return zones


def _base_zone(zone_spec: ZoneSpec, serial: int) -> ZoneData:
    origin = dns.name.from_text(zone_spec.name)
    zone = ZoneData(origin)
    nameservers = zone_spec.nameserver_names()
    soa = zone_spec.soa
    mname = _spec_name(soa.mname or nameservers[0], origin)
    rname = _spec_name(soa.rname, origin)
    zone.add(
        dns.rrset.from_text(
            origin,
            soa.ttl or zone_spec.ttl,
            IN,
            "SOA",
            f"{mname} {rname} {serial} {soa.refresh} {soa.retry} {soa.expire} {soa.minimum}",
        )
    )
    zone.add(dns.rrset.from_text_list(origin, zone_spec.ttl, IN, "NS", nameservers))

    for nameserver in zone_spec.nameservers:
        if isinstance(nameserver, str) or not nameserver.addresses:
            continue
        name = _spec_name(nameserver.name, origin)
        for address in nameserver.addresses:
            rdtype = "AAAA" if ipaddress.ip_address(address).version == 6 else "A"
            if name.is_subdomain(origin):
                zone.add(dns.rrset.from_text(name, zone_spec.ttl, IN, rdtype, address))

    for record in zone_spec.records:
        owner = dns.name.from_text(record.name, origin)
        rrset = dns.rrset.from_text_list(
            owner,
            record.ttl or zone_spec.ttl,
            IN,
            record.type,
            record.values,
            origin=origin,
            relativize=False,
        )
        zone.add(rrset)
    return zone


def _add_delegation(parent: ZoneData, child_spec: ZoneSpec) -> None:
    """Add the NS RRset of a child zone of the spec to its parent, with glue where needed.

    Glue is the address of a name server whose name is at or below the child's apex, since a
    resolver cannot look that name up before it knows the child's servers.
    """
    cut = dns.name.from_text(child_spec.name)
    nameservers = child_spec.nameserver_names()
    parent.add(dns.rrset.from_text_list(cut, child_spec.ttl, IN, "NS", nameservers))
    for nameserver in child_spec.nameservers:
        if isinstance(nameserver, str) or not nameserver.addresses:
            continue
        name = _spec_name(nameserver.name, cut)
        if not name.is_subdomain(cut):
            continue
        for address in nameserver.addresses:
            rdtype = "AAAA" if ipaddress.ip_address(address).version == 6 else "A"
            parent.add(dns.rrset.from_text(name, child_spec.ttl, IN, rdtype, address))


def _spec_name(text: str, origin: dns.name.Name) -> dns.name.Name:
    """Read a host name of the spec: absolute when it has a dot, else relative to the zone."""
    if "." in text.rstrip("."):
        return dns.name.from_text(text.rstrip(".") + ".")
    return dns.name.from_text(text, origin)


def _dane_target(
    parameters: DaneParameters, published: PublishedCertificate, what: str
) -> x509.Certificate:
    """Return the certificate a record of these parameters refers to.

    Usages 1 and 3 refer to the end-entity certificate, usages 0 and 2 to the issuing CA.
    The server must send that CA in its chain, because a DANE-TA client finds it only there.
    """
    if parameters.usage in (1, 3):
        return published.certificate
    if not published.chain:
        raise DaneError(
            f"{what}: usage {parameters.usage} needs the issuing CA certificate, "
            "but the certificate has no chain",
            hint="use usage 3 (DANE-EE), or give the chain of the certificate",
        )
    return published.chain[0]


def _parent_zone(spec: Spec, child: str) -> ZoneSpec | None:
    child_name = dns.name.from_text(child)
    if child_name == dns.name.root:
        return None
    return spec.zone_for(child_name.parent().to_text())
