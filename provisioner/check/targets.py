"""Check targets: the zones, MX hosts, mail users and trust anchor that `provisioner check`
verifies.

These types are the check package's own input. They carry only what a probe needs (names,
addresses, ports, certificates on record), so the checks run the same whether the targets come
from the spec and the state store (see ``provisioner.check.spec_targets``) or from a test.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zonefile
from cryptography import x509

from provisioner.errors import CheckError

# The root zone's key-signing keys as published by IANA (KSK-2017 and KSK-2024).
ROOT_ANCHOR_DS = (
    "20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBB683457104237C7F8EC8D",
    "38696 8 2 683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16",
)


@dataclasses.dataclass(frozen=True)
class Server:
    """A DNS server to query directly: an IPv4 or IPv6 address and a port."""

    address: str
    port: int = 53
    name: str | None = None  # the NS host name, for messages

    def __str__(self) -> str:
        label = f"{self.address}" if ":" not in self.address else f"[{self.address}]"
        text = f"{label}:{self.port}" if self.port != 53 else label
        return f"{self.name} ({text})" if self.name else text

    @classmethod
    def parse(cls, text: str, default_port: int = 53) -> Server:
        """Parse ``ADDR``, ``ADDR:PORT``, ``[IPV6]:PORT`` or a bare IPv6 address."""
        text = text.strip()
        if text.startswith("["):
            address, _, rest = text[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") else default_port
            return cls(address, port)
        if text.count(":") == 1:
            address, port_text = text.split(":")
            if not port_text.isdigit():
                raise CheckError(
                    f"invalid server address {text!r}: the port is not a number",
                    hint="write ADDR, ADDR:PORT or [IPV6]:PORT",
                )
            return cls(address, int(port_text))
        return cls(text, default_port)


@dataclasses.dataclass
class ZoneTarget:
    """A zone and the addresses of its authoritative servers (empty: learn them from NS)."""

    name: dns.name.Name
    servers: list[Server] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class MxTarget:
    """An MX host to probe with STARTTLS on each of its addresses.

    ``addresses`` empty means: resolve the host's A and AAAA RRsets with validation.
    ``reference_names`` are extra names accepted in the certificate for DANE-TA(2), such as the
    next-hop domain (RFC 7672, section 3.2.2). The MX host name is always accepted.
    """

    host: dns.name.Name
    zone: dns.name.Name
    port: int = 25
    addresses: list[str] = dataclasses.field(default_factory=list)
    reference_names: list[str] = dataclasses.field(default_factory=list)
    tlsa_port: int | None = None  # the port in the TLSA owner name; default: ``port``


@dataclasses.dataclass
class UserTarget:
    """A mail user and the S/MIME certificates on record for the SMIMEA check."""

    address: str
    zone: dns.name.Name
    certificates: list[x509.Certificate] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class TrustAnchor:
    """The validation's starting point: DS or DNSKEY RRsets for ``zone``.

    ``servers`` are the addresses of the anchor zone's authoritative servers. When they are
    given and no resolver is configured, the validator starts there and follows referrals.
    No root server address is built in, so checking from the root anchor needs either these
    addresses (root hints) or a recursive resolver.
    """

    zone: dns.name.Name
    ds: dns.rrset.RRset | None = None
    dnskey: dns.rrset.RRset | None = None
    servers: list[Server] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        if self.ds is None and self.dnskey is None:
            raise CheckError(
                f"the trust anchor for {self.zone} has neither DS nor DNSKEY records",
                hint="give at least one DS or DNSKEY record for the anchor zone",
            )


@dataclasses.dataclass
class CheckTarget:
    """Everything one `provisioner check` run verifies and how it reaches the DNS.

    With ``resolver`` set, DNS queries go to that recursive resolver with the DO and CD bits and
    the answers are validated locally. Otherwise the validator queries authoritative servers
    directly, starting at the trust anchor's servers. ``dns_port`` is the port used for every
    server address learned from a referral.
    """

    zones: list[ZoneTarget] = dataclasses.field(default_factory=list)
    mx_hosts: list[MxTarget] = dataclasses.field(default_factory=list)
    users: list[UserTarget] = dataclasses.field(default_factory=list)
    trust_anchor: TrustAnchor | None = None
    resolver: Server | None = None
    dns_port: int = 53
    smtp_port: int = 25  # port probed on MX hosts that only the served MX RRset names


def root_trust_anchor(servers: list[Server] | None = None) -> TrustAnchor:
    """Return the root zone's trust anchor (KSK-2017 and KSK-2024 DS records)."""
    ds = dns.rrset.from_text_list(dns.name.root, 172800, "IN", "DS", list(ROOT_ANCHOR_DS))
    return TrustAnchor(dns.name.root, ds=ds, servers=list(servers or []))


def load_trust_anchor(path: Path | str, port: int = 53) -> TrustAnchor:
    """Read a trust anchor file: DS and/or DNSKEY records in zone-file format, one owner.

    A and AAAA records in the same file are taken as the addresses of the anchor zone's
    servers (root hints for the anchor zone), queried on ``port``; other types are ignored.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise CheckError(
            f"cannot read the trust anchor file {path}: {error.strerror}",
            hint="pass a readable file with DS or DNSKEY records in zone-file format",
        ) from error
    try:
        records = dns.zonefile.read_rrsets(
            text, rdclass=None, default_ttl=0, origin=dns.name.root, relativize=False
        )
    except dns.exception.DNSException as error:
        raise CheckError(
            f"invalid trust anchor file {path}: {error}",
            hint="write DS or DNSKEY records in zone-file format, e.g. "
            "'example.org. IN DS 12345 13 2 ABCD...'",
        ) from error
    ds: dns.rrset.RRset | None = None
    dnskey: dns.rrset.RRset | None = None
    addresses: list[Server] = []
    zone: dns.name.Name | None = None
    for rrset in records:
        if rrset.rdtype in (dns.rdatatype.DS, dns.rdatatype.DNSKEY):
            if zone is not None and rrset.name != zone:
                raise CheckError(
                    f"the trust anchor file {path} names two zones, {zone} and {rrset.name}",
                    hint="keep the records of one anchor zone in the file",
                )
            zone = rrset.name
            if rrset.rdtype == dns.rdatatype.DS:
                ds = rrset
            else:
                dnskey = rrset
        elif rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            addresses.extend(Server(rdata.address, port, rrset.name.to_text()) for rdata in rrset)
    if zone is None:
        raise CheckError(
            f"the trust anchor file {path} contains no DS or DNSKEY record",
            hint="add the anchor zone's DS or DNSKEY records in zone-file format",
        )
    return TrustAnchor(zone, ds=ds, dnskey=dnskey, servers=addresses)
