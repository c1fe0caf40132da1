"""The rollover commands, run in-process on a spec whose name servers are not running.

Nothing answers on 127.0.0.1:53 here, so each rollover stops after its first step and
``status`` explains what it waits for.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.world import SECONDS, write_spec  # noqa: E402

from provisioner.cli.main import app  # noqa: E402

runner = CliRunner()


@pytest.fixture
def spec_path(tmp_path: Path) -> Path:
    path = write_spec(tmp_path, SECONDS)
    result = runner.invoke(app, ["apply", str(path)])
    assert result.exit_code == 0, result.output
    return path


def invoke(*args: str) -> object:
    return runner.invoke(app, ["rollover", *args])


def status_json(spec_path: Path) -> list[dict]:  # type: ignore[type-arg]
    result = invoke("status", str(spec_path), "--json")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    return json.loads(result.stdout)["rollovers"]  # type: ignore[attr-defined]


def test_start_zsk_then_status(spec_path: Path) -> None:
    result = invoke(
        "start", str(spec_path), "--zone", "example.test", "--key", "zsk", "--dns-port", "9"
    )
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    rollovers = status_json(spec_path)
    assert len(rollovers) == 1
    assert rollovers[0]["kind"] == "zsk"
    assert rollovers[0]["step"] == "publish-new"
    assert "name server" in rollovers[0]["waiting_for"]


def test_ksk_method_default_follows_parent(spec_path: Path) -> None:
    # The spec has test. and its child example.test., but not the root.
    for zone in ("example.test", "test"):
        result = invoke("start", str(spec_path), "--zone", zone, "--key", "ksk", "--dns-port", "9")
        assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    kinds = {r["subject"]: r["kind"] for r in status_json(spec_path)}
    assert kinds == {"example.test.": "ksk-double-ds", "test.": "ksk-double-ksk"}


def test_confirm_ds_rejected_for_checked_parent(spec_path: Path) -> None:
    invoke("start", str(spec_path), "--zone", "example.test", "--key", "ksk", "--dns-port", "9")
    rollover_id = status_json(spec_path)[0]["id"]
    result = invoke("confirm-ds", str(spec_path), rollover_id)
    assert result.exit_code == 1  # type: ignore[attr-defined]
    assert "checks its DS RRset" in result.output  # type: ignore[attr-defined]


def test_second_rollover_of_zone_rejected(spec_path: Path) -> None:
    invoke("start", str(spec_path), "--zone", "example.test", "--key", "zsk")
    result = invoke("start", str(spec_path), "--zone", "example.test", "--key", "ksk")
    assert result.exit_code == 1  # type: ignore[attr-defined]
    assert "already running" in result.output  # type: ignore[attr-defined]


def test_start_needs_one_subject(spec_path: Path) -> None:
    result = invoke("start", str(spec_path))
    assert result.exit_code == 1  # type: ignore[attr-defined]
    assert "exactly one" in result.output  # type: ignore[attr-defined]


def test_abort_after_first_step(spec_path: Path) -> None:
    invoke("start", str(spec_path), "--mx", "mx1.example.test")
    rollover_id = status_json(spec_path)[0]["id"]
    result = invoke("abort", str(spec_path), rollover_id)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert status_json(spec_path)[0]["state"] == "aborted"
    zone_text = (spec_path.parent / "zones" / "example.test.zone").read_text()
    assert zone_text.count(" IN TLSA ") == 1


def test_timeline_writes_svg(spec_path: Path, tmp_path: Path) -> None:
    invoke(
        "start", str(spec_path), "--zone", "example.test", "--key", "ksk", "--method", "double-ksk"
    )
    rollover_id = status_json(spec_path)[0]["id"]
    target = tmp_path / "plan.svg"
    result = invoke("timeline", str(spec_path), rollover_id, "--output", str(target))
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    svg = target.read_text()
    assert svg.startswith("<svg")
    for step in ("publish-new", "swap-ds", "remove-old"):
        assert step in svg


def test_unknown_rollover_for_timeline(spec_path: Path, tmp_path: Path) -> None:
    result = invoke("timeline", str(spec_path), "nope", "--output", str(tmp_path / "x.svg"))
    assert result.exit_code == 1  # type: ignore[attr-defined]
    assert "not found" in result.output  # type: ignore[attr-defined]
