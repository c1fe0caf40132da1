"""Sign a built zone with the zone's keys, then validate the result before it may be published."""

from __future__ import annotations

import datetime as dt

from provisioner.errors import DnssecError
from provisioner.spec.models import ZoneSpec
from provisioner.workflows.zonekeys import ZoneKey, check_keys_usable
from provisioner.zone.model import ZoneData


def sign_and_verify(
    zone_spec: ZoneSpec,
    unsigned: ZoneData,
    keys: list[ZoneKey],
    previous: ZoneData | None,
    now: dt.datetime,
) -> ZoneData:
    """Return the signed zone; raise DnssecError naming the RRset when it does not validate."""
    from provisioner.dnssec.signer import KeyAssignment, KeyRole, sign_zone
    from provisioner.dnssec.verify import verify_zone

    check_keys_usable(zone_spec.name, keys)
    uses = [
        # Only a KSK or CSK goes into the CDS and DS RRsets: a ZSK flagged for the parent by an
        # algorithm rollover would give the parent a DS that matches no SEP key.
        KeyAssignment(
            key=k.key,
            role=KeyRole(k.role),
            published=k.publish,
            active=k.sign,
            in_cds=k.ds and k.is_ksk,
        )
        for k in keys
    ]
    signed = sign_zone(unsigned, uses, zone_spec.dnssec, now, previous=previous)
    problems = verify_zone(signed, now)
    if problems:
        listed = "; ".join(str(problem) for problem in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise DnssecError(
            f"the signed zone {zone_spec.name} does not validate, so it was not published: "
            f"{listed}{more}",
            hint="this is a bug or a damaged key in the state store; nothing was changed",
        )
    return signed
