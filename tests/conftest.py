"""Fixtures shared by every test: running the CLI, copying the example, finding tools."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "nccoe"


def run_provisioner(
    *args: str | Path,
    cwd: Path | None = None,
    check: bool = False,
    env: dict | None = None,
    input: str | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run the provisioner command in a subprocess, as a user would."""
    result = subprocess.run(
        [sys.executable, "-m", "provisioner", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        input=input,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"provisioner {' '.join(map(str, args))} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_provisioner


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A fresh copy of examples/nccoe without any state; returns the spec path."""
    target = tmp_path / "nccoe"
    shutil.copytree(
        EXAMPLE, target, ignore=shutil.ignore_patterns("out", ".provisioner", "__pycache__")
    )
    return target / "provisioner.yaml"


def require_tool(*names: str) -> None:
    """Skip the test when a program it needs is not installed."""
    for name in names:
        if shutil.which(name) is None:
            pytest.skip(f"{name} is not installed (Debian packages: see the Makefile)")
