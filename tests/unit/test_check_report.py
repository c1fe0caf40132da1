"""Report rendering: JSON format, Prometheus textfile, exit status and the notify command."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from rich.console import Console

from provisioner.check.report import (
    REPORT_VERSION,
    Finding,
    Report,
    Status,
    notify,
    prometheus_text,
    render_table,
    write_prometheus,
)
from provisioner.errors import CheckError

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)


def make_report(*statuses: Status) -> Report:
    report = Report(NOW)
    for index, status in enumerate(statuses):
        report.add(
            Finding(
                check="smtp.dane",
                status=status,
                zone="example.org.",
                subject=f"_25._tcp.mx{index}.example.org. TLSA",
                message=f'message "{index}"',
                hint="fix it",
                server=f"192.0.2.{index}:25",
            )
        )
    return report


def test_exit_code_ok_and_warn() -> None:
    assert make_report().exit_code == 0
    assert make_report(Status.OK, Status.WARN).exit_code == 0
    assert make_report(Status.OK, Status.WARN).status == Status.WARN


def test_exit_code_fail() -> None:
    report = make_report(Status.OK, Status.FAIL, Status.WARN)
    assert report.exit_code == 1
    assert report.status == Status.FAIL


def test_json_format() -> None:
    report = make_report(Status.OK, Status.FAIL)
    report.gauge("provisioner_check_rrsig_expiry_days", 3.5, zone="example.org.")
    document = json.loads(report.to_json())
    assert document["version"] == REPORT_VERSION
    assert document["generated_at"] == "2026-12-04T12:00:00Z"
    assert document["status"] == "fail"
    assert document["summary"] == {"ok": 1, "warn": 0, "fail": 1}
    assert set(document["findings"][0]) == {
        "check",
        "status",
        "zone",
        "server",
        "subject",
        "message",
        "hint",
    }
    assert document["metrics"] == [
        {
            "name": "provisioner_check_rrsig_expiry_days",
            "labels": {"zone": "example.org."},
            "value": 3.5,
        }
    ]


def test_prometheus_text() -> None:
    report = make_report(Status.OK, Status.FAIL)
    report.gauge("provisioner_check_certificate_expiry_days", -1.25, subject='a"b\\c')
    text = prometheus_text(report)
    assert "# TYPE provisioner_check_status gauge" in text
    assert (
        'provisioner_check_status{check="smtp.dane",server="192.0.2.1:25",'
        'subject="_25._tcp.mx1.example.org. TLSA",zone="example.org."} 2'
    ) in text
    assert 'provisioner_check_certificate_expiry_days{subject="a\\"b\\\\c"} -1.2500' in text
    assert 'provisioner_check_findings{status="fail"} 1' in text
    assert f"provisioner_check_last_run_timestamp_seconds {int(NOW.timestamp())}" in text


def test_prometheus_duplicate_series_keeps_worst() -> None:
    report = make_report(Status.OK)
    failed = make_report(Status.FAIL).findings[0]
    report.add(failed)
    text = prometheus_text(report)
    assert text.count("provisioner_check_status{") == 1
    assert 'zone="example.org."} 2' in text


def test_write_prometheus_atomic(tmp_path: Path) -> None:
    target = tmp_path / "textfile" / "provisioner.prom"
    write_prometheus(make_report(Status.OK), target)
    assert target.read_text().startswith("# HELP")
    assert [p.name for p in target.parent.iterdir()] == ["provisioner.prom"]


def test_notify_receives_json(tmp_path: Path) -> None:
    received = tmp_path / "received.json"
    notify(make_report(Status.FAIL), f"cat > {received}")
    assert json.loads(received.read_text())["status"] == "fail"


def test_notify_failure_raises() -> None:
    with pytest.raises(CheckError, match="exited with status 3"):
        notify(make_report(Status.FAIL), "cat >/dev/null; echo broken >&2; exit 3")


def test_render_table_lists_failures_first() -> None:
    console = Console(record=True, width=200)
    render_table(make_report(Status.OK, Status.FAIL), console)
    text = console.export_text()
    assert text.index("fail") < text.index("mx0")
    assert "fix: fix it" in text
    assert "1 ok, 0 warn, 1 fail" in text
