"""Build the CheckTarget of a spec: its zones, MX hosts and users, with certificates on record."""

from __future__ import annotations

import logging

import dns.name

from provisioner.check.targets import (
    CheckTarget,
    MxTarget,
    Server,
    TrustAnchor,
    UserTarget,
    ZoneTarget,
)
from provisioner.errors import CheckError, PKIError
from provisioner.pki.encoding import load_certificates
from provisioner.spec.models import NameServer, Spec
from provisioner.store.local import LocalStore

log = logging.getLogger(__name__)


def build_targets(
    spec: Spec,
    store: LocalStore | None,
    *,
    trust_anchor: TrustAnchor | None = None,
    resolver: Server | None = None,
    dns_port: int = 53,
) -> CheckTarget:
    """Return what `provisioner check` verifies for ``spec``.

    Name server addresses given in the spec are queried directly on ``dns_port``. A name
    server given by name only is found through the zone's validated NS, A and AAAA RRsets.
    Zones whose signer is "none" are left out of the DNSSEC checks. The S/MIME certificates
    on record come from ``store`` (the current certificate of each user); without a store the
    SMIMEA records are checked for DNSSEC only.
    """
    target = CheckTarget(trust_anchor=trust_anchor, resolver=resolver, dns_port=dns_port)
    for zone in spec.zones:
        if zone.dnssec.signer == "none":
            log.info("zone %s is unsigned by the spec; its DNSSEC is not checked", zone.name)
            continue
        servers: list[Server] = []
        for entry in zone.nameservers:
            if isinstance(entry, NameServer):
                host = dns.name.from_text(entry.name).to_text()
                servers.extend(Server(address, dns_port, host) for address in entry.addresses)
        target.zones.append(ZoneTarget(dns.name.from_text(zone.name), servers))

    for server in spec.mail_servers:
        owning = spec.zone_for(server.host)
        zone_name = server.zone or (owning.name if owning else None)
        if zone_name is None:
            raise CheckError(
                f"the mail server {server.host} is in no zone of the spec",
                hint="add 'zone:' to the mail server, or the zone that contains it",
            )
        for port in server.ports:
            target.mx_hosts.append(
                MxTarget(
                    host=dns.name.from_text(server.host),
                    zone=dns.name.from_text(zone_name),
                    port=port,
                    addresses=list(server.addresses),
                    reference_names=[domain.rstrip(".") for domain in server.mx_for],
                )
            )

    for user in spec.users:
        owning = spec.zone_for(user.domain)
        if owning is None:
            raise CheckError(
                f"the user {user.address} is in no zone of the spec",
                hint=f"add the zone of {user.domain} to the spec",
            )
        certificates = []
        if store is not None:
            record = store.current_certificate("smime", user.address)
            if record is not None:
                try:
                    certificates = load_certificates(store.read_certificate(record.id))[:1]
                except (OSError, PKIError) as error:
                    raise CheckError(
                        f"cannot read the certificate on record for {user.address}: {error}",
                        hint="run provisioner apply to issue or import it again",
                    ) from error
        target.users.append(UserTarget(user.address, dns.name.from_text(owning.name), certificates))
    return target
