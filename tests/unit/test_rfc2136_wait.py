"""wait_for_zones with a stand-in for the SOA queries and a manual clock."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import dns.name
import pytest

from provisioner.clock import ManualClock
from provisioner.errors import BackendError
from provisioner.spec.loader import load_spec_text
from provisioner.workflows.apply import PreparedZone, RunResult
from provisioner.workflows.propagation import (
    NameServerAddress,
    ServedSerial,
    nameserver_addresses,
    serial_at_least,
    wait_for_zones,
)
from provisioner.zone.model import ZoneData
from provisioner.zone.plan import ZonePlan

SPEC = """
version: 1
zones:
  - name: example.test
    nameservers:
      - {name: ns1.example.test, addresses: [127.0.0.1]}
      - {name: ns2.example.test, addresses: [127.0.0.2]}
    publish:
      backend: rfc2136
      server: 127.0.0.1
      tsig: {name: k, secret_env: TSIG_SECRET}
      wait_timeout: 30
      nameserver_port: 5300
"""

ZONE_TEXT = """
example.test. 3600 IN SOA ns1.example.test. hostmaster.example.test. 7 1 1 1 1
example.test. 3600 IN NS ns1.example.test.
example.test. 3600 IN NS ns2.example.test.
"""


def run_result(published_serial: int | None) -> RunResult:
    spec = load_spec_text(SPEC)
    zone_spec = spec.zones[0]
    desired = ZoneData.from_text(ZONE_TEXT, zone_spec.name)
    backend = SimpleNamespace(published_serial=published_serial)
    plan = ZonePlan(zone_spec.name, "rfc2136", 5, 7)
    prepared = PreparedZone(zone_spec, backend, desired, plan, "digest")  # type: ignore[arg-type]
    return RunResult([prepared], [], [])


def test_addresses_and_port_from_spec() -> None:
    result = run_result(None)
    servers = nameserver_addresses(result.zones[0])
    assert [(s.name, s.address, s.port) for s in servers] == [
        ("ns1.example.test.", "127.0.0.1", 5300),
        ("ns2.example.test.", "127.0.0.2", 5300),
    ]


def test_returns_once_all_serve() -> None:
    clock = ManualClock(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    calls: list[str] = []

    def query(server: NameServerAddress, origin: dns.name.Name) -> ServedSerial:
        calls.append(server.address)
        lagging = server.address == "127.0.0.2" and len(calls) < 4
        return ServedSerial(server, 41 if lagging else 42)

    served = wait_for_zones(load_spec_text(SPEC), run_result(42), clock, query=query)

    assert {answer.serial for answer in served["example.test."]} == {42}
    assert clock.now() == dt.datetime(2026, 1, 1, 0, 0, 1, tzinfo=dt.UTC)


def test_names_lagging_server_after_timeout() -> None:
    clock = ManualClock(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))

    def query(server: NameServerAddress, origin: dns.name.Name) -> ServedSerial:
        if server.address == "127.0.0.2":
            return ServedSerial(server, None, "no answer within 2 s")
        return ServedSerial(server, 42)

    with pytest.raises(BackendError) as raised:
        wait_for_zones(load_spec_text(SPEC), run_result(42), clock, query=query)

    assert "ns2.example.test. (127.0.0.2 port 5300) does not answer" in str(raised.value)
    assert (clock.now() - dt.datetime(2026, 1, 1, tzinfo=dt.UTC)).total_seconds() == 30


def test_plan_serial_used_without_backend_serial() -> None:
    clock = ManualClock(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))

    def query(server: NameServerAddress, origin: dns.name.Name) -> ServedSerial:
        return ServedSerial(server, 7)

    served = wait_for_zones(load_spec_text(SPEC), run_result(None), clock, query=query)
    assert len(served["example.test."]) == 2


def test_serial_at_least_wraps() -> None:
    assert serial_at_least(5, 5)
    assert serial_at_least(6, 5)
    assert serial_at_least(1, 2**32 - 1)
    assert not serial_at_least(4, 5)
