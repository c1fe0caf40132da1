"""Replay every rollover kind against the resolver-cache model: zero failing instants."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dns.name
import pytest

from model.cache import check_history
from model.driver import Outcome, simulate
from model.world import (
    CHILD,
    DAYS,
    HOURS,
    MX,
    PARENT,
    SECONDS,
    USER,
    Timings,
    skip_unless_verifier_allows,
)
from provisioner.dane.smimea import smimea_owner
from provisioner.pki.encoding import load_certificates
from provisioner.spec.loader import load_spec
from provisioner.store.local import LocalStore

KINDS = ["zsk", "ksk-double-ds", "ksk-double-ksk", "csk", "algorithm", "mx", "smime"]


def spec_options(kind: str) -> dict[str, str]:
    return {"layout": "csk"} if kind == "csk" else {}


def user_certificate_at(outcome: Outcome):  # type: ignore[no-untyped-def]
    """The certificate the user signs with at each moment: current after each status change."""
    spec = load_spec(outcome.spec_path)
    with LocalStore(spec.state_dir()) as store:
        records = store.certificates(purpose="smime", owner=USER)
        rollovers = store.rollovers()
        certificates = {r.id: load_certificates(store.read_certificate(r.id))[0] for r in records}
    switches = []
    for rollover in rollovers:
        data = rollover["data"]
        for event in data["history"]:
            if event["event"] == "started" and event["name"] == "switch-new":
                switches.append((dt.datetime.fromisoformat(event["at"]), data["new"][0]))
    first = [r for r in records if r.data.get("rollover") is None][0].id

    def presented(moment: dt.datetime):  # type: ignore[no-untyped-def]
        chosen = first
        for at, cert_id in switches:
            if at <= moment:
                chosen = cert_id
        return certificates[chosen]

    return presented


def check(outcome: Outcome, timings: Timings) -> None:
    world = outcome.world
    until = outcome.finished + dt.timedelta(seconds=3 * max(timings.ds_ttl, timings.tlsa_ttl))
    result = check_history(
        world.publications,
        zone=CHILD,
        parent=PARENT,
        zone_lag=timings.propagation,
        parent_lag=timings.parent_propagation,
        until=until,
        dane={
            dns.name.from_text(f"_25._tcp.{MX}"): world.presented_at,
            smimea_owner(USER): user_certificate_at(outcome),
        },
    )
    assert result.instants > 10
    assert result.failures == [], result.describe()


def final_rollover(outcome: Outcome) -> dict:  # type: ignore[type-arg]
    spec = load_spec(outcome.spec_path)
    with LocalStore(spec.state_dir()) as store:
        return [r for r in store.rollovers() if r["id"] == outcome.rollover_id][0]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("timings", [SECONDS, HOURS, DAYS], ids=lambda t: t.name)
def test_rollover_kind_model(tmp_path: Path, kind: str, timings: Timings) -> None:
    skip_unless_verifier_allows(kind)
    outcome = simulate(tmp_path, timings, kind, **spec_options(kind))
    record = final_rollover(outcome)
    assert record["data"]["status"] == "complete"
    check(outcome, timings)


@pytest.mark.parametrize("kind", ["zsk", "ksk-double-ds", "algorithm"])
def test_rollover_nsec3_model(tmp_path: Path, kind: str) -> None:
    skip_unless_verifier_allows(kind)
    outcome = simulate(tmp_path, SECONDS, kind, denial="nsec3")
    check(outcome, SECONDS)


def test_model_catches_hasty_zsk_rollover(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the waits removed, the model must report bogus instants: it can fail."""
    import dataclasses

    from provisioner.rollover import machines
    from provisioner.rollover.timing import NO_WAIT

    original = machines.zsk_steps

    def hasty(policy, times):  # type: ignore[no-untyped-def]
        return [dataclasses.replace(step, wait=NO_WAIT) for step in original(policy, times)]

    monkeypatch.setattr(machines, "zsk_steps", hasty)
    outcome = simulate(tmp_path, HOURS, "zsk")
    world = outcome.world
    result = check_history(
        world.publications,
        zone=CHILD,
        parent=PARENT,
        zone_lag=HOURS.propagation,
        parent_lag=HOURS.parent_propagation,
        until=outcome.finished + dt.timedelta(days=2),
        dane={},
    )
    assert result.failures
