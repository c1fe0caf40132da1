"""``provisioner tlsa`` and ``provisioner smimea``: print one record derived from a certificate.

The output is one zone-file line, ``owner [TTL] IN TLSA u s m hex``, as hash-slinger's
``tlsa`` and ``smimea`` tools print it. Warnings go to standard error.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from provisioner.cli import context, output
from provisioner.dane.params import (
    SMIMEA_DEFAULT,
    TLSA_DEFAULT,
    DaneParameters,
    MatchingType,
    Selector,
    Usage,
    parse_matching,
    parse_parameters,
    parse_selector,
    parse_usage,
)
from provisioner.dane.records import AnchorChoice, DaneRecord
from provisioner.dane.smimea import derive_smimea
from provisioner.dane.tlsa import derive_tlsa
from provisioner.errors import DaneError
from provisioner.pki.importer import PasswordSource, read_certificate_chain

tlsa_app = typer.Typer(
    help="TLSA records (DANE for TLS services such as SMTP).", no_args_is_help=True
)
smimea_app = typer.Typer(
    help="SMIMEA records (DANE for S/MIME certificates).", no_args_is_help=True
)

MAX_TTL = 2**31 - 1


def _checked(parser: Callable[[str], object]) -> Callable[[str | None], str | None]:
    """Wrap a field parser so that an invalid value is a usage error (exit status 2)."""

    def callback(value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parser(value)
        except DaneError as error:
            raise typer.BadParameter(f"{error.message}; {error.hint}") from None
        return value

    return callback


UsageOption = Annotated[
    str | None,
    typer.Option(
        "--usage",
        help="Certificate usage: 0-3 or PKIX-TA, PKIX-EE, DANE-TA, DANE-EE.",
        callback=_checked(parse_usage),
    ),
]
SelectorOption = Annotated[
    str | None,
    typer.Option(
        "--selector",
        help="Selector: 0 (Cert, whole certificate) or 1 (SPKI, public key).",
        callback=_checked(parse_selector),
    ),
]
MatchingOption = Annotated[
    str | None,
    typer.Option(
        "--matching",
        help="Matching type: 0 (Full), 1 (SHA2-256) or 2 (SHA2-512).",
        callback=_checked(parse_matching),
    ),
]
CertOption = Annotated[
    Path,
    typer.Option(
        "--cert",
        help="Certificate file: PEM (optionally followed by its chain), DER or PKCS#12.",
        dir_okay=False,
    ),
]
ChainOption = Annotated[
    Path | None,
    typer.Option(
        "--chain",
        help="Chain file (PEM): the CA certificates the server sends, issuing CA first.",
        dir_okay=False,
    ),
]
TtlOption = Annotated[
    int | None,
    typer.Option(
        "--ttl", help="TTL of the record in seconds (default: none printed).", min=0, max=MAX_TTL
    ),
]
AnchorOption = Annotated[
    AnchorChoice,
    typer.Option(
        "--anchor",
        help="CA certificate for usages 0 and 2: the issuing CA or the root.",
        case_sensitive=False,
    ),
]
PasswordFileOption = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        help="File whose first line is the PKCS#12 password.",
        dir_okay=False,
    ),
]
PasswordEnvOption = Annotated[
    str | None,
    typer.Option("--password-env", help="Environment variable that contains the PKCS#12 password."),
]


def _password(password_file: Path | None, password_env: str | None) -> PasswordSource | None:
    if password_file is not None and password_env is not None:
        raise typer.BadParameter("give --password-file or --password-env, not both")
    if password_file is None and password_env is None:
        return None
    return PasswordSource(file=password_file, env=password_env)


def _print(record: DaneRecord, ttl: int | None) -> None:
    for warning in record.warnings:
        output.warn(warning)
    typer.echo(record.to_text(ttl))


def _parameters(
    default_usage: Usage,
    default_selector: Selector,
    default_matching: MatchingType,
    usage: str | None,
    selector: str | None,
    matching: str | None,
) -> DaneParameters:
    return parse_parameters(
        usage if usage is not None else default_usage,
        selector if selector is not None else default_selector,
        matching if matching is not None else default_matching,
    )


@tlsa_app.command("generate")
def tlsa_generate(
    cert: CertOption,
    host: Annotated[str, typer.Option("--host", help="Host name of the server, e.g. the MX.")],
    port: Annotated[int, typer.Option("--port", help="TCP or UDP port.", min=1, max=65535)] = 25,
    protocol: Annotated[str, typer.Option("--protocol", help="Transport protocol.")] = "tcp",
    usage: UsageOption = None,
    selector: SelectorOption = None,
    matching: MatchingOption = None,
    chain: ChainOption = None,
    ttl: TtlOption = None,
    anchor: AnchorOption = AnchorChoice.ISSUER,
    password_file: PasswordFileOption = None,
    password_env: PasswordEnvOption = None,
) -> None:
    """Print the TLSA record of a server certificate (default 3 1 1: DANE-EE, SPKI, SHA2-256)."""
    password = _password(password_file, password_env)
    parameters = _parameters(
        TLSA_DEFAULT.usage,
        TLSA_DEFAULT.selector,
        TLSA_DEFAULT.matching,
        usage,
        selector,
        matching,
    )

    def derive() -> DaneRecord:
        end_entity, sent_chain = read_certificate_chain(cert, chain_path=chain, password=password)
        return derive_tlsa(
            end_entity,
            host,
            port=port,
            protocol=protocol,
            parameters=parameters,
            chain=sent_chain,
            anchor=anchor,
        )

    _print(context.guarded(derive), ttl)


@smimea_app.command("generate")
def smimea_generate(
    cert: CertOption,
    address: Annotated[
        str, typer.Option("--address", help="Mailbox address, e.g. hugh@example.com.")
    ],
    usage: UsageOption = None,
    selector: SelectorOption = None,
    matching: MatchingOption = None,
    chain: ChainOption = None,
    ttl: TtlOption = None,
    anchor: AnchorOption = AnchorChoice.ISSUER,
    password_file: PasswordFileOption = None,
    password_env: PasswordEnvOption = None,
) -> None:
    """Print the SMIMEA record of an S/MIME certificate (default 3 0 0: the whole certificate)."""
    password = _password(password_file, password_env)
    parameters = _parameters(
        SMIMEA_DEFAULT.usage,
        SMIMEA_DEFAULT.selector,
        SMIMEA_DEFAULT.matching,
        usage,
        selector,
        matching,
    )

    def derive() -> DaneRecord:
        end_entity, sent_chain = read_certificate_chain(cert, chain_path=chain, password=password)
        return derive_smimea(
            end_entity, address, parameters=parameters, chain=sent_chain, anchor=anchor
        )

    _print(context.guarded(derive), ttl)
