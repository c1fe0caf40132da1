"""The state store finds certificates and keys by owner through an index, not a table scan."""

from __future__ import annotations

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
