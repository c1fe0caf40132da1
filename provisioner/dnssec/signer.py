"""Zone signing: DNSKEY, RRSIG, NSEC or NSEC3, with reuse of still-valid signatures.

Public API:
    KeyRole, KeyAssignment        a key and what the rollover engine allows it to do
    ZoneSigner(keys, policy, threads=None)
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
cryptography directly, which releases the GIL while it signs. When a pass has more than one slice
of RRsets (2,000) and every key is ``parallel_safe``, each slice is prepared in this thread, then
its signatures are made by several threads at once, then stored. Threads need no copy of the keys
or the zone, so parallel signing costs no memory; worker processes cost about 60 MiB at 100,000
RRsets and were no faster.

Memory: the RRSIG, NSEC and NSEC3 RRsets of one RR that the signer makes are _wire.SignerRRset
subclasses, which keep the RR in compact form and build its rdata on each read. They behave as
dnspython RRsets and create the usual dictionary of RRs when code uses ``items``, which every
change does.

Incremental update: ``update`` compares the new unsigned zone with the one ``previous`` was made
from (by object identity first, so a zone built with ZoneData.copy() and a few replace() calls
costs almost nothing), then re-signs only the changed RRsets and, with NSEC, the NSEC records of
the names around added or removed owner names. It falls back to a full pass with reuse when a
change touches the zone's structure (NS, DS or DNAME away from the apex, the SOA negative TTL,
the DNSKEY, CDS or CDNSKEY RRsets), adds or removes an RRset in an NSEC3 zone (the chain and
its bitmaps are then rebuilt), or when some signature reached its refresh window.

The signer does not read ``policy.key_layout`` or the key lifetimes: which keys exist and what
each does comes from the KeyAssignment list that the rollover engine builds.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import gc
import logging
import os
from collections.abc import Iterator, Sequence
from enum import StrEnum

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.NSEC3PARAM
import dns.rrset
from dns.rdtypes.util import Bitmap

from provisioner.clock import epoch
from provisioner.dnssec import _wire
from provisioner.dnssec._wire import CanonicalKey
from provisioner.dnssec.keys import SigningKey, cdnskey_rrset, cds_rrset
from provisioner.dnssec.policy import DnssecPolicy
from provisioner.errors import DnssecError
from provisioner.zone.model import NONE, RRsetKey, ZoneData

log = logging.getLogger(__name__)

RdataType = dns.rdatatype.RdataType
RRset = dns.rrset.RRset

_IN = dns.rdataclass.IN
_SIGNER_TYPES = frozenset({RdataType.RRSIG, RdataType.NSEC, RdataType.NSEC3, RdataType.NSEC3PARAM})
_KEYSET_TYPES = frozenset({RdataType.DNSKEY, RdataType.CDS, RdataType.CDNSKEY})
_NS = RdataType.NS
_DS = RdataType.DS
_DNAME = RdataType.DNAME

# RRsets per slice given to a signing thread. A pass with a single slice uses no threads.
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
    the signatures of this pass (an incremental pass counts only what it looked at).
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
    names: dict[CanonicalKey, dns.name.Name]
    types: dict[CanonicalKey, frozenset[RdataType]]
    occluders: frozenset[CanonicalKey]
    # Sorted canonical keys of the NSEC owners, or of the names an NSEC3 chain is built from.
    chain: list[CanonicalKey]
    negative_ttl: int
    fingerprint: tuple[object, ...]


@dataclasses.dataclass
class _Layout:
    """Owner names of one pass, keyed by canonical key, and which are glue or delegations."""

    names: dict[CanonicalKey, dns.name.Name]
    types: dict[CanonicalKey, frozenset[RdataType]]
    cuts: set[CanonicalKey]
    occluders: set[CanonicalKey]
    occluded: set[CanonicalKey]


class ZoneSigner:
    """Signs zones with a fixed set of keys and a policy; see the module docstring."""

    def __init__(
        self,
        keys: Sequence[KeyAssignment],
        policy: DnssecPolicy,
        threads: int | None = None,
    ) -> None:
        self.assignments = list(keys)
        self.policy = policy
        self.threads = threads if threads is not None else _default_threads()
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
                (
                    a.key.algorithm,
                    a.key.key_tag,
                    a.key.flags,
                    a.role,
                    a.published,
                    a.active,
                    a.in_cds,
                )
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
        with _collector_paused():
            return self._sign_full(zone, now, previous)

    def _sign_full(
        self, zone: ZoneData, now: dt.datetime, previous: SignedZone | ZoneData | None
    ) -> SignedZone:
        now_epoch = epoch(now)
        origin = _wire.hashed_name(zone.origin)
        # dict() copies keep the stored hashes; building new dicts would hash every Name again.
        unsigned = dict(zone.rrsets)
        for key in [key for key in unsigned if key[1] in _SIGNER_TYPES]:
            del unsigned[key]
        known = previous._state.names if isinstance(previous, SignedZone) else {}
        rrsets, layout = _layout(origin, unsigned, known)
        self._add_keyset(origin, rrsets, layout)
        negative_ttl = _negative_ttl(origin, rrsets)
        state = _State(
            unsigned=unsigned,
            names=layout.names,
            types=layout.types,
            occluders=frozenset(layout.occluders),
            chain=[],
            negative_ttl=negative_ttl,
            fingerprint=self._fingerprint,
        )
        denial = self._build_denial(origin, layout, negative_ttl, state)

        to_sign: list[tuple[dns.name.Name, RRset]] = []
        names = layout.names
        origin_length = len(origin.labels)
        for key, rrset in rrsets.items():
            name_key = _wire.canonical_key(key[0], origin_length)
            if name_key in layout.occluded:
                continue
            if name_key in layout.cuts and key[1] != _DS:
                continue
            to_sign.append((names[name_key], rrset))
        to_sign.extend((rrset.name, rrset) for rrset in denial.values())
        rrsets.update(denial)

        prev_zone = previous.zone if isinstance(previous, SignedZone) else previous
        signed = ZoneData(origin)
        signed.rrsets = rrsets
        refresh_due, made, reused = self._sign_rrsets(origin, to_sign, rrsets, prev_zone, now_epoch)
        log.debug("signed %s: %d signatures made, %d reused", origin, made, reused)
        return SignedZone(signed, refresh_due, made, reused, state)

    def _add_keyset(
        self, origin: dns.name.Name, rrsets: dict[RRsetKey, RRset], layout: _Layout
    ) -> None:
        """Add the DNSKEY RRset, and CDS/CDNSKEY when the policy requests them."""
        dnskey_key = (origin, RdataType.DNSKEY, NONE)
        dnskeys = RRset(origin, _IN, RdataType.DNSKEY)
        existing = rrsets.get(dnskey_key)
        if existing is not None:
            dnskeys.update(existing)
        for assignment in self.assignments:
            if assignment.published:
                dnskeys.add(assignment.key.dnskey)
        dnskeys.ttl = self.policy.dnskey_ttl
        rrsets[dnskey_key] = dnskeys

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
        origin_key: CanonicalKey = ()
        layout.types[origin_key] = frozenset(
            layout.types.get(origin_key, frozenset())
            | {key[1] for key in (dnskey_key, cds_key, cdnskey_key) if key in rrsets}
        )

    # ----------------------------------------------------------------------------------
    # Denial of existence

    def _chain_sources(self, origin: dns.name.Name, layout: _Layout) -> list[CanonicalKey]:
        opt_out = self.policy.denial == "nsec3" and self.policy.nsec3.opt_out
        sources = []
        for name_key, name_types in layout.types.items():
            if name_key in layout.occluded:
                continue
            if opt_out and name_key in layout.cuts and _DS not in name_types:
                continue
            sources.append(name_key)
        sources.sort()
        return sources

    def _build_denial(
        self, origin: dns.name.Name, layout: _Layout, negative_ttl: int, state: _State
    ) -> dict[RRsetKey, RRset]:
        state.chain = self._chain_sources(origin, layout)
        if self.policy.denial == "nsec3":
            return self._nsec3_chain(origin, layout, negative_ttl, state.chain)
        out: dict[RRsetKey, RRset] = {}
        bitmaps = _wire.BitmapCache(RdataType.NSEC)
        chain = state.chain
        count = len(chain)
        for position, name_key in enumerate(chain):
            rrset = _nsec_rrset(
                layout.names,
                layout.types,
                layout.cuts,
                name_key,
                chain[(position + 1) % count],
                bitmaps,
                negative_ttl,
            )
            out[(rrset.name, RdataType.NSEC, NONE)] = rrset
        return out

    def _nsec3_chain(
        self,
        origin: dns.name.Name,
        layout: _Layout,
        negative_ttl: int,
        chain: list[CanonicalKey],
    ) -> dict[RRsetKey, RRset]:
        params = self.policy.nsec3
        salt = params.salt_bytes
        origin_wire = _wire.canonical_wire(origin)
        sources = set(chain)
        ents: dict[CanonicalKey, None] = {}
        for key in chain:
            for cut in range(len(key) - 1, 0, -1):
                parent = key[:cut]
                if parent in sources or parent in ents:
                    break
                ents[parent] = None

        hashed: dict[bytes, CanonicalKey] = {}
        for key in [*chain, *ents]:
            digest = _wire.nsec3_hash(_key_wire(key, origin_wire), salt, params.iterations)
            if digest in hashed:
                raise DnssecError(
                    f"NSEC3 hash collision in zone {origin}",
                    hint="set another NSEC3 salt in the zone's dnssec policy",
                )
            hashed[digest] = key
        hashes = sorted(hashed)

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
        flags = 1 if params.opt_out else 0
        shared_fields: dict[frozenset[int], tuple[int, int, bytes, Bitmap, bytes]] = {}
        count = len(hashes)
        origin_labels = origin.labels
        for position, digest in enumerate(hashes):
            name_key = hashed[digest]
            if name_key in sources:
                bitmap_types = _nsec3_types(
                    name_key == (),
                    name_key in layout.cuts,
                    layout.types[name_key],
                )
            else:
                bitmap_types = frozenset()
            fields = shared_fields.get(bitmap_types)
            if fields is None:
                fields = (flags, params.iterations, salt, *bitmaps.get(bitmap_types))
                shared_fields[bitmap_types] = fields
            owner = _wire.HashedName((_wire.nsec3_label(digest), *origin_labels))
            out[(owner, RdataType.NSEC3, NONE)] = _wire.new_nsec3_rrset(
                owner, negative_ttl, hashes[(position + 1) % count], fields
            )
        return out

    # ----------------------------------------------------------------------------------
    # Incremental update

    def update(self, previous: SignedZone, zone: ZoneData, now: dt.datetime) -> SignedZone:
        """Sign ``zone``, an edited copy of the zone ``previous`` was made from.

        The result equals what ``sign(zone, now, previous)`` returns, up to ECDSA randomness;
        see the module docstring for when this falls back to a full pass.
        """
        with _collector_paused():
            return self._update(previous, zone, now)

    def _update(self, previous: SignedZone, zone: ZoneData, now: dt.datetime) -> SignedZone:
        state = previous._state
        now_epoch = epoch(now)
        origin = previous.zone.origin
        if (
            state.fingerprint != self._fingerprint
            or now_epoch >= previous.refresh_due
            or zone.origin != origin
        ):
            return self._sign_full(zone, now, previous)
        changes = _changed_keys(state.unsigned, zone.rrsets)
        if not changes:
            return SignedZone(previous.zone, previous.refresh_due, 0, 0, state)
        plan = self._plan_update(origin, state, zone, changes)
        if plan is None:
            log.debug("update of %s needs a full pass", origin)
            return self._sign_full(zone, now, previous)

        unsigned = dict(state.unsigned)
        out = dict(previous.zone.rrsets)
        names = state.names
        # Copied only when a change adds or removes a type at some name.
        types = state.types
        chain = state.chain
        to_sign: list[tuple[dns.name.Name, RRset]] = []
        touched: set[CanonicalKey] = set()
        fresh: dict[CanonicalKey, dns.name.Name] = {}
        for key, name_key in plan:
            name = names.get(name_key) or fresh.setdefault(name_key, _wire.hashed_name(key[0]))
            rdtype = key[1]
            new = zone.rrsets.get(key)
            old_types = types.get(name_key, frozenset())
            if new is None:
                unsigned.pop(key, None)
                out.pop((name, rdtype, NONE), None)
                out.pop((name, RdataType.RRSIG, rdtype), None)
                new_types = old_types - {rdtype}
            else:
                unsigned[key] = new
                out[(name, rdtype, NONE)] = new
                to_sign.append((name, new))
                new_types = old_types | {rdtype}
            if new_types != old_types:
                if types is state.types:
                    types = dict(types)
                types[name_key] = new_types
                touched.add(name_key)

        if touched:
            names = dict(names)
            chain = list(chain)
            rebuild: set[CanonicalKey] = set()
            for name_key in sorted(touched):
                if not types[name_key]:
                    del types[name_key]
                    position = bisect.bisect_left(chain, name_key)
                    del chain[position]
                    name = names.pop(name_key)
                    out.pop((name, RdataType.NSEC, NONE), None)
                    out.pop((name, RdataType.RRSIG, RdataType.NSEC), None)
                    rebuild.add(chain[position - 1])
                    rebuild.discard(name_key)
                    continue
                if name_key not in names:
                    names[name_key] = fresh[name_key]
                    position = bisect.bisect_left(chain, name_key)
                    chain.insert(position, name_key)
                    rebuild.add(chain[position - 1])
                rebuild.add(name_key)
            bitmaps = _wire.BitmapCache(RdataType.NSEC)
            cuts: set[CanonicalKey] = set()
            count = len(chain)
            for name_key in rebuild:
                position = bisect.bisect_left(chain, name_key)
                rrset = _nsec_rrset(
                    names,
                    types,
                    cuts,
                    name_key,
                    chain[(position + 1) % count],
                    bitmaps,
                    state.negative_ttl,
                )
                out[(rrset.name, RdataType.NSEC, NONE)] = rrset
                to_sign.append((rrset.name, rrset))

        signed = ZoneData(origin)
        signed.rrsets = out
        refresh_due, made, reused = self._sign_rrsets(
            origin, to_sign, out, previous.zone, now_epoch
        )
        new_state = dataclasses.replace(
            state, unsigned=unsigned, names=names, types=types, chain=chain
        )
        return SignedZone(signed, min(refresh_due, previous.refresh_due), made, reused, new_state)

    def _plan_update(
        self,
        origin: dns.name.Name,
        state: _State,
        zone: ZoneData,
        changes: list[RRsetKey],
    ) -> list[tuple[RRsetKey, CanonicalKey]] | None:
        """Return the changes with their names' canonical keys, or None if a full pass is due."""
        plan = []
        origin_length = len(origin.labels)
        types_change = False
        for key in changes:
            name, rdtype, _covers = key
            if rdtype in _KEYSET_TYPES or rdtype in _SIGNER_TYPES:
                return None
            if rdtype == RdataType.SOA:
                new_soa = zone.rrsets.get(key)
                if new_soa is None or min(new_soa.ttl, new_soa[0].minimum) != state.negative_ttl:
                    return None
            if name != origin and rdtype in (_NS, _DS, _DNAME):
                return None
            name_key = _wire.canonical_key(name, origin_length)
            for cut in range(len(name_key) + 1):
                if name_key[:cut] in state.occluders:
                    return None
            if key not in state.unsigned or zone.rrsets.get(key) is None:
                types_change = True
            plan.append((key, name_key))
        if types_change and self.policy.denial == "nsec3":
            # NOTE: a change of the types at a name (or of the names) in an NSEC3 zone is
            # handled by a full pass, which rebuilds the chain and its empty non-terminals.
            return None
        return plan

    # ----------------------------------------------------------------------------------
    # Signatures

    def _sign_rrsets(
        self,
        origin: dns.name.Name,
        to_sign: list[tuple[dns.name.Name, RRset]],
        out: dict[RRsetKey, RRset],
        previous: ZoneData | None,
        now: int,
    ) -> tuple[int, int, int]:
        """Store RRSIGs over ``to_sign`` in ``out``; return (refresh_due, made, reused)."""
        signing = _SigningPass(self, origin, out, previous, now)
        parallel = self._parallel() and len(to_sign) > _CHUNK
        executor = concurrent.futures.ThreadPoolExecutor(self.threads - 1) if parallel else None
        with executor or contextlib.nullcontext():
            for start in range(0, len(to_sign), _CHUNK):
                # Python work on a slice, then its signatures made in several threads at once
                # (cryptography releases the GIL while it signs), then Python work again.
                # Threads that interleave Python work wait for the GIL more than they sign.
                pending, inputs = signing.prepare(to_sign[start : start + _CHUNK])
                signing.store(pending, _sign_all(inputs, executor, self.threads))
        return signing.refresh_due, signing.made, signing.reused

    def _parallel(self) -> bool:
        return self.threads > 1 and all(getattr(key, "parallel_safe", False) for key in self._keys)


# One RRset whose signatures are being made: its RRSIG key, owner, RRset, the signatures kept
# from the previous zone, and the packed header of each new signature.
_Pending = tuple[RRsetKey, dns.name.Name, RRset, list[_wire.RRSIG], list[bytes]]


class _SigningPass:
    """The signatures of one pass: which to keep, what to sign, and storing the results."""

    def __init__(
        self,
        signer: ZoneSigner,
        origin: dns.name.Name,
        out: dict[RRsetKey, RRset],
        previous: ZoneData | None,
        now: int,
    ) -> None:
        policy = signer.policy
        self.signer = signer
        self.policy = policy
        self.origin = origin
        self.out = out
        self.keys = signer._keys
        self.tags = {(key.algorithm, key.key_tag): i for i, key in enumerate(self.keys)}
        self.previous = previous.rrsets if previous is not None else {}
        self.now = now
        self.inception = now - policy.inception_offset
        self.expiration_base = now + policy.signature_validity
        self.signer_wire = _wire.canonical_wire(origin)
        # One int object per distinct field value across the RRSIGs of this pass.
        self.shared: dict[int, int] = {}
        self.refresh_due = 2**32
        self.made = 0
        self.reused = 0

    def kept_signatures(self, owner: dns.name.Name, rrset: RRset, wanted: list[int]) -> list:
        """Return the previous zone's RRSIGs over ``rrset`` that are still good to publish."""
        previous = self.previous
        old_sigs = previous.get((owner, RdataType.RRSIG, RdataType(rrset.rdtype)))
        if old_sigs is None:
            return []
        old = previous.get((owner, RdataType(rrset.rdtype), NONE))
        if old is None or old.ttl != rrset.ttl or not (old is rrset or old == rrset):
            return []
        labels = _wire.rrsig_labels(owner)
        now = self.now
        found: set[int] = set()
        kept = []
        for sig in old_sigs:
            index = self.tags.get((sig.algorithm, sig.key_tag))
            if (
                index in wanted
                and index not in found
                and sig.original_ttl == rrset.ttl
                and sig.labels == labels
                and sig.signer == self.origin
                and sig.inception <= now
                and sig.expiration - now > self.policy.refresh
            ):
                found.add(index)
                kept.append(sig)
        return kept

    def prepare(
        self, rrsets: list[tuple[dns.name.Name, RRset]]
    ) -> tuple[list[_Pending], list[tuple[SigningKey, bytes]]]:
        """Store the RRSIGs of RRsets that need no new signature; return the work for the rest.

        The work is the pending RRsets and, in the same order, (key, signing input) pairs.
        """
        policy = self.policy
        keys = self.keys
        pending: list[_Pending] = []
        inputs: list[tuple[SigningKey, bytes]] = []
        for owner, rrset in rrsets:
            rdtype = RdataType(rrset.rdtype)
            wanted = (
                self.signer._keyset_signers
                if rdtype in _KEYSET_TYPES
                else self.signer._data_signers
            )
            kept = self.kept_signatures(owner, rrset, wanted) if self.previous else []
            for sig in kept:
                self.refresh_due = min(self.refresh_due, sig.expiration - policy.refresh)
            self.reused += len(kept)
            present = {(sig.algorithm, sig.key_tag) for sig in kept}
            missing = [
                keys[i] for i in wanted if (keys[i].algorithm, keys[i].key_tag) not in present
            ]
            rrsig_key = (owner, RdataType.RRSIG, rdtype)
            if not missing:
                self.out[rrsig_key] = _rrsig_rrset(owner, rrset, kept)
                continue
            owner_wire = _wire.canonical_wire(owner)
            expiration = _wire.jittered_expiration(
                owner_wire, rdtype, self.expiration_base, policy.jitter
            )
            self.refresh_due = min(self.refresh_due, expiration - policy.refresh)
            self.made += len(missing)
            labels = _wire.rrsig_labels(owner)
            rrs = _wire.rrset_wire(
                owner_wire,
                rdtype,
                rrset.ttl,
                sorted({rdata.to_digestable(self.origin) for rdata in rrset}),
            )
            headers = []
            for key in missing:
                header = _wire.rrsig_header(
                    rdtype,
                    key.algorithm,
                    labels,
                    rrset.ttl,
                    expiration,
                    self.inception,
                    key.key_tag,
                )
                headers.append(header)
                inputs.append((key, header + self.signer_wire + rrs))
            pending.append((rrsig_key, owner, rrset, kept, headers))
        return pending, inputs

    def store(self, pending: list[_Pending], signatures: list[bytes]) -> None:
        """Store the RRSIG RRset of each pending RRset, taking its new signatures in order."""
        made = iter(signatures)
        for rrsig_key, owner, rrset, kept, headers in pending:
            if not kept and len(headers) == 1:
                # The common case (one new signature) skips building an RRSIG rdata.
                self.out[rrsig_key] = _wire.new_rrsig_rrset(
                    owner, rrsig_key[2], rrset.ttl, headers[0], self.origin, next(made)
                )
                continue
            sigs = list(kept)
            for header in headers:
                sigs.append(_wire.new_rrsig(header, self.origin, next(made), self.shared))
            self.out[rrsig_key] = _rrsig_rrset(owner, rrset, sigs)


# --------------------------------------------------------------------------------------
# Helpers


def _sign_all(
    inputs: list[tuple[SigningKey, bytes]],
    executor: concurrent.futures.ThreadPoolExecutor | None,
    threads: int,
) -> list[bytes]:
    """Sign each (key, data) pair; share the work between this thread and ``executor``'s."""
    if executor is None or len(inputs) < 2:
        return [key.sign(data) for key, data in inputs]
    size = -(-len(inputs) // threads)
    parts = [inputs[start : start + size] for start in range(0, len(inputs), size)]
    futures = [executor.submit(_sign_part, part) for part in parts[1:]]
    signatures = _sign_part(parts[0])
    for future in futures:
        signatures.extend(future.result())
    return signatures


def _sign_part(inputs: list[tuple[SigningKey, bytes]]) -> list[bytes]:
    return [key.sign(data) for key, data in inputs]


def _default_threads() -> int:
    """Return the usable CPUs, at most 4.

    Only the signature itself runs outside the GIL, a little over half of the time per RRset
    in this project's benchmark zones, so more threads than that only wait for each other.
    """
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    return max(1, min(usable, 4))


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a pass creates millions of objects.

    Otherwise each collection walks the whole zone, and a pass creates no reference cycles.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _negative_ttl(origin: dns.name.Name, rrsets: dict[RRsetKey, RRset]) -> int:
    soa = rrsets.get((origin, RdataType.SOA, NONE))
    if soa is None:
        raise DnssecError(f"zone {origin} has no SOA RRset", hint="add the SOA before signing")
    # RFC 9077: NSEC and NSEC3 TTL is the negative caching TTL, min(SOA TTL, SOA minimum).
    return min(soa.ttl, soa[0].minimum)


def _layout(
    origin: dns.name.Name,
    unsigned: dict[RRsetKey, RRset],
    known: dict[CanonicalKey, dns.name.Name],
) -> tuple[dict[RRsetKey, RRset], _Layout]:
    """Index the owner names of ``unsigned``; return its RRsets re-keyed by HashedName.

    ``known`` contains the HashedName objects of a previous pass: reusing them makes look-ups in
    the previous signed zone compare names by identity.
    """
    names: dict[CanonicalKey, dns.name.Name] = {}
    types: dict[CanonicalKey, frozenset[RdataType]] = {}
    # Most owner names carry the same few sets of types; sharing them saves memory.
    shared: dict[frozenset[RdataType], frozenset[RdataType]] = {}
    rrsets: dict[RRsetKey, RRset] = {}
    origin_length = len(origin.labels)
    for (name, rdtype, covers), rrset in unsigned.items():
        name_key = _wire.canonical_key(name, origin_length)
        name_types = types.get(name_key)
        if name_types is None:
            hashed = known.get(name_key)
            if hashed is None or hashed.labels != name.labels:
                hashed = _wire.hashed_name(name)
            names[name_key] = hashed
            name_types = frozenset((rdtype,))
        else:
            hashed = names[name_key]
            name_types = name_types | {rdtype}
        types[name_key] = shared.setdefault(name_types, name_types)
        rrsets[(hashed, rdtype, covers)] = rrset
    names[()] = origin
    cuts = {key for key, value in types.items() if key and _NS in value}
    occluders = cuts | {key for key, value in types.items() if _DNAME in value}
    occluded: set[CanonicalKey] = set()
    if occluders:
        for key in types:
            for cut in range(len(key)):
                if key[:cut] in occluders:
                    occluded.add(key)
                    break
    return rrsets, _Layout(names, types, cuts, occluders, occluded)


def _changed_keys(old: dict[RRsetKey, RRset], new: dict[RRsetKey, RRset]) -> list[RRsetKey]:
    """Return the keys whose RRset was added, removed or replaced between ``old`` and ``new``.

    When ``new`` keeps the order and key objects of ``old`` (ZoneData.copy() then replace()),
    this compares objects by identity in one pass and hashes nothing.
    """
    changed = []
    if len(old) == len(new):
        for (old_key, old_rrset), (new_key, new_rrset) in zip(
            old.items(), new.items(), strict=True
        ):
            if old_key is not new_key:
                break
            if old_rrset is not new_rrset:
                changed.append(new_key)
        else:
            return changed
    changed = []
    for key, rrset in new.items():
        if key[1] in _SIGNER_TYPES:
            continue
        before = old.get(key)
        if before is None or (before is not rrset and (before != rrset or before.ttl != rrset.ttl)):
            changed.append(key)
    changed.extend(key for key in old if key not in new)
    return changed


def _rrsig_rrset(owner: dns.name.Name, rrset: RRset, sigs: list[_wire.RRSIG]) -> RRset:
    covers = RdataType(rrset.rdtype)
    if len(sigs) == 1:
        sig = sigs[0]
        header = _wire.rrsig_header(
            sig.type_covered,
            sig.algorithm,
            sig.labels,
            sig.original_ttl,
            sig.expiration,
            sig.inception,
            sig.key_tag,
        )
        return _wire.new_rrsig_rrset(owner, covers, rrset.ttl, header, sig.signer, sig.signature)
    out = RRset(owner, _IN, RdataType.RRSIG, covers)
    out.ttl = rrset.ttl
    for sig in sigs:
        out.items[sig] = None
    return out


def _key_wire(key: CanonicalKey, origin_wire: bytes) -> bytes:
    return b"".join(bytes((len(label),)) + label for label in reversed(key)) + origin_wire


def _nsec_types(is_cut: bool, name_types: frozenset[RdataType]) -> frozenset[int]:
    if is_cut:
        # At a delegation only NS and DS belong to this zone (RFC 4035, section 2.3).
        kept = {_NS, RdataType.NSEC, RdataType.RRSIG}
        if _DS in name_types:
            kept.add(_DS)
        return frozenset(kept)
    return frozenset(name_types | {RdataType.NSEC, RdataType.RRSIG})


def _nsec3_types(is_apex: bool, is_cut: bool, name_types: frozenset[RdataType]) -> frozenset[int]:
    if is_cut:
        if _DS in name_types:
            return frozenset({_NS, _DS, RdataType.RRSIG})
        return frozenset({_NS})
    extra = {RdataType.RRSIG}
    if is_apex:
        extra.add(RdataType.NSEC3PARAM)
    return frozenset(name_types | extra)


def _nsec_rrset(
    names: dict[CanonicalKey, dns.name.Name],
    types: dict[CanonicalKey, frozenset[RdataType]],
    cuts: set[CanonicalKey],
    name_key: CanonicalKey,
    following_key: CanonicalKey,
    bitmaps: _wire.BitmapCache,
    ttl: int,
) -> RRset:
    name = names[name_key]
    bitmap = bitmaps.get(_nsec_types(name_key in cuts, types[name_key]))
    return _wire.new_nsec_rrset(name, ttl, names[following_key], bitmap)


def sign_zone(
    zone: ZoneData,
    keys: Sequence[KeyAssignment],
    policy: DnssecPolicy,
    now: dt.datetime,
    previous: ZoneData | None = None,
) -> ZoneData:
    """Sign ``zone`` and return the signed ZoneData; see ZoneSigner.sign."""
    return ZoneSigner(keys, policy).sign(zone, now, previous).zone
