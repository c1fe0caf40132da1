"""The DS records of a zone, for the parent's operator (`provisioner ds`)."""

from __future__ import annotations

import logging

import dns.dnssec
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from provisioner.dnssec.keys import ds_rrset
from provisioner.errors import DnssecError, ProvisionerError
from provisioner.spec.models import Spec, ZoneSpec
from provisioner.store.local import LocalStore
from provisioner.workflows.zonekeys import load_zone_keys
from provisioner.zone.model import ZoneData

log = logging.getLogger(__name__)


def ds_from_served(served: ZoneData, zone_spec: ZoneSpec) -> dns.rrset.RRset | None:
    """Return the DS RRset for a zone that its server signs, from what the server serves.

    The server's CDS RRset (RFC 7344) is what the server requests the parent to publish. A
    server that publishes no CDS yet (BIND and Knot wait until the KSK's DNSKEY has
    propagated) gets DS records of its DNSKEYs with the SEP flag, with the spec's digests.
    """
    origin = served.origin
    ttl = zone_spec.dnssec.ds_ttl
    result = dns.rrset.RRset(origin, dns.rdataclass.IN, dns.rdatatype.DS)
    cds = served.get(origin, "CDS")
    if cds is not None:
        for rdata in cds:
            if rdata.algorithm != 0:  # algorithm 0 is the "remove all DS" request
                result.add(dns.rdata.from_text("IN", "DS", rdata.to_text()), ttl)
    dnskeys = served.get(origin, "DNSKEY")
    if not len(result) and dnskeys is not None:
        for rdata in dnskeys:
            if rdata.flags & 0x0001:
                for digest in zone_spec.dnssec.ds_digests:
                    result.add(dns.dnssec.make_ds(origin, rdata, digest), ttl)
    if not len(result):
        log.warning("zone %s: the server serves no CDS or DNSKEY yet, so no DS", zone_spec.name)
        return None
    return result


def ds_records(spec: Spec, store: LocalStore, zone: str, digests: list[int] | None) -> list[str]:
    try:
        zone_spec = spec.zone(zone)
    except KeyError:
        raise ProvisionerError(
            f"zone {zone} is not in the spec",
            hint="zones: " + ", ".join(z.name for z in spec.zones),
        ) from None
    if zone_spec.dnssec.signer == "route53":
        from provisioner.backends.registry import make_backend
        from provisioner.backends.route53_dnssec import route53_ds_lines

        return route53_ds_lines(make_backend(spec, zone_spec, store), zone_spec)
    if zone_spec.dnssec.signer == "server":
        from provisioner.backends.registry import make_backend

        served = make_backend(spec, zone_spec, store).read()
        rrset = ds_from_served(served, zone_spec) if served is not None else None
        if rrset is None:
            raise DnssecError(
                f"the server of zone {zone_spec.name} serves no CDS or DNSKEY yet",
                hint="run 'provisioner apply' and wait for the server to sign the zone",
            )
        return _lines(rrset)
    if zone_spec.dnssec.signer != "provisioner":
        raise DnssecError(
            f"zone {zone_spec.name} is not signed (signer: {zone_spec.dnssec.signer})",
            hint="set dnssec.signer to provisioner, server or route53 to sign it",
        )
    keys = [k.key for k in load_zone_keys(store, zone_spec.name) if k.ds and k.is_ksk]
    if not keys:
        raise DnssecError(
            f"zone {zone_spec.name} has no keys yet", hint="run 'provisioner apply' first"
        )
    rrset = ds_rrset(
        zone_spec.name, keys, digests or zone_spec.dnssec.ds_digests, zone_spec.dnssec.ds_ttl
    )
    return _lines(rrset)


def _lines(rrset: dns.rrset.RRset) -> list[str]:
    return [
        f"{rrset.name.to_text()} {rrset.ttl} IN DS {rdata.to_text()}"
        for rdata in sorted(rrset, key=lambda r: r.to_text())
    ]
