"""DNSSEC keys of each zone in the state store, and their roles at this moment.

Each key row (purpose "dnssec", owner the zone name) has JSON data:
    role       "ksk", "zsk" or "csk"
    flags      257 for KSK and CSK (SEP bit), 256 for ZSK
    algorithm  DNSSEC algorithm number
    key_tag    RFC 4034 key tag
    publish    the DNSKEY is in the zone's DNSKEY RRset
    sign       the key makes RRSIGs (over DNSKEY/CDS/CDNSKEY for a KSK, the rest for a ZSK)
    ds         the parent's DS RRset should refer to this key
    state      a short label of the key's RFC 7583 state, kept by the rollover engine
The rollover engine changes publish/sign/ds step by step; this module only creates the first
keys of a zone and loads the keys with their roles.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from provisioner.clock import Clock
from provisioner.dnssec.keys import InMemoryKey, generate_key, load_key
from provisioner.errors import DnssecError
from provisioner.spec.models import ZoneSpec
from provisioner.store.local import LocalStore

log = logging.getLogger(__name__)


@dataclass
class ZoneKey:
    id: str
    key: InMemoryKey
    role: str
    publish: bool
    sign: bool
    ds: bool
    state: str

    @property
    def is_ksk(self) -> bool:
        return self.role in ("ksk", "csk")

    @property
    def is_zsk(self) -> bool:
        return self.role in ("zsk", "csk")


def load_zone_keys(store: LocalStore, zone: str) -> list[ZoneKey]:
    """Return the zone's keys that are not removed, oldest first."""
    keys = []
    for record in store.keys(purpose="dnssec", owner=zone):
        data = record.data
        if data.get("state") == "removed":
            continue
        key = load_key(store.load_key_pem(record.id), int(data["algorithm"]), int(data["flags"]))
        keys.append(
            ZoneKey(
                id=record.id,
                key=key,
                role=data["role"],
                publish=bool(data["publish"]),
                sign=bool(data["sign"]),
                ds=bool(data["ds"]),
                state=data.get("state", "active"),
            )
        )
    return keys


def create_key(
    store: LocalStore,
    zone_spec: ZoneSpec,
    role: str,
    clock: Clock,
    *,
    state: dict[str, Any],
    algorithm: int | None = None,
    dry_run: bool = False,
) -> ZoneKey:
    """Generate a key for ``zone_spec`` in ``role`` and save it (unless ``dry_run``)."""
    policy = zone_spec.dnssec
    algorithm = algorithm if algorithm is not None else policy.algorithm
    flags = 256 if role == "zsk" else 257
    key = generate_key(algorithm, flags, policy.rsa_bits)
    key_id = f"dnssec-{zone_spec.name.rstrip('.') or 'root'}-{role}-{algorithm}-{key.key_tag}"
    if store.key(key_id) is not None:
        # A key tag collision inside one zone: generate again rather than confuse validators.
        return create_key(
            store, zone_spec, role, clock, state=state, algorithm=algorithm, dry_run=dry_run
        )
    data = {
        "role": role,
        "flags": flags,
        "algorithm": algorithm,
        "key_tag": key.key_tag,
        "publish": True,
        "sign": True,
        "ds": role != "zsk",
        "state": "active",
        "created": clock.now().isoformat(),
    }
    data.update(state)
    if not dry_run:
        store.save_key(
            key_id,
            key.to_pem(),
            purpose="dnssec",
            owner=zone_spec.name,
            algorithm=str(algorithm),
            created=clock.now(),
            data=data,
        )
        log.info(
            "generated %s %d (algorithm %d) for zone %s",
            role.upper(),
            key.key_tag,
            algorithm,
            zone_spec.name,
        )
    return ZoneKey(key_id, key, role, data["publish"], data["sign"], data["ds"], data["state"])


def ensure_zone_keys(
    store: LocalStore, zone_spec: ZoneSpec, clock: Clock, *, dry_run: bool = False
) -> list[ZoneKey]:
    """Return the zone's keys, creating the first KSK and ZSK (or CSK) when it has none.

    Before the zone's first publication, a role without a key is filled in too: a run killed
    between creating the KSK and the ZSK leaves only the KSK. After publication, keys change
    only through rollovers.
    """
    keys = load_zone_keys(store, zone_spec.name)
    if keys and store.zone_state(zone_spec.name) is not None:
        return keys
    roles = ["csk"] if zone_spec.dnssec.key_layout == "csk" else ["ksk", "zsk"]
    present = {key.role for key in keys}
    for role in roles:
        if role not in present:
            keys.append(create_key(store, zone_spec, role, clock, state={}, dry_run=dry_run))
    return keys


def check_keys_usable(zone: str, keys: list[ZoneKey]) -> None:
    """Raise DnssecError when the keys cannot sign a zone: no signing KSK or no signing ZSK."""
    if not any(k.sign and k.is_ksk and k.publish for k in keys):
        raise DnssecError(
            f"zone {zone} has no published KSK or CSK that signs",
            hint="check 'provisioner rollover status'; a rollover may have been aborted halfway",
        )
    if not any(k.sign and k.is_zsk for k in keys):
        raise DnssecError(
            f"zone {zone} has no ZSK or CSK that signs",
            hint="check 'provisioner rollover status'",
        )
