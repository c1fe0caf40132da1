"""``provisioner rollover start|status|run|abort|timeline``: thin wrappers over the engine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from provisioner.cli import context, output
from provisioner.cli.check import parse_resolver
from provisioner.errors import RolloverError
from provisioner.workflows.rollover import (
    RolloverEngine,
    RolloverStatus,
    live_engine,
    write_timeline,
)

rollover_app = typer.Typer(help="Start, advance and inspect key and certificate rollovers.")

SpecArgument = typer.Argument(..., help="the spec file (YAML)")
DnsPort = typer.Option(53, "--dns-port", help="port of the name servers to observe (labs)")
ResolverOption = typer.Option(
    None,
    "--resolver",
    help="recursive resolver that finds the name servers of a parent zone outside the spec "
    "(default: /etc/resolv.conf)",
    metavar="ADDR[:PORT]",
)


@rollover_app.command("start")
def start(
    spec_path: Path = SpecArgument,
    zone: str | None = typer.Option(None, "--zone", help="zone whose DNSSEC key to roll"),
    key: str | None = typer.Option(None, "--key", help="ksk, zsk, csk or algorithm"),
    algorithm: int | None = typer.Option(None, "--algorithm", help="new algorithm number"),
    method: str | None = typer.Option(
        None,
        "--method",
        help="KSK method: double-ds or double-ksk (default: double-ds when the parent zone "
        "is in the spec, else double-ksk)",
    ),
    mx: str | None = typer.Option(None, "--mx", help="MX host whose certificate to roll"),
    user: str | None = typer.Option(None, "--user", help="mail address whose certificate to roll"),
    dns_port: int = DnsPort,
    resolver: str | None = ResolverOption,
) -> None:
    """Start one rollover and run its first step."""
    parent_resolver = parse_resolver(resolver)

    def run() -> str:
        chosen = [value is not None for value in (zone, mx, user)]
        if sum(chosen) != 1:
            raise RolloverError(
                "give exactly one of --zone ZONE --key KIND, --mx HOST or --user ADDRESS"
            )
        spec = context.load(spec_path)
        with context.open_store(spec) as store:
            engine = live_engine(
                spec, store, context.clock(), dns_port=dns_port, resolver=parent_resolver
            )
            if zone is not None:
                if key is None:
                    raise RolloverError("--zone needs --key ksk|zsk|csk|algorithm")
                return engine.start_dnssec(zone, key, algorithm=algorithm, method=method)
            if mx is not None:
                return engine.start_mx(mx)
            assert user is not None
            return engine.start_user(user)

    rollover_id = context.guarded(run)
    output.stdout().print(f"started rollover {output.escape(rollover_id)}")


@rollover_app.command("status")
def status(
    spec_path: Path = SpecArgument,
    json_output: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Show each rollover, its state, what it waits for and when its next step may run."""

    def run() -> list[RolloverStatus]:
        spec = context.load(spec_path)
        with context.open_store(spec) as store:
            return live_engine(spec, store, context.clock()).status()

    statuses = context.guarded(run, json_output=json_output)
    if json_output:
        output.print_json({"ok": True, "rollovers": [s.as_dict() for s in statuses]})
        return
    _render(statuses)


@rollover_app.command("run")
def run_command(
    spec_path: Path = SpecArgument,
    json_output: bool = typer.Option(False, "--json", help="print JSON"),
    dns_port: int = DnsPort,
    resolver: str | None = ResolverOption,
) -> None:
    """Advance every rollover as far as is safe now, start due ones, and exit (for cron/CI)."""
    parent_resolver = parse_resolver(resolver)

    def run():  # type: ignore[no-untyped-def]
        spec = context.load(spec_path)
        with context.open_store(spec) as store:
            engine = live_engine(
                spec, store, context.clock(), dns_port=dns_port, resolver=parent_resolver
            )
            return engine.run()

    report = context.guarded(run, json_output=json_output)
    if json_output:
        output.print_json({"ok": not report.errors, **report.as_dict()})
    else:
        for message in report.emergencies:
            output.error(message)
        for message in report.errors:
            output.error(message)
        _render(report.statuses)
    if report.errors:
        raise typer.Exit(1)


@rollover_app.command("abort")
def abort(
    spec_path: Path = SpecArgument,
    rollover_id: str = typer.Argument(..., help="the rollover id from 'rollover status'"),
) -> None:
    """Back out a rollover where that is still safe; otherwise say why not."""
    _print_engine_result(spec_path, lambda engine: engine.abort(rollover_id))


@rollover_app.command("confirm-ds")
def confirm_ds(
    spec_path: Path = SpecArgument,
    rollover_id: str = typer.Argument(..., help="the rollover id from 'rollover status'"),
) -> None:
    """Confirm that a parent outside the spec now serves the DS RRset this step expects."""
    _print_engine_result(spec_path, lambda engine: engine.confirm_ds(rollover_id))


def _print_engine_result(spec_path: Path, action: Callable[[RolloverEngine], str]) -> None:
    def run() -> str:
        spec = context.load(spec_path)
        with context.open_store(spec) as store:
            return action(live_engine(spec, store, context.clock()))

    output.stdout().print(output.escape(context.guarded(run)))


@rollover_app.command("timeline")
def timeline(
    spec_path: Path = SpecArgument,
    rollover_id: str = typer.Argument(..., help="the rollover id from 'rollover status'"),
    output_path: Path = typer.Option(..., "--output", "-o", help="SVG file to write"),
) -> None:
    """Draw the plan of a rollover (each key or record, its states, the waits) as SVG."""

    def run() -> None:
        spec = context.load(spec_path)
        with context.open_store(spec) as store:
            write_timeline(live_engine(spec, store, context.clock()), rollover_id, output_path)

    context.guarded(run)
    output.stdout().print(f"wrote {output.escape(str(output_path))}")


def _render(statuses: list[RolloverStatus]) -> None:
    from rich.table import Table

    console = output.stdout()
    if not statuses:
        console.print("no rollovers")
        return
    rows = []
    for item in statuses:
        waiting = f"STUCK: {item.stuck}" if item.stuck else item.waiting_for
        next_at = item.next_step_at.isoformat(timespec="seconds") if item.next_step_at else "-"
        rows.append((item.id, item.state, item.step, next_at, waiting))
    id_width = max(len(row[0]) for row in rows)
    if console.width < id_width + 70:
        # Too narrow for a table (80 columns when piped): abort, confirm-ds and timeline take
        # the whole id, so each rollover gets a block instead of a row with a cut id.
        for rollover_id, state, step, next_at, waiting in rows:
            console.print(output.escape(rollover_id))
            console.print(f"  state: {state}  step: {step}  next step at: {next_at}")
            console.print(f"  waiting for: {output.escape(waiting)}")
        return
    table = Table()
    table.add_column("id", no_wrap=True, min_width=id_width)
    for header in ("state", "step", "next step at", "waiting for"):
        table.add_column(header, overflow="fold")
    for rollover_id, state, step, next_at, waiting in rows:
        table.add_row(output.escape(rollover_id), state, step, next_at, output.escape(waiting))
    console.print(table)
