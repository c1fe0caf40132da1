"""write_atomic: fsync calls for durable files, none for exported copies; the mode is exact."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from provisioner.store import atomic


def _count_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(atomic.os, "fsync", counting)
    return calls


def test_durable_write_syncs_file_and_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_fsyncs(monkeypatch)
    atomic.write_private(tmp_path / "new" / "key.pem", b"secret")
    assert len(calls) == 2
    assert (tmp_path / "new" / "key.pem").read_bytes() == b"secret"
    assert stat.S_IMODE((tmp_path / "new" / "key.pem").stat().st_mode) == 0o600


def test_copy_write_skips_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_fsyncs(monkeypatch)
    atomic.write_atomic(tmp_path / "cert.pem", "one", durable=False)
    atomic.write_atomic(tmp_path / "cert.pem", "two", durable=False)
    assert calls == []
    assert (tmp_path / "cert.pem").read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["cert.pem"]
