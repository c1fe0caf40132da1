"""apply killed by SIGKILL at every checkpoint never leaves a damaged store or zone file.

PROVISIONER_FAULT_AFTER=N makes the process kill itself at its Nth checkpoint (inside every
atomic write and around store commits), so each run below dies at a different point.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

from provisioner.zone.model import ZoneData
from tests.conftest import require_tool

ZONES = ("example.com", "example.net")


def _apply(spec: Path, fault_after: int | None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("PROVISIONER_FAULT_AFTER", None)
    if fault_after is not None:
        env["PROVISIONER_FAULT_AFTER"] = str(fault_after)
    return subprocess.run(
        [sys.executable, "-m", "provisioner", "-q", "apply", str(spec)],
        cwd=spec.parent,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def _check_consistent(folder: Path) -> None:
    state = folder / ".provisioner"
    for name in ZONES:
        path = folder / "out" / "zones" / f"{name}.zone"
        if path.exists():
            ZoneData.from_text(path.read_text(), name)
            checked = subprocess.run(
                ["named-checkzone", "-q", name, str(path)], capture_output=True
            )
            assert checked.returncode == 0, f"half-written zone file {path}"

    keys = state / "keys"
    if keys.exists():
        for key in keys.iterdir():
            assert stat.S_IMODE(key.stat().st_mode) == 0o600, f"loose permissions on {key}"

    database = state / "state.db"
    if database.exists():
        with sqlite3.connect(database) as db:
            rows = db.execute("SELECT id, key_id FROM certificates").fetchall()
        for cert_id, key_id in rows:
            if key_id is not None:
                assert (keys / f"{key_id}.pem").exists(), f"certificate {cert_id} lost its key"


def _count_checkpoints(spec: Path) -> int:
    """Return how many checkpoints a clean first apply passes, by bisecting on the fault."""
    low, high = 1, 4096
    while low < high:
        middle = (low + high) // 2
        probe_dir = spec.parent
        result = _apply(spec, middle)
        _reset(probe_dir)
        if result.returncode == -signal.SIGKILL:
            low = middle + 1
        else:
            high = middle
    return low


def _reset(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder / ".provisioner", ignore_errors=True)
    shutil.rmtree(folder / "out", ignore_errors=True)


def test_kill_at_every_checkpoint(example: Path) -> None:
    require_tool("named-checkzone")
    total = _count_checkpoints(example)
    assert total > 20
    step = max(1, total // 20)
    killed = 0
    for point in range(1, total, step):
        result = _apply(example, point)
        assert result.returncode == -signal.SIGKILL, result.stderr
        killed += 1
        _check_consistent(example.parent)

        resumed = _apply(example, None)
        assert resumed.returncode == 0, resumed.stderr
        _check_consistent(example.parent)
        _reset(example.parent)
    assert killed >= 15


def test_repeated_kills_then_resume(example: Path) -> None:
    require_tool("named-checkzone", "dnssec-verify")
    # Each run dies a little later in its own work; the store carries over between runs.
    for point in (3, 5, 8, 13, 21, 34, 55):
        _apply(example, point)
        _check_consistent(example.parent)
    final = _apply(example, None)
    assert final.returncode == 0, final.stderr
    for name in ZONES:
        path = example.parent / "out" / "zones" / f"{name}.zone"
        verified = subprocess.run(
            ["dnssec-verify", "-o", name, str(path)], capture_output=True, text=True
        )
        assert verified.returncode == 0, verified.stderr
