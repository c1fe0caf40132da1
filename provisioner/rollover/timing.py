"""Rollover timing from RFC 7583 ("DNSSEC Key Rollover Timing Considerations"), pure arithmetic.

Every wait of a rollover is split in two parts, so that an observation can shorten it:
    propagation   the time for a change to reach every server (Dprp, or DprpP at the parent)
    settle        the time that must pass after every server serves the change: the TTL that
                  caches may still hold the old data for, plus a safety margin

A step may run at max(applied + propagation + settle, observed + settle), where ``applied`` is
when provisioner published the change and ``observed`` is when every server was first seen
serving it.

Names follow RFC 7583, section 3: Ipub (publication interval), Iret (retire interval),
Dprp/DprpP (propagation delay in the zone/at the parent), TTLkey/TTLds/TTLsig, Dsgn (signing
delay: 0, because provisioner re-signs the whole zone in one publication).
"""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.dnssec.policy import DnssecPolicy


@dataclass(frozen=True)
class Wait:
    """A wait after a step: ``propagation`` + ``settle`` seconds, and why."""

    propagation: int
    settle: int
    cause: str

    @property
    def total(self) -> int:
        return self.propagation + self.settle

    def as_dict(self) -> dict[str, object]:
        return {"propagation": self.propagation, "settle": self.settle, "cause": self.cause}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Wait:
        return cls(int(data["propagation"]), int(data["settle"]), str(data["cause"]))  # type: ignore[arg-type]


NO_WAIT = Wait(0, 0, "nothing to wait for")


@dataclass(frozen=True)
class ZoneTimes:
    """The TTLs of one zone that bound how long resolvers may cache its data.

    ``max_ttl`` is the largest TTL of any signed RRset (TTLsig in RFC 7583), ``negative_ttl``
    is min(SOA TTL, SOA minimum), the TTL of NSEC/NSEC3 proofs and negative answers (RFC 9077).
    """

    dnskey_ttl: int
    ds_ttl: int
    max_ttl: int
    negative_ttl: int

    @property
    def signature_ttl(self) -> int:
        """TTLsig: the longest time a cached signature (positive or negative) may live."""
        return max(self.max_ttl, self.negative_ttl, self.dnskey_ttl)


def publication_interval(policy: DnssecPolicy, dnskey_ttl: int | None = None) -> int:
    """Ipub + publish safety: the time between publishing a DNSKEY and using it (RFC 7583 3.2.1).

    Ipub = Dprp + TTLkey. Example: 1 h propagation, 1 h DNSKEY TTL, 1 day publish safety give
    26 h.
    """
    ttl = policy.dnskey_ttl if dnskey_ttl is None else dnskey_ttl
    return policy.propagation_delay + ttl + policy.publish_safety


def retire_interval(policy: DnssecPolicy, signature_ttl: int, signing_delay: int = 0) -> int:
    """Iret + retire safety: the time a retired ZSK stays published (RFC 7583 3.2.1).

    Iret = Dsgn + Dprp + TTLsig; ``signing_delay`` (Dsgn) is 0 when the whole zone is re-signed
    in one publication.
    """
    return signing_delay + policy.propagation_delay + signature_ttl + policy.retire_safety


def ds_interval(policy: DnssecPolicy, ds_ttl: int | None = None) -> int:
    """The time from a DS change at the parent until no cache contains the old DS RRset.

    DprpP + TTLds + retire safety (RFC 7583 3.3.2, the Iret of the DS RRset).
    """
    ttl = policy.ds_ttl if ds_ttl is None else ds_ttl
    return policy.parent_propagation_delay + ttl + policy.retire_safety


def dnskey_wait(policy: DnssecPolicy, times: ZoneTimes, cause: str, *, safety: int) -> Wait:
    """Wait until a change of the DNSKEY RRset (and its RRSIGs) reached every cache."""
    return Wait(policy.propagation_delay, times.dnskey_ttl + safety, cause)


def signatures_wait(policy: DnssecPolicy, times: ZoneTimes, cause: str, *, safety: int) -> Wait:
    """Wait until every cached RRset carries the signatures of the latest publication."""
    return Wait(policy.propagation_delay, times.signature_ttl + safety, cause)


def ds_wait(policy: DnssecPolicy, times: ZoneTimes, cause: str, *, safety: int) -> Wait:
    """Wait until a change of the parent's DS RRset reached every cache."""
    return Wait(policy.parent_propagation_delay, times.ds_ttl + safety, cause)


def record_wait(propagation: int, ttl: int, cause: str, *, factor: int = 2) -> Wait:
    """Wait until a changed TLSA/SMIMEA RRset reached every cache: ``factor`` x TTL.

    RFC 7671, section 8.1 calls for the new TLSA record to be published for at least two TTLs
    before the new certificate is deployed.
    """
    return Wait(propagation, factor * ttl, cause)


def rollover_start_time(lifetime: int, lead_time: int) -> int:
    """Seconds after a key's activation at which its successor's rollover must start.

    The successor takes over at the end of ``lifetime`` when the rollover starts
    ``lead_time`` (the sum of the waits before the switch) earlier. A lifetime of 0 means
    unlimited: the result is -1.
    """
    if lifetime <= 0:
        return -1
    return max(0, lifetime - lead_time)
