"""Human rendering of plans and apply results."""

from __future__ import annotations

from rich.table import Table

from provisioner.cli import output
from provisioner.workflows.apply import RunResult
from provisioner.zone.model import describe_key

_STYLE = {"create": "green", "update": "yellow", "delete": "red"}


def render_run(result: RunResult, *, applied: bool) -> None:
    console = output.stdout()
    for warning in result.warnings:
        output.warn(warning)
    for issued in result.issued:
        console.print(f"certificate {'issued' if applied else 'to issue'}: {issued}")

    for zone in result.zones:
        plan = zone.plan
        counts = plan.counts()
        if not plan.has_changes:
            console.print(
                f"zone {plan.zone} ({plan.backend}): no changes, serial {plan.serial_after}"
            )
        else:
            summary = ", ".join(f"{n} to {a}" for a, n in counts.items() if n)
            verb = "changed" if applied else "would change"
            console.print(
                f"zone {plan.zone} ({plan.backend}): {verb}: {summary}; serial "
                f"{plan.serial_before if plan.serial_before is not None else '-'} -> "
                f"{plan.serial_after}"
            )
            table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
            table.add_column("action")
            table.add_column("RRset", overflow="fold")
            table.add_column("records", overflow="fold")
            for shown, change in enumerate(plan.changes):
                if shown >= 200:
                    table.add_row("…", f"{len(plan.changes) - shown} more changes", "")
                    break
                rrset = change.after if change.after is not None else change.before
                records = (
                    ""
                    if rrset is None
                    else "; ".join(sorted(_shorten(r.to_text()) for r in rrset)[:3])
                    + (" …" if rrset is not None and len(rrset) > 3 else "")
                )
                table.add_row(
                    f"[{_STYLE[change.action]}]{change.action}[/]",
                    output.escape(describe_key(change.key)),
                    output.escape(records),
                )
            console.print(table)
        for key in plan.left_alone[:50]:
            console.print(
                f"  leaves {output.escape(describe_key(key))}: not created by provisioner"
            )
        if len(plan.left_alone) > 50:
            console.print(f"  leaves {len(plan.left_alone) - 50} more RRsets it does not own")


def _shorten(text: str) -> str:
    """Cut long record data (a whole certificate in SMIMEA 3 0 0, an RRSIG) to 120 characters."""
    return text if len(text) <= 120 else text[:117] + "..."
