"""A parent zone outside the spec: its name servers are found through the resolver.

BIND serves test. and example.test. as in the rollover test with servers. The observer is given
example.test. without its parent, and a stub resolver pointed at BIND, so it has to find the
name servers of test. itself and read the DS RRset from them.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path

import dns.rdata
import dns.resolver
import dns.rrset
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from integration.test_rollover_servers import (  # noqa: E402
    free_port,
    start_bind,
    wait_for_port,
    write_spec,
)

from provisioner.check.targets import Server  # noqa: E402
from provisioner.clock import SystemClock  # noqa: E402
from provisioner.errors import ProvisionerError  # noqa: E402
from provisioner.rollover.observe import LiveObserver  # noqa: E402
from provisioner.spec.loader import load_spec  # noqa: E402
from provisioner.store.local import LocalStore  # noqa: E402
from provisioner.workflows.apply import apply  # noqa: E402
from provisioner.workflows.rollover import live_engine  # noqa: E402

pytestmark = pytest.mark.servers


def _resolver(port: int) -> dns.resolver.Resolver:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = port
    return resolver


def test_parent_found_through_resolver(tmp_path: Path) -> None:
    dns_port, control_port = free_port(), free_port()
    (tmp_path / "zones").mkdir()
    clock = SystemClock()
    named, rndc_conf = start_bind(tmp_path, dns_port, control_port)
    try:
        spec = load_spec(write_spec(tmp_path, rndc_conf, free_port()))
        with LocalStore(spec.state_dir()) as store, contextlib.suppress(ProvisionerError):
            apply(spec, store, clock)
        time.sleep(1)
        subprocess.run(["rndc", "-c", str(rndc_conf), "reload"], check=False, capture_output=True)
        wait_for_port(dns_port)
        child = next(zone for zone in spec.zones if zone.name == "example.test.")
        with LocalStore(spec.state_dir()) as store:
            expected = live_engine(spec, store, clock).expected_ds(child)

        observer = LiveObserver(clock, dns_port=dns_port, resolver=_resolver(dns_port))
        found = observer.parent_serves_ds(child, None, expected)
        assert found.ok, found.reason

        # The same through 'rollover run --resolver ADDR:PORT'.
        with LocalStore(spec.state_dir()) as store:
            resolver = Server("127.0.0.1", dns_port)
            engine = live_engine(spec, store, clock, dns_port=dns_port, resolver=resolver)
            through_engine = engine.observer.parent_serves_ds(child, None, expected)
        assert through_engine.ok, through_engine.reason

        other = dns.rrset.RRset(expected.name, expected.rdclass, expected.rdtype)
        other.add(dns.rdata.from_text("IN", "DS", "12345 13 2 " + "00" * 32), expected.ttl)
        wrong = observer.parent_serves_ds(child, None, other)
        assert not wrong.ok
        assert "does not serve the expected DS RRset" in wrong.reason

        unreachable = LiveObserver(clock, dns_port=dns_port, resolver=_resolver(free_port()))
        unreachable.timeout = 0.5
        missing = unreachable.parent_serves_ds(child, None, expected)
        assert not missing.ok
        assert "confirm-ds" in missing.reason
    finally:
        named.terminate()
        named.wait(timeout=20)
