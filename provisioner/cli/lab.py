"""``provisioner lab up|test|down``: the end-to-end lab of two organisations exchanging mail."""

from __future__ import annotations

import atexit
import json
import signal
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from provisioner.cli import context, output

lab_app = typer.Typer(
    help="Run the end-to-end lab: signed zones served by BIND, Knot and NSD, Unbound, and two "
    "Postfix MTAs with DANE and SMIMEA, inside a network namespace (needs root).",
    no_args_is_help=True,
)

WorkdirOption = Annotated[
    Path,
    typer.Option("--workdir", help="Folder for the lab's files; `down` takes the same folder."),
]
SpecOption = Annotated[
    Path | None,
    typer.Option("--spec", help="The lab spec (default: examples/nccoe/lab.yaml)."),
]
DnsServerOption = Annotated[
    list[str] | None,
    typer.Option(
        "--dns-server",
        metavar="ZONE=KIND",
        help="Serve ZONE with KIND: nsd, knot or bind (repeatable; default: the root with "
        "BIND, example.com with Knot, example.net with NSD).",
    ),
]


def _dns_servers(values: list[str] | None) -> dict[str, str] | None:
    """Parse --dns-server ZONE=KIND options over the lab's default assignment."""
    if not values:
        return None
    from provisioner.lab.lab import DEFAULT_DNS_SERVERS

    chosen = dict(DEFAULT_DNS_SERVERS)
    for value in values:
        zone, separator, kind = value.partition("=")
        if not separator or not zone or not kind:
            raise typer.BadParameter(f"invalid --dns-server {value!r}: expected ZONE=KIND")
        chosen[zone] = kind
    return chosen


# Under /tmp because every parent folder must be enterable by the postfix user.
DEFAULT_WORKDIR = Path(tempfile.gettempdir()) / "provisioner-lab"


def _stop_on_signals() -> None:
    """Turn SIGTERM and SIGHUP into SystemExit so that finally blocks tear the lab down."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, handler)


@lab_app.command("up")
def up(
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    spec: SpecOption = None,
    dns_server: DnsServerOption = None,
) -> None:
    """Apply the lab spec and start every server; they keep running until `lab down`."""
    from provisioner.lab.lab import Lab

    lab = context.guarded(lambda: Lab(workdir, spec, _dns_servers(dns_server)))

    def run() -> None:
        try:
            lab.up()
        except BaseException:
            lab.down()
            raise

    context.guarded(run)
    output.stdout().print(
        f"lab is up in {lab.workdir} (network namespace {lab.namespace.name}); "
        f"run commands in it with: ip netns exec {lab.namespace.name} COMMAND"
    )


@lab_app.command("down")
def down(workdir: WorkdirOption = DEFAULT_WORKDIR) -> None:
    """Stop every process of the lab and delete its network namespace."""
    from provisioner.lab.lab import Lab

    lab = Lab.from_workdir(workdir)
    context.guarded(lab.down)
    output.stdout().print(f"lab in {lab.workdir} is down")


@lab_app.command("test")
def test(
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    spec: SpecOption = None,
    scenario: Annotated[
        list[str] | None,
        typer.Option("--scenario", help="Run only this scenario (repeatable)."),
    ] = None,
    keep: Annotated[bool, typer.Option("--keep", help="Leave the lab running afterwards.")] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the outcomes as JSON.")
    ] = False,
    dns_server: DnsServerOption = None,
) -> None:
    """Bring the lab up, run the scenarios, and tear it down, even on failure.

    Exit 0 when every scenario passed, 1 otherwise.
    """
    from provisioner.lab.lab import Lab
    from provisioner.lab.scenarios import run_scenarios

    lab = context.guarded(lambda: Lab(workdir, spec, _dns_servers(dns_server)))
    if not keep:
        atexit.register(lab.down)
    _stop_on_signals()

    def run():  # type: ignore[no-untyped-def]
        try:
            lab.up()
            return run_scenarios(lab, scenario)
        finally:
            if not keep:
                lab.down()

    outcomes = context.guarded(run, json_output=json_output)
    if json_output:
        typer.echo(json.dumps([o.as_dict() for o in outcomes], indent=2))
    else:
        console = output.stdout()
        for outcome in outcomes:
            console.print(f"{'PASS' if outcome.passed else 'FAIL'} {outcome.name}")
            for line in outcome.evidence:
                console.print(f"    ok: {output.escape(line)}")
            for line in outcome.failures:
                console.print(f"    FAILED: {output.escape(line)}")
    passed = sum(o.passed for o in outcomes)
    typer.echo(f"{passed} passed, {len(outcomes) - passed} failed", err=True)
    if passed != len(outcomes):
        raise typer.Exit(1)


@lab_app.command("strip-starttls", hidden=True)
def strip_starttls(
    listen: Annotated[str, typer.Option("--listen", help="ADDR:PORT to accept SMTP on.")],
    upstream: Annotated[str, typer.Option("--upstream", help="ADDR:PORT of the real MTA.")],
) -> None:
    """Run the STARTTLS-stripping proxy of the lab's man-in-the-middle scenario."""
    import logging

    from provisioner.lab.proxy import _address, serve

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    proxy_log = logging.getLogger("provisioner.lab.proxy")
    proxy_log.addHandler(handler)
    proxy_log.setLevel(logging.INFO)
    proxy_log.propagate = False
    serve(_address(listen), _address(upstream))
