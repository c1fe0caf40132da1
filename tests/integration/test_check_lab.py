"""End-to-end checks against real BIND, Unbound and a STARTTLS server, with injected faults."""

from __future__ import annotations

from pathlib import Path

import dns.name
import dns.rrset
import pytest

from provisioner.check.engine import CheckOptions, make_validator, run_checks
from provisioner.check.report import Report, Status
from provisioner.check.targets import (
    CheckTarget,
    MxTarget,
    Server,
    TrustAnchor,
    UserTarget,
    ZoneTarget,
    load_trust_anchor,
)
from provisioner.check.validate import Security, Validator
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
    lab_fixture,  # noqa: F401 (a fixture)
    lab_material_fixture,  # noqa: F401 (a fixture)
    write_chain,
)
from tests.integration.smtp_server import SmtpServer

pytestmark = pytest.mark.servers


def target_for(lab: Lab, *, resolver: bool = False) -> CheckTarget:
    ds = dns.rrset.from_text_list(PARENT, 300, "IN", "DS", [lab.anchor_text().split(" DS ")[1]])
    anchor = TrustAnchor(dns.name.from_text(PARENT), ds=ds, servers=[Server(NS1, lab.port)])
    child = dns.name.from_text(CHILD)
    return CheckTarget(
        zones=[
            ZoneTarget(
                child,
                [Server(NS1, lab.port, f"ns1.{CHILD}"), Server(NS2, lab.port, f"ns2.{CHILD}")],
            )
        ],
        mx_hosts=[
            MxTarget(dns.name.from_text(f"mx1.{CHILD}"), child, port=lab.smtp_port, addresses=[MX1])
        ],
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


def messages(report: Report, check: str) -> list[str]:
    return [f.message for f in report.by_status(Status.FAIL) if f.check == check]


def test_healthy_through_resolver(lab: Lab) -> None:
    lab.serve(lab.sign_parent(), lab.sign_child())
    lab.start_resolver()
    with smtp(lab):
        report = run_checks(target_for(lab, resolver=True), SystemClock())
    assert failures(report) == []
    assert report.exit_code == 0
    resolver = [f for f in report.findings if f.check == "resolver.validation"]
    assert [f.message for f in resolver] == ["the resolver sets the AD bit"]


def test_resolver_that_does_not_validate(lab: Lab) -> None:
    from tests.integration.servers_check import corrupt_rrsig

    owner = f"_{lab.smtp_port}._tcp.mx1.{CHILD}"
    lab.serve(lab.sign_parent(), corrupt_rrsig(lab.sign_child(), owner, "TLSA"))
    lab.start_resolver(validating=False)
    with smtp(lab):
        report = run_checks(target_for(lab, resolver=True), SystemClock())
    assert report.exit_code == 1
    resolver = messages(report, "resolver.validation")
    assert resolver == [
        "the resolver returned NOERROR for the bogus RRset instead of SERVFAIL, "
        "so it does not validate"
    ]


def test_healthy_with_nsec3(lab: Lab) -> None:
    lab.serve(lab.sign_parent(nsec3=True), lab.sign_child(nsec3=True))
    with smtp(lab):
        report = run_checks(target_for(lab), SystemClock())
    assert failures(report) == []
    denials = [f.message for f in report.findings if f.check == "dnssec.denial"]
    assert any("closest encloser" in message for message in denials)


def test_expired_tlsa_rrsig(lab: Lab) -> None:
    healthy = lab.sign_child()
    expired = lab.sign_child(start="now-2592000", end="now-86400", verify=False)
    owner = f"_{lab.smtp_port}._tcp.mx1.{CHILD}"
    lab.serve(lab.sign_parent(), _replace(healthy, expired, owner))
    with smtp(lab):
        report = run_checks(target_for(lab), SystemClock())
    assert report.exit_code == 1
    tlsa = messages(report, "tlsa.dnssec")
    assert len(tlsa) == 1
    assert f"RRSIG over {owner} TLSA" in tlsa[0]
    assert "expired at" in tlsa[0]
    horizon = messages(report, "dnssec.rrsig-expiry")
    assert any(owner in message and "expired at" in message for message in horizon)


def _replace(healthy: str, donor: str, owner: str) -> str:
    from tests.integration.servers_check import replace_rrsig

    return replace_rrsig(healthy, donor, owner, "TLSA")


def test_ds_matches_no_ksk(lab: Lab) -> None:
    from tests.integration.servers_check import generate_keys

    stranger = generate_keys(lab.directory / "stranger", CHILD)
    lab.serve(lab.sign_parent(ds=stranger.ds()), lab.sign_child())
    with smtp(lab):
        report = run_checks(target_for(lab), SystemClock())
    assert report.exit_code == 1
    chain = messages(report, "dnssec.chain")
    assert any("does not lead to a KSK of example.test." in message for message in chain)


def test_missing_nsec_proof(lab: Lab) -> None:
    from tests.integration.servers_check import drop_types

    lab.serve(lab.sign_parent(), drop_types(lab.sign_child(), {"NSEC"}))
    with smtp(lab):
        report = run_checks(target_for(lab), SystemClock())
    assert report.exit_code == 1
    denial = messages(report, "dnssec.denial")
    assert len(denial) == 2
    assert all("no NSEC or NSEC3 record" in message for message in denial)


def test_missing_nsec3_proof(lab: Lab) -> None:
    from tests.integration.servers_check import drop_types

    lab.serve(
        lab.sign_parent(nsec3=True), drop_types(lab.sign_child(nsec3=True), {"NSEC3", "NSEC3PARAM"})
    )
    with smtp(lab):
        report = run_checks(target_for(lab), SystemClock())
    assert report.exit_code == 1
    assert len(messages(report, "dnssec.denial")) == 2


def test_tlsa_not_matching_certificate(lab: Lab) -> None:
    body = lab.child_body(mx1_tlsa="3 1 1 " + "00" * 32)
    lab.serve(lab.sign_parent(), lab.sign_child(body))
    with smtp(lab):
        report = run_checks(target_for(lab), SystemClock())
    assert report.exit_code == 1
    dane = messages(report, "smtp.dane")
    assert len(dane) == 1
    assert "does not match the TLSA RRset" in dane[0]
    assert "3 1 1 (DANE-EE SPKI SHA2-256) does not match the leaf certificate" in dane[0]


def test_mx_host_without_tlsa(lab: Lab) -> None:
    from tests.integration.servers_check import MX2

    body = lab.child_body() + f"\n{CHILD} MX 20 mx2.{CHILD}"
    lab.serve(lab.sign_parent(), lab.sign_child(body))
    target = target_for(lab)
    child = dns.name.from_text(CHILD)
    mx2 = dns.name.from_text(f"mx2.{CHILD}")
    target.mx_hosts.append(MxTarget(mx2, child, port=lab.smtp_port, addresses=[MX2]))
    with smtp(lab), smtp(lab, address=MX2):
        report = run_checks(target, SystemClock())
    assert report.exit_code == 1
    assert failures(report) == [
        f"tlsa.dnssec: the MX host mx2.{CHILD} has no TLSA RRset (NSEC records prove "
        f"_{lab.smtp_port}._tcp.mx2.{CHILD} and *.mx2.{CHILD} do not exist)"
    ]


def test_mx_rrset_host_not_in_spec(lab: Lab) -> None:
    from tests.integration.servers_check import MX2

    body = lab.child_body() + f"\n{CHILD} MX 20 mx2.{CHILD}"
    lab.serve(lab.sign_parent(), lab.sign_child(body))
    target = target_for(lab)
    target.smtp_port = lab.smtp_port
    with smtp(lab), smtp(lab, address=MX2):
        report = run_checks(target, SystemClock())
    assert report.exit_code == 1
    warnings = [f.message for f in report.by_status(Status.WARN) if f.check == "mx.rrset"]
    assert warnings == [
        f"the MX RRset names mx2.{CHILD}, which the spec does not list; probing it on "
        f"port {lab.smtp_port}"
    ]
    probed = [f.server for f in report.findings if f.check == "smtp.starttls"]
    assert probed == [f"{MX1}:{lab.smtp_port}", f"{MX2}:{lab.smtp_port}"]
    tlsa = messages(report, "tlsa.dnssec")
    assert len(tlsa) == 1
    assert f"the MX host mx2.{CHILD} has no TLSA RRset" in tlsa[0]


def test_starttls_not_offered(lab: Lab) -> None:
    lab.serve(lab.sign_parent(), lab.sign_child())
    with smtp(lab, offer_starttls=False):
        report = run_checks(target_for(lab), SystemClock())
    assert report.exit_code == 1
    assert messages(report, "smtp.starttls") == [
        f"STARTTLS not offered by mx1.example.test at {MX1}:{lab.smtp_port}"
    ]


def test_expired_certificate(lab: Lab) -> None:
    import datetime as dt

    from tests.integration.servers_check import cert_sha256, issue

    now = dt.datetime.now(dt.UTC)
    leaf, key = issue(
        lab.pki,
        [f"mx1.{CHILD}".rstrip(".")],
        not_before=now - dt.timedelta(days=100),
        not_after=now - dt.timedelta(days=2),
    )
    lab.mx1_chain = [leaf, lab.pki.ca]
    lab.mx1_key = key
    body = lab.child_body(mx1_tlsa=f"2 0 1 {cert_sha256(lab.pki.ca)}")
    lab.serve(lab.sign_parent(), lab.sign_child(body))
    with smtp(lab):
        report = run_checks(target_for(lab), SystemClock())
    assert report.exit_code == 1
    expiry = messages(report, "cert.expiry")
    assert len(expiry) == 1
    assert expiry[0].startswith("the certificate expired at")
    dane = messages(report, "smtp.dane")
    assert len(dane) == 1
    assert "the leaf certificate expired at" in dane[0]


def test_smimea_not_matching_certificate(lab: Lab) -> None:
    body = lab.child_body(smimea="3 0 1 " + "11" * 32)
    lab.serve(lab.sign_parent(), lab.sign_child(body))
    with smtp(lab):
        report = run_checks(target_for(lab), SystemClock())
    assert report.exit_code == 1
    smimea = messages(report, "smimea.match")
    assert len(smimea) == 1
    assert "no SMIMEA record (3 0 1 (DANE-EE Cert SHA2-256)) matches the certificate" in smimea[0]


def test_name_server_with_older_serial(lab: Lab) -> None:
    current = lab.sign_child(serial=2026120402)
    older = lab.sign_child(serial=2026120401)
    lab.serve(lab.sign_parent(), current, child_secondary=older)
    with smtp(lab):
        report = run_checks(target_for(lab), SystemClock())
    assert report.exit_code == 1
    serial = [f for f in report.by_status(Status.FAIL) if f.check == "zone.serial"]
    assert len(serial) == 1
    assert serial[0].server == f"ns2.{CHILD} ({NS2}:{lab.port})"
    assert "serves serial 2026120401, older than 2026120402" in serial[0].message


def test_bogus_answer_from_resolver(lab: Lab) -> None:
    from tests.integration.servers_check import corrupt_rrsig

    owner = f"_{lab.smtp_port}._tcp.mx1.{CHILD}"
    lab.serve(lab.sign_parent(), corrupt_rrsig(lab.sign_child(), owner, "TLSA"))
    lab.start_resolver()
    with smtp(lab):
        report = run_checks(target_for(lab, resolver=True), SystemClock())
    assert report.exit_code == 1
    tlsa = messages(report, "tlsa.dnssec")
    assert len(tlsa) == 1
    assert f"the TLSA RRset is bogus: RRSIG over {owner} TLSA" in tlsa[0]
    assert "does not verify" in tlsa[0]
    resolver = [f for f in report.findings if f.check == "resolver.validation"]
    assert [f.status for f in resolver] == [Status.OK]
    assert "SERVFAIL" in resolver[0].message


def validator_for(lab: Lab, anchor: TrustAnchor | None = None) -> Validator:
    target = target_for(lab)
    if anchor is not None:
        target.trust_anchor = anchor
    return make_validator(target, SystemClock(), CheckOptions())


def test_unsigned_delegation_is_insecure(lab: Lab) -> None:
    from tests.integration.servers_check import UNSIGNED

    unsigned = (
        f"$TTL 300\n{UNSIGNED} IN SOA ns1.{CHILD} hostmaster.{UNSIGNED} 1 3600 600 86400 300\n"
        f"{UNSIGNED} NS ns1.{CHILD}\nwww.{UNSIGNED} A 192.0.2.9\n"
    )
    lab.serve(lab.sign_parent(), lab.sign_child(), extra={UNSIGNED: unsigned})
    result = validator_for(lab).validate(f"www.{UNSIGNED}", "A")
    assert result.security == Security.INSECURE
    assert f"proves that {UNSIGNED} has no DS RRset" in result.reason
    assert result.rrset is not None


def test_cname_followed_and_validated(lab: Lab) -> None:
    lab.serve(lab.sign_parent(), lab.sign_child())
    result = validator_for(lab).validate(f"alias.{CHILD}", "A")
    assert result.security == Security.SECURE, result.reason
    assert result.cnames == [dns.name.from_text(f"alias.{CHILD}")]
    assert result.rrset is not None
    assert [r.address for r in result.rrset] == [MX1]


def dnskey_anchor(lab: Lab, key_file: Path) -> TrustAnchor:
    """Return a trust anchor made of the DNSKEY in a dnssec-keygen .key file."""
    anchor = load_trust_anchor(key_file, port=lab.port)
    anchor.servers = [Server(NS1, lab.port)]
    return anchor


def test_dnskey_trust_anchor(lab: Lab) -> None:
    lab.serve(lab.sign_parent(), lab.sign_child())
    anchor = dnskey_anchor(lab, lab.parent_keys.ksk)
    assert anchor.ds is None
    keys = validator_for(lab, anchor).keys(dns.name.from_text(CHILD))
    assert keys.security == Security.SECURE, keys.reason


def test_dnskey_trust_anchor_not_served(lab: Lab) -> None:
    from tests.integration.servers_check import generate_keys

    lab.serve(lab.sign_parent(), lab.sign_child())
    stranger = generate_keys(lab.directory / "stranger", PARENT)
    keys = validator_for(lab, dnskey_anchor(lab, stranger.ksk)).keys(dns.name.from_text(PARENT))
    assert keys.security == Security.BOGUS
    assert "is not in the DNSKEY RRset" in keys.reason


def test_lagging_server_found_through_ns(lab: Lab) -> None:
    lab.serve(
        lab.sign_parent(),
        lab.sign_child(serial=2026120402),
        child_secondary=lab.sign_child(serial=2026120401),
    )
    target = target_for(lab)
    target.zones[0].servers = []  # learn the servers from the served NS RRset
    with smtp(lab):
        report = run_checks(target, SystemClock())
    serial = [f for f in report.findings if f.check == "zone.serial"]
    assert [f.status for f in serial] == [Status.OK, Status.FAIL]
    assert serial[1].server == f"ns2.{CHILD} ({NS2}:{lab.port})"


def test_rrsig_expiry_horizon_warns(lab: Lab) -> None:
    lab.serve(lab.sign_parent(), lab.sign_child())
    with smtp(lab):
        report = run_checks(target_for(lab), SystemClock(), CheckOptions(warn_days=40))
    assert report.exit_code == 0
    warnings = [f for f in report.by_status(Status.WARN) if f.check == "dnssec.rrsig-expiry"]
    assert warnings
    assert all("expires in 30.0 days" in f.message for f in warnings)


def test_rrsig_expired_later(lab: Lab) -> None:
    import datetime as dt

    from provisioner.clock import ManualClock

    lab.serve(lab.sign_parent(), lab.sign_child())
    clock = ManualClock(dt.datetime.now(dt.UTC) + dt.timedelta(days=31))
    with smtp(lab):
        report = run_checks(target_for(lab), clock)
    assert report.exit_code == 1
    chain = messages(report, "dnssec.chain")
    assert any("RRSIG over test. DNSKEY" in m and "expired at" in m for m in chain)


def test_pkix_usage_beside_dane_ee(lab: Lab) -> None:
    from tests.integration.servers_check import spki_sha256

    leaf_hash = spki_sha256(lab.mx1_chain[0])
    body = lab.child_body(mx1_tlsa=f"3 1 1 {leaf_hash}")
    body += f"\n_{lab.smtp_port}._tcp.mx1.{CHILD} TLSA 1 1 1 {leaf_hash}"
    lab.serve(lab.sign_parent(), lab.sign_child(body))
    with smtp(lab):
        report = run_checks(target_for(lab), SystemClock())
    assert report.exit_code == 0
    usage = [f for f in report.findings if f.check == "tlsa.usage"]
    assert [f.status for f in usage] == [Status.WARN]
    assert "1 1 1 (PKIX-EE SPKI SHA2-256)" in usage[0].message


def test_mx_addresses_from_dns(lab: Lab) -> None:
    lab.serve(lab.sign_parent(), lab.sign_child())
    target = target_for(lab)
    target.mx_hosts[0].addresses = []
    with smtp(lab):
        report = run_checks(target, SystemClock())
    assert failures(report) == []
    probed = [f.server for f in report.findings if f.check == "smtp.starttls"]
    assert probed == [f"{MX1}:{lab.smtp_port}"]


def test_served_address_missing_from_spec(lab: Lab) -> None:
    from tests.integration.servers_check import MX2

    lab.serve(lab.sign_parent(), lab.sign_child())
    target = target_for(lab)
    target.mx_hosts[0].addresses = [MX2]
    with smtp(lab), smtp(lab, address=MX2):
        report = run_checks(target, SystemClock())
    assert report.exit_code == 0
    warnings = [f.message for f in report.by_status(Status.WARN) if f.check == "mx.address"]
    assert warnings == [
        f"the DNS serves {MX1} for mx1.{CHILD}, which the spec does not list",
        f"the spec lists {MX2} for mx1.{CHILD}, but the DNS does not serve it",
    ]
    probed = [f.server for f in report.findings if f.check == "smtp.starttls"]
    assert probed == [f"{MX2}:{lab.smtp_port}", f"{MX1}:{lab.smtp_port}"]
