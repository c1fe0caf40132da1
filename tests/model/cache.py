"""A model of resolver caches replaying the published history of zones.

Each version of an RRset (its records, TTL and RRSIGs) is served from its publication until
its successor has reached the slowest server (publication + lag), and a resolver that fetched
it at the last moment keeps it for one TTL more. At an instant t, the versions a cache may hold
are those whose serving started at or before t and whose serving end plus TTL is after t.

At every instant where that set changes (and one second before), the model checks that every
combination of cacheable versions validates:
- parent DS RRset x child DNSKEY RRset: for every algorithm in the DS RRset, a DS matches a key
  of the DNSKEY RRset that signs the DNSKEY RRset (signature valid at t);
- child DNSKEY RRset x each child RRset (SOA, NS, A, TXT, MX, TLSA, SMIMEA, NSEC/NSEC3 proofs,
  CDS...): for every algorithm of a zone key in the DNSKEY RRset, a valid RRSIG by such a key.
  This is the stricter reading (RFC 4035, section 2.2, as some validators apply it); RFC 6840,
  section 5.11 lets validators accept any one algorithm, which this check implies;
- DANE: every cacheable TLSA RRset of the MX host contains a record matching the certificate
  the MTA presents at t, and every cacheable SMIMEA RRset one matching the user's certificate.
Signatures are verified once per (RRset version, DNSKEY version) pair; validity times per instant.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import dns.dnssec
import dns.name
import dns.rdatatype
import dns.rrset
from cryptography import x509

from model.world import Publication
from provisioner.check.match import record_matches
from provisioner.zone.model import ZoneData

RdataType = dns.rdatatype.RdataType
SECOND = dt.timedelta(seconds=1)


@dataclass
class Version:
    """One content of an RRset and when it may be in a cache."""

    rrset: dns.rrset.RRset
    rrsig: dns.rrset.RRset | None
    start: dt.datetime
    end: dt.datetime | None  # when the last server stops serving it; None: still served

    def cacheable(self, moment: dt.datetime) -> bool:
        if moment < self.start:
            return False
        return self.end is None or moment < self.end + dt.timedelta(seconds=self.rrset.ttl)


@dataclass
class Failure:
    at: dt.datetime
    message: str


@dataclass
class ModelResult:
    instants: int = 0
    failures: list[Failure] = field(default_factory=list)

    def describe(self, limit: int = 5) -> str:
        return "; ".join(f"{f.at.isoformat()}: {f.message}" for f in self.failures[:limit])


def _versions(
    publications: list[Publication], zone: str, lag: int
) -> dict[tuple[dns.name.Name, int], list[Version]]:
    """Split the zone's publications into per-RRset versions with serving intervals.

    A version stops being served when the publication that changes or removes it has reached
    the slowest server, ``lag`` seconds after it was made.
    """
    result: dict[tuple[dns.name.Name, int], list[Version]] = {}
    current: dict[tuple[dns.name.Name, int], Version] = {}
    for publication in (p for p in publications if p.zone == zone):
        data = publication.zone_data
        ended = publication.at + dt.timedelta(seconds=lag)
        present = set()
        for rrset in data:
            if rrset.rdtype == RdataType.RRSIG:
                continue
            key = (rrset.name, rrset.rdtype)
            present.add(key)
            rrsig = data.get(rrset.name, RdataType.RRSIG, rrset.rdtype)
            previous = current.get(key)
            if previous is not None and _same(previous, rrset, rrsig):
                continue
            if previous is not None:
                previous.end = ended
            version = Version(rrset, rrsig, publication.at, None)
            current[key] = version
            result.setdefault(key, []).append(version)
        for key in list(current):
            if key not in present:
                current.pop(key).end = ended
    return result


def _same(version: Version, rrset: dns.rrset.RRset, rrsig: dns.rrset.RRset | None) -> bool:
    if version.rrset.ttl != rrset.ttl or version.rrset != rrset:
        return False
    if (version.rrsig is None) != (rrsig is None):
        return False
    return rrsig is None or version.rrsig == rrsig


class Checker:
    def __init__(self, zone: str, parent: str) -> None:
        self.zone = dns.name.from_text(zone)
        self.parent = dns.name.from_text(parent)
        self._verified: dict[tuple[int, int], list[tuple[int, int, int, int, int]]] = {}

    def signatures(self, version: Version, keyset: Version) -> list[tuple[int, int, int, int, int]]:
        """Return (algorithm, key tag, inception, expiration, key flags) of RRSIGs that verify."""
        cache_key = (id(version), id(keyset))
        if cache_key in self._verified:
            return self._verified[cache_key]
        found = []
        if version.rrsig is not None:
            keys = {keyset.rrset.name: keyset.rrset}
            for rrsig in version.rrsig:
                for dnskey in keyset.rrset:
                    if dns.dnssec.key_id(dnskey) != rrsig.key_tag:
                        continue
                    if dnskey.algorithm != rrsig.algorithm:
                        continue
                    try:
                        dns.dnssec.validate_rrsig(
                            version.rrset, rrsig, keys, now=rrsig.inception + 1
                        )
                    except dns.dnssec.ValidationFailure:
                        continue
                    found.append(
                        (
                            rrsig.algorithm,
                            rrsig.key_tag,
                            rrsig.inception,
                            rrsig.expiration,
                            dnskey.flags,
                        )
                    )
        self._verified[cache_key] = found
        return found

    def data_problem(self, version: Version, keyset: Version, moment: dt.datetime) -> str | None:
        now = int(moment.timestamp())
        algorithms = {k.algorithm for k in keyset.rrset if k.flags & 0x100}
        valid = {
            algorithm
            for algorithm, _, inception, expiration, _ in self.signatures(version, keyset)
            if inception <= now <= expiration
        }
        missing = algorithms - valid
        if not valid:
            return "no valid signature"
        if missing:
            return f"no valid signature of algorithm {sorted(missing)}"
        return None

    def keyset_problem(self, keyset: Version, ds: Version, moment: dt.datetime) -> str | None:
        now = int(moment.timestamp())
        signing = self.signatures(keyset, keyset)
        for algorithm in {d.algorithm for d in ds.rrset}:
            ok = False
            for dnskey in keyset.rrset:
                if dnskey.algorithm != algorithm:
                    continue
                tag = dns.dnssec.key_id(dnskey)
                matched = any(
                    d.key_tag == tag
                    and d.algorithm == algorithm
                    and dns.dnssec.make_ds(self.zone, dnskey, d.digest_type).digest == d.digest
                    for d in ds.rrset
                )
                if not matched:
                    continue
                if any(s[0] == algorithm and s[1] == tag and s[2] <= now <= s[3] for s in signing):
                    ok = True
            if not ok:
                return f"no DNSKEY of algorithm {algorithm} matches the DS and signs the keyset"
        return None


def check_history(
    publications: list[Publication],
    *,
    zone: str,
    parent: str,
    zone_lag: int,
    parent_lag: int,
    until: dt.datetime,
    dane: dict[dns.name.Name, Callable[[dt.datetime], x509.Certificate | None]],
) -> ModelResult:
    """Check every instant of the history of ``zone`` (and its DS in ``parent``) up to ``until``."""
    child = _versions(publications, zone, zone_lag)
    parent_versions = _versions(publications, parent, parent_lag)
    checker = Checker(zone, parent)
    zone_name = dns.name.from_text(zone)
    ds_versions = parent_versions.get((zone_name, RdataType.DS), [])
    parent_keys = parent_versions.get((dns.name.from_text(parent), RdataType.DNSKEY), [])
    keysets = child.get((zone_name, RdataType.DNSKEY), [])

    moments: set[dt.datetime] = set()
    for versions in list(child.values()) + [ds_versions]:
        for version in versions:
            moments.add(version.start)
            if version.end is not None:
                moments.add(version.end)
                moments.add(version.end + dt.timedelta(seconds=version.rrset.ttl))
    instants = sorted(
        {m for m in moments if m <= until} | {m - SECOND for m in moments if m <= until}
    )
    start = min(p.at for p in publications)
    result = ModelResult()
    for moment in instants:
        if moment < start:
            continue
        result.instants += 1
        ds_cached = [v for v in ds_versions if v.cacheable(moment)]
        keys_cached = [v for v in keysets if v.cacheable(moment)]
        parent_cached = [v for v in parent_keys if v.cacheable(moment)]
        for ds in ds_cached:
            for parent_keyset in parent_cached:
                problem = checker.data_problem(ds, parent_keyset, moment)
                if problem:
                    result.failures.append(Failure(moment, f"DS RRset of {zone}: {problem}"))
            for keyset in keys_cached:
                problem = checker.keyset_problem(keyset, ds, moment)
                if problem:
                    result.failures.append(
                        Failure(
                            moment,
                            f"DNSKEY {_tags(keyset)} with DS {_tags(ds)}: {problem}",
                        )
                    )
        for (owner, rdtype), versions in child.items():
            if rdtype == RdataType.DNSKEY:
                continue
            if rdtype == RdataType.NS and owner != zone_name:
                continue
            for version in versions:
                if not version.cacheable(moment):
                    continue
                for keyset in keys_cached:
                    problem = checker.data_problem(version, keyset, moment)
                    if problem:
                        result.failures.append(
                            Failure(
                                moment,
                                f"{owner} {dns.rdatatype.to_text(rdtype)} with DNSKEY "
                                f"{_tags(keyset)}: {problem}",
                            )
                        )
        for owner, presented in dane.items():
            certificate = presented(moment)
            if certificate is None:
                continue
            for (name, rdtype), versions in child.items():
                if name != owner or rdtype not in (RdataType.TLSA, RdataType.SMIMEA):
                    continue
                for version in versions:
                    if version.cacheable(moment) and not any(
                        record_matches(rdata, certificate) for rdata in version.rrset
                    ):
                        result.failures.append(
                            Failure(
                                moment,
                                f"a cached {dns.rdatatype.to_text(rdtype)} RRset of {owner} "
                                f"has no record matching the certificate in use "
                                f"(serial {certificate.serial_number:x})",
                            )
                        )
    return result


def _tags(version: Version) -> str:
    if version.rrset.rdtype == RdataType.DNSKEY:
        return "{" + ",".join(str(dns.dnssec.key_id(k)) for k in version.rrset) + "}"
    return "{" + ",".join(str(d.key_tag) for d in version.rrset) + "}"


def zone_of(publications: list[Publication], zone: str) -> ZoneData | None:
    mine = [p for p in publications if p.zone == zone]
    return mine[-1].zone_data if mine else None
