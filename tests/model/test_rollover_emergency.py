"""An imported certificate replaced outside provisioner with another key: the emergency path."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dns.name

from model.cache import check_history
from model.world import CHILD, MX, PARENT, SECONDS, START, make_world, open_engine, write_spec
from provisioner.clock import ManualClock
from provisioner.pki.ca import create_self_signed_server_certificate
from provisioner.pki.encoding import certificate_to_pem
from provisioner.pki.keys import generate_private_key, private_key_to_pem
from provisioner.spec.loader import load_spec
from provisioner.store.local import LocalStore


def write_certificate(folder: Path, clock: ManualClock):  # type: ignore[no-untyped-def]
    key = generate_private_key("ecdsa-p256")
    issued = create_self_signed_server_certificate(key, [MX], clock)
    (folder / "mx.pem").write_bytes(certificate_to_pem(issued.certificate))
    (folder / "mx.key").write_bytes(private_key_to_pem(key))
    return issued.certificate


def test_replaced_import_published_at_once(tmp_path: Path) -> None:
    clock = ManualClock(START)
    first = write_certificate(tmp_path, clock)
    spec_path = write_spec(tmp_path, SECONDS, imported=True)
    world = make_world(tmp_path, SECONDS, clock)
    spec = load_spec(spec_path)
    with LocalStore(spec.state_dir()) as store:
        world.publish(spec, store, clock)
    world.present(first)
    clock.advance(60)

    # Another ACME client replaces certificate and key, and the MTA presents the new one.
    replaced_at = clock.now()
    second = write_certificate(tmp_path, clock)
    world.present(second)
    clock.advance(2)

    detected_at = clock.now()
    with LocalStore(spec.state_dir()) as store:
        engine = open_engine(spec_path, world, store)
        report = engine.run()
        assert len(report.emergencies) == 1
        assert "EMERGENCY" in report.emergencies[0]
        rollover_id = report.started[0]
        zone_text = store.last_signed_zone(CHILD)
        assert zone_text is not None
        assert zone_text.count(" IN TLSA ") == 2

    for _ in range(50):
        clock.advance(1)
        with LocalStore(spec.state_dir()) as store:
            engine = open_engine(spec_path, world, store)
            engine.run()
            record = engine.record(rollover_id)
        if record["data"]["status"] == "complete":
            break
    assert record["data"]["status"] == "complete"
    with LocalStore(spec.state_dir()) as store:
        zone_text = store.last_signed_zone(CHILD)
    assert zone_text is not None
    assert zone_text.count(" IN TLSA ") == 1

    result = check_history(
        world.publications,
        zone=CHILD,
        parent=PARENT,
        zone_lag=SECONDS.propagation,
        parent_lag=SECONDS.parent_propagation,
        until=clock.now() + dt.timedelta(seconds=60),
        dane={dns.name.from_text(f"_25._tcp.{MX}"): world.presented_at},
    )
    assert result.instants > 10
    # DANE clients fail only from the replacement until caches have dropped the old TLSA RRset.
    window_end = detected_at + dt.timedelta(seconds=SECONDS.propagation + SECONDS.tlsa_ttl)
    late = [f for f in result.failures if not replaced_at <= f.at < window_end]
    assert late == [], [f.message for f in late]
    assert any(replaced_at <= f.at < window_end for f in result.failures)
