"""A DNSSEC validator that builds the chain of trust itself from a trust anchor.

For each zone between the anchor and a name, it fetches the DS RRset from the parent and the
DNSKEY RRset from the zone, and checks that a DS matches a key that signs the DNSKEY RRset.
Then it verifies the RRSIGs of the answer, or of the NSEC/NSEC3 denial, with the zone's keys.
Signatures are checked with dnspython's ``dns.dnssec.validate_rrsig``, independent of the
project's signer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging

import dns.dnssec
import dns.exception
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from provisioner.check.denial import Proof, prove_nsec, prove_nsec3, prove_wildcard_expansion
from provisioner.check.resolver import Answer, Source
from provisioner.check.targets import TrustAnchor
from provisioner.clock import Clock, epoch
from provisioner.errors import CheckError

log = logging.getLogger(__name__)

MAX_CNAME_CHAIN = 8
SEP_FLAG = 0x0001


class Security(enum.StrEnum):
    SECURE = "secure"
    INSECURE = "insecure"
    BOGUS = "bogus"


@dataclasses.dataclass
class Signature:
    """An RRSIG seen while validating, kept for the expiry horizon check."""

    owner: dns.name.Name
    covered: dns.rdatatype.RdataType
    zone: dns.name.Name
    key_tag: int
    inception: dt.datetime
    expiration: dt.datetime
    valid: bool

    @property
    def subject(self) -> str:
        return f"{self.owner} {dns.rdatatype.to_text(self.covered)}"


@dataclasses.dataclass
class Result:
    """The validated answer to one question.

    ``rrset`` is the answer RRset, or None when the name or type does not exist, and
    ``nxdomain`` tells which of the two. ``reason`` explains the security status.
    """

    qname: dns.name.Name
    rdtype: dns.rdatatype.RdataType
    security: Security
    reason: str
    zone: dns.name.Name | None = None
    rrset: dns.rrset.RRset | None = None
    nxdomain: bool = False
    cnames: list[dns.name.Name] = dataclasses.field(default_factory=list)

    @property
    def subject(self) -> str:
        return f"{self.qname} {dns.rdatatype.to_text(self.rdtype)}"

    @property
    def exists(self) -> bool:
        return self.rrset is not None


@dataclasses.dataclass
class ZoneKeys:
    """The trust state of a zone's DNSKEY RRset."""

    zone: dns.name.Name
    security: Security
    reason: str
    dnskey: dns.rrset.RRset | None = None


def describe_time(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _rrsig_time(value: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(value, dt.UTC)


class Validator:
    """Validate answers from ``source`` against ``anchor`` at the time ``clock`` gives."""

    def __init__(self, source: Source, anchor: TrustAnchor, clock: Clock) -> None:
        self.source = source
        self.anchor = anchor
        self.clock = clock
        self.signatures: list[Signature] = []
        self._keys: dict[dns.name.Name, ZoneKeys] = {}
        self._zones: dict[dns.name.Name, dns.name.Name] = {}

    # -- signatures ---------------------------------------------------------------------

    def verify_rrset(
        self,
        rrset: dns.rrset.RRset,
        rrsigs: dns.rrset.RRset | None,
        zone: dns.name.Name,
        dnskey: dns.rrset.RRset,
        *,
        only_key: object | None = None,
    ) -> str | None:
        """Return None when an RRSIG by ``zone``'s keys verifies ``rrset``, else the reason."""
        subject = f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)}"
        if rrsigs is None or len(rrsigs) == 0:
            return f"no RRSIG over {subject}"

        now = self.clock.now()
        problems: list[str] = []
        keys = dnskey
        if only_key is not None:
            keys = dns.rrset.from_rdata_list(dnskey.name, dnskey.ttl, [only_key])  # type: ignore[list-item]
        for rrsig in rrsigs:
            if rrsig.signer != zone:
                problems.append(f"RRSIG by {rrsig.signer} is not from the zone {zone}")
                continue

            inception = _rrsig_time(rrsig.inception)
            expiration = _rrsig_time(rrsig.expiration)
            signature = Signature(
                rrset.name, rrset.rdtype, zone, rrsig.key_tag, inception, expiration, False
            )
            if only_key is None:
                self.signatures.append(signature)
            if now > expiration:
                problems.append(
                    f"RRSIG over {subject} (key tag {rrsig.key_tag}) expired at "
                    f"{describe_time(expiration)}"
                )
                continue

            if now < inception:
                problems.append(
                    f"RRSIG over {subject} (key tag {rrsig.key_tag}) is not valid before "
                    f"{describe_time(inception)}"
                )
                continue

            try:
                dns.dnssec.validate_rrsig(rrset, rrsig, {zone: keys}, now=float(epoch(now)))
            except dns.dnssec.ValidationFailure as error:
                problems.append(
                    f"RRSIG over {subject} (key tag {rrsig.key_tag}) does not verify: {error}"
                )
                continue
            except dns.dnssec.UnsupportedAlgorithm as error:
                problems.append(f"RRSIG over {subject} uses an unsupported algorithm: {error}")
                continue

            signature.valid = True
            return None

        return "; ".join(problems)

    # -- the chain of trust ---------------------------------------------------------------

    def zone_of(self, name: dns.name.Name) -> dns.name.Name:
        """Return the zone that contains ``name``, from the SOA in an answer to ``name`` SOA."""
        if name in self._zones:
            return self._zones[name]

        answer = self.source.ask(name, dns.rdatatype.SOA)
        zone: dns.name.Name | None = None
        if answer.find("answer", name, dns.rdatatype.SOA) is not None:
            zone = name
        else:
            soas = answer.of_type("authority", dns.rdatatype.SOA)
            if soas:
                zone = soas[0].name
        if zone is None:
            cnames = answer.of_type("answer", dns.rdatatype.CNAME)
            if cnames:
                # The name is an alias; its own zone is the closest SOA above it.
                zone = self.zone_of(name.parent())
        if zone is None:
            raise CheckError(
                f"cannot find the zone of {name}: the answer to {name} SOA from "
                f"{answer.server} has no SOA record",
                hint="check that the name servers serve the zone",
            )
        self._zones[name] = zone
        return zone

    def keys(self, zone: dns.name.Name) -> ZoneKeys:
        """Return the trust state of ``zone``'s DNSKEY RRset, building the chain above it."""
        cached = self._keys.get(zone)
        if cached is not None:
            return cached

        result = self._keys_uncached(zone)
        log.debug("keys of %s: %s (%s)", zone, result.security, result.reason)
        self._keys[zone] = result
        return result

    def _keys_uncached(self, zone: dns.name.Name) -> ZoneKeys:
        anchor = self.anchor
        if not zone.is_subdomain(anchor.zone):
            return ZoneKeys(
                zone, Security.INSECURE, f"no trust anchor covers {zone} (anchor: {anchor.zone})"
            )
        if zone == anchor.zone:
            return self._match_anchor(zone)

        parent = self.zone_of(zone.parent())
        parent_keys = self.keys(parent)
        if parent_keys.security != Security.SECURE:
            return ZoneKeys(zone, parent_keys.security, parent_keys.reason)

        assert parent_keys.dnskey is not None
        answer = self.source.ask(zone, dns.rdatatype.DS)
        ds = answer.find("answer", zone, dns.rdatatype.DS)
        if ds is None:
            proof = self._prove_absent(answer, zone, dns.rdatatype.DS, parent, parent_keys)
            if proof.proven or proof.insecure:
                return ZoneKeys(
                    zone,
                    Security.INSECURE,
                    f"{parent} proves that {zone} has no DS RRset ({proof.reason}): "
                    "the delegation is unsigned",
                )
            return ZoneKeys(
                zone,
                Security.BOGUS,
                f"{parent} serves no DS RRset for {zone} and no valid proof that none exists: "
                f"{proof.reason}",
            )
        rrsigs = answer.find("answer", zone, dns.rdatatype.RRSIG, dns.rdatatype.DS)
        problem = self.verify_rrset(ds, rrsigs, parent, parent_keys.dnskey)
        if problem:
            return ZoneKeys(zone, Security.BOGUS, f"the DS RRset of {zone} is bogus: {problem}")

        return self._match_ds(zone, ds, f"the DS RRset at {parent}")

    def _fetch_dnskey(
        self, zone: dns.name.Name
    ) -> tuple[dns.rrset.RRset | None, dns.rrset.RRset | None, Answer]:
        answer = self.source.ask(zone, dns.rdatatype.DNSKEY)
        dnskey = answer.find("answer", zone, dns.rdatatype.DNSKEY)
        rrsigs = answer.find("answer", zone, dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY)
        return dnskey, rrsigs, answer

    def _match_anchor(self, zone: dns.name.Name) -> ZoneKeys:
        if self.anchor.ds is not None:
            return self._match_ds(zone, self.anchor.ds, "the trust anchor")

        assert self.anchor.dnskey is not None
        dnskey, rrsigs, answer = self._fetch_dnskey(zone)
        if dnskey is None:
            return ZoneKeys(
                zone, Security.BOGUS, f"{answer.server} serves no DNSKEY RRset for {zone}"
            )
        problems: list[str] = []
        for key in self.anchor.dnskey:
            if key not in dnskey:
                problems.append(f"anchor key {dns.dnssec.key_id(key)} is not in the DNSKEY RRset")
                continue

            problem = self.verify_rrset(dnskey, rrsigs, zone, dnskey, only_key=key)
            if problem is None:
                self.verify_rrset(dnskey, rrsigs, zone, dnskey)
                return ZoneKeys(zone, Security.SECURE, "signed by the trust anchor key", dnskey)

            problems.append(problem)
        return ZoneKeys(
            zone,
            Security.BOGUS,
            f"no trust anchor key signs the DNSKEY RRset of {zone}: " + "; ".join(problems),
        )

    def _match_ds(self, zone: dns.name.Name, ds: dns.rrset.RRset, origin: str) -> ZoneKeys:
        """Check that a DS in ``ds`` matches a key that signs ``zone``'s DNSKEY RRset."""
        dnskey, rrsigs, answer = self._fetch_dnskey(zone)
        if dnskey is None:
            return ZoneKeys(
                zone,
                Security.BOGUS,
                f"{answer.server} serves no DNSKEY RRset for {zone}, but {origin} has DS records",
            )
        supported = [d for d in ds if d.digest_type in (1, 2, 4)]
        if not supported:
            return ZoneKeys(
                zone, Security.INSECURE, f"no DS of {zone} uses a supported digest type"
            )
        problems: list[str] = []
        key_tags = sorted({dns.dnssec.key_id(key) for key in dnskey})
        sep_tags = sorted({dns.dnssec.key_id(key) for key in dnskey if key.flags & SEP_FLAG})
        for record in supported:
            for key in dnskey:
                if dns.dnssec.key_id(key) != record.key_tag or key.algorithm != record.algorithm:
                    continue

                try:
                    candidate = dns.dnssec.make_ds(zone, key, record.digest_type)
                except (dns.dnssec.UnsupportedAlgorithm, ValueError):
                    continue

                if candidate.digest != record.digest:
                    continue

                problem = self.verify_rrset(dnskey, rrsigs, zone, dnskey, only_key=key)
                if problem is None:
                    # Record the DNSKEY RRSIGs for the horizon check.
                    self.verify_rrset(dnskey, rrsigs, zone, dnskey)
                    note = "" if key.flags & SEP_FLAG else " (the key lacks the SEP flag)"
                    return ZoneKeys(
                        zone,
                        Security.SECURE,
                        f"DS {record.key_tag} matches a key that signs the DNSKEY RRset{note}",
                        dnskey,
                    )
                problems.append(
                    f"DS {record.key_tag} matches a DNSKEY, but that key does not sign the "
                    f"DNSKEY RRset: {problem}"
                )
        ds_tags = sorted({d.key_tag for d in supported})
        if not problems:
            problems.append(
                f"no DS ({', '.join(map(str, ds_tags))}) matches a DNSKEY of {zone} "
                f"(keys {', '.join(map(str, key_tags))}; SEP keys "
                f"{', '.join(map(str, sep_tags)) or 'none'})"
            )
        return ZoneKeys(
            zone,
            Security.BOGUS,
            f"{origin} does not lead to a KSK of {zone}: " + "; ".join(problems),
        )

    # -- answers --------------------------------------------------------------------------

    def _prove_absent(
        self,
        answer: Answer,
        qname: dns.name.Name,
        rdtype: dns.rdatatype.RdataType,
        zone: dns.name.Name,
        keys: ZoneKeys,
    ) -> Proof:
        """Verify the NSEC/NSEC3 RRsets in ``answer``'s authority section, then the proof."""
        nxdomain = answer.rcode == dns.rcode.NXDOMAIN
        nsecs, nsec3s, problems = self._verified_denials(answer, zone, keys)
        if nsec3s:
            return prove_nsec3(qname, rdtype, zone, nsec3s, nxdomain)

        if nsecs:
            return prove_nsec(qname, rdtype, nsecs, nxdomain)

        if problems:
            return Proof(False, "; ".join(problems))

        return Proof(False, "the response contains no NSEC or NSEC3 record")

    def _verified_denials(
        self, answer: Answer, zone: dns.name.Name, keys: ZoneKeys
    ) -> tuple[list[dns.rrset.RRset], list[dns.rrset.RRset], list[str]]:
        """Return the NSEC and NSEC3 RRsets of the authority section whose RRSIGs verify."""
        assert keys.dnskey is not None
        verified: dict[int, list[dns.rrset.RRset]] = {
            dns.rdatatype.NSEC: [],
            dns.rdatatype.NSEC3: [],
        }
        problems: list[str] = []
        for rdtype_denial in (dns.rdatatype.NSEC, dns.rdatatype.NSEC3):
            for rrset in answer.of_type("authority", rdtype_denial):
                rrsigs = answer.find("authority", rrset.name, dns.rdatatype.RRSIG, rdtype_denial)
                problem = self.verify_rrset(rrset, rrsigs, zone, keys.dnskey)
                if problem:
                    problems.append(problem)
                else:
                    verified[rdtype_denial].append(rrset)
        return verified[dns.rdatatype.NSEC], verified[dns.rdatatype.NSEC3], problems

    def validate(self, qname: dns.name.Name | str, rdtype: dns.rdatatype.RdataType | str) -> Result:
        """Look up ``qname``/``rdtype`` and validate the answer or its denial of existence."""
        if isinstance(qname, str):
            qname = dns.name.from_text(qname)
        rdtype = dns.rdatatype.RdataType.make(rdtype)
        cnames: list[dns.name.Name] = []
        target = qname
        outcome: Result | None = None
        for _ in range(MAX_CNAME_CHAIN):
            outcome = self._validate_one(target, rdtype)
            if outcome.rrset is None or outcome.rrset.rdtype != dns.rdatatype.CNAME:
                break
            if outcome.security != Security.SECURE:
                break
            # RFC 7672 (section 2.2.2) allows aliases: the data at the target must validate too.
            cnames.append(target)
            target = outcome.rrset[0].target
        assert outcome is not None
        looped = outcome.rrset is not None and outcome.rrset.rdtype == dns.rdatatype.CNAME
        if looped and outcome.security == Security.SECURE:
            outcome.security = Security.BOGUS
            outcome.reason = f"more than {MAX_CNAME_CHAIN} CNAME records in a chain"
        outcome.qname = qname
        outcome.cnames = cnames
        return outcome

    def _validate_one(self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Result:
        answer = self.source.ask(qname, rdtype)
        type_name = dns.rdatatype.to_text(rdtype)
        subject = f"{qname} {type_name}"
        if answer.rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            return Result(
                qname,
                rdtype,
                Security.BOGUS,
                f"{answer.server} returned {dns.rcode.to_text(answer.rcode)} for {subject}",
            )
        rrset = answer.find("answer", qname, rdtype)
        if rrset is None and rdtype != dns.rdatatype.CNAME:
            rrset = answer.find("answer", qname, dns.rdatatype.CNAME)
        if rrset is not None:
            rrsigs = answer.find("answer", qname, dns.rdatatype.RRSIG, rrset.rdtype)
            signers = {rrsig.signer for rrsig in rrsigs} if rrsigs else set()
            zone = next(iter(signers)) if len(signers) == 1 else self.zone_of(qname)
            if not qname.is_subdomain(zone):
                return Result(
                    qname, rdtype, Security.BOGUS, f"RRSIG over {subject} names the signer {zone}"
                )
            keys = self.keys(zone)
            if keys.security != Security.SECURE:
                return Result(qname, rdtype, keys.security, keys.reason, zone, rrset)

            assert keys.dnskey is not None
            problem = self.verify_rrset(rrset, rrsigs, zone, keys.dnskey)
            if problem:
                return Result(qname, rdtype, Security.BOGUS, problem, zone, rrset)

            reason = f"{subject} is signed by {zone}"
            wildcard = self._wildcard_problem(answer, qname, rrsigs, zone, keys)
            if wildcard:
                return Result(qname, rdtype, Security.BOGUS, wildcard, zone, rrset)

            return Result(qname, rdtype, Security.SECURE, reason, zone, rrset)

        nxdomain = answer.rcode == dns.rcode.NXDOMAIN
        soas = answer.of_type("authority", dns.rdatatype.SOA)
        zone = soas[0].name if soas else self.zone_of(qname)
        keys = self.keys(zone)
        what = "the name does not exist" if nxdomain else "no such RRset"
        if keys.security != Security.SECURE:
            return Result(
                qname, rdtype, keys.security, f"{what}; {keys.reason}", zone, nxdomain=nxdomain
            )
        proof = self._prove_absent(answer, qname, rdtype, zone, keys)
        if proof.proven:
            return Result(qname, rdtype, Security.SECURE, proof.reason, zone, nxdomain=nxdomain)

        if proof.insecure:
            return Result(qname, rdtype, Security.INSECURE, proof.reason, zone, nxdomain=nxdomain)

        return Result(
            qname,
            rdtype,
            Security.BOGUS,
            f"{answer.server} denies {subject} ({'NXDOMAIN' if nxdomain else 'NODATA'}) "
            f"without a valid proof: {proof.reason}",
            zone,
            nxdomain=nxdomain,
        )

    def _wildcard_problem(
        self,
        answer: Answer,
        qname: dns.name.Name,
        rrsigs: dns.rrset.RRset | None,
        zone: dns.name.Name,
        keys: ZoneKeys,
    ) -> str | None:
        """For an answer synthesized from a wildcard, require proof that qname does not exist."""
        if rrsigs is None:
            return None

        owner_labels = len(qname) - 1 - (1 if qname.is_wild() else 0)
        signed_labels = min(rrsig.labels for rrsig in rrsigs)
        if signed_labels >= owner_labels:
            return None

        encloser = dns.name.Name(qname.labels[-(signed_labels + 1) :])
        nsecs, nsec3s, problems = self._verified_denials(answer, zone, keys)
        proof = prove_wildcard_expansion(qname, encloser, zone, nsecs, nsec3s)
        if proof.proven:
            return None

        detail = proof.reason if not problems else f"{proof.reason}; " + "; ".join(problems)
        return (
            f"{qname} was answered from the wildcard *.{encloser} without proof that "
            f"{qname} does not exist: {detail}"
        )
