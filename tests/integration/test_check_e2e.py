"""provisioner apply, then provisioner check against the zone it signed, served by knotd.

This checks the project's own signer and certificate issuance with the independent validator
and probe of the check package, through the commands a user runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provisioner.cli.main import app
from tests.integration.servers_check import (
    MX1,
    NS1,
    free_port,
    require,
    start_knot,
    stop,
)
from tests.integration.smtp_server import SmtpServer

pytestmark = pytest.mark.servers

runner = CliRunner()

SPEC = """authorities:
  - name: corp
    type: enterprise
    subject:
      common_name: Test Corp CA
zones:
  - name: example.test
    nameservers:
      - name: ns1.example.test
        addresses: [{ns1}]
    dnssec:
      denial: {denial}
    publish:
      backend: zonefile
      path: zones/example.test.zone
mail_servers:
  - host: mx1.example.test
    addresses: [{mx1}]
    ports: [{smtp_port}]
    certificate:
      authority: corp
users:
  - address: alice@example.test
    certificate:
      authority: corp
"""


@pytest.mark.parametrize("denial", ["nsec", "nsec3"])
def test_apply_then_check_passes(tmp_path: Path, denial: str) -> None:
    require("knotd")
    port = free_port([NS1])
    smtp_port = free_port([MX1])
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(ns1=NS1, mx1=MX1, smtp_port=smtp_port, denial=denial))

    applied = runner.invoke(app, ["apply", str(spec)])
    assert applied.exit_code == 0, applied.output
    ds = runner.invoke(app, ["ds", str(spec), "example.test"])
    assert ds.exit_code == 0, ds.output
    anchor = tmp_path / "anchor.txt"
    anchor.write_text(f"{ds.stdout.strip()}\nns1.example.test. IN A {NS1}\n")

    zone_text = (tmp_path / "zones" / "example.test.zone").read_text()
    knot = start_knot(tmp_path / "knot", NS1, port, {"example.test.": zone_text})
    certs = tmp_path / "out" / "certs" / "mx1.example.test"
    key = Path((certs / "key.path").read_text().strip())
    try:
        with SmtpServer(MX1, smtp_port, certs / "fullchain.pem", key):
            checked = runner.invoke(
                app,
                [
                    "check",
                    str(spec),
                    "--json",
                    "--trust-anchor",
                    str(anchor),
                    "--dns-port",
                    str(port),
                ],
            )
    finally:
        stop(knot)
    report = json.loads(checked.stdout)
    problems = [f for f in report["findings"] if f["status"] != "ok"]
    assert problems == []
    assert checked.exit_code == 0
    passed = {f["check"] for f in report["findings"]}
    assert {"dnssec.chain", "dnssec.denial", "smtp.dane", "smimea.match"} <= passed
    denials = [f["message"] for f in report["findings"] if f["check"] == "dnssec.denial"]
    assert all(("NSEC3" in message) == (denial == "nsec3") for message in denials)
