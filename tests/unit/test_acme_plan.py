"""plan with an ACME authority contacts no CA; apply names an unreachable CA clearly."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import pytest

from provisioner.clock import ManualClock
from provisioner.errors import PKIError
from provisioner.spec.loader import load_spec
from provisioner.spec.models import Spec
from provisioner.store.local import LocalStore
from provisioner.workflows.apply import apply, plan

START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def closed_port() -> int:
    """Return a port of 127.0.0.1 on which nothing listens (it was free a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_spec(tmp_path: Path, tlsa: str = "{usage: 3, selector: 1, matching: 1}") -> Spec:
    path = tmp_path / "provisioner.yaml"
    path.write_text(
        f"""\
authorities:
  - name: le
    type: acme
    directory: https://127.0.0.1:{closed_port()}/dir
    agree_terms_of_service: true
zones:
  - name: example.org
    nameservers: [{{name: ns1.example.org, addresses: [127.0.0.1]}}]
    dnssec: {{signer: none}}
mail_servers:
  - host: mx1.example.org
    addresses: [127.0.0.1]
    certificate: {{authority: le}}
    tlsa: [{tlsa}]
"""
    )
    return load_spec(path)


def test_plan_contacts_no_ca(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    with LocalStore(spec.state_dir()) as store:
        result = plan(spec, store, ManualClock(START))

        changes = [change.as_dict() for change in result.zones[0].plan.changes]
        tlsa = [c for c in changes if c["type"] == "TLSA"]
        assert [c["owner"] for c in tlsa] == ["_25._tcp.mx1.example.org."]
        assert tlsa[0]["action"] == "create"
        assert store.keys() == []
        assert store.certificates() == []


def test_plan_warns_about_dane_ta(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, tlsa="{usage: 2, selector: 1, matching: 1}")
    with LocalStore(spec.state_dir()) as store:
        result = plan(spec, store, ManualClock(START))

    assert any("DANE-TA" in warning for warning in result.warnings)


def test_unreachable_ca_is_named(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    with LocalStore(spec.state_dir()) as store:
        with pytest.raises(PKIError) as raised:
            apply(spec, store, ManualClock(START))

        assert str(raised.value).startswith(
            f"cannot fetch the directory at the ACME CA {spec.authorities[0].directory}"
        )
        assert raised.value.hint == "check the directory URL and that the CA is running"
        assert store.certificates() == []


def test_cli_apply_exits_one(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from provisioner.cli.main import app

    spec = write_spec(tmp_path)
    result = CliRunner().invoke(app, ["apply", str(spec.source)])

    assert result.exit_code == 1
    assert "cannot fetch the directory at the ACME CA" in result.output
    assert "check the directory URL and that the CA is running" in result.output
