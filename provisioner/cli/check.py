"""``provisioner check SPEC``: verify what is served, end to end; exit 0 when well, 1 when not."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from provisioner.check.engine import CheckOptions, run_checks
from provisioner.check.report import Report, notify, render_table, write_prometheus
from provisioner.check.targets import Server, TrustAnchor, load_trust_anchor
from provisioner.cli import context, output
from provisioner.errors import CheckError


def parse_resolver(text: str | None) -> Server | None:
    """Parse ``--resolver ADDR[:PORT]``. A malformed value is a usage error (exit status 2)."""
    if text is None:
        return None
    try:
        return Server.parse(text)
    except CheckError as error:
        raise typer.BadParameter(f"{error.message}; {error.hint}") from None


def read_anchor(path: Path | None, port: int = 53) -> TrustAnchor | None:
    if path is None:
        return None
    return context.guarded(lambda: load_trust_anchor(path, port))


def check_command(
    spec: Annotated[Path, typer.Argument(help="The spec file (YAML).", dir_okay=False)],
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON (format: docs/check.md).")
    ] = False,
    prometheus: Annotated[
        Path | None,
        typer.Option(
            "--prometheus",
            help="Also write the report as a node-exporter textfile to FILE (atomically).",
            metavar="FILE",
        ),
    ] = None,
    notify_command: Annotated[
        str | None,
        typer.Option(
            "--notify",
            help="When a check fails, run CMD through the shell with the JSON report on stdin.",
            metavar="CMD",
        ),
    ] = None,
    warn_days: Annotated[
        float,
        typer.Option("--warn-days", min=0, help="Warn when an RRSIG expires within N days."),
    ] = 7.0,
    certificate_warn_days: Annotated[
        float,
        typer.Option(
            "--certificate-warn-days", min=0, help="Warn when a certificate expires within N days."
        ),
    ] = 14.0,
    trust_anchor: Annotated[
        Path | None,
        typer.Option(
            "--trust-anchor",
            help="DS or DNSKEY records of the anchor zone in zone-file format, with optional "
            "A/AAAA records of its servers (default: the root's KSK-2017 and KSK-2024).",
            metavar="FILE",
        ),
    ] = None,
    resolver: Annotated[
        str | None,
        typer.Option(
            "--resolver",
            help="Query this recursive resolver (DO and CD set) instead of the authoritative "
            "servers; answers are still validated locally.",
            metavar="ADDR[:PORT]",
        ),
    ] = None,
    dns_port: Annotated[
        int,
        typer.Option(
            "--dns-port",
            min=1,
            max=65535,
            help="Port of the authoritative servers queried directly.",
        ),
    ] = 53,
    only_problems: Annotated[
        bool, typer.Option("--only-problems", help="Show only warnings and failures in the table.")
    ] = False,
) -> None:
    """Verify what is served, end to end; exit 1 when anything fails.

    Checks the DNSSEC chain, denial proofs, RRSIG expiry, SOA serials, STARTTLS and TLSA on
    every MX address, and SMIMEA.
    """
    from provisioner.check.spec_targets import build_targets

    server = parse_resolver(resolver)
    anchor = read_anchor(trust_anchor, dns_port)
    options = CheckOptions(warn_days=warn_days, certificate_warn_days=certificate_warn_days)

    def run() -> Report:
        loaded = context.load(spec)
        with context.open_store(loaded) as store:
            target = build_targets(
                loaded, store, trust_anchor=anchor, resolver=server, dns_port=dns_port
            )
        return run_checks(target, context.clock(), options)

    report = context.guarded(run, json_output=json_output)
    if json_output:
        typer.echo(report.to_json(), nl=False)
    else:
        render_table(report, output.stdout(), show_ok=not only_problems)
    if prometheus is not None:
        context.guarded(lambda: write_prometheus(report, prometheus))
    if notify_command and report.failed:
        try:
            notify(report, notify_command)
        except CheckError as error:
            output.error(error.message)
            if error.hint:
                output.stderr().print(f"  hint: {output.escape(error.hint)}")
    raise typer.Exit(report.exit_code)


def register(app: typer.Typer) -> None:
    """Register ``provisioner check`` on ``app``."""
    app.command("check")(check_command)
