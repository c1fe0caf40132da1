"""The check and lookup commands against the real lab servers, through the typer app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from provisioner.cli.main import app
from tests.integration.servers_check import (
    MX1,
    NS1,
    NS2,
    PARENT,
    USER,
    Lab,
    lab_fixture,  # noqa: F401 (a fixture)
    lab_material_fixture,  # noqa: F401 (a fixture)
    write_chain,
)
from tests.integration.smtp_server import SmtpServer

pytestmark = pytest.mark.servers

runner = CliRunner()


def write_spec(lab: Lab) -> Path:
    spec = lab.directory / "spec.yaml"
    spec.write_text(
        f"""zones:
  - name: example.test
    nameservers:
      - name: ns1.example.test
        addresses: [{NS1}]
      - name: ns2.example.test
        addresses: [{NS2}]
mail_servers:
  - host: mx1.example.test
    addresses: [{MX1}]
    ports: [{lab.smtp_port}]
    certificate:
      self_signed: true
users:
  - address: {USER}
    certificate:
      self_signed: true
"""
    )
    return spec


def write_anchor(lab: Lab) -> Path:
    anchor = lab.directory / "anchor.txt"
    anchor.write_text(f"{lab.anchor_text()}\nns1.{PARENT} IN A {NS1}\n")
    return anchor


def smtp(lab: Lab, **options: object) -> SmtpServer:
    chain, key = write_chain(lab.directory, "mx1", lab.mx1_chain, lab.mx1_key)
    return SmtpServer(MX1, lab.smtp_port, chain, key, **options)  # type: ignore[arg-type]


def check_arguments(lab: Lab, *extra: str) -> list[str]:
    return [
        "--state",
        str(lab.directory / "state"),
        "check",
        str(write_spec(lab)),
        "--trust-anchor",
        str(write_anchor(lab)),
        "--dns-port",
        str(lab.port),
        *extra,
    ]


def test_check_json_and_prometheus(lab: Lab) -> None:
    lab.serve(lab.sign_parent(), lab.sign_child())
    textfile = lab.directory / "node" / "provisioner.prom"
    with smtp(lab):
        result = runner.invoke(app, check_arguments(lab, "--json", "--prometheus", str(textfile)))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["version"] == 1
    assert report["status"] == "warn"  # no S/MIME certificate on record: apply never ran
    assert report["summary"]["fail"] == 0
    checks = {finding["check"] for finding in report["findings"]}
    assert {"dnssec.chain", "zone.serial", "smtp.dane", "smimea.dnssec"} <= checks
    text = textfile.read_text()
    assert "# TYPE provisioner_check_status gauge" in text
    assert "provisioner_check_rrsig_expiry_days{" in text
    assert "provisioner_check_certificate_expiry_days{" in text
    assert 'provisioner_check_findings{status="fail"} 0' in text


def test_check_failure_runs_notify(lab: Lab) -> None:
    lab.serve(lab.sign_parent(), lab.sign_child())
    notified = lab.directory / "notified.json"
    with smtp(lab, offer_starttls=False):
        result = runner.invoke(app, check_arguments(lab, "--notify", f"cat > {notified}"))
    assert result.exit_code == 1
    assert "0 warn, 1 fail" in result.stdout or ", 1 fail" in result.stdout
    report = json.loads(notified.read_text())
    assert report["status"] == "fail"
    failed = [f for f in report["findings"] if f["status"] == "fail"]
    assert [f["check"] for f in failed] == ["smtp.starttls"]
    assert failed[0]["message"].startswith("STARTTLS not offered by mx1.example.test")


def lookup_arguments(lab: Lab) -> list[str]:
    return ["--trust-anchor", str(write_anchor(lab)), "--dns-port", str(lab.port)]


def test_tlsa_lookup_compare_live(lab: Lab) -> None:
    lab.serve(lab.sign_parent(), lab.sign_child())
    with smtp(lab):
        result = runner.invoke(
            app,
            [
                "tlsa",
                "lookup",
                "mx1.example.test",
                "--port",
                str(lab.smtp_port),
                "--compare-live",
                "--address",
                MX1,
                *lookup_arguments(lab),
            ],
        )
    assert result.exit_code == 0, result.output
    assert f"_{lab.smtp_port}._tcp.mx1.example.test. 300 IN TLSA 3 1 1" in result.stdout
    assert f"{MX1}:{lab.smtp_port}: ok: the leaf certificate matches TLSA 3 1 1" in result.stdout


def test_tlsa_lookup_missing(lab: Lab) -> None:
    lab.serve(lab.sign_parent(), lab.sign_child())
    result = runner.invoke(
        app,
        [
            "tlsa",
            "lookup",
            "mx2.example.test",
            "--port",
            str(lab.smtp_port),
            *lookup_arguments(lab),
        ],
    )
    assert result.exit_code == 1
    assert "TLSA not found (the name does not exist)" in result.output


def test_smimea_lookup_prints_pem(lab: Lab) -> None:
    der = lab.user_cert.public_bytes(serialization.Encoding.DER).hex()
    lab.serve(lab.sign_parent(), lab.sign_child(lab.child_body(smimea=f"3 0 0 {der}")))
    result = runner.invoke(app, ["smimea", "lookup", USER, *lookup_arguments(lab)])
    assert result.exit_code == 0, result.output
    pem = lab.user_cert.public_bytes(serialization.Encoding.PEM).decode()
    assert pem in result.stdout


def test_smimea_lookup_bogus(lab: Lab) -> None:
    from tests.integration.servers_check import corrupt_rrsig, smimea_label

    signed = corrupt_rrsig(lab.sign_child(), smimea_label(USER), "SMIMEA")
    lab.serve(lab.sign_parent(), signed)
    result = runner.invoke(app, ["smimea", "lookup", USER, *lookup_arguments(lab)])
    assert result.exit_code == 1
    assert "is bogus" in result.output
    assert "does not verify" in result.output
