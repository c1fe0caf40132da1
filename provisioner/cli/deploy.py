"""`provisioner deploy SPEC [--check] [--limit HOST] [--inventory FILE] [--json]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from provisioner.cli import context, output

SpecArgument = Annotated[
    Path, typer.Argument(help="The spec file (YAML).", exists=False, dir_okay=False)
]


def deploy(
    spec: SpecArgument,
    check: Annotated[
        bool, typer.Option("--check", help="Change nothing; report what would change.")
    ] = False,
    limit: Annotated[
        str | None, typer.Option("--limit", help="Deploy only to hosts matching this pattern.")
    ] = None,
    inventory: Annotated[
        Path | None,
        typer.Option("--inventory", help="An Ansible inventory with connection details."),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print a stable JSON document.")
    ] = False,
) -> None:
    """Install certificates, zones and server configuration on the hosts with Ansible.

    Exit 0 when every host succeeded, 1 when any host failed or was unreachable.
    """
    from provisioner.deploy import DeployResult
    from provisioner.deploy import deploy as run_deploy

    def run() -> DeployResult:
        loaded = context.load(spec)
        with context.open_store(loaded) as store:
            return run_deploy(loaded, store, check=check, limit=limit, inventory_file=inventory)

    result = context.guarded(run, json_output=json_output)
    if json_output:
        output.print_json({"ok": not result.failed, **result.as_dict()})
    else:
        render_result(result)
    if result.failed:
        raise typer.Exit(1)


def render_result(result: object) -> None:
    from provisioner.deploy import DeployResult

    assert isinstance(result, DeployResult)
    console = output.stdout()
    table = Table(title="deploy (check mode: nothing changed)" if result.check else "deploy")
    for column in ("host", "status", "ok", "changed", "failed task"):
        table.add_column(column)
    for name in sorted(result.hosts):
        host = result.hosts[name]
        failed_task = host.failures[0].task if host.failures else ""
        table.add_row(
            output.escape(name),
            host.status,
            str(host.ok),
            str(host.changed),
            output.escape(failed_task),
        )
    console.print(table)
    verb = "would change" if result.check else "changed"
    for name in sorted(result.hosts):
        host = result.hosts[name]
        for task in host.changed_tasks:
            console.print(f"{output.escape(name)}: {verb}: {output.escape(task)}")
        for failure in host.failures:
            kind = "unreachable" if failure.unreachable else "failed"
            output.error(f"{name}: {kind} in task {failure.task!r}: {failure.message}")


def register(app: typer.Typer) -> None:
    app.command(name="deploy")(deploy)
