"""`provisioner deploy` on the bundled example, after `provisioner apply`, to host folders."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.conftest import EXAMPLE, require_tool, run_provisioner

pytestmark = [pytest.mark.servers, pytest.mark.slow]


@dataclass
class Deployed:
    folder: Path
    hosts: Path
    first: dict[str, Any]
    first_stdout: str
    second: dict[str, Any]


def add_deploy_settings(spec_path: Path, hosts: Path) -> None:
    yaml = YAML()
    spec = yaml.load(spec_path.read_text())
    spec["mail_servers"][0]["deploy"] = {
        "connection": "local",
        "root": str(hosts / "mx1"),
        "inet_interfaces": "127.0.0.1",
        "listeners": ["127.0.0.1:2525"],
        "reload_command": "true",
    }
    spec["deploy"] = {
        "primaries": [
            {
                "host": "ns1",
                "server": "knot",
                "connection": "local",
                "root": str(hosts / "ns1"),
                "listen_addresses": ["127.0.0.1"],
                "port": 5353,
                "reload_command": "true",
            }
        ],
        "resolvers": [
            {
                "host": "res1",
                "connection": "local",
                "root": str(hosts / "res1"),
                "interfaces": ["127.0.0.1"],
                "port": 5300,
                "auto_trust_anchor_file": "",
                "trust_anchor_zones": ["example.com", "example.net"],
                "stub_zones": [{"name": "example.com", "addresses": ["127.0.0.1@5353"]}],
                "allow_query_localhost": True,
                "reload_command": "true",
                "variables": {"unbound_username": ""},
            }
        ],
    }
    with spec_path.open("w") as handle:
        yaml.dump(spec, handle)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    require_tool("ansible-playbook", "postfix", "knotc", "kzonecheck", "unbound-checkconf")
    folder = tmp_path_factory.mktemp("spec") / "nccoe"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("out", ".provisioner"))
    spec = folder / "provisioner.yaml"
    hosts = folder / "hosts"
    add_deploy_settings(spec, hosts)
    run_provisioner("apply", spec, cwd=folder, check=True)
    first = run_provisioner("deploy", spec, "--json", cwd=folder, check=True)
    second = run_provisioner("deploy", spec, "--check", "--json", cwd=folder, check=True)
    return Deployed(
        folder, hosts, json.loads(first.stdout), first.stdout, json.loads(second.stdout)
    )


def test_every_host_is_deployed(deployed: Deployed) -> None:
    statuses = {host["host"]: host["status"] for host in deployed.first["hosts"]}
    assert statuses == {"mx1.example.com": "changed", "ns1": "changed", "res1": "changed"}
    assert deployed.first["ok"] is True


def test_check_after_deploy_reports_no_change(deployed: Deployed) -> None:
    assert deployed.second["check"] is True
    for host in deployed.second["hosts"]:
        assert host["status"] == "ok", host


def test_signed_zone_file_is_served(deployed: Deployed) -> None:
    installed = deployed.hosts / "ns1" / "var/lib/knot/example.com.zone"
    published = deployed.folder / "out" / "zones" / "example.com.zone"
    assert installed.read_bytes() == published.read_bytes()
    result = subprocess.run(
        ["knotc", "-c", str(deployed.hosts / "ns1" / "etc/knot/knot.conf"), "conf-check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_resolver_trusts_the_zones_ds(deployed: Deployed) -> None:
    config = (deployed.hosts / "res1" / "etc/unbound/unbound.conf").read_text()
    assert 'trust-anchor: "example.com. ' in config
    assert 'trust-anchor: "example.net. ' in config


def test_key_stays_out_of_output(deployed: Deployed) -> None:
    key_files = list((deployed.hosts / "mx1" / "etc/postfix/tls").glob("*.key.pem"))
    assert len(key_files) == 1
    first_body_line = key_files[0].read_text().splitlines()[1]
    assert first_body_line not in deployed.first_stdout
