"""Fetch the SMIMEA RRset of a mail address from the DNS, with DNSSEC.

Two ways: with a trust anchor, provisioner's own validator (provisioner.check) builds the chain
of trust from the anchor through the given resolver; without one, the resolver's AD bit is
the proof, which is only as trustworthy as the path to that resolver.
"""

from __future__ import annotations

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from provisioner.check.engine import CheckOptions, make_validator
from provisioner.check.targets import CheckTarget, Server, TrustAnchor
from provisioner.check.validate import Security
from provisioner.clock import Clock
from provisioner.dane.smimea import smimea_owner
from provisioner.errors import CheckError
from provisioner.smime.verify import SmimeaAnswer, SmimeaLookup


def validating_lookup(
    anchor: TrustAnchor, resolver: Server | None, clock: Clock, dns_port: int = 53
) -> SmimeaLookup:
    """Return a lookup that validates each answer itself from ``anchor``."""
    target = CheckTarget(trust_anchor=anchor, resolver=resolver, dns_port=dns_port)
    validator = make_validator(target, clock, CheckOptions())

    def lookup(address: str) -> SmimeaAnswer:
        owner = smimea_owner(address)
        result = validator.validate(owner, dns.rdatatype.SMIMEA)
        records = list(result.rrset) if result.rrset is not None else []
        return SmimeaAnswer(owner, result.security == Security.SECURE, records, result.reason)

    return lookup


def resolver_ad_lookup(resolver: Server, timeout: float = 5.0) -> SmimeaLookup:
    """Return a lookup that trusts ``resolver``'s AD bit, as Postfix does for TLSA."""

    def lookup(address: str) -> SmimeaAnswer:
        owner = smimea_owner(address)
        query = dns.message.make_query(owner, dns.rdatatype.SMIMEA, want_dnssec=True)
        query.flags |= dns.flags.AD
        try:
            response = dns.query.udp(query, resolver.address, timeout, port=resolver.port)
            if response.flags & dns.flags.TC:
                response = dns.query.tcp(query, resolver.address, timeout, port=resolver.port)
        except (OSError, dns.exception.DNSException) as error:
            raise CheckError(
                f"the resolver {resolver} did not answer the SMIMEA query for {owner}: {error}",
                hint="check --resolver, or pass --trust-anchor to validate from the anchor",
            ) from error
        rcode = response.rcode()
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            return SmimeaAnswer(
                owner, False, [], f"the resolver answered {dns.rcode.to_text(rcode)}"
            )
        if not response.flags & dns.flags.AD:
            return SmimeaAnswer(owner, False, [], f"the resolver {resolver} did not set the AD bit")
        rrset = response.get_rrset(response.answer, owner, dns.rdataclass.IN, dns.rdatatype.SMIMEA)
        records = list(rrset) if rrset is not None else []
        kind = "NXDOMAIN" if rcode == dns.rcode.NXDOMAIN else "NOERROR"
        return SmimeaAnswer(owner, True, records, f"{kind} with the AD bit from {resolver}")

    return lookup
