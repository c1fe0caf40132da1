"""Engine behaviour around the steps: lifetime triggers, stuck reports, abort, deploy hooks."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.world import (  # noqa: E402
    CHILD,
    MX,
    SECONDS,
    START,
    World,
    first_apply,
    make_world,
    open_engine,
    write_spec,
)

from provisioner.clock import ManualClock  # noqa: E402
from provisioner.errors import DeployError, RolloverError  # noqa: E402
from provisioner.rollover.observe import Observation  # noqa: E402
from provisioner.spec.loader import load_spec  # noqa: E402
from provisioner.store.local import LocalStore  # noqa: E402
from provisioner.workflows.rollover import spec_deployer  # noqa: E402


def setup_world(tmp_path: Path, **options: object) -> tuple[Path, World, ManualClock]:
    clock = ManualClock(START)
    spec_path = write_spec(tmp_path, SECONDS, **options)  # type: ignore[arg-type]
    world = make_world(tmp_path, SECONDS, clock)
    first_apply(spec_path, world)
    return spec_path, world, clock


def test_zsk_lifetime_starts_rollover(tmp_path: Path) -> None:
    spec_path, world, clock = setup_world(tmp_path, zsk_lifetime=3600)
    spec = load_spec(spec_path)
    with LocalStore(spec.state_dir()) as store:
        report = open_engine(spec_path, world, store).run()
    assert report.started == []

    clock.advance(3600)
    with LocalStore(spec.state_dir()) as store:
        report = open_engine(spec_path, world, store).run()
        # Both zones of the spec have the same ZSK lifetime.
        assert len(report.started) == 2
        assert sorted(r.split("-")[1] for r in report.started) == ["example.test", "test"]
        keys = store.keys(purpose="dnssec", owner=CHILD)
    assert sum(1 for k in keys if k.data["role"] == "zsk") == 2


def test_ksk_lifetime_method_follows_parent(tmp_path: Path) -> None:
    spec_path, world, clock = setup_world(tmp_path, ksk_lifetime=3600)
    clock.advance(3600)
    spec = load_spec(spec_path)
    with LocalStore(spec.state_dir()) as store:
        engine = open_engine(spec_path, world, store)
        engine.run()
        kinds = {r["data"]["zone"]: r["kind"] for r in engine.records(active_only=True)}
    # The spec has the parent of example.test., where provisioner writes the new DS itself.
    # The root, parent of test., is not in the spec, so test. rolls its KSK by double-KSK.
    assert kinds == {CHILD: "ksk-double-ds", "test.": "ksk-double-ksk"}


def _run_for(spec_path: Path, world: World, clock: ManualClock, seconds: int) -> None:
    """Run the engine every 5 seconds of the manual clock for ``seconds``."""
    spec = load_spec(spec_path)
    for _ in range(seconds // 5):
        clock.advance(5)
        with LocalStore(spec.state_dir()) as store:
            open_engine(spec_path, world, store).run()


class ParentWithoutDs(World):
    """A world whose parent never serves the new DS RRset."""

    def parent_serves_ds(self, zone, parent, expected):  # type: ignore[no-untyped-def]
        return Observation(False, f"the parent does not serve the new DS RRset of {zone.name}")


def test_status_reports_stuck_ds(tmp_path: Path) -> None:
    clock = ManualClock(START)
    spec_path = write_spec(tmp_path, SECONDS)
    world = ParentWithoutDs(tmp_path, clock, {"test.": 3, CHILD: 2})
    first_apply(spec_path, world)
    spec = load_spec(spec_path)
    with LocalStore(spec.state_dir()) as store:
        engine = open_engine(spec_path, world, store)
        engine.start_dnssec(CHILD, "ksk", method="double-ksk")
    _run_for(spec_path, world, clock, seconds=100)
    clock.advance(2 * 3600)
    with LocalStore(spec.state_dir()) as store:
        status = open_engine(spec_path, world, store).status()[0]
    assert status.step == "swap-ds"
    assert status.next_step_at is None
    assert status.stuck is not None
    assert "does not serve the new DS RRset" in status.stuck


class RootNotInSpec(World):
    """A world whose zone test. has a parent (the root) that provisioner cannot query."""

    def parent_serves_ds(self, zone, parent, expected):  # type: ignore[no-untyped-def]
        if parent is None:
            return Observation(False, f"cannot check the DS RRset of {zone.name}")
        return super().parent_serves_ds(zone, parent, expected)


def test_confirm_ds_lets_rollover_finish(tmp_path: Path) -> None:
    clock = ManualClock(START)
    spec_path = write_spec(tmp_path, SECONDS)
    world = RootNotInSpec(tmp_path, clock, {"test.": 3, CHILD: 2})
    first_apply(spec_path, world)
    spec = load_spec(spec_path)
    with LocalStore(spec.state_dir()) as store:
        engine = open_engine(spec_path, world, store)
        rollover_id = engine.start_dnssec("test.", "ksk")
        with pytest.raises(RolloverError, match="nothing to confirm"):
            engine.confirm_ds(rollover_id)
    _run_for(spec_path, world, clock, seconds=200)
    with LocalStore(spec.state_dir()) as store:
        engine = open_engine(spec_path, world, store)
        status = engine.status()[0]
        assert status.kind == "ksk-double-ksk"
        assert status.step == "swap-ds"
        assert status.next_step_at is None
        message = engine.confirm_ds(rollover_id)
    assert message.startswith("recorded that the parent of test. serves key tag")
    _run_for(spec_path, world, clock, seconds=200)
    with LocalStore(spec.state_dir()) as store:
        record = open_engine(spec_path, world, store).record(rollover_id)
    assert record["data"]["status"] == "complete"


def test_confirm_ds_refused_when_parent_is_checked(tmp_path: Path) -> None:
    spec_path, world, clock = setup_world(tmp_path)
    spec = load_spec(spec_path)
    with LocalStore(spec.state_dir()) as store:
        engine = open_engine(spec_path, world, store)
        rollover_id = engine.start_dnssec(CHILD, "ksk")
        with pytest.raises(RolloverError, match="checks its DS RRset"):
            engine.confirm_ds(rollover_id)


def test_abort_refused_after_first_step(tmp_path: Path) -> None:
    spec_path, world, clock = setup_world(tmp_path)
    spec = load_spec(spec_path)
    with LocalStore(spec.state_dir()) as store:
        rollover_id = open_engine(spec_path, world, store).start_dnssec(CHILD, "zsk")
    for _ in range(30):
        clock.advance(2)
        with LocalStore(spec.state_dir()) as store:
            engine = open_engine(spec_path, world, store)
            engine.run()
            step = engine.record(rollover_id)["data"]["step"]
        if step >= 1:
            break
    with LocalStore(spec.state_dir()) as store:
        engine = open_engine(spec_path, world, store)
        with pytest.raises(RolloverError, match="cannot be backed out safely"):
            engine.abort(rollover_id)


def test_abort_first_step_withdraws_keys(tmp_path: Path) -> None:
    spec_path, world, clock = setup_world(tmp_path)
    spec = load_spec(spec_path)
    with LocalStore(spec.state_dir()) as store:
        engine = open_engine(spec_path, world, store)
        rollover_id = engine.start_dnssec(CHILD, "zsk")
        assert "aborted" in engine.abort(rollover_id)
        new = engine.record(rollover_id)["data"]["new"]
        for key_id in new:
            key = store.key(key_id)
            assert key is not None
            assert key.data["state"] == "removed"
            assert key.data["publish"] is False
        zone_text = store.last_signed_zone(CHILD)
    assert zone_text is not None
    assert zone_text.count(" IN DNSKEY ") == 2


def test_deploy_command_gets_certificate(tmp_path: Path) -> None:
    command = '["sh", "-c", "echo $PROVISIONER_HOST $PROVISIONER_CERTIFICATE_ID > deployed.txt"]'
    spec_path, world, clock = setup_world(tmp_path, deploy_command=command)
    spec = load_spec(spec_path)
    with LocalStore(spec.state_dir()) as store:
        record = store.current_certificate("server", MX)
        assert record is not None
        spec_deployer(spec, store, spec.mail_servers[0], record)
    written = (tmp_path / "deployed.txt").read_text().split()
    assert written == [MX.rstrip("."), record.id]


def test_deploy_command_failure_raises(tmp_path: Path) -> None:
    spec_path, world, clock = setup_world(tmp_path, deploy_command='["false"]')
    spec = load_spec(spec_path)
    with LocalStore(spec.state_dir()) as store:
        record = store.current_certificate("server", MX)
        assert record is not None
        with pytest.raises(DeployError, match="exit code 1"):
            spec_deployer(spec, store, spec.mail_servers[0], record)


def test_status_gives_next_step_time(tmp_path: Path) -> None:
    spec_path, world, clock = setup_world(tmp_path)
    spec = load_spec(spec_path)
    with LocalStore(spec.state_dir()) as store:
        open_engine(spec_path, world, store).start_mx(MX)
    clock.advance(SECONDS.propagation)
    with LocalStore(spec.state_dir()) as store:
        engine = open_engine(spec_path, world, store)
        engine.run()
        status = engine.status()[0]
    assert status.step == "publish-next"
    assert status.next_step_at is not None
    assert status.next_step_at > clock.now()
    assert status.next_step_at - clock.now() <= dt.timedelta(seconds=2 * SECONDS.tlsa_ttl)
    assert "2 x TTL" in status.waiting_for


def test_algorithm_change_in_spec_is_due(tmp_path: Path) -> None:
    from provisioner.rollover.triggers import due_rollovers

    spec_path, world, clock = setup_world(tmp_path)
    text = spec_path.read_text().replace("algorithm: 13,", "algorithm: 15,")
    spec_path.write_text(text)
    spec = load_spec(spec_path)
    with LocalStore(spec.state_dir()) as store:
        due = due_rollovers(open_engine(spec_path, world, store))
    assert sorted(due) == [(CHILD, "algorithm", 15), ("test.", "algorithm", 15)]
