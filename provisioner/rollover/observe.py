"""Observations a rollover waits for, behind one interface so tests can simulate the world.

``Observer`` is what the engine calls; ``LiveObserver`` queries the real servers:
- every name server of a zone, queried directly (no recursion), serves the published SOA serial;
- every name server of the parent (from the spec, else found through the resolver) serves the
  expected DS RRset, and its RRSIG validates against the parent's self-signed DNSKEY RRset
  (fetched from the same server);
- the MTA presents the expected certificate on every address and port (STARTTLS probe).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Protocol

import dns.dnssec
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.resolver
import dns.rrset
from cryptography import x509

from provisioner.clock import Clock
from provisioner.spec.models import MailServerSpec, NameServer, ZoneSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Observation:
    """The outcome of one check: ``ok``, and a plain-language reason when not."""

    ok: bool
    reason: str = ""


OK = Observation(True)


class Observer(Protocol):
    def zone_serves(self, zone: ZoneSpec, serial: int) -> Observation:
        """Return whether every name server of ``zone`` serves serial ``serial`` or later."""
        ...

    def parent_serves_ds(
        self, zone: ZoneSpec, parent: ZoneSpec | None, expected: dns.rrset.RRset
    ) -> Observation:
        """Return whether every parent server serves exactly ``expected`` as DS RRset, validated."""
        ...

    def mta_presents(self, server: MailServerSpec, certificate: x509.Certificate) -> Observation:
        """Return whether the MTA presents ``certificate`` on every address and port."""
        ...


def serial_at_least(served: int, expected: int) -> bool:
    """RFC 1982 serial number comparison: ``served`` is ``expected`` or later."""
    return served == expected or 0 < (served - expected) % 2**32 < 2**31


def ds_set(rrset: dns.rrset.RRset | None) -> set[str]:
    return {rdata.to_text() for rdata in rrset} if rrset is not None else set()


def describe_ds(texts: set[str]) -> str:
    tags = sorted({text.split()[0] for text in texts})
    return "key tags " + ", ".join(tags) if tags else "no DS RRset"


@dataclass(frozen=True)
class DnsServer:
    address: str
    port: int = 53

    def __str__(self) -> str:
        return f"{self.address}:{self.port}" if self.port != 53 else self.address


class LiveObserver:
    """Observe real servers: name servers by the addresses of the spec, the MTA by STARTTLS.

    ``dns_port`` applies to every name server address (53 unless a test or lab moves it);
    ``servers`` maps a zone name to explicit servers, overriding the spec. ``resolver`` finds
    the name servers of a parent zone that the spec does not list (default: the resolvers of
    /etc/resolv.conf).
    """

    def __init__(
        self,
        clock: Clock,
        *,
        dns_port: int = 53,
        servers: dict[str, list[DnsServer]] | None = None,
        timeout: float = 3.0,
        resolver: dns.resolver.Resolver | None = None,
    ) -> None:
        self.clock = clock
        self.dns_port = dns_port
        self.servers = servers or {}
        self.timeout = timeout
        self.resolver = resolver

    def _zone_servers(self, zone: ZoneSpec) -> list[DnsServer]:
        if zone.name in self.servers:
            return self.servers[zone.name]
        result = []
        for entry in zone.nameservers:
            if isinstance(entry, NameServer):
                result += [DnsServer(address, self.dns_port) for address in entry.addresses]
        return result

    def _query(self, server: DnsServer, qname: str, rdtype: str) -> dns.message.Message:
        request = dns.message.make_query(qname, rdtype, want_dnssec=True)
        request.flags &= ~dns.flags.RD
        response, _ = dns.query.udp_with_fallback(
            request, server.address, timeout=self.timeout, port=server.port
        )
        return response

    def zone_serves(self, zone: ZoneSpec, serial: int) -> Observation:
        servers = self._zone_servers(zone)
        if not servers:
            return Observation(
                False,
                f"zone {zone.name} lists no name server addresses, so provisioner cannot see "
                "what is served; add addresses to its nameservers",
            )
        lagging = []
        for server in servers:
            try:
                response = self._query(server, zone.name, "SOA")
                soa = response.find_rrset(
                    response.answer, dns.name.from_text(zone.name), 1, dns.rdatatype.SOA
                )
                served = soa[0].serial
            except (OSError, KeyError, dns.exception.DNSException) as error:
                lagging.append(f"{server} did not answer for the SOA ({error})")
                continue
            if not serial_at_least(served, serial):
                lagging.append(f"{server} serves serial {served}")
        if lagging:
            return Observation(
                False,
                f"not every name server of {zone.name} serves serial {serial} yet: "
                + "; ".join(lagging),
            )
        return OK

    def parent_serves_ds(
        self, zone: ZoneSpec, parent: ZoneSpec | None, expected: dns.rrset.RRset
    ) -> Observation:
        if parent is not None:
            servers = self._zone_servers(parent)
            parent_name = parent.name
        else:
            servers = []
            parent_name = dns.name.from_text(zone.name).parent().to_text()
        if not servers:
            try:
                parent_name, servers = self._find_parent_servers(zone.name)
            except (OSError, dns.exception.DNSException) as error:
                return Observation(
                    False,
                    f"the parent zone of {zone.name} is not in the spec with name server "
                    f"addresses, and its name servers cannot be found through the resolver "
                    f"({error}); hand the DS records ('provisioner ds SPEC {zone.name}') to the "
                    "parent, and once it serves them run 'provisioner rollover confirm-ds SPEC ID'",
                )
        wanted = ds_set(expected)
        problems = []
        for server in servers:
            try:
                problem = self._check_ds(server, zone.name, parent_name, wanted)
            except (OSError, KeyError, dns.exception.DNSException) as error:
                problem = f"{server} did not answer ({error})"
            if problem:
                problems.append(problem)
        if problems:
            return Observation(
                False,
                f"the parent {parent_name} does not serve the expected DS RRset of {zone.name} "
                f"({describe_ds(wanted)}): " + "; ".join(problems),
            )
        return OK

    def _find_parent_servers(self, child: str) -> tuple[str, list[DnsServer]]:
        """Return the zone above ``child`` and its name servers' addresses, via the resolver.

        The DS RRset is then read from each of those servers directly, as for a parent in the
        spec, so a resolver's cache cannot hide what the parent serves.
        """
        resolver = self.resolver or dns.resolver.Resolver()
        resolver.lifetime = self.timeout * 2
        above = dns.name.from_text(child).parent()
        apex = dns.resolver.zone_for_name(above, resolver=resolver)
        servers = []
        for target in sorted({rdata.target for rdata in resolver.resolve(apex, "NS")}):
            for rdtype in ("A", "AAAA"):
                try:
                    answer = resolver.resolve(target, rdtype)
                except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                    continue
                servers += [DnsServer(rdata.address, self.dns_port) for rdata in answer]
        if not servers:
            raise dns.exception.DNSException(f"no address for any name server of {apex}")
        return apex.to_text(), servers

    def _check_ds(self, server: DnsServer, child: str, parent: str, wanted: set[str]) -> str:
        response = self._query(server, child, "DS")
        owner = dns.name.from_text(child)
        ds = response.get_rrset(response.answer, owner, 1, dns.rdatatype.DS)
        served = ds_set(ds)
        if served != wanted:
            return f"{server} serves {describe_ds(served)}"
        assert ds is not None
        rrsig = response.get_rrset(response.answer, owner, 1, dns.rdatatype.RRSIG, dns.rdatatype.DS)
        if rrsig is None:
            return f"{server} serves the DS RRset without an RRSIG"
        keys = self._query(server, parent, "DNSKEY")
        parent_name = dns.name.from_text(parent)
        dnskey = keys.get_rrset(keys.answer, parent_name, 1, dns.rdatatype.DNSKEY)
        if dnskey is None:
            return f"{server} serves no DNSKEY RRset for {parent}"
        keys_rrsig = keys.get_rrset(
            keys.answer, parent_name, 1, dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY
        )
        now = self.clock.now().timestamp()
        keyring = {parent_name: dnskey}
        try:
            # The parent's DNSKEY RRset must be signed by one of its own keys; chaining it to
            # a trust anchor is the job of 'provisioner check'.
            if keys_rrsig is None:
                return f"{server} serves the DNSKEY RRset of {parent} without an RRSIG"
            dns.dnssec.validate(dnskey, keys_rrsig, keyring, now=now)
        except dns.dnssec.ValidationFailure as error:
            return f"the DNSKEY RRset of {parent} from {server} does not validate: {error}"
        try:
            dns.dnssec.validate(ds, rrsig, keyring, now=now)
        except dns.dnssec.ValidationFailure as error:
            return f"the DS RRset from {server} does not validate: {error}"
        return ""

    def mta_presents(self, server: MailServerSpec, certificate: x509.Certificate) -> Observation:
        from provisioner.check.probe import probe_starttls

        if not server.addresses:
            return Observation(
                False, f"mail server {server.host} has no addresses in the spec to probe"
            )
        problems = []
        for address in server.addresses:
            for port in server.ports:
                result = probe_starttls(server.host, address, port, timeout=self.timeout * 3)
                if result.error or not result.chain:
                    problems.append(
                        f"{result.endpoint}: {result.error or 'no certificate (no STARTTLS)'}"
                    )
                elif result.chain[0] != certificate:
                    problems.append(
                        f"{result.endpoint} presents serial {result.chain[0].serial_number:x}, "
                        f"not {certificate.serial_number:x}"
                    )
        if problems:
            return Observation(
                False,
                f"the MTA {server.host} does not present the new certificate yet: "
                + "; ".join(problems),
            )
        return OK


def later(first: dt.datetime | None, second: dt.datetime | None) -> dt.datetime | None:
    if first is None:
        return second
    if second is None:
        return first
    return max(first, second)
