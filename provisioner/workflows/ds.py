"""The DS records of a zone, for the parent's operator (`provisioner ds`)."""

from __future__ import annotations

from provisioner.dnssec.keys import ds_rrset
from provisioner.errors import DnssecError, ProvisionerError
from provisioner.spec.models import Spec
from provisioner.store.local import LocalStore
from provisioner.workflows.zonekeys import load_zone_keys


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
    if zone_spec.dnssec.signer != "provisioner":
        raise DnssecError(
            f"zone {zone_spec.name} is signed by '{zone_spec.dnssec.signer}', not by provisioner",
            hint="read the DS from the signer (the server's CDS, or Route 53's GetDNSSEC)",
        )
    keys = [k.key for k in load_zone_keys(store, zone_spec.name) if k.ds]
    if not keys:
        raise DnssecError(
            f"zone {zone_spec.name} has no keys yet", hint="run 'provisioner apply' first"
        )
    rrset = ds_rrset(
        zone_spec.name, keys, digests or zone_spec.dnssec.ds_digests, zone_spec.dnssec.ds_ttl
    )
    return [
        f"{rrset.name.to_text()} {rrset.ttl} IN DS {rdata.to_text()}"
        for rdata in sorted(rrset, key=lambda r: r.to_text())
    ]
