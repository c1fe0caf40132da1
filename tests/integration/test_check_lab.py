"""End-to-end checks against real BIND, Unbound and a STARTTLS server, with injected faults."""

from __future__ import annotations

import dns.name
import dns.rrset
import pytest

from provisioner.check.engine import CheckOptions, run_checks
from provisioner.check.report import Report, Status
from provisioner.check.targets import (
    CheckTarget,
    MxTarget,
    Server,
    TrustAnchor,
    UserTarget,
    ZoneTarget,
)
from provisioner.clock import SystemClock
from tests.integration.servers_check import (
    CHILD,
    MX1,
    NS1,
    NS2,
    PARENT,
    RESOLVER,
    USER,
    Lab,
    lab,  # noqa: F401
    lab_material,  # noqa: F401
    write_chain,
)
from tests.integration.smtp_server import SmtpServer

pytestmark = pytest.mark.servers


def target_for(lab: Lab, *, resolver: bool = False) -> CheckTarget:
    ds = dns.rrset.from_text_list(PARENT, 300, "IN", "DS", [lab.anchor_text().split(" DS ")[1]])
    anchor = TrustAnchor(dns.name.from_text(PARENT), ds=ds, servers=[Server(NS1, lab.port)])
    child = dns.name.from_text(CHILD)
    return CheckTarget(
        zones=[ZoneTarget(child, [Server(NS1, lab.port, "ns1"), Server(NS2, lab.port, "ns2")])],
        mx_hosts=[MxTarget(dns.name.from_text(f"mx1.{CHILD}"), child, port=lab.smtp_port,
                           addresses=[MX1])],
        users=[UserTarget(USER, child, [lab.user_cert])],
        trust_anchor=anchor,
        resolver=Server(RESOLVER, lab.port) if resolver else None,
        dns_port=lab.port,
    )


def smtp(lab: Lab, address: str = MX1, **options: object) -> SmtpServer:
    chain, key = write_chain(lab.directory, "mx1", lab.mx1_chain, lab.mx1_key)
    return SmtpServer(address, lab.smtp_port, chain, key, **options)  # type: ignore[arg-type]


def failures(report: Report) -> list[str]:
    return [f"{f.check}: {f.message}" for f in report.by_status(Status.FAIL)]


def test_healthy_deployment_passes(lab: Lab) -> None:
    lab.serve(lab.sign_parent(), lab.sign_child())
    with smtp(lab):
        report = run_checks(target_for(lab), SystemClock(), CheckOptions())
    for f in report.findings:
        print(f.status, f.check, f.subject, f.server, f.message)
    assert failures(report) == []
    assert report.exit_code == 0
