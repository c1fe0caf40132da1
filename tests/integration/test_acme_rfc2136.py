"""ACME DNS-01 through the rfc2136 backend: UPDATE messages to a BIND primary, Pebble as CA."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dns.rdatatype
import pytest

from provisioner.errors import PKIError
from provisioner.spec.loader import load_spec
from provisioner.spec.models import Spec
from provisioner.store.local import LocalStore
from provisioner.workflows.apply import apply
from tests.integration.dnsservers import RunningServer, TsigKeyConfig, ZoneConfig, start_bind
from tests.integration.pebble import MX_HOST, ZONE, OffsetClock, Pebble, start_pebble

pytestmark = pytest.mark.servers

CHALLENGE_OWNER = f"_acme-challenge.{MX_HOST}"
TLSA_OWNER = f"_25._tcp.{MX_HOST}"


def served(server: RunningServer, name: str, rdtype: str) -> list[str]:
    response = server.query(name, rdtype, tcp=True)
    return sorted(
        rdata.to_text()
        for rrset in response.answer
        if rrset.rdtype == dns.rdatatype.from_text(rdtype)
        for rdata in rrset
    )


def write_spec(tmp_path: Path, pebble: Pebble, server: RunningServer, key_file: Path) -> Spec:
    path = tmp_path / "provisioner.yaml"
    path.write_text(
        f"""\
state: state
authorities:
  - name: pebble
    type: acme
    directory: {pebble.directory}
    ca_bundle: {pebble.ca_bundle}
    agree_terms_of_service: true
    nameserver_port: {server.port}
    propagation_timeout: 30
    order_timeout: 60
zones:
  - name: {ZONE}
    ttl: 300
    nameservers:
      - name: ns1.{ZONE}
        addresses: [127.0.0.1]
    dnssec: {{signer: none}}
    publish:
      backend: rfc2136
      server: 127.0.0.1
      port: {server.port}
      server_type: bind
      timeout: 2
      tsig: {{key_file: {key_file}}}
mail_servers:
  - host: {MX_HOST}
    addresses: [127.0.0.1]
    certificate: {{authority: pebble}}
"""
    )
    return load_spec(path)


@pytest.fixture
def update_key() -> TsigKeyConfig:
    return TsigKeyConfig.generate("provisioner-update")


@pytest.fixture
def other_key() -> TsigKeyConfig:
    return TsigKeyConfig.generate("other-update")


@pytest.fixture
def primary(
    tmp_path: Path, update_key: TsigKeyConfig, other_key: TsigKeyConfig
) -> Iterator[RunningServer]:
    server = start_bind(
        tmp_path / "bind",
        zones=[ZoneConfig(ZONE, update_key=update_key.name)],
        keys=[update_key, other_key],
    )
    yield server
    server.stop()


def test_issue_through_updates(
    tmp_path: Path, primary: RunningServer, update_key: TsigKeyConfig
) -> None:
    key_file = update_key.write_key_file(tmp_path / "update.key")
    pebble = start_pebble(tmp_path, primary.port)
    try:
        spec = write_spec(tmp_path, pebble, primary, key_file)
        with LocalStore(spec.state_dir()) as store:
            result = apply(spec, store, OffsetClock())

            assert result.issued == [f"server {MX_HOST}"]
            owned = store.owned(ZONE)
            assert (CHALLENGE_OWNER, "TXT") not in owned
            assert (TLSA_OWNER, "TLSA") in owned
    finally:
        pebble.stop()
    assert len(served(primary, TLSA_OWNER, "TLSA")) == 1
    assert served(primary, CHALLENGE_OWNER, "TXT") == []


def test_refused_update_leaves_no_challenge(
    tmp_path: Path, update_key: TsigKeyConfig, other_key: TsigKeyConfig
) -> None:
    # other-update may read the zone (AXFR) but not change it, so BIND refuses the UPDATE.
    server = start_bind(
        tmp_path / "bind",
        zones=[ZoneConfig(ZONE, update_key=update_key.name, transfer_key=other_key.name)],
        keys=[update_key, other_key],
    )
    key_file = other_key.write_key_file(tmp_path / "other.key")
    pebble = start_pebble(tmp_path, server.port)
    try:
        spec = write_spec(tmp_path, pebble, server, key_file)
        with LocalStore(spec.state_dir()) as store:
            with pytest.raises(PKIError) as raised:
                apply(spec, store, OffsetClock())

            message = str(raised.value)
            assert message.startswith("cannot publish the ACME DNS-01 challenge")
            assert "UPDATE" in message
            assert "REFUSED" in message
            assert store.current_certificate("server", MX_HOST) is None
        assert served(server, CHALLENGE_OWNER, "TXT") == []
        assert served(server, TLSA_OWNER, "TLSA") == []
    finally:
        pebble.stop()
        server.stop()
