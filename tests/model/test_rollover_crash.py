"""Kill the run (SIGKILL in a forked child) after every persisted step and resume it.

The resumed rollovers must still pass the cache model, lose no key, and do no step twice:
each step is applied once, keys and certificates are made once, the MTA is deployed once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from model.driver import simulate
from model.test_rollover_model import check, final_rollover, spec_options
from model.world import CHILD, SECONDS, skip_unless_verifier_allows
from provisioner.spec.loader import load_spec
from provisioner.store.local import LocalStore

KINDS = ["zsk", "ksk-double-ds", "ksk-double-ksk", "csk", "algorithm", "mx", "smime"]


@pytest.mark.parametrize("kind", KINDS)
def test_rollover_survives_kill(tmp_path: Path, kind: str) -> None:
    skip_unless_verifier_allows(kind)
    outcome = simulate(tmp_path, SECONDS, kind, crash=True, **spec_options(kind))
    record = final_rollover(outcome)
    data = record["data"]
    assert outcome.crashes >= len(data["steps"])
    assert data["status"] == "complete"

    applied = [event["step"] for event in data["history"] if event["event"] == "applied"]
    assert sorted(applied) == list(range(len(data["steps"])))

    spec = load_spec(outcome.spec_path)
    with LocalStore(spec.state_dir()) as store:
        if kind in ("mx", "smime"):
            purpose = "server" if kind == "mx" else "smime"
            made = [c for c in store.certificates(purpose=purpose) if c.data.get("rollover")]
            assert len(made) == 1
        else:
            keys = store.keys(purpose="dnssec", owner=CHILD)
            made = [k for k in keys if k.data.get("rollover") == record["id"]]
            assert len(made) == len(data["roles"])
            for key in keys:
                assert store.key_path(key.id).exists()
                store.load_key_pem(key.id)
    if kind == "mx":
        assert outcome.world.deploys == 1
    check(outcome, SECONDS)
