"""The provisioner command line: parse options, call one workflow, render its result."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from provisioner.cli import context, output
from provisioner.cli.render import render_run
from provisioner.workflows.apply import RunResult

app = typer.Typer(
    name="provisioner",
    help="Provision DANE (TLSA, SMIMEA) and DNSSEC for mail from one declarative spec.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

SpecArgument = Annotated[
    Path, typer.Argument(help="The spec file (YAML).", exists=False, dir_okay=False)
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print a stable JSON document.")]


@app.callback()
def main(
    state: Annotated[
        Path | None,
        typer.Option(
            "--state",
            help="State store folder (default: the spec's 'state', "
            "else .provisioner/ beside the spec).",
        ),
    ] = None,
    verbose: Annotated[
        int,
        typer.Option("-v", "--verbose", count=True, help="More log output on stderr (-vv: debug)."),
    ] = 0,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors on stderr.")] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="No colors in output.")] = False,
) -> None:
    context.options.state = state
    context.options.verbosity = verbose
    context.options.quiet = quiet
    context.options.color = not no_color
    output.configure(verbosity=verbose, quiet=quiet, color=not no_color)


@app.command()
def validate(spec: SpecArgument, json_output: JsonOption = False) -> None:
    """Check the spec; exit 0, or 1 with every error, positioned by file, line and column."""
    loaded = context.guarded(lambda: context.load(spec), json_output=json_output)
    if json_output:
        output.print_json({"ok": True, "zones": [z.name for z in loaded.zones]})
    else:
        counts = ", ".join(
            _count(len(items), noun)
            for items, noun in (
                (loaded.zones, "zone"),
                (loaded.mail_servers, "mail server"),
                (loaded.users, "user"),
            )
        )
        output.stdout().print(f"{spec}: valid ({counts})")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


@app.command()
def schema() -> None:
    """Print the JSON Schema of the spec, for editors and CI linters."""
    from provisioner.spec.schema import spec_json_schema

    output.print_json(spec_json_schema())


@app.command()
def plan(
    spec: SpecArgument,
    json_output: JsonOption = False,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 0 with no changes, 2 with changes.")
    ] = False,
) -> None:
    """Show what apply would change, per zone and RRset; issues and publishes nothing."""
    from provisioner.workflows import apply as workflow

    def run() -> workflow.RunResult:
        loaded = context.load(spec)
        with context.open_store(loaded) as store:
            return workflow.plan(loaded, store, context.clock(), output.progress)

    result = context.guarded(run, json_output=json_output)
    _show(result, json_output=json_output, applied=False)
    if detailed_exitcode and result.has_changes:
        raise typer.Exit(2)


@app.command()
def apply(
    spec: SpecArgument,
    json_output: JsonOption = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="Return when every name server serves the new serial.")
    ] = False,
) -> None:
    """Issue certificates, build and sign zones, and publish them; a second run is a no-op."""
    from provisioner.workflows import apply as workflow

    def run() -> workflow.RunResult:
        loaded = context.load(spec)
        with context.open_store(loaded) as store:
            result = workflow.apply(loaded, store, context.clock(), output.progress)
            if wait:
                from provisioner.workflows.propagation import wait_for_zones

                wait_for_zones(loaded, result, context.clock())
            return result

    result = context.guarded(run, json_output=json_output)
    _show(result, json_output=json_output, applied=True)


def _show(result: RunResult, *, json_output: bool, applied: bool) -> None:
    if json_output:
        output.print_json({"ok": True, **result.as_dict()})
    else:
        render_run(result, applied=applied)


@app.command()
def ds(
    spec: SpecArgument,
    zone: Annotated[str, typer.Argument(help="The zone whose DS records to print.")],
    digest: Annotated[
        list[int] | None, typer.Option("--digest", help="Digest type: 2 (SHA-256), 4 (SHA-384).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Print the DS records to hand to the parent zone's operator."""
    from provisioner.workflows.ds import ds_records

    def run() -> list[str]:
        loaded = context.load(spec)
        with context.open_store(loaded) as store:
            return ds_records(loaded, store, zone, digest)

    lines = context.guarded(run, json_output=json_output)
    if json_output:
        output.print_json({"ok": True, "zone": zone, "ds": lines})
    else:
        for line in lines:
            typer.echo(line)


def _register_optional() -> None:
    """Mount the command groups that live in their own modules."""
    import importlib

    for module_name, attribute, name in (
        ("provisioner.cli.dane", "tlsa_app", "tlsa"),
        ("provisioner.cli.dane", "smimea_app", "smimea"),
        ("provisioner.cli.rollover", "rollover_app", "rollover"),
        ("provisioner.cli.smime", "smime_app", "smime"),
        ("provisioner.cli.lab", "lab_app", "lab"),
    ):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:
                continue
            raise
        app.add_typer(getattr(module, attribute), name=name)

    for module_name in (
        "provisioner.cli.check",
        "provisioner.cli.lookup",
        "provisioner.cli.deploy",
    ):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:
                continue
            raise
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_optional()


def run() -> None:
    app()


if __name__ == "__main__":
    run()
