"""Zone signing: DNSKEY, RRSIG, NSEC or NSEC3, with reuse of still-valid signatures.

Public API:
    KeyRole, KeyAssignment        a key and what the rollover engine allows it to do
    ZoneSigner(keys, policy, processes=None)
        .sign(zone, now, previous=None) -> SignedZone    full pass, reusing signatures
        .update(previous, zone, now) -> SignedZone       incremental: cheap when few RRsets changed
    SignedZone                    .zone (ZoneData), .refresh_due, .made, .reused
    sign_zone(zone, keys, policy, now, previous=None) -> ZoneData    one-call form

What the signer adds to the unsigned zone:
- the DNSKEY RRset: the input's DNSKEY RRs (if any) plus every key with ``published`` set;
- CDS and CDNSKEY RRsets for the KSKs or CSKs with ``in_cds`` set, when ``policy.publish_cds`` is
  set and the input carries no CDS or CDNSKEY of its own (the rollover engine may pass the RFC 8078
  delete form, which is then signed as it is);
- an RRSIG per active key of the right role over every authoritative RRset: DNSKEY, CDS and
  CDNSKEY by KSKs or CSKs, everything else by ZSKs or CSKs. The NS RRset at a delegation and
  everything below a zone cut or a DNAME (glue, occluded data) is not signed; DS at a delegation is;
- an NSEC chain, or an NSEC3 chain (with empty non-terminals) and the NSEC3PARAM RRset, whose TTL
  is min(SOA TTL, SOA minimum) as RFC 9077 requires.

Signature timing: inception = now - inception_offset; expiration = now + signature_validity minus
a jitter in [0, jitter] derived from a hash of owner name and type. An RRSIG of ``previous`` is
kept when its RRset is unchanged (same RRs and TTL), its key is still active for that role, it
has started, and more than ``refresh`` of its validity remains. So signing the same zone twice
changes nothing, and a later run only renews signatures that entered the refresh window.
ECDSA signatures are randomized: two fresh signatures of the same data differ, so "deterministic
for a fixed clock" means equal inception and expiration, and that signatures are reused.

Speed: the RRSIG signing input is built as raw wire bytes (see _wire.py) and signed with
cryptography directly, in worker processes forked from this one when the zone is large and all
keys are ``parallel_safe``. The workers return only signatures.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import logging
import multiprocessing
import os
from collections.abc import Iterable, Sequence
from enum import StrEnum

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.NSEC3PARAM
import dns.rrset

from provisioner.clock import epoch
from provisioner.dnssec import _wire
from provisioner.dnssec.keys import SigningKey, cdnskey_rrset, cds_rrset
from provisioner.dnssec.policy import DnssecPolicy
from provisioner.errors import DnssecError
from provisioner.zone.model import NONE, RRsetKey, ZoneData

log = logging.getLogger(__name__)

RdataType = dns.rdatatype.RdataType
RRset = dns.rrset.RRset

_IN = dns.rdataclass.IN
_SIGNER_TYPES = frozenset(
    {RdataType.RRSIG, RdataType.NSEC, RdataType.NSEC3, RdataType.NSEC3PARAM}
)
_KEYSET_TYPES = frozenset({RdataType.DNSKEY, RdataType.CDS, RdataType.CDNSKEY})
_NS = RdataType.NS
_DS = RdataType.DS
_DNAME = RdataType.DNAME

# Below this many signatures the signer stays in-process: forking costs more than it saves.
PARALLEL_THRESHOLD = 4000
_CHUNK = 2000


class KeyRole(StrEnum):
    KSK = "ksk"
    ZSK = "zsk"
    CSK = "csk"


@dataclasses.dataclass(frozen=True)
class KeyAssignment:
    """A key and what it does now, as the rollover engine decides.

    ``published``: the DNSKEY RRset contains it. ``active``: it signs the RRsets of its role;
    a key may sign without being published (algorithm rollover) or be published without
    signing (pre-publication). ``in_cds``: a KSK or CSK listed in the CDS/CDNSKEY RRsets.
    """

    key: SigningKey
    role: KeyRole
    published: bool = True
    active: bool = True
    in_cds: bool = True

    @property
    def signs_keyset(self) -> bool:
        return self.active and self.role in (KeyRole.KSK, KeyRole.CSK)

    @property
    def signs_data(self) -> bool:
        return self.active and self.role in (KeyRole.ZSK, KeyRole.CSK)


@dataclasses.dataclass
class SignedZone:
    """A signed zone and what the signer needs to update it incrementally.

    ``refresh_due`` (Unix time) is when the first signature enters its refresh window: before
    then, ``ZoneSigner.update`` need not look at unchanged RRsets. ``made`` and ``reused`` count
    the signatures of this pass.
    """

    zone: ZoneData
    refresh_due: int
    made: int
    reused: int
    _state: _State = dataclasses.field(repr=False)


@dataclasses.dataclass
class _State:
    """The signer's index of a signed zone, kept for incremental updates."""

    unsigned: dict[RRsetKey, RRset]
    signer_made: frozenset[RRsetKey]
    types: dict[dns.name.Name, frozenset[RdataType]]
    occluders: frozenset[_wire.CanonicalKey]
    # Sorted canonical keys of the names that own an NSEC, or that an NSEC3 chain is built
    # from (empty non-terminals excluded), and those names.
    chain: list[_wire.CanonicalKey]
    chain_names: dict[_wire.CanonicalKey, dns.name.Name]
    # NSEC3 only: sorted hashes, and hash -> (name key, is empty non-terminal).
    hashes: list[bytes]
    hashed: dict[bytes, _wire.CanonicalKey]
    ents: frozenset[_wire.CanonicalKey]
    fingerprint: tuple[object, ...]


@dataclasses.dataclass
class _Job:
    rrset: RRset
    key_indexes: list[int]
    kept: list[_wire.RRSIG]


@dataclasses.dataclass
class _Work:
    """What a worker process needs; inherited through fork, never pickled."""

    jobs: list[_Job]
    keys: list[SigningKey]
    origin: dns.name.Name
    signer_wire: bytes
    inception: int
    expiration_base: int
    jitter: int


_WORK: _Work | None = None


def _sign_jobs(work: _Work, start: int, end: int) -> list[tuple[int, list[bytes]]]:
    """Sign jobs[start:end]; return (expiration, signatures in key order) per job."""
    results = []
    origin = work.origin
    keys = work.keys
    for job in work.jobs[start:end]:
        rrset = job.rrset
        owner_wire = _wire.canonical_wire(rrset.name)
        rdtype = int(rrset.rdtype)
        rdata_wires = sorted({rdata.to_digestable(origin) for rdata in rrset})
        labels = _wire.rrsig_labels(rrset.name)
        expiration = _wire.jittered_expiration(
            owner_wire, rdtype, work.expiration_base, work.jitter
        )
        signatures = []
        for index in job.key_indexes:
            key = keys[index]
            data = _wire.signing_input(
                owner_wire, rdtype, rrset.ttl, rdata_wires, key.algorithm, labels,
                expiration, work.inception, key.key_tag, work.signer_wire,
            )
            signatures.append(key.sign(data))
        results.append((expiration, signatures))
    return results


def _sign_chunk(bounds: tuple[int, int]) -> list[tuple[int, list[bytes]]]:
    assert _WORK is not None, "worker started without signing work"
    return _sign_jobs(_WORK, bounds[0], bounds[1])


class ZoneSigner:
    """Signs zones with a fixed set of keys and a policy; see the module docstring."""

    def __init__(
        self,
        keys: Sequence[KeyAssignment],
        policy: DnssecPolicy,
        processes: int | None = None,
    ) -> None:
        self.assignments = list(keys)
        self.policy = policy
        self.processes = processes if processes is not None else (os.cpu_count() or 1)
        if not any(a.signs_keyset for a in self.assignments):
            raise DnssecError(
                "no active KSK or CSK to sign the DNSKEY RRset",
                hint="mark at least one key with role ksk or csk as active",
            )
        if not any(a.signs_data for a in self.assignments):
            raise DnssecError(
                "no active ZSK or CSK to sign the zone data",
                hint="mark at least one key with role zsk or csk as active",
            )
        self._keys = [a.key for a in self.assignments]
        self._keyset_signers = [i for i, a in enumerate(self.assignments) if a.signs_keyset]
        self._data_signers = [i for i, a in enumerate(self.assignments) if a.signs_data]
        self._fingerprint = (
            tuple(
                (a.key.algorithm, a.key.key_tag, a.key.flags, a.role, a.published, a.active,
                 a.in_cds)
                for a in self.assignments
            ),
            policy.model_dump_json(),
        )

    # ----------------------------------------------------------------------------------
    # Full pass

    def sign(
        self, zone: ZoneData, now: dt.datetime, previous: SignedZone | ZoneData | None = None
    ) -> SignedZone:
        """Sign ``zone`` completely, reusing the valid signatures of ``previous``."""
        now_epoch = epoch(now)
        origin = zone.origin
        unsigned = {k: v for k, v in zone.rrsets.items() if k[1] not in _SIGNER_TYPES}
        rrsets = dict(unsigned)
        signer_made = self._add_keyset(origin, rrsets)
        soa = rrsets.get((origin, RdataType.SOA, NONE))
        if soa is None:
            raise DnssecError(f"zone {origin} has no SOA RRset", hint="add the SOA before signing")
        negative_ttl = min(soa.ttl, soa[0].minimum)

        types: dict[dns.name.Name, set[RdataType]] = {}
        for name, rdtype, _covers in rrsets:
            types.setdefault(name, set()).add(rdtype)
        frozen_types = {name: frozenset(t) for name, t in types.items()}
        name_keys = {name: _wire.canonical_key(name) for name in frozen_types}
        occluders, occluded = _find_occluded(origin, frozen_types, name_keys)

        state = _State(
            unsigned=unsigned,
            signer_made=frozenset(signer_made),
            types=frozen_types,
            occluders=frozenset(occluders),
            chain=[],
            chain_names={},
            hashes=[],
            hashed={},
            ents=frozenset(),
            fingerprint=self._fingerprint,
        )
        denial = self._build_denial(origin, frozen_types, name_keys, occluded, negative_ttl, state)
        rrsets.update(denial)

        to_sign: list[RRset] = []
        for key, rrset in rrsets.items():
            name, rdtype, _covers = key
            if name in occluded:
                continue
            if name != origin and _NS in frozen_types.get(name, ()) and rdtype not in (
                _DS, RdataType.NSEC
            ):
                continue
            to_sign.append(rrset)

        prev_zone = previous.zone if isinstance(previous, SignedZone) else previous
        signed, refresh_due, made, reused = self._sign_rrsets(
            origin, to_sign, rrsets, prev_zone, now_epoch
        )
        log.debug("signed %s: %d signatures made, %d reused", origin, made, reused)
        return SignedZone(signed, refresh_due, made, reused, state)

    def _add_keyset(self, origin: dns.name.Name, rrsets: dict[RRsetKey, RRset]) -> list[RRsetKey]:
        """Add the DNSKEY RRset, and CDS/CDNSKEY when the policy asks; return the keys added."""
        made = []
        dnskey_key = (origin, RdataType.DNSKEY, NONE)
        dnskeys = RRset(origin, _IN, RdataType.DNSKEY)
        existing = rrsets.get(dnskey_key)
        if existing is not None:
            dnskeys.update(existing)
        for assignment in self.assignments:
            if assignment.published:
                dnskeys.add(assignment.key.dnskey)
        dnskeys.update_ttl(self.policy.dnskey_ttl)
        if existing is None or dnskeys != existing or existing.ttl != dnskeys.ttl:
            rrsets[dnskey_key] = dnskeys
            made.append(dnskey_key)

        cds_key = (origin, RdataType.CDS, NONE)
        cdnskey_key = (origin, RdataType.CDNSKEY, NONE)
        if self.policy.publish_cds and cds_key not in rrsets and cdnskey_key not in rrsets:
            cds_keys = [
                a.key
                for a in self.assignments
                if a.published and a.in_cds and a.role in (KeyRole.KSK, KeyRole.CSK)
            ]
            if cds_keys:
                ttl = self.policy.cds_ttl_effective
                rrsets[cds_key] = cds_rrset(origin, cds_keys, self.policy.ds_digests, ttl)
                rrsets[cdnskey_key] = cdnskey_rrset(origin, cds_keys, ttl)
                made += [cds_key, cdnskey_key]
        return made

    # ----------------------------------------------------------------------------------
    # Denial of existence

    def _build_denial(
        self,
        origin: dns.name.Name,
        types: dict[dns.name.Name, frozenset[RdataType]],
        name_keys: dict[dns.name.Name, _wire.CanonicalKey],
        occluded: set[dns.name.Name],
        negative_ttl: int,
        state: _State,
    ) -> dict[RRsetKey, RRset]:
        nsec3 = self.policy.denial == "nsec3"
        opt_out = nsec3 and self.policy.nsec3.opt_out
        sources: dict[_wire.CanonicalKey, dns.name.Name] = {}
        for name, name_types in types.items():
            if name in occluded:
                continue
            if opt_out and name != origin and _NS in name_types and _DS not in name_types:
                continue
            sources[name_keys[name]] = name
        state.chain = sorted(sources)
        state.chain_names = sources
        if not nsec3:
            return _nsec_chain(origin, state.chain, sources, types, negative_ttl)
        return self._nsec3_chain(origin, types, negative_ttl, state)

    def _nsec3_chain(
        self,
        origin: dns.name.Name,
        types: dict[dns.name.Name, frozenset[RdataType]],
        negative_ttl: int,
        state: _State,
    ) -> dict[RRsetKey, RRset]:
        params = self.policy.nsec3
        salt = params.salt_bytes
        origin_length = len(origin.labels)
        sources = state.chain_names
        ents: dict[_wire.CanonicalKey, None] = {}
        for key in state.chain:
            for cut in range(len(key) - 1, origin_length, -1):
                parent = key[:cut]
                if parent in sources or parent in ents:
                    break
                ents[parent] = None
        state.ents = frozenset(ents)

        hashed: dict[bytes, _wire.CanonicalKey] = {}
        for key in [*state.chain, *ents]:
            digest = _wire.nsec3_hash(_key_wire(key), salt, params.iterations)
            if digest in hashed:
                raise DnssecError(
                    f"NSEC3 hash collision in zone {origin}",
                    hint="set another NSEC3 salt in the zone's dnssec policy",
                )
            hashed[digest] = key
        state.hashed = hashed
        state.hashes = sorted(hashed)

        param_key = (origin, RdataType.NSEC3PARAM, NONE)
        param = RRset(origin, _IN, RdataType.NSEC3PARAM)
        param.add(
            dns.rdtypes.ANY.NSEC3PARAM.NSEC3PARAM(
                _IN, RdataType.NSEC3PARAM, 1, 0, params.iterations, salt
            ),
            negative_ttl,
        )
        out: dict[RRsetKey, RRset] = {param_key: param}
        bitmaps = _wire.BitmapCache(RdataType.NSEC3)
        count = len(state.hashes)
        for position, digest in enumerate(state.hashes):
            following = state.hashes[(position + 1) % count]
            rrset = self._nsec3_rrset(
                origin, digest, following, hashed[digest], types, state, bitmaps, negative_ttl
            )
            out[(rrset.name, RdataType.NSEC3, NONE)] = rrset
        return out

    def _nsec3_rrset(
        self,
        origin: dns.name.Name,
        digest: bytes,
        following: bytes,
        key: _wire.CanonicalKey,
        types: dict[dns.name.Name, frozenset[RdataType]],
        state: _State,
        bitmaps: _wire.BitmapCache,
        negative_ttl: int,
    ) -> RRset:
        params = self.policy.nsec3
        name = state.chain_names.get(key)
        if name is None:
            bitmap_types: frozenset[int] = frozenset()
        else:
            bitmap_types = _nsec3_types(name, origin, types[name])
        owner = dns.name.Name((_wire.nsec3_label(digest), *origin.labels))
        rdata = _wire.NSEC3(
            _IN, RdataType.NSEC3, 1, 1 if params.opt_out else 0, params.iterations,
            params.salt_bytes, following, bitmaps.get(bitmap_types),
        )
        rrset = RRset(owner, _IN, RdataType.NSEC3)
        rrset.add(rdata, negative_ttl)
        return rrset

    # ----------------------------------------------------------------------------------
    # Signatures

    def _sign_rrsets(
        self,
        origin: dns.name.Name,
        to_sign: Iterable[RRset],
        rrsets: dict[RRsetKey, RRset],
        previous: ZoneData | None,
        now: int,
        base: ZoneData | None = None,
    ) -> tuple[ZoneData, int, int, int]:
        """Add RRSIGs over ``to_sign`` to ``rrsets``; return (zone, refresh_due, made, reused).

        With ``base``, the result starts from base's RRsets (incremental update) and only the
        RRSIGs of ``to_sign`` are replaced.
        """
        policy = self.policy
        keys = self._keys
        tags = {(keys[i].algorithm, keys[i].key_tag): i for i in range(len(keys))}
        jobs: list[_Job] = []
        out: dict[RRsetKey, RRset] = dict(base.rrsets) if base is not None else dict(rrsets)
        refresh_due = 2**32
        reused = 0
        prev = previous.rrsets if previous is not None else {}
        for rrset in to_sign:
            rdtype = RdataType(rrset.rdtype)
            wanted = self._keyset_signers if rdtype in _KEYSET_TYPES else self._data_signers
            kept: list[_wire.RRSIG] = []
            missing = wanted
            old_sigs = prev.get((rrset.name, RdataType.RRSIG, rdtype))
            if old_sigs is not None:
                old = prev.get((rrset.name, rdtype, NONE))
                if old is not None and old.ttl == rrset.ttl and (old is rrset or old == rrset):
                    labels = _wire.rrsig_labels(rrset.name)
                    found: set[int] = set()
                    for sig in old_sigs:
                        index = tags.get((sig.algorithm, sig.key_tag))
                        if (
                            index in wanted
                            and index not in found
                            and sig.original_ttl == rrset.ttl
                            and sig.labels == labels
                            and sig.signer == origin
                            and sig.inception <= now
                            and sig.expiration - now > policy.refresh
                        ):
                            found.add(index)
                            kept.append(sig)
                            refresh_due = min(refresh_due, sig.expiration - policy.refresh)
                    missing = [i for i in wanted if i not in found]
                    reused += len(kept)
            if missing:
                jobs.append(_Job(rrset, list(missing), kept))
            else:
                out[(rrset.name, RdataType.RRSIG, rdtype)] = _rrsig_rrset(rrset, kept)

        made = 0
        results = self._run_jobs(origin, jobs, now)
        for job, (expiration, signatures) in zip(jobs, results, strict=True):
            rrset = job.rrset
            rdtype = RdataType(rrset.rdtype)
            labels = _wire.rrsig_labels(rrset.name)
            sigs = list(job.kept)
            for index, signature in zip(job.key_indexes, signatures, strict=True):
                key = keys[index]
                sigs.append(
                    _wire.new_rrsig(
                        rdtype, key.algorithm, labels, rrset.ttl, expiration,
                        now - policy.inception_offset, key.key_tag, origin, signature,
                    )
                )
            made += len(signatures)
            refresh_due = min(refresh_due, expiration - policy.refresh)
            out[(rrset.name, RdataType.RRSIG, rdtype)] = _rrsig_rrset(rrset, sigs)

        signed = ZoneData(origin)
        signed.rrsets = out
        return signed, refresh_due, made, reused

    def _run_jobs(
        self, origin: dns.name.Name, jobs: list[_Job], now: int
    ) -> Iterable[tuple[int, list[bytes]]]:
        global _WORK
        work = _Work(
            jobs=jobs,
            keys=self._keys,
            origin=origin,
            signer_wire=_wire.canonical_wire(origin),
            inception=now - self.policy.inception_offset,
            expiration_base=now + self.policy.signature_validity,
            jitter=self.policy.jitter,
        )
        signatures = sum(len(job.key_indexes) for job in jobs)
        parallel = (
            self.processes > 1
            and signatures >= PARALLEL_THRESHOLD
            and all(getattr(key, "parallel_safe", False) for key in self._keys)
            and "fork" in multiprocessing.get_all_start_methods()
        )
        if not parallel:
            yield from _sign_jobs(work, 0, len(jobs))
            return
        bounds = [(start, min(start + _CHUNK, len(jobs))) for start in range(0, len(jobs), _CHUNK)]
        _WORK = work
        # Freezing moves the zone's objects out of the collector's reach, so that collections in
        # the workers do not copy every page of the zone (copy-on-write after fork).
        gc.freeze()
        try:
            context = multiprocessing.get_context("fork")
            with context.Pool(self.processes) as pool:
                for chunk in pool.imap(_sign_chunk, bounds):
                    yield from chunk
        finally:
            _WORK = None
            gc.unfreeze()


# --------------------------------------------------------------------------------------
# Helpers


def _rrsig_rrset(rrset: RRset, sigs: list[_wire.RRSIG]) -> RRset:
    out = RRset(rrset.name, _IN, RdataType.RRSIG, RdataType(rrset.rdtype))
    out.update_ttl(rrset.ttl)
    for sig in sigs:
        out.add(sig)
    return out


def _key_wire(key: _wire.CanonicalKey) -> bytes:
    return b"".join(bytes((len(label),)) + label for label in reversed(key))


def _find_occluded(
    origin: dns.name.Name,
    types: dict[dns.name.Name, frozenset[RdataType]],
    name_keys: dict[dns.name.Name, _wire.CanonicalKey],
) -> tuple[set[_wire.CanonicalKey], set[dns.name.Name]]:
    """Return the keys of zone cuts and DNAME owners, and the names below them."""
    occluders = {
        name_keys[name]
        for name, name_types in types.items()
        if name != origin and (_NS in name_types or _DNAME in name_types)
    }
    if _DNAME in types.get(origin, frozenset()):
        occluders.add(name_keys[origin])
    occluded: set[dns.name.Name] = set()
    if not occluders:
        return occluders, occluded
    origin_length = len(origin.labels)
    for name, key in name_keys.items():
        for cut in range(origin_length, len(key)):
            if key[:cut] in occluders:
                occluded.add(name)
                break
    return occluders, occluded


def _nsec_types(
    name: dns.name.Name, origin: dns.name.Name, name_types: frozenset[RdataType]
) -> frozenset[int]:
    if name != origin and _NS in name_types:
        # At a delegation only NS and DS belong to this zone (RFC 4035, section 2.3).
        kept = {_NS, RdataType.NSEC, RdataType.RRSIG}
        if _DS in name_types:
            kept.add(_DS)
        return frozenset(kept)
    return frozenset(name_types | {RdataType.NSEC, RdataType.RRSIG})


def _nsec3_types(
    name: dns.name.Name, origin: dns.name.Name, name_types: frozenset[RdataType]
) -> frozenset[int]:
    if name != origin and _NS in name_types:
        if _DS in name_types:
            return frozenset({_NS, _DS, RdataType.RRSIG})
        return frozenset({_NS})
    extra = {RdataType.RRSIG}
    if name == origin:
        extra.add(RdataType.NSEC3PARAM)
    return frozenset(name_types | extra)


def _nsec_rrset(
    name: dns.name.Name,
    following: dns.name.Name,
    bitmap_types: frozenset[int],
    bitmaps: _wire.BitmapCache,
    ttl: int,
) -> RRset:
    rrset = RRset(name, _IN, RdataType.NSEC)
    rrset.add(_wire.NSEC(_IN, RdataType.NSEC, following, bitmaps.get(bitmap_types)), ttl)
    return rrset


def _nsec_chain(
    origin: dns.name.Name,
    chain: list[_wire.CanonicalKey],
    names: dict[_wire.CanonicalKey, dns.name.Name],
    types: dict[dns.name.Name, frozenset[RdataType]],
    ttl: int,
) -> dict[RRsetKey, RRset]:
    out: dict[RRsetKey, RRset] = {}
    bitmaps = _wire.BitmapCache(RdataType.NSEC)
    count = len(chain)
    for position, key in enumerate(chain):
        name = names[key]
        following = names[chain[(position + 1) % count]]
        bitmap_types = _nsec_types(name, origin, types[name])
        out[(name, RdataType.NSEC, NONE)] = _nsec_rrset(name, following, bitmap_types, bitmaps, ttl)
    return out


def sign_zone(
    zone: ZoneData,
    keys: Sequence[KeyAssignment],
    policy: DnssecPolicy,
    now: dt.datetime,
    previous: ZoneData | None = None,
) -> ZoneData:
    """Sign ``zone`` and return the signed ZoneData; see ZoneSigner.sign."""
    return ZoneSigner(keys, policy).sign(zone, now, previous).zone


__all__ = [
    "KeyAssignment",
    "KeyRole",
    "SignedZone",
    "ZoneSigner",
    "sign_zone",
]
