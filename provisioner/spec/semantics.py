"""Checks across sections of a parsed spec; each problem is (location path, message)."""

from __future__ import annotations

from typing import Any

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from provisioner.pki.acme.caa import CaaRdata, caa_verdict
from provisioner.spec.models import (
    AcmeAuthority,
    MailServerSpec,
    Spec,
    ZoneSpec,
    absolute_name,
)

Problem = tuple[tuple[Any, ...], str]


def check_semantics(spec: Spec) -> list[Problem]:
    problems: list[Problem] = []
    problems += _locate_in_smimea_option(spec, _check_zones(spec))
    problems += _check_smimea_delegations(spec)
    problems += _check_authorities(spec)
    problems += _check_mail_servers(spec)
    problems += _check_users(spec)
    problems += _check_acme(spec)
    return problems


def _check_zones(spec: Spec) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for index, zone in enumerate(spec.zones):
        if zone.name in seen:
            problems.append(
                (
                    ("zones", index, "name"),
                    f"zone {zone.name} is declared twice (first at zones[{seen[zone.name]}])",
                )
            )
        seen.setdefault(zone.name, index)
        if zone.dnssec.signer == "provisioner" and zone.soa.expire > zone.dnssec.signature_validity:
            problems.append(
                (
                    ("zones", index, "soa", "expire"),
                    f"SOA expire ({zone.soa.expire} s) is longer than the signature validity "
                    f"({zone.dnssec.signature_validity} s): a secondary cut off from the primary "
                    "would serve expired signatures; lower expire or raise signature_validity",
                )
            )
        if zone.dnssec.signer == "route53" and zone.publish.backend != "route53":
            problems.append(
                (
                    ("zones", index, "dnssec", "signer"),
                    "signer 'route53' needs publish.backend 'route53'",
                )
            )
        if zone.publish.backend == "route53" and zone.dnssec.signer == "provisioner":
            problems.append(
                (
                    ("zones", index, "dnssec", "signer"),
                    "Route 53 cannot serve DNSKEY or RRSIG records, so it cannot serve a zone "
                    "that provisioner signed; use signer: route53 (Route 53 signs) or none",
                )
            )
        if (
            zone.publish.backend == "rfc2136"
            and zone.publish.server_type == "bind"
            and zone.dnssec.signer == "provisioner"
        ):
            problems.append(
                (
                    ("zones", index, "dnssec", "signer"),
                    "BIND cannot serve a zone that provisioner signs through RFC 2136 updates: "
                    "it signs every update to a zone with DNSKEYs itself, so an UPDATE that adds "
                    "provisioner's DNSKEY fails (BIND 9.18 looks for the private key and answers "
                    "SERVFAIL); use signer: server (BIND signs with dnssec-policy), "
                    "a Knot primary (server_type: knot) with dnssec-signing: off, or the "
                    "zonefile backend",
                )
            )
        for record_index, record in enumerate(zone.records):
            try:
                dns.name.from_text(record.name, dns.name.from_text(zone.name))
            except dns.exception.DNSException as error:
                problems.append(
                    (
                        ("zones", index, "records", record_index, "name"),
                        f"invalid owner name {record.name!r}: {error}",
                    )
                )
        problems += _check_zone_content(spec, index, zone)
    return problems


def _owner_types(spec: Spec, zone: ZoneSpec) -> dict[dns.name.Name, set[str]]:
    """Return the record types at each owner name of ``zone``, literal and generated."""
    origin = dns.name.from_text(zone.name)
    types: dict[dns.name.Name, set[str]] = {origin: {"SOA", "NS"}}
    for nameserver in zone.nameservers:
        if isinstance(nameserver, str) or not nameserver.addresses:
            continue
        name = dns.name.from_text(absolute_name(nameserver.name))
        if name.is_subdomain(origin):
            types.setdefault(name, set()).add("A")
    for record in zone.records:
        try:
            owner = dns.name.from_text(record.name, origin)
        except dns.exception.DNSException:
            continue
        types.setdefault(owner, set()).add(record.type)
    for server in spec.mail_servers:
        if spec.zone_for(server.host) is not zone:
            continue
        host = dns.name.from_text(server.host)
        if server.addresses:
            types.setdefault(host, set()).add("A")
        for port in server.ports:
            owner = dns.name.from_text(f"_{port}._tcp.{server.host}")
            types.setdefault(owner, set()).add("TLSA")
    for server in spec.mail_servers:
        host_zone = spec.zone_for(server.zone or server.host)
        default = [host_zone.name] if host_zone is not None else []
        for domain in server.mx_for or default:
            if spec.zone_for(domain) is zone:
                types.setdefault(dns.name.from_text(absolute_name(domain)), set()).add("MX")
    return types


def _check_zone_content(spec: Spec, index: int, zone: ZoneSpec) -> list[Problem]:
    """Reject content that authoritative servers refuse to load (RFC 1034, RFC 2181)."""
    problems: list[Problem] = []
    origin = dns.name.from_text(zone.name)
    for record_index, record in enumerate(zone.records):
        location = ("zones", index, "records", record_index)
        try:
            owner = dns.name.from_text(record.name, origin)
        except dns.exception.DNSException:
            continue
        if not owner.is_subdomain(origin):
            problems.append(
                (
                    location + ("name",),
                    f"{owner} is outside the zone {zone.name}; give a name relative to the zone "
                    "or '@' for the apex",
                )
            )
        if record.type == "DS" and owner == origin:
            problems.append(
                (
                    location + ("type",),
                    "a DS RRset belongs in the parent zone, not at the apex of the zone itself",
                )
            )
        if record.type == "CNAME" and len(record.values) > 1:
            problems.append(
                (location + ("value",), "a CNAME RRset has exactly one record (RFC 2181, 10.1)")
            )

    for owner, types in _owner_types(spec, zone).items():
        if "CNAME" in types and (owner == origin or len(types) > 1):
            others = ", ".join(sorted(types - {"CNAME"}))
            record_index = next(
                i
                for i, r in enumerate(zone.records)
                if r.type == "CNAME" and dns.name.from_text(r.name, origin) == owner
            )
            problems.append(
                (
                    ("zones", index, "records", record_index),
                    f"CNAME at {owner} beside other data ({others}): a CNAME owner name has no "
                    "other records (RFC 1034, section 3.6.2); use the other types directly",
                )
            )

    return problems


def _locate_in_smimea_option(spec: Spec, problems: list[Problem]) -> list[Problem]:
    """Point problems of a child zone made by a ``smimea`` option at that option."""
    indexes = {zone.name: index for index, zone in enumerate(spec.zones)}
    located: list[Problem] = []
    for loc, message in problems:
        if len(loc) >= 2 and loc[0] == "zones" and isinstance(loc[1], int):
            child = spec.zones[loc[1]]
            if child.smimea_parent is not None:
                loc = ("zones", indexes[child.smimea_parent], "smimea", *loc[2:])
                message = f"child zone {child.name}: {message}"
        located.append((loc, message))
    return located


def _check_smimea_delegations(spec: Spec) -> list[Problem]:
    problems: list[Problem] = []
    children: dict[str, list[str]] = {}
    for zone in spec.zones:
        if zone.smimea_parent is not None:
            children.setdefault(zone.smimea_parent, []).append(zone.name)
    for index, zone in enumerate(spec.zones):
        if zone.publish.backend == "route53" and zone.dnssec.signer == "server":
            problems.append(
                (
                    ("zones", index, "dnssec", "signer"),
                    "signer 'server' needs an rfc2136 primary; Route 53 zones use signer: "
                    "route53 (Route 53 signs) or none",
                )
            )
        option = zone.smimea
        if option is None or not option.delegate:
            continue
        names = children.get(zone.name, [])
        path = getattr(option.publish, "path", None)
        if path is not None and len(names) > 1:
            problems.append(
                (
                    ("zones", index, "smimea", "publish", "path"),
                    f"{len(names)} child zones ({', '.join(names)}) cannot share one zone "
                    "file; remove path to get one file per zone under the output folder",
                )
            )
    return problems


def _check_authorities(spec: Spec) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, authority in enumerate(spec.authorities):
        if authority.name in seen:
            problems.append(
                (("authorities", index, "name"), f"authority {authority.name!r} is declared twice")
            )
        seen.add(authority.name)
    return problems


def _certificate_problems(
    spec: Spec, location: tuple[Any, ...], authority: str | None
) -> list[Problem]:
    if authority is None:
        return []
    names = [a.name for a in spec.authorities]
    if authority not in names:
        allowed = ", ".join(repr(n) for n in names) or "none declared"
        return [
            (
                location + ("certificate", "authority"),
                f"unknown authority {authority!r}; declared authorities: {allowed}",
            )
        ]
    return []


def _check_mail_servers(spec: Spec) -> list[Problem]:
    problems: list[Problem] = []
    hosts: set[str] = set()
    for index, server in enumerate(spec.mail_servers):
        location = ("mail_servers", index)
        if server.host in hosts:
            problems.append((location + ("host",), f"mail server {server.host} is declared twice"))
        hosts.add(server.host)

        if server.zone is not None:
            try:
                zone = spec.zone(server.zone)
            except KeyError:
                problems.append(
                    (location + ("zone",), f"zone {server.zone!r} is not declared under zones")
                )
            else:
                if not dns.name.from_text(server.host).is_subdomain(dns.name.from_text(zone.name)):
                    problems.append(
                        (location + ("zone",), f"host {server.host} is not inside zone {zone.name}")
                    )
        elif spec.zone_for(server.host) is None:
            problems.append(
                (
                    location + ("host",),
                    f"no zone of the spec contains {server.host}; declare its zone under zones",
                )
            )
        for mx_index, domain in enumerate(server.mx_for):
            if spec.zone_for(domain) is None:
                problems.append(
                    (
                        location + ("mx_for", mx_index),
                        f"no zone of the spec contains the mail domain {domain}",
                    )
                )
        problems += _certificate_problems(spec, location, server.certificate.authority)
    return problems


def _check_users(spec: Spec) -> list[Problem]:
    problems: list[Problem] = []
    addresses: set[str] = set()
    for index, user in enumerate(spec.users):
        location = ("users", index)
        if user.address in addresses:
            problems.append((location + ("address",), f"user {user.address} is declared twice"))
        addresses.add(user.address)
        if spec.zone_for(user.domain) is None:
            problems.append(
                (
                    location + ("address",),
                    f"no zone of the spec contains the domain of {user.address}",
                )
            )
        problems += _certificate_problems(spec, location, user.certificate.authority)
    return problems


# --- ACME -------------------------------------------------------------------------------------


def _acme_authority_of(spec: Spec, name: str | None) -> AcmeAuthority | None:
    for authority in spec.authorities:
        if authority.name == name and isinstance(authority, AcmeAuthority):
            return authority
    return None


def _caa_rrsets(spec: Spec) -> dict[dns.name.Name, list[CaaRdata]]:
    """Return the CAA records given under zones[].records, by owner name."""
    result: dict[dns.name.Name, list[CaaRdata]] = {}
    for zone in spec.zones:
        origin = dns.name.from_text(zone.name)
        for record in zone.records:
            if record.type != "CAA":
                continue
            try:
                owner = dns.name.from_text(record.name, origin)
            except dns.exception.DNSException:
                continue  # reported by _check_zones
            for value in record.values:
                rdata = dns.rdata.from_text(
                    dns.rdataclass.IN, dns.rdatatype.CAA, value, origin=origin
                )
                result.setdefault(owner, []).append(rdata)  # type: ignore[arg-type]
    return result


def _check_acme(spec: Spec) -> list[Problem]:
    """Reject ACME certificates that cannot be issued: S/MIME, Ed25519 keys, CAA forbidding."""
    problems: list[Problem] = []
    caa = _caa_rrsets(spec)
    for index, user in enumerate(spec.users):
        if _acme_authority_of(spec, user.certificate.authority) is not None:
            problems.append(
                (
                    ("users", index, "certificate", "authority"),
                    f"authority {user.certificate.authority!r} is an ACME CA, and provisioner "
                    "orders only MX host certificates from ACME CAs; use an enterprise authority",
                )
            )
    for index, server in enumerate(spec.mail_servers):
        authority = _acme_authority_of(spec, server.certificate.authority)
        if authority is None:
            continue
        location = ("mail_servers", index, "certificate")
        if server.certificate.key_type == "ed25519":
            problems.append(
                (
                    location + ("key_type",),
                    "ACME CAs issue for RSA and ECDSA keys only; use ecdsa-p256 or rsa-2048",
                )
            )
        if authority.caa_identity is None:
            continue
        verdict = caa_verdict(dns.name.from_text(server.host), caa, authority.caa_identity)
        if verdict.allowed is False:
            problems.append(
                (
                    location + ("authority",),
                    f"{verdict.reason}, so the ACME CA {authority.name} will refuse "
                    f"{server.host}; add the record 'CAA 0 issue \"{authority.caa_identity}\"' "
                    f"at {verdict.owner}, or choose another authority",
                )
            )
    return problems


def zone_warnings(spec: Spec) -> list[str]:
    """Return warnings about zones that some authoritative servers refuse to load."""
    warnings: list[str] = []
    for zone in spec.zones:
        origin = dns.name.from_text(zone.name)
        literal_addresses = {
            dns.name.from_text(r.name, origin) for r in zone.records if r.type in ("A", "AAAA")
        }
        for nameserver in zone.nameservers:
            name_text = nameserver if isinstance(nameserver, str) else nameserver.name
            addresses = [] if isinstance(nameserver, str) else nameserver.addresses
            name = dns.name.from_text(absolute_name(name_text))
            if name.is_subdomain(origin) and not addresses and name not in literal_addresses:
                warnings.append(
                    f"zone {zone.name}: name server {name} is inside the zone but has no "
                    "address, so BIND and Knot refuse to load the zone file; give "
                    "'addresses' (resolvers also need them as glue), or an A or AAAA record"
                )
    return warnings


def acme_warnings(spec: Spec) -> list[str]:
    """Return warnings about fragile ACME choices that do not stop plan or apply."""
    warnings: list[str] = []
    caa = _caa_rrsets(spec)
    for server in spec.mail_servers:
        authority = _acme_authority_of(spec, server.certificate.authority)
        if authority is None:
            continue
        warnings += _dane_ta_warnings(server, authority)
        if authority.caa_identity is None:
            verdict = caa_verdict(dns.name.from_text(server.host), caa, None)
            if verdict.allowed is None:
                warnings.append(
                    f"mail server {server.host}: {verdict.reason}, and authority "
                    f"{authority.name} has no caa_identity, so provisioner cannot tell whether "
                    'the CA may issue; set caa_identity (such as "letsencrypt.org")'
                )
    return warnings


def _dane_ta_warnings(server: MailServerSpec, authority: AcmeAuthority) -> list[str]:
    for parameters in server.tlsa:
        if parameters.usage == 2:
            return [
                f"mail server {server.host}: TLSA usage 2 (DANE-TA) pins the intermediate CA of "
                f"the ACME CA {authority.name}, which such CAs change without notice, and then "
                "no record matches the chain the server sends; prefer 3 1 1 (DANE-EE, SPKI), "
                "which stays valid across renewals because provisioner keeps the key"
            ]
    return []
