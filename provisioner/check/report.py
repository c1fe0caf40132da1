"""Findings of a check run and their renderings: rich table, JSON, Prometheus textfile.

The JSON format is documented in docs/check.md; ``REPORT_VERSION`` changes only when a field
is removed or changes meaning.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import logging
import subprocess
from collections.abc import Iterable
from pathlib import Path

from provisioner.errors import CheckError
from provisioner.store.atomic import write_atomic

log = logging.getLogger(__name__)

REPORT_VERSION = 1


class Status(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


STATUS_VALUE = {Status.OK: 0, Status.WARN: 1, Status.FAIL: 2}


@dataclasses.dataclass
class Finding:
    """One check's verdict on one subject."""

    check: str
    status: Status
    zone: str
    subject: str
    message: str
    hint: str | None = None
    server: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "check": self.check,
            "status": str(self.status),
            "zone": self.zone,
            "server": self.server,
            "subject": self.subject,
            "message": self.message,
            "hint": self.hint,
        }


@dataclasses.dataclass
class Metric:
    """A gauge sample for the Prometheus textfile."""

    name: str
    labels: dict[str, str]
    value: float


METRIC_HELP = {
    "provisioner_check_status": "Check status per subject: 0 ok, 1 warn, 2 fail.",
    "provisioner_check_rrsig_expiry_days": "Days until the RRSIG expires (negative: expired).",
    "provisioner_check_certificate_expiry_days": (
        "Days until the certificate expires (negative: expired)."
    ),
    "provisioner_check_findings": "Number of findings per status in the last run.",
    "provisioner_check_last_run_timestamp_seconds": "Unix time at which the last check ran.",
}


@dataclasses.dataclass
class Report:
    """All findings and metrics of one check run."""

    generated_at: dt.datetime
    findings: list[Finding] = dataclasses.field(default_factory=list)
    metrics: list[Metric] = dataclasses.field(default_factory=list)

    def add(self, finding: Finding) -> None:
        log.info("%s %s %s: %s", finding.check, finding.status, finding.subject, finding.message)
        self.findings.append(finding)

    def extend(self, findings: Iterable[Finding]) -> None:
        for finding in findings:
            self.add(finding)

    def gauge(self, name: str, value: float, **labels: str) -> None:
        self.metrics.append(Metric(name, labels, value))

    @property
    def status(self) -> Status:
        statuses = {finding.status for finding in self.findings}
        if Status.FAIL in statuses:
            return Status.FAIL
        if Status.WARN in statuses:
            return Status.WARN
        return Status.OK

    @property
    def failed(self) -> bool:
        return self.status == Status.FAIL

    @property
    def exit_code(self) -> int:
        """Return 1 when any finding failed, else 0 (warnings do not fail the run)."""
        return 1 if self.failed else 0

    def counts(self) -> dict[str, int]:
        counts = {str(status): 0 for status in Status}
        for finding in self.findings:
            counts[str(finding.status)] += 1
        return counts

    def by_status(self, status: Status) -> list[Finding]:
        return [finding for finding in self.findings if finding.status == status]

    def as_dict(self) -> dict[str, object]:
        return {
            "version": REPORT_VERSION,
            "generated_at": self.generated_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "status": str(self.status),
            "summary": self.counts(),
            "findings": [finding.as_dict() for finding in self.findings],
            "metrics": [
                {"name": metric.name, "labels": metric.labels, "value": metric.value}
                for metric in self.metrics
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, sort_keys=False) + "\n"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def prometheus_text(report: Report) -> str:
    """Render the report in the node-exporter textfile format (all samples are gauges)."""
    samples: dict[str, list[Metric]] = {}
    for finding in report.findings:
        labels = {"check": finding.check, "zone": finding.zone, "subject": finding.subject}
        if finding.server:
            labels["server"] = finding.server
        samples.setdefault("provisioner_check_status", []).append(
            Metric("provisioner_check_status", labels, STATUS_VALUE[finding.status])
        )
    for metric in report.metrics:
        samples.setdefault(metric.name, []).append(metric)
    for status, count in report.counts().items():
        samples.setdefault("provisioner_check_findings", []).append(
            Metric("provisioner_check_findings", {"status": status}, count)
        )
    samples["provisioner_check_last_run_timestamp_seconds"] = [
        Metric(
            "provisioner_check_last_run_timestamp_seconds", {}, int(report.generated_at.timestamp())
        )
    ]
    lines: list[str] = []
    for name, metrics in samples.items():
        lines.append(f"# HELP {name} {METRIC_HELP.get(name, name)}")
        lines.append(f"# TYPE {name} gauge")
        # A series may appear only once in the file. Several findings on one series keep the
        # worst status, and several expiry samples keep the soonest expiry.
        values: dict[str, float] = {}
        for metric in metrics:
            label_text = ",".join(
                f'{key}="{_escape_label(value)}"' for key, value in sorted(metric.labels.items())
            )
            series = f"{name}{{{label_text}}}" if label_text else name
            if series not in values:
                values[series] = metric.value
            elif name == "provisioner_check_status":
                values[series] = max(values[series], metric.value)
            else:
                values[series] = min(values[series], metric.value)
        for series, value in values.items():
            text = str(int(value)) if float(value).is_integer() else f"{value:.4f}"
            lines.append(f"{series} {text}")
    return "\n".join(lines) + "\n"


def write_prometheus(report: Report, path: Path | str) -> None:
    """Write the textfile atomically, so node-exporter never reads a partial file."""
    write_atomic(Path(path), prometheus_text(report))


def notify(report: Report, command: str, timeout: float = 60.0) -> None:
    """Run ``command`` through the shell with the JSON report on its standard input."""
    try:
        completed = subprocess.run(
            command,
            shell=True,
            input=report.to_json().encode(),
            timeout=timeout,
            check=False,
            capture_output=True,
        )
    except subprocess.TimeoutExpired as error:
        raise CheckError(
            f"the notify command timed out after {timeout:g} s: {command}",
            hint="make the command finish quickly or run it in the background",
        ) from error
    except OSError as error:
        raise CheckError(
            f"the notify command could not start: {error}",
            hint="check the command and its path",
        ) from error
    if completed.returncode != 0:
        stderr = completed.stderr.decode(errors="replace").strip()[:500]
        raise CheckError(
            f"the notify command exited with status {completed.returncode}: {command}"
            + (f": {stderr}" if stderr else ""),
            hint="run the command by hand with a report on standard input to see why",
        )


def render_table(report: Report, console: object | None = None, show_ok: bool = True) -> None:
    """Print the findings as a rich table, failures first."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(emoji=False)
    table = Table(title=f"provisioner check: {report.status}", show_lines=False)
    for column in ("status", "check", "zone", "subject", "server", "message"):
        table.add_column(column, overflow="fold")
    style = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "bold red"}
    order = {Status.FAIL: 0, Status.WARN: 1, Status.OK: 2}
    for finding in sorted(report.findings, key=lambda f: order[f.status]):
        if finding.status == Status.OK and not show_ok:
            continue
        message = finding.message
        if finding.hint and finding.status != Status.OK:
            message += f"\nfix: {finding.hint}"
        table.add_row(
            f"[{style[finding.status]}]{finding.status}[/]",
            finding.check,
            finding.zone,
            finding.subject,
            finding.server or "",
            message,
        )
    console.print(table)  # type: ignore[attr-defined]
    counts = report.counts()
    console.print(  # type: ignore[attr-defined]
        f"{counts['ok']} ok, {counts['warn']} warn, {counts['fail']} fail"
    )
