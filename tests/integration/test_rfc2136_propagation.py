"""apply --wait: every name server of the zone serves the new serial, or the laggard is named."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from provisioner.clock import ManualClock
from provisioner.errors import BackendError
from provisioner.spec.loader import load_spec
from provisioner.store.local import LocalStore
from provisioner.workflows.apply import apply
from provisioner.workflows.propagation import wait_for_zones
from tests.integration.dnsservers import ZoneConfig, free_port, start_knot
from tests.integration.test_rfc2136_apply import MODES, TLSA_OWNER, Setup, start_setup

pytestmark = pytest.mark.servers

SECOND = "127.0.0.2"


def with_nameservers(setup: Setup, block: str) -> None:
    text = setup.spec_path.read_text()
    text = text.replace(
        "    nameservers:\n      - name: ns1.example.test\n        addresses: [127.0.0.1]\n",
        block,
    )
    text = text.replace(
        "      timeout: 2\n", f"      timeout: 2\n      nameserver_port: {setup.server.port}\n"
    )
    setup.spec_path.write_text(text)


def run_apply(setup: Setup):
    spec = load_spec(setup.spec_path)
    with LocalStore(spec.state_dir()) as store:
        result = apply(spec, store, ManualClock(dt.datetime.now(dt.UTC)))
    return spec, result


def test_wait_returns_when_all_serve(tmp_path: Path) -> None:
    with start_setup(tmp_path, MODES[1]) as setup:
        with_nameservers(
            setup,
            "    nameservers:\n"
            "      - name: ns1.example.test\n        addresses: [127.0.0.1]\n"
            "      - name: ns2.example.test\n        addresses: [127.0.0.1]\n",
        )
        spec, result = run_apply(setup)
        clock = ManualClock(dt.datetime.now(dt.UTC))

        served = wait_for_zones(spec, result, clock)

        serials = {answer.serial for answer in served["example.test."]}
        assert serials == {setup.server.soa_serial("example.test.")}
        assert len(served["example.test."]) == 2


def test_wait_names_lagging_server(tmp_path: Path) -> None:
    port = free_port(SECOND)
    stale = start_knot(
        tmp_path / "stale",
        zones=[ZoneConfig("example.test.")],
        address=SECOND,
        port=port,
    )
    try:
        (tmp_path / "primary").mkdir()
        with start_setup(tmp_path / "primary", MODES[1]) as setup:
            setup.server.stop()
            setup.server = start_knot(
                setup.server.directory,
                zones=setup.server.zones,
                keys=list(setup.server.keys.values()),
                port=port,
            )
            setup.write_spec()
            with_nameservers(
                setup,
                "    nameservers:\n"
                "      - name: ns1.example.test\n        addresses: [127.0.0.1]\n"
                f"      - name: ns2.example.test\n        addresses: [{SECOND}]\n",
            )
            spec, result = run_apply(setup)
            clock = ManualClock(dt.datetime.now(dt.UTC))
            started = clock.now()

            with pytest.raises(BackendError) as raised:
                wait_for_zones(spec, result, clock)

            message = str(raised.value)
            assert f"ns2.example.test. ({SECOND} port {port})" in message
            assert "still serves serial 1" in message
            assert (clock.now() - started).total_seconds() >= 120
            setup.server.stop()
    finally:
        stale.stop()


def test_cli_apply_wait(tmp_path: Path, cli) -> None:
    with start_setup(tmp_path, MODES[0]) as setup:
        with_nameservers(
            setup,
            "    nameservers:\n      - name: ns1.example.test\n        addresses: [127.0.0.1]\n",
        )

        result = cli("apply", "--wait", setup.spec_path)

        assert result.returncode == 0, result.stdout + result.stderr
        assert setup.server.query(TLSA_OWNER, "TLSA", tcp=True).answer
