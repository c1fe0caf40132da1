"""Wait until every name server of each published zone serves the new SOA serial.

``apply --wait`` calls wait_for_zones after publishing. The name servers are the targets of
the zone's NS RRset; their addresses come from the spec's ``nameservers[].addresses``, from
glue in the zone, or from the system resolver. Each is asked for the apex SOA (UDP, then TCP
when the answer is truncated) until its serial is the published one or a later one (RFC 1982
arithmetic), or until the zone's ``wait_timeout`` has passed on the clock.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from provisioner.clock import Clock
from provisioner.errors import BackendError
from provisioner.spec.models import NameServer, Spec, ZoneSpec
from provisioner.workflows.apply import PreparedZone, RunResult

log = logging.getLogger(__name__)

DEFAULT_WAIT_TIMEOUT = 120
POLL_INTERVAL = 1.0
QUERY_TIMEOUT = 2.0


@dataclass(frozen=True)
class NameServerAddress:
    name: str
    address: str
    port: int

    def describe(self) -> str:
        return f"{self.name} ({self.address} port {self.port})"


@dataclass
class ServedSerial:
    """The SOA serial one name server returned, or the reason it returned none."""

    server: NameServerAddress
    serial: int | None
    problem: str | None = None


SerialQuery = Callable[[NameServerAddress, dns.name.Name], ServedSerial]


def wait_for_zones(
    spec: Spec,
    result: RunResult,
    clock: Clock,
    *,
    query: SerialQuery | None = None,
    poll_interval: float = POLL_INTERVAL,
) -> dict[str, list[ServedSerial]]:
    """Return, per zone, the serial each name server serves once all serve the new one.

    Raises BackendError naming the first name server that lags, and what it serves, when a
    zone's ``wait_timeout`` passes first.
    """
    ask = query or query_serial
    outcome: dict[str, list[ServedSerial]] = {}
    for zone in result.zones:
        # A backend whose API reports propagation (Route 53: a change is PENDING, then
        # INSYNC) waits through that API instead of querying name servers for the serial.
        wait_insync = getattr(zone.backend, "wait_insync", None)
        if wait_insync is not None:
            wait_insync()
            outcome[zone.spec.name] = []
            continue
        outcome[zone.spec.name] = _wait_for_zone(zone, clock, ask, poll_interval)
    return outcome


def expected_serial(zone: PreparedZone) -> int:
    """Return the serial the primary serves after apply.

    A server that owns the serial (rfc2136 without provisioner signing) reports it through
    the backend's ``published_serial``; otherwise it is the serial provisioner wrote.
    """
    published = getattr(zone.backend, "published_serial", None)
    return int(published) if published is not None else zone.plan.serial_after


def _wait_for_zone(
    zone: PreparedZone, clock: Clock, ask: SerialQuery, poll_interval: float
) -> list[ServedSerial]:
    origin = dns.name.from_text(zone.spec.name)
    target = expected_serial(zone)
    servers = nameserver_addresses(zone)
    timeout = float(getattr(zone.spec.publish, "wait_timeout", DEFAULT_WAIT_TIMEOUT))
    started = clock.now()
    log.info(
        "zone %s: waiting up to %g s for %d name server(s) to serve serial %d",
        zone.spec.name,
        timeout,
        len(servers),
        target,
    )
    while True:
        answers = [ask(server, origin) for server in servers]
        lagging = [a for a in answers if a.serial is None or not serial_at_least(a.serial, target)]
        if not lagging:
            log.info("zone %s: every name server serves serial %d", zone.spec.name, target)
            return answers
        waited = (clock.now() - started).total_seconds()
        if waited >= timeout:
            first = lagging[0]
            if first.serial is None:
                state = f"does not answer: {first.problem}"
            else:
                state = f"still serves serial {first.serial}"
            others = f" (and {len(lagging) - 1} other server(s))" if len(lagging) > 1 else ""
            raise BackendError(
                f"zone {zone.spec.name}: name server {first.server.describe()} {state}, "
                f"expected serial {target} or later, after waiting {waited:g} s{others}",
                hint="check that server's zone transfers from the primary (NOTIFY, "
                "allow-transfer, its log), or raise publish.wait_timeout",
            )
        clock.sleep(min(poll_interval, max(0.0, timeout - waited)) or poll_interval)


def serial_at_least(served: int, target: int) -> bool:
    """Return whether ``served`` equals ``target`` or follows it (RFC 1982)."""
    return served == target or (served - target) % 2**32 < 2**31


def nameserver_addresses(zone: PreparedZone) -> list[NameServerAddress]:
    """Return an address of every name server in the zone's NS RRset, with the query port."""
    spec_zone = zone.spec
    origin = dns.name.from_text(spec_zone.name)
    ns_rrset = zone.desired.get(origin, dns.rdatatype.NS)
    names = [r.target for r in ns_rrset] if ns_rrset is not None else []
    port = _query_port(spec_zone)
    declared = _declared_addresses(spec_zone, origin)
    result: list[NameServerAddress] = []
    for name in sorted(names):
        addresses = declared.get(name) or _glue(zone, name) or _resolve(name)
        if not addresses:
            raise BackendError(
                f"zone {spec_zone.name}: cannot find an address of name server {name}",
                hint="give it in nameservers[].addresses in the spec",
            )
        for address in addresses:
            result.append(NameServerAddress(name.to_text(), address, port))
    return result


def _query_port(zone_spec: ZoneSpec) -> int:
    port = getattr(zone_spec.publish, "nameserver_port", None)
    return int(port) if port else 53


def _declared_addresses(zone_spec: ZoneSpec, origin: dns.name.Name) -> dict[dns.name.Name, list]:
    result: dict[dns.name.Name, list[str]] = {}
    for nameserver in zone_spec.nameservers:
        if isinstance(nameserver, NameServer) and nameserver.addresses:
            text = nameserver.name
            name = (
                dns.name.from_text(text.rstrip(".") + ".")
                if "." in text.rstrip(".")
                else dns.name.from_text(text, origin)
            )
            result[name] = list(nameserver.addresses)
    return result


def _glue(zone: PreparedZone, name: dns.name.Name) -> list[str]:
    addresses: list[str] = []
    for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        rrset = zone.desired.get(name, rdtype) if name.is_subdomain(zone.desired.origin) else None
        if rrset is not None:
            addresses += [rdata.address for rdata in rrset]
    return addresses


def _resolve(name: dns.name.Name) -> list[str]:
    try:
        infos = socket.getaddrinfo(name.to_text(omit_final_dot=True), 53, proto=socket.IPPROTO_UDP)
    except socket.gaierror:
        return []
    return sorted({str(info[4][0]) for info in infos})


def query_serial(server: NameServerAddress, origin: dns.name.Name) -> ServedSerial:
    """Ask ``server`` for the SOA of ``origin``; return its serial or the reason it has none."""
    query = dns.message.make_query(origin, dns.rdatatype.SOA)
    query.flags &= ~dns.flags.RD
    try:
        ipaddress.ip_address(server.address)
        response = dns.query.udp(query, server.address, port=server.port, timeout=QUERY_TIMEOUT)
        if response.flags & dns.flags.TC:
            response = dns.query.tcp(query, server.address, port=server.port, timeout=QUERY_TIMEOUT)
    except dns.exception.Timeout:
        return ServedSerial(server, None, f"no answer within {QUERY_TIMEOUT:g} s")
    except (OSError, ValueError, dns.exception.DNSException) as error:
        return ServedSerial(server, None, str(error) or type(error).__name__)
    if response.rcode() != dns.rcode.NOERROR:
        return ServedSerial(server, None, f"answered {dns.rcode.to_text(response.rcode())}")
    soa = response.get_rrset(response.answer, origin, dns.rdataclass.IN, dns.rdatatype.SOA)
    if soa is None or not response.flags & dns.flags.AA:
        return ServedSerial(server, None, "answered without an authoritative SOA")
    return ServedSerial(server, int(soa[0].serial))
