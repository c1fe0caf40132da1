"""The playbooks against folders standing for host roots, through ansible-runner.

One module-scoped scenario makes three runs, because each run of ansible-playbook takes
seconds: a check-mode run on empty roots, a real run, and a second real run. Its hosts are an
MTA, BIND, Knot and NSD primaries, an Unbound resolver, a resolver whose configuration fails
unbound-checkconf, and an ssh host on a loopback port where nothing listens.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import secrets
import socket
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from provisioner.deploy import DeployResult, deploy_targets
from provisioner.deploy.models import MtaDeploy, PrimaryDeploy, ResolverDeploy
from provisioner.deploy.targets import (
    CertificateFiles,
    DeployTargets,
    MtaTarget,
    PrimaryTarget,
    ResolverTarget,
    TsigKeyFile,
    ZoneFile,
)
from provisioner.deploy.templates import render_template
from provisioner.deploy.tsig import key_file_text, make_key
from tests.conftest import require_tool

pytestmark = [pytest.mark.servers, pytest.mark.slow]

TOOLS = (
    "ansible-playbook",
    "postfix",
    "named-checkconf",
    "named-checkzone",
    "knotc",
    "kzonecheck",
    "nsd-checkconf",
    "nsd-checkzone",
    "unbound-checkconf",
)
ZONE_TEXT = """$ORIGIN example.com.
$TTL 300
@ SOA ns1 hostmaster 1 3600 600 604800 300
@ NS ns1
ns1 A 127.0.0.1
mx1 A 127.0.0.1
"""
ANCHOR = "example.com. DS 12345 13 2 " + "AB" * 32
GOOD_HOSTS = ("mx1", "mx-fragment", "ns-bind", "ns-knot", "ns-nsd", "res1")
# An existing main.cf that the fragment mode edits: lines to keep, one line to replace.
EXISTING_MAIN_CF = """myhostname = kept.example.com
inet_interfaces = 127.0.0.1
queue_directory = {root}/var/spool/postfix
data_directory = {root}/var/lib/postfix
smtp_tls_security_level = may
"""


def unused_loopback_port() -> int:
    """Return a TCP port on 127.0.0.1 where nothing listens once this returns."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mx1.example.com")])
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_path = folder / "mx1.key.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    certificate_path = folder / "mx1.cert.pem"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return certificate_path, key_path


@dataclass
class Scenario:
    roots: dict[str, Path]
    key_path: Path
    tsig_secret: str
    artifacts: Path
    check_run: DeployResult
    first_run: DeployResult
    second_run: DeployResult


def local(root: Path) -> dict[str, object]:
    return {"connection": "local", "root": str(root)}


def build_targets(store: Path, roots: dict[str, Path], tsig_secret: str) -> DeployTargets:
    certificate, key = write_certificate(store)
    zone_file = store / "example.com.zone"
    zone_file.write_text(ZONE_TEXT)
    served = [ZoneFile("example.com.", "/var/lib/zones/example.com.zone", zone_file)]
    dns = {"listen_addresses": ["127.0.0.1"], "port": 5353, "reload_command": "true"}
    resolver = {
        "interfaces": ["127.0.0.1"],
        "port": 5300,
        "auto_trust_anchor_file": "",
        "reload_command": "true",
    }
    return DeployTargets(
        mtas=[
            MtaTarget(
                "mx1",
                MtaDeploy(
                    **local(roots["mx1"]),
                    reload_command="true",
                    listeners=["127.0.0.1:2525"],
                    inet_interfaces="127.0.0.1",
                    resolvers=["127.0.0.1"],
                ),
                [CertificateFiles("mx1", certificate, key)],
            ),
            MtaTarget(
                "mx-fragment",
                MtaDeploy(
                    **local(roots["mx-fragment"]),
                    reload_command="true",
                    manage_main_cf="fragment",
                ),
                [CertificateFiles("mx1", certificate, key)],
            ),
        ],
        primaries=[
            PrimaryTarget(
                "ns-bind",
                PrimaryDeploy(host="ns-bind", server="bind", **local(roots["ns-bind"]), **dns),
                served,
            ),
            PrimaryTarget(
                "ns-knot",
                PrimaryDeploy(host="ns-knot", server="knot", **local(roots["ns-knot"]), **dns),
                [
                    ZoneFile(
                        "example.com.",
                        "/var/lib/knot/example.com.zone",
                        zone_file,
                        update_key="update-key",
                    )
                ],
                [
                    TsigKeyFile(
                        "update-key",
                        Path("{{ provisioner_files }}/knot-update-key"),
                        "/etc/knot/update-key.key",
                    )
                ],
            ),
            PrimaryTarget(
                "ns-nsd",
                PrimaryDeploy(host="ns-nsd", server="nsd", **local(roots["ns-nsd"]), **dns),
                served,
            ),
            PrimaryTarget(
                "ns-down",
                PrimaryDeploy(
                    host="ns-down",
                    server="bind",
                    connection="ssh",
                    ansible_host="127.0.0.1",
                    ansible_port=unused_loopback_port(),
                    reload_command="true",
                ),
                served,
            ),
        ],
        resolvers=[
            ResolverTarget(
                "res1",
                ResolverDeploy(
                    host="res1",
                    **local(roots["res1"]),
                    **resolver,
                    variables={"unbound_username": ""},
                ),
                [ANCHOR],
            ),
            ResolverTarget(
                "res-bad",
                ResolverDeploy(
                    host="res-bad",
                    **local(roots["res-bad"]),
                    **resolver,
                    variables={
                        "unbound_username": "",
                        "unbound_extra_config": "server:\n    no-such-option: yes",
                    },
                ),
                [ANCHOR],
            ),
        ],
    )


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    for tool in TOOLS:
        require_tool(tool)
    base = tmp_path_factory.mktemp("deploy")
    store = base / "store"
    store.mkdir()
    names = [*GOOD_HOSTS, "res-bad"]
    roots = {name: base / "hosts" / name for name in names}
    tsig_secret = base64.b64encode(secrets.token_bytes(32)).decode()
    targets = build_targets(store, roots, tsig_secret)
    existing_config = roots["mx-fragment"] / "etc/postfix"
    existing_config.mkdir(parents=True)
    existing_main_cf = EXISTING_MAIN_CF.format(root=roots["mx-fragment"])
    (existing_config / "main.cf").write_text(existing_main_cf)
    for folder in ("var/spool/postfix", "var/lib/postfix"):
        (roots["mx-fragment"] / folder).mkdir(parents=True)
    (existing_config / "master.cf").write_text(render_template("postfix/master.cf.j2"))
    key = make_key("update-key", "hmac-sha256", tsig_secret)
    secret_files = {"knot-update-key": key_file_text(key, "knot").encode()}
    artifacts = base / "artifacts"

    def run(check: bool) -> DeployResult:
        return deploy_targets(
            targets, check=check, secret_files=secret_files, artifact_dir=artifacts
        )

    check_run = run(True)
    for name, root in roots.items():
        if name != "mx-fragment":
            assert not root.exists(), f"check mode created {root}"
    assert (existing_config / "main.cf").read_text() == existing_main_cf
    first_run = run(False)
    second_run = run(False)
    return Scenario(
        roots, store / "mx1.key.pem", tsig_secret, artifacts, check_run, first_run, second_run
    )


def test_check_mode_reports_changes(scenario: Scenario) -> None:
    for host in GOOD_HOSTS:
        result = scenario.check_run.hosts[host]
        assert not result.failed, result.failures
        assert result.changed > 0, f"{host} reported no change in check mode"
    mta_tasks = scenario.check_run.hosts["mx1"].changed_tasks
    assert "Install the private keys" in mta_tasks


def test_first_run_succeeds_on_good_hosts(scenario: Scenario) -> None:
    for host in GOOD_HOSTS:
        result = scenario.first_run.hosts[host]
        assert result.status == "changed", result.as_dict()
        assert result.failures == []


def test_second_run_changes_nothing(scenario: Scenario) -> None:
    for host in GOOD_HOSTS:
        result = scenario.second_run.hosts[host]
        assert result.status == "ok", result.as_dict()
        assert result.changed_tasks == []


def test_unreachable_host_is_reported(scenario: Scenario) -> None:
    result = scenario.first_run.hosts["ns-down"]
    assert result.unreachable
    assert result.failures[0].unreachable
    assert result.failures[0].task == "Create the server folders"
    assert "Connection refused" in result.failures[0].message


def test_invalid_config_is_not_installed(scenario: Scenario) -> None:
    result = scenario.first_run.hosts["res-bad"]
    assert result.failed
    assert result.failures[0].task == "Write unbound.conf"
    assert "no-such-option" in result.failures[0].message
    assert not (scenario.roots["res-bad"] / "etc/unbound/unbound.conf").exists()


def test_failed_hosts_fail_the_run(scenario: Scenario) -> None:
    assert scenario.first_run.failed
    assert scenario.first_run.as_dict()["failed"] is True


def _check(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}{result.stderr}"


def test_installed_configs_pass_checkers(scenario: Scenario) -> None:
    roots = scenario.roots
    _check(["postfix", "-c", str(roots["mx1"] / "etc/postfix"), "check"])
    _check(["named-checkconf", str(roots["ns-bind"] / "etc/bind/named.conf")])
    _check(["knotc", "-c", str(roots["ns-knot"] / "etc/knot/knot.conf"), "conf-check"])
    _check(["nsd-checkconf", str(roots["ns-nsd"] / "etc/nsd/nsd.conf")])
    _check(["unbound-checkconf", str(roots["res1"] / "etc/unbound/unbound.conf")])


def test_postfix_uses_installed_certificate(scenario: Scenario) -> None:
    config = scenario.roots["mx1"] / "etc/postfix"
    result = subprocess.run(
        ["postconf", "-c", str(config), "-h", "smtpd_tls_chain_files", "smtp_tls_security_level"],
        capture_output=True,
        text=True,
        check=True,
    )
    chain_files, security_level = result.stdout.splitlines()
    key_file, chain_file = (Path(path.strip()) for path in chain_files.split(","))
    assert key_file.read_bytes() == scenario.key_path.read_bytes()
    assert b"BEGIN CERTIFICATE" in chain_file.read_bytes()
    assert security_level == "dane"
    resolv_conf = (scenario.roots["mx1"] / "etc/resolv.conf").read_text()
    assert "options trust-ad" in resolv_conf


def test_fragment_mode_edits_existing_main_cf(scenario: Scenario) -> None:
    config = scenario.roots["mx-fragment"] / "etc/postfix"
    main_cf = (config / "main.cf").read_text()
    assert "myhostname = kept.example.com\n" in main_cf
    assert "inet_interfaces = 127.0.0.1\n" in main_cf
    assert "smtp_tls_security_level = dane\n" in main_cf
    assert "smtp_tls_security_level = may" not in main_cf
    assert "smtp_dns_support_level = dnssec\n" in main_cf
    _check(["postfix", "-c", str(config), "check"])


def test_secret_files_have_mode_0600(scenario: Scenario) -> None:
    key_files = list((scenario.roots["mx1"] / "etc/postfix/tls").glob("*.key.pem"))
    tsig_file = scenario.roots["ns-knot"] / "etc/knot/update-key.key"
    assert len(key_files) == 1
    for path in [*key_files, tsig_file]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_secrets_absent_from_artifacts(scenario: Scenario) -> None:
    key_text = scenario.key_path.read_text()
    private_key = serialization.load_pem_private_key(key_text.encode(), password=None)
    assert isinstance(private_key, ec.EllipticCurvePrivateKey)
    # The first line of the PEM body holds the start of the private scalar; later lines hold
    # the public key, which the certificate repeats.
    first_body_line = key_text.splitlines()[1]
    scalar_hex = f"{private_key.private_numbers().private_value:064x}"
    needles = [first_body_line, scalar_hex, scalar_hex.upper(), scenario.tsig_secret]
    searched = 0
    for folder, _, files in os.walk(scenario.artifacts):
        for name in files:
            text = (Path(folder) / name).read_text(errors="replace")
            searched += 1
            for needle in needles:
                assert needle not in text, f"a secret appears in {Path(folder) / name}"
    assert searched > 0
