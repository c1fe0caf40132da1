"""Faults on the way to an RFC 2136 primary: each gives its own error and exit status 1,
leaves the state store as it was, and the next apply after the fault is removed converges.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provisioner.backends.rfc2136 import transport
from provisioner.cli.main import app
from tests.conftest import require_tool
from tests.integration.dnsservers import TsigKeyConfig, ZoneConfig, start_knot
from tests.integration.test_rfc2136_apply import MODES, Setup, start_setup

pytestmark = pytest.mark.servers


@pytest.fixture
def knot_setup(tmp_path: Path) -> Iterator[Setup]:
    with start_setup(tmp_path, MODES[1]) as started:
        yield started


def store_snapshot(setup: Setup) -> dict[str, list[tuple]]:
    """Return the store's rows that a publication writes: zones, owned RRsets, certificates."""
    database = setup.spec_path.parent / "state" / "state.db"
    with sqlite3.connect(database) as db:
        return {
            table: sorted(db.execute(f"SELECT * FROM {table}").fetchall())
            for table in ("zones", "owned", "certificates")
        }


def cli_apply(setup: Setup) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["apply", str(setup.spec_path)])
    return result.exit_code, result.output


def prepare_fault(setup: Setup) -> dict[str, list[tuple]]:
    """Publish once, then change the spec so that the next apply has work to do."""
    code, output = cli_apply(setup)
    assert code == 0, output
    setup.write_spec(records=["{name: www, type: A, value: 192.0.2.30}"])
    return store_snapshot(setup)


def assert_converges(setup: Setup) -> None:
    code, output = cli_apply(setup)
    assert code == 0, output
    answer = setup.server.query("www.example.test.", "A", tcp=True).answer
    assert {r.address for r in answer[0]} == {"192.0.2.30"}
    code, output = cli_apply(setup)
    assert code == 0, output
    assert "no changes" in output


def test_wrong_secret(knot_setup: Setup) -> None:
    before = prepare_fault(knot_setup)
    wrong = TsigKeyConfig.generate(knot_setup.key.name)
    wrong.write_key_file(knot_setup.spec_path.parent / "keys" / "wrong.key")
    knot_setup.write_spec(
        records=["{name: www, type: A, value: 192.0.2.30}"], key_file="keys/wrong.key"
    )

    code, output = cli_apply(knot_setup)
    assert code == 1
    assert "BADSIG" in output
    assert "secret differs" in output
    assert wrong.secret not in output
    assert store_snapshot(knot_setup) == before

    knot_setup.write_spec(records=["{name: www, type: A, value: 192.0.2.30}"])
    assert_converges(knot_setup)


def test_unknown_key_name(knot_setup: Setup) -> None:
    before = prepare_fault(knot_setup)
    TsigKeyConfig.generate("not-on-server").write_key_file(
        knot_setup.spec_path.parent / "keys" / "unknown.key"
    )
    knot_setup.write_spec(
        records=["{name: www, type: A, value: 192.0.2.30}"], key_file="keys/unknown.key"
    )

    code, output = cli_apply(knot_setup)
    assert code == 1
    assert "does not know the TSIG key not-on-server" in output
    assert "BADKEY" in output
    assert store_snapshot(knot_setup) == before

    knot_setup.write_spec(records=["{name: www, type: A, value: 192.0.2.30}"])
    assert_converges(knot_setup)


def test_zone_not_served(knot_setup: Setup, tmp_path: Path) -> None:
    before = prepare_fault(knot_setup)
    other = start_knot(
        tmp_path / "other",
        zones=[ZoneConfig("other.test.", update_key=knot_setup.key.name)],
        keys=[knot_setup.key],
    )
    try:
        knot_setup.write_spec(records=["{name: www, type: A, value: 192.0.2.30}"], port=other.port)
        code, output = cli_apply(knot_setup)
    finally:
        other.stop()
    assert code == 1
    assert "is not authoritative for zone example.test." in output
    assert store_snapshot(knot_setup) == before

    knot_setup.write_spec(records=["{name: www, type: A, value: 192.0.2.30}"])
    assert_converges(knot_setup)


def test_server_down(knot_setup: Setup, tmp_path: Path) -> None:
    before = prepare_fault(knot_setup)
    knot_setup.server.stop()

    code, output = cli_apply(knot_setup)
    assert code == 1
    assert "connection refused" in output
    assert "start the DNS server" in output
    assert store_snapshot(knot_setup) == before

    restarted = start_knot(
        knot_setup.server.directory,
        zones=knot_setup.server.zones,
        keys=list(knot_setup.server.keys.values()),
        port=knot_setup.server.port,
    )
    knot_setup.server = restarted
    try:
        assert_converges(knot_setup)
    finally:
        restarted.stop()


def test_update_refused_for_transfer_only_key(tmp_path: Path) -> None:
    with start_setup(tmp_path, MODES[1]) as setup:
        prepare_fault(setup)
        setup.server.stop()
        reader = TsigKeyConfig.generate("reader")
        zone = setup.server.zones[0]
        zone.update_key = reader.name
        zone.transfer_key = setup.key.name
        # The reader key may update; the spec's key may only transfer.
        server = start_knot(
            setup.server.directory,
            zones=[zone],
            keys=[setup.key, reader],
            port=setup.server.port,
        )
        try:
            code, output = cli_apply(setup)
            assert code == 1
            # Knot responds BADKEY to a key that its acl does not allow (BIND: REFUSED).
            assert "UPDATE of zone example.test." in output
            assert "BADKEY" in output
        finally:
            server.stop()


def concurrent_edit(setup: Setup, monkeypatch: pytest.MonkeyPatch, *lines: str) -> None:
    """Make a hand edit right before provisioner's first UPDATE reaches the server."""
    original = transport.Transport.send_update
    done: list[bool] = []

    def edit_first(self: transport.Transport, message) -> None:
        if not done:
            done.append(True)
            setup.update(*lines)
        original(self, message)

    monkeypatch.setattr(transport.Transport, "send_update", edit_first)


def test_concurrent_edit_of_owned_rrset(knot_setup: Setup, monkeypatch) -> None:
    before = prepare_fault(knot_setup)
    concurrent_edit(
        knot_setup,
        monkeypatch,
        "update delete www.example.test. A",
        "update add www.example.test. 300 A 192.0.2.77",
    )

    code, output = cli_apply(knot_setup)
    assert code == 1
    assert "changed by someone else during apply" in output
    assert "www.example.test. A" in output
    assert store_snapshot(knot_setup) == before

    monkeypatch.undo()
    assert_converges(knot_setup)


def test_concurrent_edit_elsewhere_is_replanned(knot_setup: Setup, monkeypatch) -> None:
    prepare_fault(knot_setup)
    concurrent_edit(knot_setup, monkeypatch, 'update add other.example.test. 300 TXT "hand"')

    code, output = cli_apply(knot_setup)
    assert code == 0, output
    served = knot_setup.server.query("www.example.test.", "A", tcp=True).answer[0]
    assert {r.address for r in served} == {"192.0.2.30"}
    assert knot_setup.server.query("other.example.test.", "TXT", tcp=True).answer


def test_clock_skew_is_badtime(knot_setup: Setup) -> None:
    require_tool("faketime")
    before = prepare_fault(knot_setup)

    skewed = subprocess.run(
        ["faketime", "-f", "+2h", sys.executable, "-m", "provisioner", "apply"]
        + [str(knot_setup.spec_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert skewed.returncode == 1
    assert "BADTIME" in skewed.stdout + skewed.stderr
    assert "synchronise both clocks" in skewed.stdout + skewed.stderr
    assert store_snapshot(knot_setup) == before
    assert_converges(knot_setup)


def test_edit_between_messages_is_detected(knot_setup: Setup, monkeypatch, caplog) -> None:
    knot_setup.run()
    strings = " ".join(f'\\"{letter * 240}\\"' for letter in "xyz")
    large = [f'{{name: t{index}, type: TXT, value: "{strings}"}}' for index in range(120)]
    knot_setup.write_spec(records=large)
    original = transport.Transport.send_update
    sent: list[bool] = []

    def edit_after_first(self: transport.Transport, message) -> None:
        if len(sent) == 1:
            knot_setup.update('update add other.example.test. 300 TXT "between messages"')
        sent.append(True)
        original(self, message)

    monkeypatch.setattr(transport.Transport, "send_update", edit_after_first)
    result = knot_setup.run()

    assert len(sent) >= 3, "the retried message was not sent again"
    assert "did not have the expected SOA serial" in caplog.text
    assert knot_setup.server.query("other.example.test.", "TXT", tcp=True).answer
    served = result.zones[0].backend.read()
    assert served is not None
    for key in result.zones[0].desired.rrsets:
        if key[1].name != "SOA":
            assert key in served.rrsets
