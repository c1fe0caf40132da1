"""The local state store: look-ups by owner use indexes, and its folders are private."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from provisioner.store.local import LocalStore


def _plan(store: LocalStore, query: str) -> str:
    rows = store.db.execute("EXPLAIN QUERY PLAN " + query, ("user@example.org",)).fetchall()
    return " ".join(str(row[-1]) for row in rows)


def test_certificate_lookup_uses_index(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "state") as store:
        plan = _plan(store, "SELECT id FROM certificates WHERE owner=? AND purpose='smime'")
    assert "certificates_by_owner" in plan


def test_key_lookup_uses_index(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "state") as store:
        plan = _plan(store, "SELECT id FROM keys WHERE owner=? AND purpose='smime'")
    assert "keys_by_owner" in plan


def test_new_store_folder_is_private_under_any_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        with LocalStore(tmp_path / "state"):
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "state" / "keys").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "state" / "files").stat().st_mode) == 0o755
