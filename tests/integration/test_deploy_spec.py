"""`provisioner deploy` on the bundled example, after `provisioner apply`, to host folders.

The deployed Knot and Unbound configurations then run for real: knotd serves the signed zone
and Unbound validates it with the trust anchor that deploy derived from the zone's DS.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest
from ruamel.yaml import YAML

from tests.conftest import EXAMPLE, require_tool, run_provisioner

pytestmark = [pytest.mark.servers, pytest.mark.slow]


@dataclass
class Deployed:
    folder: Path
    hosts: Path
    result: dict[str, Any]
    stdout: str
    knot_port: int
    unbound_port: int


def free_port() -> int:
    """Return a port on 127.0.0.1 that is free for both TCP and UDP."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as datagram:
            try:
                datagram.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port on 127.0.0.1")


def add_deploy_settings(spec_path: Path, hosts: Path, knot_port: int, unbound_port: int) -> None:
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
                "port": knot_port,
                "reload_command": "true",
                "variables": {"knot_log_target": "stderr"},
            }
        ],
        "resolvers": [
            {
                "host": "res1",
                "connection": "local",
                "root": str(hosts / "res1"),
                "interfaces": ["127.0.0.1"],
                "port": unbound_port,
                "auto_trust_anchor_file": "",
                "trust_anchor_zones": ["example.com", "example.net"],
                "stub_zones": [{"name": "example.com", "addresses": [f"127.0.0.1@{knot_port}"]}],
                "allow_query_localhost": True,
                "reload_command": "true",
                "variables": {
                    "unbound_username": "",
                    "unbound_daemonize": False,
                    "unbound_use_syslog": False,
                    "unbound_control_port": 0,
                },
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
    knot_port = free_port()
    unbound_port = free_port()
    add_deploy_settings(spec, hosts, knot_port, unbound_port)
    run_provisioner("apply", spec, cwd=folder, check=True)
    deployed = run_provisioner("deploy", spec, "--json", cwd=folder, check=True)
    return Deployed(
        folder, hosts, json.loads(deployed.stdout), deployed.stdout, knot_port, unbound_port
    )


def wait_for_answer(query: dns.message.Message, port: int, process: subprocess.Popen) -> None:
    """Wait until a server on 127.0.0.1:``port`` answers, or fail when its process ends."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args} exited with status {process.returncode}")
        try:
            dns.query.udp(query, "127.0.0.1", port=port, timeout=1)
            return
        except (dns.exception.Timeout, OSError):
            time.sleep(0.2)
    raise AssertionError(f"{process.args} did not answer on port {port}")


@pytest.fixture(scope="module")
def running(deployed: Deployed) -> Iterator[Deployed]:
    require_tool("knotd", "unbound")
    knot_conf = deployed.hosts / "ns1" / "etc/knot/knot.conf"
    unbound_conf = deployed.hosts / "res1" / "etc/unbound/unbound.conf"
    processes = [
        subprocess.Popen(
            ["knotd", "-c", str(knot_conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    ]
    try:
        probe = dns.message.make_query("example.com.", "SOA")
        wait_for_answer(probe, deployed.knot_port, processes[0])
        processes.append(
            subprocess.Popen(
                ["unbound", "-d", "-c", str(unbound_conf)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_for_answer(probe, deployed.unbound_port, processes[1])
        yield deployed
    finally:
        for process in processes:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_every_host_is_deployed(deployed: Deployed) -> None:
    statuses = {host["host"]: host["status"] for host in deployed.result["hosts"]}
    assert statuses == {"mx1.example.com": "changed", "ns1": "changed", "res1": "changed"}
    assert deployed.result["ok"] is True


def test_deployed_resolver_validates_served_zone(running: Deployed) -> None:
    query = dns.message.make_query("_25._tcp.mx1.example.com.", "TLSA", want_dnssec=True)
    response = dns.query.udp(query, "127.0.0.1", port=running.unbound_port, timeout=10)
    assert dns.rcode.to_text(response.rcode()) == "NOERROR"
    assert response.flags & dns.flags.AD, "the TLSA answer was not validated"
    assert response.answer


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
    assert first_body_line not in deployed.stdout


def test_check_reads_inventory_variables(deployed: Deployed) -> None:
    """A variable from --inventory reaches the role; --check reports and changes nothing."""
    (deployed.folder / "inventory.yml").write_text(
        'all:\n  hosts:\n    res1:\n      unbound_access_control: ["10.0.0.0/8"]\n'
    )
    config = deployed.hosts / "res1" / "etc/unbound/unbound.conf"
    before = config.read_text()
    arguments = ["--check", "--limit", "res1", "--inventory", "inventory.yml", "--json"]
    result = run_provisioner(
        "deploy", deployed.folder / "provisioner.yaml", *arguments, cwd=deployed.folder, check=True
    )
    report = json.loads(result.stdout)
    assert report["check"] is True
    assert [host["host"] for host in report["hosts"]] == ["res1"]
    assert report["hosts"][0]["changed_tasks"] == ["Write unbound.conf"]
    assert config.read_text() == before


def test_changed_zone_reaches_running_primary(running: Deployed) -> None:
    """A record added to the spec is served after apply, then deploy with a real reload."""
    spec = running.folder / "provisioner.yaml"
    knot_conf = running.hosts / "ns1" / "etc/knot/knot.conf"
    yaml = YAML()
    document = yaml.load(spec.read_text())
    document["zones"][0]["records"].append(
        {"name": "deployed", "type": "TXT", "value": '"after reload"'}
    )
    document["deploy"]["primaries"][0]["reload_command"] = f"knotc -c {knot_conf} reload"
    with spec.open("w") as handle:
        yaml.dump(document, handle)
    run_provisioner("apply", spec, cwd=running.folder, check=True)

    result = run_provisioner("deploy", spec, "--limit", "ns1", "--json", cwd=running.folder)
    report = json.loads(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [host["host"] for host in report["hosts"]] == ["ns1"]
    assert "Reload the DNS server" in report["hosts"][0]["changed_tasks"]

    query = dns.message.make_query("deployed.example.com.", "TXT")
    deadline = time.monotonic() + 30
    answer: list[Any] = []
    while time.monotonic() < deadline and not answer:
        response = dns.query.udp(query, "127.0.0.1", port=running.knot_port, timeout=5)
        answer = list(response.answer)
        if not answer:
            time.sleep(0.2)
    assert answer, "knotd does not serve the record added before the reload"
