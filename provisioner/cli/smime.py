"""``provisioner smime sign|verify``: S/MIME signatures checked against SMIMEA records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from provisioner.cli import context, output

smime_app = typer.Typer(
    help="Sign mail with S/MIME, and verify signatures against the signer's SMIMEA record.",
    no_args_is_help=True,
)


@smime_app.command("sign")
def sign(
    key: Annotated[Path, typer.Option("--key", help="The signer's private key (PEM).")],
    cert: Annotated[
        Path,
        typer.Option(
            "--cert",
            help="The signer's certificate (PEM); "
            "further certificates in the file go in as the chain.",
        ),
    ],
    input_file: Annotated[Path, typer.Option("--in", help="The message to sign (RFC 5322).")],
    output_file: Annotated[Path, typer.Option("--out", help="Where to write the signed message.")],
    chain: Annotated[
        Path | None, typer.Option("--chain", help="CA certificates to include (PEM).")
    ] = None,
    password_file: Annotated[
        Path | None, typer.Option("--password-file", help="File holding the key's password.")
    ] = None,
) -> None:
    """Sign a message as multipart/signed with a detached SHA-256 CMS signature."""
    from provisioner.errors import PKIError
    from provisioner.pki.encoding import load_certificates
    from provisioner.pki.keys import load_private_key
    from provisioner.smime.message import sign_message
    from provisioner.store.atomic import write_atomic

    def run() -> None:
        try:
            password = password_file.read_bytes().strip() if password_file else None
            private_key = load_private_key(key.read_bytes(), password)
            certificates = load_certificates(cert.read_bytes())
            extra = load_certificates(chain.read_bytes()) if chain else []
            message = input_file.read_bytes()
        except OSError as error:
            raise PKIError(f"cannot read {error.filename}: {error.strerror}") from error
        signed = sign_message(message, private_key, certificates[0], [*certificates[1:], *extra])
        write_atomic(output_file, signed)

    context.guarded(run)
    output.stderr().print(f"signed {input_file} -> {output_file}")


@smime_app.command("verify")
def verify(
    message: Annotated[Path, typer.Argument(help="The signed message (multipart/signed).")],
    resolver: Annotated[
        str | None,
        typer.Option(
            "--resolver",
            metavar="ADDR[:PORT]",
            help="Resolver to query (default: the first of /etc/resolv.conf).",
        ),
    ] = None,
    trust_anchor: Annotated[
        Path | None,
        typer.Option(
            "--trust-anchor",
            metavar="FILE",
            help="DS or DNSKEY records of the anchor zone: validate the SMIMEA "
            "answer from this anchor. Without it, the resolver's AD bit is required.",
        ),
    ] = None,
    dns_port: Annotated[
        int,
        typer.Option(
            "--dns-port", min=1, max=65535, help="Port of authoritative servers queried directly."
        ),
    ] = 53,
    json_output: Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")] = False,
) -> None:
    """Verify the signature and that the signer's certificate is the one in the DNS (SMIMEA).

    Exit 0 when it verifies, 1 when it does not (the message says why).
    """
    from provisioner.check.resolver import system_resolver
    from provisioner.check.targets import Server, load_trust_anchor
    from provisioner.errors import ProvisionerError
    from provisioner.smime.lookup import resolver_ad_lookup, validating_lookup
    from provisioner.smime.verify import Verdict, verify_message

    def run() -> Verdict:
        server = Server.parse(resolver) if resolver else None
        if trust_anchor is not None:
            anchor = load_trust_anchor(trust_anchor, dns_port)
            lookup = validating_lookup(anchor, server, context.clock(), dns_port)
        else:
            lookup = resolver_ad_lookup(server or system_resolver())
        try:
            raw = message.read_bytes()
        except OSError as error:
            raise ProvisionerError(f"cannot read {message}: {error.strerror}") from error
        return verify_message(raw, lookup, context.clock().now())

    verdict = context.guarded(run, json_output=json_output)
    if json_output:
        typer.echo(json.dumps(verdict.as_dict(), indent=2))
    else:
        for step in verdict.steps:
            output.stderr().print(f"  ok: {output.escape(step)}")
        if verdict.ok:
            typer.echo(f"verified: {verdict.reason}")
        else:
            output.error(f"verification failed: {verdict.reason}")
    if not verdict.ok:
        raise typer.Exit(1)
