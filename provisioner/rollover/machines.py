"""The steps of each rollover kind: what changes, what is published, what is waited for.

Pure data: a ``Step`` states which flags the old and new keys (or which status the old and new
certificates) take, whether the zones must be published, which action runs (certificate
deploy), the wait that must pass after it, and the observations that must hold before the
next step. The engine in provisioner.workflows.rollover executes them.

Flags are absolute values, not toggles, so that a step that is run again after a crash makes
the same change.

DNSSEC key flags (see provisioner.workflows.zonekeys): ``publish`` (DNSKEY in the zone),
``sign`` (makes RRSIGs), ``ds`` (the parent's DS RRset refers to the key), ``state`` (an
RFC 7583 state label).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provisioner.dnssec.policy import DnssecPolicy
from provisioner.rollover import timing
from provisioner.rollover.timing import Wait, ZoneTimes

# Observation kinds, checked after a step's wait and before the next step runs.
OBSERVE_ZONE = "zone"  # every name server of the zone serves the published serial
OBSERVE_PARENT_DS = "parent-ds"  # every parent server serves the expected DS RRset, validated
OBSERVE_MTA = "mta"  # the MTA presents the current certificate on every address and port

KINDS = (
    "zsk",
    "ksk-double-ds",
    "ksk-double-ksk",
    "csk",
    "algorithm",
    "mx",
    "smime",
    "emergency",
)

DNSSEC_KINDS = ("zsk", "ksk-double-ds", "ksk-double-ksk", "csk", "algorithm")


@dataclass(frozen=True)
class Step:
    """One step of a rollover and the wait after it."""

    name: str
    description: str
    old: dict[str, Any] = field(default_factory=dict)
    new: dict[str, Any] = field(default_factory=dict)
    publish: bool = True
    deploy: bool = False
    wait: Wait = timing.NO_WAIT
    observe: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "old": self.old,
            "new": self.new,
            "publish": self.publish,
            "deploy": self.deploy,
            "wait": self.wait.as_dict(),
            "observe": list(self.observe),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Step:
        return cls(
            name=data["name"],
            description=data["description"],
            old=dict(data["old"]),
            new=dict(data["new"]),
            publish=bool(data["publish"]),
            deploy=bool(data["deploy"]),
            wait=Wait.from_dict(data["wait"]),
            observe=tuple(data["observe"]),
        )


def _flags(
    *, publish: bool | None = None, sign: bool | None = None, ds: bool | None = None, state: str
) -> dict[str, Any]:
    flags: dict[str, Any] = {"state": state}
    for name, value in (("publish", publish), ("sign", sign), ("ds", ds)):
        if value is not None:
            flags[name] = value
    return flags


def zsk_steps(policy: DnssecPolicy, times: ZoneTimes) -> list[Step]:
    """ZSK pre-publication (RFC 7583, section 3.2.1)."""
    return [
        Step(
            "publish-new",
            "publish the new ZSK in the DNSKEY RRset, not signing yet",
            new=_flags(publish=True, sign=False, ds=False, state="published"),
            wait=timing.dnskey_wait(
                policy,
                times,
                "the DNSKEY RRset with the new ZSK must reach every cache (Ipub + publish safety)",
                safety=policy.publish_safety,
            ),
            observe=(OBSERVE_ZONE,),
        ),
        Step(
            "activate-new",
            "sign with the new ZSK; the old ZSK stops signing but stays published",
            new=_flags(sign=True, state="active"),
            old=_flags(sign=False, state="retired"),
            wait=timing.signatures_wait(
                policy,
                times,
                "signatures made by the old ZSK must expire from caches (Iret + retire safety)",
                safety=policy.retire_safety,
            ),
            observe=(OBSERVE_ZONE,),
        ),
        Step(
            "remove-old",
            "remove the old ZSK from the DNSKEY RRset",
            old=_flags(publish=False, state="removed"),
            observe=(OBSERVE_ZONE,),
        ),
    ]


def ksk_double_ds_steps(policy: DnssecPolicy, times: ZoneTimes) -> list[Step]:
    """KSK rollover by double-DS (RFC 7583, section 3.3.2): the new DS goes to the parent first.

    The KSKs sign the CDS and CDNSKEY RRsets as well as the DNSKEY RRset, so both KSKs sign
    from the first step until the old DS is gone, although only one is in the DNSKEY RRset:
    a cached CDS RRset then validates with either DNSKEY RRset.
    """
    return [
        Step(
            "add-ds",
            "add the new KSK's DS to the parent's DS RRset; the new KSK signs the keyset "
            "RRsets without being published",
            new=_flags(publish=False, sign=True, ds=True, state="ds-published"),
            wait=timing.ds_wait(
                policy,
                times,
                "the parent's DS RRset with both DS must reach every cache "
                "(DprpP + TTLds + publish safety)",
                safety=policy.publish_safety,
            ),
            observe=(OBSERVE_PARENT_DS, OBSERVE_ZONE),
        ),
        Step(
            "swap-dnskey",
            "replace the old KSK by the new KSK in the DNSKEY RRset",
            new=_flags(publish=True, state="active"),
            old=_flags(publish=False, state="retired"),
            wait=timing.dnskey_wait(
                policy,
                times,
                "the DNSKEY RRset with the old KSK must expire from caches "
                "(Dprp + TTLkey + retire safety)",
                safety=policy.retire_safety,
            ),
            observe=(OBSERVE_ZONE,),
        ),
        Step(
            "remove-ds",
            "remove the old KSK's DS from the parent and its signatures from the zone",
            old=_flags(ds=False, sign=False, state="removed"),
            observe=(OBSERVE_PARENT_DS, OBSERVE_ZONE),
        ),
    ]


def ksk_double_ksk_steps(policy: DnssecPolicy, times: ZoneTimes) -> list[Step]:
    """KSK rollover by double-KSK (RFC 7583, section 3.3.1): the new DNSKEY is published first."""
    return [
        Step(
            "publish-new",
            "publish the new KSK; both KSKs sign the DNSKEY RRset",
            new=_flags(publish=True, sign=True, ds=False, state="published"),
            wait=timing.dnskey_wait(
                policy,
                times,
                "the DNSKEY RRset with the new KSK must reach every cache "
                "(Dprp + TTLkey + publish safety)",
                safety=policy.publish_safety,
            ),
            observe=(OBSERVE_ZONE,),
        ),
        _swap_ds_step(policy, times, "replace the old KSK's DS by the new KSK's DS at the parent"),
        Step(
            "remove-old",
            "remove the old KSK from the DNSKEY RRset",
            old=_flags(publish=False, sign=False, state="removed"),
            observe=(OBSERVE_ZONE,),
        ),
    ]


def _swap_ds_step(policy: DnssecPolicy, times: ZoneTimes, description: str) -> Step:
    """Return the step that replaces the old key's DS by the new key's DS at the parent."""
    return Step(
        "swap-ds",
        description,
        new=_flags(ds=True, state="active"),
        old=_flags(ds=False, state="retired"),
        wait=timing.ds_wait(
            policy,
            times,
            "the old DS RRset must expire from caches (DprpP + TTLds + retire safety)",
            safety=policy.retire_safety,
        ),
        observe=(OBSERVE_PARENT_DS,),
    )


def csk_steps(policy: DnssecPolicy, times: ZoneTimes) -> list[Step]:
    """CSK rollover: pre-publish the new CSK, double signatures, swap the DS, drop the old CSK.

    A CSK signs both the DNSKEY RRset and the zone data, so the DS may only change once every
    cached RRset (the DNSKEY RRset above all) carries signatures of both keys.
    """
    return [
        Step(
            "publish-new",
            "publish the new CSK in the DNSKEY RRset, not signing yet",
            new=_flags(publish=True, sign=False, ds=False, state="published"),
            wait=timing.dnskey_wait(
                policy,
                times,
                "the DNSKEY RRset with the new CSK must reach every cache "
                "(Dprp + TTLkey + publish safety)",
                safety=policy.publish_safety,
            ),
            observe=(OBSERVE_ZONE,),
        ),
        Step(
            "double-sign",
            "sign every RRset with both CSKs",
            new=_flags(sign=True, state="active"),
            wait=timing.signatures_wait(
                policy,
                times,
                "every cached RRset must carry a signature by the new CSK "
                "(Dprp + TTLsig + publish safety)",
                safety=policy.publish_safety,
            ),
            observe=(OBSERVE_ZONE,),
        ),
        _swap_ds_step(policy, times, "replace the old CSK's DS by the new CSK's DS at the parent"),
        Step(
            "remove-old",
            "remove the old CSK and its signatures",
            old=_flags(publish=False, sign=False, state="removed"),
            observe=(OBSERVE_ZONE,),
        ),
    ]


def algorithm_steps(policy: DnssecPolicy, times: ZoneTimes) -> list[Step]:
    """Algorithm rollover in the order of RFC 6781, section 4.1.4.

    Signatures of the new algorithm come before its DNSKEYs, so that no cached DNSKEY RRset
    lists an algorithm whose signatures a cached RRset lacks; the old DNSKEYs leave before
    their signatures do.
    """
    return [
        Step(
            "sign-new",
            "add signatures by the new algorithm's keys, not yet publishing their DNSKEYs",
            new=_flags(publish=False, sign=True, ds=False, state="signing"),
            wait=timing.signatures_wait(
                policy,
                times,
                "every cached RRset must carry signatures of the new algorithm "
                "(Dprp + TTLsig + publish safety)",
                safety=policy.publish_safety,
            ),
            observe=(OBSERVE_ZONE,),
        ),
        Step(
            "publish-new",
            "publish the new algorithm's DNSKEYs",
            new=_flags(publish=True, state="published"),
            wait=timing.dnskey_wait(
                policy,
                times,
                "the DNSKEY RRset with the new keys must reach every cache "
                "(Dprp + TTLkey + publish safety)",
                safety=policy.publish_safety,
            ),
            observe=(OBSERVE_ZONE,),
        ),
        _swap_ds_step(
            policy, times, "replace the DS of the old algorithm by the DS of the new at the parent"
        ),
        Step(
            "unpublish-old",
            "remove the old algorithm's DNSKEYs, keeping their signatures",
            old=_flags(publish=False, state="retired"),
            wait=timing.dnskey_wait(
                policy,
                times,
                "the DNSKEY RRset with the old keys must expire from caches "
                "(Dprp + TTLkey + retire safety)",
                safety=policy.retire_safety,
            ),
            observe=(OBSERVE_ZONE,),
        ),
        Step(
            "unsign-old",
            "remove the old algorithm's signatures",
            old=_flags(sign=False, state="removed"),
            observe=(OBSERVE_ZONE,),
        ),
    ]


def certificate_steps(
    kind: str, propagation: int, ttl: int, *, record: str, deploy: bool
) -> list[Step]:
    """MX ("current + next", RFC 7671 section 8.1) or S/MIME certificate rollover.

    Certificate flags are store statuses: ``next`` (records published, not yet in use),
    ``current``, ``previous`` (records kept during the overlap), ``retired``.
    """
    first_wait = timing.record_wait(
        propagation,
        ttl,
        f"both {record} records must reach every cache: 2 x TTL after every name server "
        "serves them (RFC 7671, section 8.1)",
    )
    if kind == "mx":
        switch = Step(
            "deploy-new",
            "deploy the new certificate to the MTA",
            new={"status": "current"},
            old={"status": "previous"},
            deploy=deploy,
            observe=(OBSERVE_MTA,),
        )
    else:
        switch = Step(
            "switch-new",
            "make the new certificate current; the old one stays published",
            new={"status": "current"},
            old={"status": "previous"},
            wait=timing.record_wait(
                propagation,
                ttl,
                f"correspondents may hold the old {record} RRset for 2 x TTL",
            ),
            observe=(OBSERVE_ZONE,),
        )
    return [
        Step(
            "publish-next",
            f"publish the {record} record of the next certificate beside the current one",
            new={"status": "next"},
            wait=first_wait,
            observe=(OBSERVE_ZONE,),
        ),
        switch,
        Step(
            "retire-old",
            f"remove the old certificate's {record} record",
            old={"status": "retired"},
            observe=(OBSERVE_ZONE,),
        ),
    ]


def emergency_steps(propagation: int, ttl: int, record: str) -> list[Step]:
    """Return the steps for a certificate whose key changed outside provisioner."""
    return [
        Step(
            "publish-replacement",
            f"publish the {record} record of the replaced certificate at once, keeping the old",
            new={"status": "current"},
            old={"status": "previous"},
            wait=timing.record_wait(
                propagation, ttl, f"caches may hold the old {record} RRset for one TTL", factor=1
            ),
            observe=(OBSERVE_ZONE,),
        ),
        Step(
            "retire-old",
            f"remove the old certificate's {record} record",
            old={"status": "retired"},
            observe=(OBSERVE_ZONE,),
        ),
    ]


def dnssec_steps(kind: str, policy: DnssecPolicy, times: ZoneTimes) -> list[Step]:
    builders = {
        "zsk": zsk_steps,
        "ksk-double-ds": ksk_double_ds_steps,
        "ksk-double-ksk": ksk_double_ksk_steps,
        "csk": csk_steps,
        "algorithm": algorithm_steps,
    }
    return builders[kind](policy, times)


def lead_time(steps: list[Step], until: str) -> int:
    """Return the sum of the waits before step ``until``: the time a rollover takes to reach it."""
    total = 0
    for step in steps:
        if step.name == until:
            return total
        total += step.wait.total
    return total
