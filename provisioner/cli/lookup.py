"""``provisioner tlsa lookup`` and ``provisioner smimea lookup``.

Each fetches one RRset from the DNS, validates it from the trust anchor and prints it. The exit
status is 1 when the RRset is bogus, insecure or missing.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import dns.name
import dns.rdatatype
import typer
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from provisioner.check.engine import CheckOptions, make_validator
from provisioner.check.match import match_tlsa_smtp, smimea_owner, tlsa_owner
from provisioner.check.probe import probe_starttls
from provisioner.check.targets import CheckTarget
from provisioner.check.validate import Result, Security, Validator
from provisioner.cli import context, output
from provisioner.cli.check import parse_resolver, read_anchor
from provisioner.errors import CheckError

TrustAnchorOption = Annotated[
    Path | None,
    typer.Option(
        "--trust-anchor",
        help="DS or DNSKEY records of the anchor zone in zone-file format, with optional "
        "A/AAAA records of its servers (default: the root's KSK-2017 and KSK-2024).",
        metavar="FILE",
    ),
]
ResolverOption = Annotated[
    str | None,
    typer.Option(
        "--resolver",
        help="Recursive resolver to query (DO and CD set); default: the anchor's servers, "
        "else the first name server of /etc/resolv.conf.",
        metavar="ADDR[:PORT]",
    ),
]
DnsPortOption = Annotated[
    int,
    typer.Option(
        "--dns-port", min=1, max=65535, help="Port of the authoritative servers queried directly."
    ),
]


def _validator(trust_anchor: Path | None, resolver: str | None, dns_port: int) -> Validator:
    server = parse_resolver(resolver)
    anchor = read_anchor(trust_anchor, dns_port)
    target = CheckTarget(trust_anchor=anchor, resolver=server, dns_port=dns_port)
    return context.guarded(lambda: make_validator(target, context.clock(), CheckOptions()))


def _require_secure(result: Result) -> None:
    """Exit 1 with the reason unless ``result`` is a secure, existing RRset."""
    if result.security != Security.SECURE:
        output.error(f"{result.subject} is {result.security}: {result.reason}")
        raise typer.Exit(1)
    if result.rrset is None:
        kind = "the name does not exist" if result.nxdomain else "no such RRset"
        output.error(f"{result.subject} not found ({kind}): {result.reason}")
        raise typer.Exit(1)


def tlsa_lookup(
    host: Annotated[str, typer.Argument(help="The TLS server's host name, e.g. mx1.example.org.")],
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="The TCP port.")] = 25,
    compare_live: Annotated[
        bool,
        typer.Option(
            "--compare-live",
            help="Also connect with SMTP STARTTLS to each address and match the presented "
            "chain against the records (RFC 7672).",
        ),
    ] = False,
    address: Annotated[
        list[str] | None,
        typer.Option("--address", help="Probe this address instead of the host's A/AAAA."),
    ] = None,
    trust_anchor: TrustAnchorOption = None,
    resolver: ResolverOption = None,
    dns_port: DnsPortOption = 53,
) -> None:
    """Fetch and DNSSEC-validate the TLSA RRset of HOST and PORT, and print it."""
    validator = _validator(trust_anchor, resolver, dns_port)
    host_name = dns.name.from_text(host)
    owner = tlsa_owner(host_name, port)
    result = context.guarded(lambda: validator.validate(owner, dns.rdatatype.TLSA))
    _require_secure(result)
    assert result.rrset is not None
    typer.echo(result.rrset.to_text())
    output.stderr().print(f"secure: {output.escape(result.reason)}")
    if not compare_live:
        return

    addresses = list(address or [])
    if not addresses:
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            found = context.guarded(functools.partial(validator.validate, host_name, rdtype))
            if found.rrset is not None and found.security == Security.SECURE:
                addresses.extend(rdata.address for rdata in found.rrset)
    if not addresses:
        output.error(f"{host} has no DNSSEC-secure A or AAAA record to connect to")
        raise typer.Exit(1)
    failed = False
    for ip in addresses:
        probe = probe_starttls(host.rstrip("."), ip, port)
        if probe.error or not probe.starttls_offered:
            typer.echo(f"{probe.endpoint}: fail: {probe.error or 'STARTTLS not offered'}")
            failed = True
            continue

        verdict = match_tlsa_smtp(
            list(result.rrset), probe.chain, [host.rstrip(".")], context.clock().now()
        )
        status = "ok" if verdict.authenticated else "fail"
        failed = failed or not verdict.authenticated
        typer.echo(f"{probe.endpoint}: {status}: {verdict.reason}")
    if failed:
        raise typer.Exit(1)


def smimea_lookup(
    address: Annotated[str, typer.Argument(help="The mail address, e.g. alice@example.org.")],
    trust_anchor: TrustAnchorOption = None,
    resolver: ResolverOption = None,
    dns_port: DnsPortOption = 53,
) -> None:
    """Fetch and DNSSEC-validate the SMIMEA RRset of ADDRESS; print full certificates (x 0 0)
    as PEM and other records in zone-file format."""
    try:
        owner = smimea_owner(address)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    validator = _validator(trust_anchor, resolver, dns_port)
    result = context.guarded(lambda: validator.validate(owner, dns.rdatatype.SMIMEA))
    _require_secure(result)
    assert result.rrset is not None
    for rdata in result.rrset:
        if rdata.selector == 0 and rdata.mtype == 0:
            try:
                certificate = x509.load_der_x509_certificate(rdata.cert)
            except ValueError as error:
                context.fail(
                    CheckError(
                        f"the SMIMEA record {rdata.usage} 0 0 at {owner} does not contain a valid "
                        f"certificate: {error}",
                        hint="publish the DER encoding of the user's certificate",
                    )
                )
            typer.echo(certificate.public_bytes(serialization.Encoding.PEM).decode(), nl=False)
        else:
            typer.echo(f"{owner} {result.rrset.ttl} IN SMIMEA {rdata.to_text()}")
    output.stderr().print(f"secure: {output.escape(result.reason)}")


def register(
    app: typer.Typer,
    tlsa_app: typer.Typer | None = None,
    smimea_app: typer.Typer | None = None,
) -> None:
    """Register ``tlsa lookup`` and ``smimea lookup`` on the ``tlsa`` and ``smimea`` groups.

    Without explicit groups, the groups of provisioner.cli.dane are used, which the main app
    mounts as ``tlsa`` and ``smimea``. ``app`` is used only when that module is missing.
    """
    if tlsa_app is None or smimea_app is None:
        try:
            from provisioner.cli import dane
        except ModuleNotFoundError:
            dane = None  # type: ignore[assignment]
        if dane is None:
            tlsa_app = tlsa_app or typer.Typer(help="TLSA records.")
            smimea_app = smimea_app or typer.Typer(help="SMIMEA records.")
            app.add_typer(tlsa_app, name="tlsa")
            app.add_typer(smimea_app, name="smimea")
        else:
            tlsa_app = tlsa_app or dane.tlsa_app
            smimea_app = smimea_app or dane.smimea_app
    tlsa_app.command("lookup")(tlsa_lookup)
    smimea_app.command("lookup")(smimea_lookup)
