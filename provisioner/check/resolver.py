"""DNS transport for the checks: direct queries, iterative resolution and a recursive resolver.

Every query sets the DO bit so that RRSIG, NSEC and NSEC3 records come back; validation is
done by ``provisioner.check.validate`` and never trusts a resolver's AD bit.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Protocol

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset

from provisioner.check.targets import Server
from provisioner.errors import CheckError

log = logging.getLogger(__name__)

EDNS_PAYLOAD = 1232
MAX_REFERRALS = 16


@dataclasses.dataclass
class Answer:
    """A response and the server that sent it."""

    response: dns.message.Message
    server: Server

    @property
    def rcode(self) -> dns.rcode.Rcode:
        return self.response.rcode()

    def find(
        self, section: str, name: dns.name.Name, rdtype: dns.rdatatype.RdataType, covers: int = 0
    ) -> dns.rrset.RRset | None:
        rrsets: list[dns.rrset.RRset] = getattr(self.response, section)
        for rrset in rrsets:
            if rrset.name == name and rrset.rdtype == rdtype and rrset.covers == covers:
                return rrset
        return None

    def of_type(self, section: str, rdtype: dns.rdatatype.RdataType) -> list[dns.rrset.RRset]:
        rrsets: list[dns.rrset.RRset] = getattr(self.response, section)
        return [rrset for rrset in rrsets if rrset.rdtype == rdtype]


def query_server(
    server: Server,
    qname: dns.name.Name,
    rdtype: dns.rdatatype.RdataType,
    *,
    recursion: bool = False,
    checking_disabled: bool = False,
    timeout: float = 3.0,
) -> Answer:
    """Send one query with the DO bit to ``server`` (UDP, retried over TCP when truncated)."""
    request = dns.message.make_query(
        qname, rdtype, want_dnssec=True, use_edns=0, payload=EDNS_PAYLOAD
    )
    request.flags = dns.flags.RD if recursion else 0
    if checking_disabled:
        request.flags |= dns.flags.CD
    try:
        response, _ = dns.query.udp_with_fallback(
            request, server.address, timeout=timeout, port=server.port
        )
    except dns.exception.Timeout as error:
        raise CheckError(
            f"query {qname} {dns.rdatatype.to_text(rdtype)} to {server} timed out "
            f"after {timeout:g} s",
            hint="check that the server is running and reachable on that address and port",
        ) from error
    except (OSError, dns.exception.DNSException) as error:
        raise CheckError(
            f"query {qname} {dns.rdatatype.to_text(rdtype)} to {server} failed: {error}",
            hint="check that the server is running and reachable on that address and port",
        ) from error
    return Answer(response, server)


class Source(Protocol):
    """Where the validator gets its answers from."""

    def ask(self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Answer:
        """Return the final answer for ``qname``/``rdtype`` with DNSSEC records included."""
        ...


class RecursiveSource:
    """Ask a recursive resolver with RD, DO and CD set, so bogus data still comes back."""

    def __init__(self, resolver: Server, timeout: float = 5.0) -> None:
        self.resolver = resolver
        self.timeout = timeout

    def ask(self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Answer:
        return query_server(
            self.resolver,
            qname,
            rdtype,
            recursion=True,
            checking_disabled=True,
            timeout=self.timeout,
        )


class IterativeSource:
    """Resolve by following referrals down from the servers of a starting zone.

    Server addresses learned from glue or from resolving a name server's host name are queried
    on ``port``. A DS query is sent to the servers of the zone above the delegation, which are
    authoritative for DS.
    """

    def __init__(
        self,
        zone: dns.name.Name,
        servers: list[Server],
        port: int = 53,
        timeout: float = 3.0,
    ) -> None:
        if not servers:
            raise CheckError(
                f"no server address for the starting zone {zone}",
                hint="give the anchor zone's server addresses or a recursive resolver",
            )
        self.top = zone
        self.port = port
        self.timeout = timeout
        self.cuts: dict[dns.name.Name, list[Server]] = {zone: list(servers)}
        self._depth = 0

    def servers_for(self, zone: dns.name.Name) -> list[Server]:
        """Return the known server addresses of ``zone`` (empty when the cut is not known)."""
        return list(self.cuts.get(zone, []))

    def _closest_cut(self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> dns.name.Name:
        best = self.top
        for cut in self.cuts:
            if not qname.is_subdomain(cut) or len(cut) <= len(best):
                continue
            # The DS RRset lives in the parent zone, so never start a DS query at the child.
            if rdtype == dns.rdatatype.DS and cut == qname:
                continue
            best = cut
        return best

    def _ask_any(
        self, servers: list[Server], qname: dns.name.Name, rdtype: dns.rdatatype.RdataType
    ) -> Answer:
        errors: list[str] = []
        for server in servers:
            try:
                answer = query_server(server, qname, rdtype, timeout=self.timeout)
            except CheckError as error:
                errors.append(error.message)
                continue
            if answer.rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                return answer
            errors.append(f"{server} returned {dns.rcode.to_text(answer.rcode)}")
        raise CheckError(
            f"no server answered {qname} {dns.rdatatype.to_text(rdtype)}: " + "; ".join(errors),
            hint="check that the zone's authoritative servers run and serve the zone",
        )

    def ask(self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Answer:
        if not qname.is_subdomain(self.top):
            raise CheckError(
                f"{qname} is outside {self.top}, where iterative resolution starts",
                hint="use a trust anchor above this name, or a recursive resolver",
            )
        zone = self._closest_cut(qname, rdtype)
        for _ in range(MAX_REFERRALS):
            answer = self._ask_any(self.cuts[zone], qname, rdtype)
            child = self._referral(answer, zone, qname, rdtype)
            if child is None:
                return answer
            zone = child
        raise CheckError(
            f"more than {MAX_REFERRALS} referrals while resolving {qname}",
            hint="check the delegations for a loop",
        )

    def _referral(
        self,
        answer: Answer,
        zone: dns.name.Name,
        qname: dns.name.Name,
        rdtype: dns.rdatatype.RdataType,
    ) -> dns.name.Name | None:
        """Record the delegation in ``answer`` and return the child zone, or None."""
        response = answer.response
        if response.flags & dns.flags.AA or response.answer:
            return None
        delegations = [
            rrset
            for rrset in response.authority
            if rrset.rdtype == dns.rdatatype.NS
            and rrset.name.is_subdomain(zone)
            and rrset.name != zone
            and qname.is_subdomain(rrset.name)
        ]
        if not delegations:
            return None
        ns_rrset = delegations[0]
        child = ns_rrset.name
        if rdtype == dns.rdatatype.DS and child == qname:
            return None
        if child not in self.cuts:
            self.cuts[child] = self._addresses_of(answer, ns_rrset)
        log.debug("referral from %s to %s: %s", zone, child, self.cuts[child])
        return child

    def _addresses_of(self, answer: Answer, ns_rrset: dns.rrset.RRset) -> list[Server]:
        servers: list[Server] = []
        missing_glue: list[dns.name.Name] = []
        for rdata in ns_rrset:
            host = rdata.target
            found = False
            for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                glue = answer.find("additional", host, rdtype)
                if glue is not None:
                    found = True
                    servers.extend(Server(r.address, self.port, host.to_text()) for r in glue)
            if not found:
                missing_glue.append(host)
        if servers:
            return servers
        # No glue at all: resolve the name servers' addresses, with a bound on the nesting.
        if self._depth > 4:
            raise CheckError(
                f"cannot find an address for the name servers of {ns_rrset.name}",
                hint="add glue records or check the name servers' A and AAAA records",
            )
        self._depth += 1
        try:
            for host in missing_glue:
                for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                    try:
                        reply = self.ask(host, rdtype)
                    except CheckError:
                        continue
                    rrset = reply.find("answer", host, rdtype)
                    if rrset is not None:
                        servers.extend(Server(r.address, self.port, host.to_text()) for r in rrset)
        finally:
            self._depth -= 1
        if not servers:
            raise CheckError(
                f"cannot find an address for the name servers of {ns_rrset.name}",
                hint="add glue records or check the name servers' A and AAAA records",
            )
        return servers


def system_resolver() -> Server:
    """Return the first name server of /etc/resolv.conf, the host's configured resolver."""
    try:
        with open("/etc/resolv.conf") as handle:
            for line in handle:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    return Server(parts[1].split("%")[0], 53)
    except OSError as error:
        raise CheckError(
            f"cannot read /etc/resolv.conf: {error.strerror}",
            hint="pass --resolver ADDR[:PORT]",
        ) from error
    raise CheckError(
        "no name server in /etc/resolv.conf",
        hint="pass --resolver ADDR[:PORT]",
    )
