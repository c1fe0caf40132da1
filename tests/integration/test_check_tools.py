"""Compare provisioner's verdicts with Postfix's posttls-finger and ldns-dane on the same cases.

posttls-finger resolves through the system resolver (glibc, port 53, /etc/resolv.conf). So the
whole lab of this file runs in a network namespace of its own, where `ip netns exec` bind-mounts
/etc/netns/NAME/resolv.conf over /etc/resolv.conf: Unbound listens on 127.0.0.1:53 there,
knotd serves the zones on 127.53.0.x:53 and the SMTP server listens on port 25.

ldns-dane speaks TLS from the first byte and cannot do SMTP STARTTLS, so it is given the chain
that the provisioner probe captured (-c) and the TLSA records as a file (-t).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.servers_check import (
    CHILD,
    MX1,
    MX2,
    NS1,
    NS2,
    Lab,
    cert_sha256,
    corrupt_rrsig,
    issue,
    lab_material_fixture,  # noqa: F401 (a fixture)
    spki_sha256,
    write_chain,
)

pytestmark = [pytest.mark.servers, pytest.mark.slow]

SMTP_SERVER = Path(__file__).with_name("smtp_server.py")


@pytest.fixture(name="netns_lab")
def netns_lab_fixture(tmp_path: Path, lab_material: dict[str, object]) -> Iterator[Lab]:
    for binary in ("ip", "posttls-finger", "knotd", "unbound", "dig"):
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} is not installed")
    if os.geteuid() != 0:
        pytest.skip("creating a network namespace needs root")
    name = f"pchk{secrets.token_hex(4)}"
    created = subprocess.run(["ip", "netns", "add", name], capture_output=True, check=False)
    if created.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {created.stderr.decode().strip()}")
    netns_etc = Path("/etc/netns") / name
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        netns_etc.mkdir(parents=True)
        (netns_etc / "resolv.conf").write_text("nameserver 127.0.0.1\noptions trust-ad edns0\n")
        instance = Lab(tmp_path, 53, 25, **lab_material)  # type: ignore[arg-type]
        instance.prefix = ["ip", "netns", "exec", name]
        yield instance
        instance.stop()
    finally:
        shutil.rmtree(netns_etc, ignore_errors=True)
        subprocess.run(["ip", "netns", "del", name], check=False)


def start_smtp(lab: Lab, *extra: str) -> subprocess.Popen[bytes]:
    chain, key = write_chain(lab.directory, "mx1", lab.mx1_chain, lab.mx1_key)
    process = subprocess.Popen(
        [*lab.prefix, sys.executable, str(SMTP_SERVER), MX1, "25", str(chain), str(key), *extra],
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == b"ready"
    lab.processes.append(process)
    return process


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
certificate_placeholder: null
users: []
""".replace("certificate_placeholder: null\n", "    certificate:\n      self_signed: true\n")
    )
    return spec


def provisioner_verdict(lab: Lab, spec: Path | None = None) -> dict[str, object]:
    """Run `provisioner check` inside the namespace through the resolver, and return the report."""
    anchor = lab.directory / "anchor.txt"
    anchor.write_text(lab.anchor_text() + "\n")
    completed = subprocess.run(
        [
            *lab.prefix,
            sys.executable,
            "-m",
            "provisioner",
            "--state",
            str(lab.directory / "state"),
            "check",
            str(spec or write_spec(lab)),
            "--json",
            "--trust-anchor",
            str(anchor),
            "--resolver",
            "127.0.0.1",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode in (0, 1), completed.stderr
    report: dict[str, object] = json.loads(completed.stdout)
    report["exit_code"] = completed.returncode
    return report


def dane_ok(report: dict[str, object]) -> bool:
    findings = report["findings"]
    assert isinstance(findings, list)
    return any(f["check"] == "smtp.dane" and f["status"] == "ok" for f in findings)


def posttls_finger(lab: Lab) -> tuple[bool, str]:
    """Return whether posttls-finger reports a verified DANE connection, and its output."""
    completed = subprocess.run(
        [
            *lab.prefix,
            "posttls-finger",
            "-c",
            "-l",
            "dane",
            "-t",
            "10",
            "-T",
            "20",
            "-o",
            "smtp_dns_support_level=dnssec",
            "-o",
            "inet_protocols=ipv4",
            "[mx1.example.test]:25",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    text = completed.stdout + completed.stderr
    return "Verified TLS connection established" in text, text


def ldns_dane(lab: Lab, tlsa_line: str) -> tuple[bool, str] | None:
    """Verify the chain file against TLSA records from a file with ldns-dane, offline."""
    if shutil.which("ldns-dane") is None:
        return None
    tlsa_file = lab.directory / "tlsa.txt"
    tlsa_file.write_text(tlsa_line + "\n")
    chain, _ = write_chain(lab.directory, "mx1", lab.mx1_chain, lab.mx1_key)
    # With -t, ldns-dane takes the reference name from the verify arguments; -n would skip
    # the name check, but ldns-dane 1.8 then reports "hostname mismatch" for every chain.
    completed = subprocess.run(
        ["ldns-dane", "-c", str(chain), "-t", str(tlsa_file), "verify", "mx1.example.test", "25"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    text = completed.stdout + completed.stderr
    return completed.returncode == 0 and "dane-validated successfully" in text, text


def failed_checks(report: dict[str, object]) -> set[str]:
    findings = report["findings"]
    assert isinstance(findings, list)
    return {f["check"] for f in findings if f["status"] == "fail"}


def use_leaf(lab: Lab, names: list[str], *, expired: bool = False) -> None:
    now = dt.datetime.now(dt.UTC)
    window = {}
    if expired:
        window = {
            "not_before": now - dt.timedelta(days=100),
            "not_after": now - dt.timedelta(days=2),
        }
    leaf, key = issue(lab.pki, names, **window)
    lab.mx1_chain = [leaf, lab.pki.ca]
    lab.mx1_key = key


# Each case: how to change the lab, the TLSA record of mx1 (None: the default 3 1 1 of the
# leaf), the SMTP server's options, and whether DANE authenticates the server.
CASES = {
    "dane-ee": (None, None, (), True),
    "dane-ee-mismatch": (None, "3 1 1 " + "00" * 32, (), False),
    "dane-ta": (None, "ta", (), True),
    "dane-ta-expired-leaf": ("expired", "ta", (), False),
    "dane-ta-wrong-name": ("other-name", "ta", (), False),
    "dane-ee-expired-leaf": ("expired", None, (), True),
    "starttls-not-offered": (None, None, ("--no-starttls",), False),
    "bogus-tlsa": ("bogus", None, (), False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tools_agree(netns_lab: Lab, case: str) -> None:
    lab = netns_lab
    change, tlsa, smtp_options, authenticated = CASES[case]
    if change == "expired":
        use_leaf(lab, ["mx1.example.test"], expired=True)
    elif change == "other-name":
        use_leaf(lab, ["other.example.test"])
    if tlsa == "ta":
        tlsa = f"2 0 1 {cert_sha256(lab.pki.ca)}"
    body = lab.child_body(mx1_tlsa=tlsa)
    signed = lab.sign_child(body)
    if change == "bogus":
        signed = corrupt_rrsig(signed, f"_25._tcp.mx1.{CHILD}", "TLSA")
    lab.serve(lab.sign_parent(), signed)
    lab.start_resolver(address="127.0.0.1", port=53)
    start_smtp(lab, *smtp_options)

    report = provisioner_verdict(lab)
    verified, text = posttls_finger(lab)
    assert dane_ok(report) == authenticated, report
    assert verified == authenticated, text
    if not authenticated:
        assert report["exit_code"] == 1
    if change == "expired":
        # DANE-EE ignores the expiry date (RFC 7672, section 3.1.1), but provisioner still
        # fails the run on the expired certificate, which posttls-finger does not judge.
        assert "cert.expiry" in failed_checks(report)
    if "--no-starttls" in smtp_options or change == "bogus":
        return  # no chain was presented, or the TLSA RRset cannot be trusted: nothing offline
    leaf_record = tlsa or f"3 1 1 {spki_sha256(lab.mx1_chain[0])}"
    offline = ldns_dane(lab, f"_25._tcp.mx1.{CHILD} 300 IN TLSA {leaf_record}")
    if offline is None:
        return
    ldns_verified, ldns_text = offline
    assert ldns_verified == authenticated, ldns_text


def test_tools_agree_on_mx_without_tlsa(netns_lab: Lab) -> None:
    lab = netns_lab
    lab.serve(lab.sign_parent(), lab.sign_child(lab.child_body()))
    lab.start_resolver(address="127.0.0.1", port=53)
    chain, key = write_chain(lab.directory, "mx1", lab.mx1_chain, lab.mx1_key)
    process = subprocess.Popen(
        [*lab.prefix, sys.executable, str(SMTP_SERVER), MX2, "25", str(chain), str(key)],
        stdout=subprocess.PIPE,
    )
    lab.processes.append(process)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == b"ready"
    spec = write_spec(lab)
    spec.write_text(
        spec.read_text().replace("mx1.example.test", "mx2.example.test").replace(MX1, MX2)
    )
    report = provisioner_verdict(lab, spec)
    completed = subprocess.run(
        [
            *lab.prefix,
            "posttls-finger",
            "-c",
            "-l",
            "dane",
            "-t",
            "10",
            "-T",
            "20",
            "-o",
            "smtp_dns_support_level=dnssec",
            "-o",
            "inet_protocols=ipv4",
            "[mx2.example.test]:25",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    text = completed.stdout + completed.stderr
    # With the TLSA RRset securely absent, posttls-finger falls back to unauthenticated TLS
    # (RFC 7672, section 2.2); provisioner fails the MX host because the spec asks for DANE.
    assert "Verified TLS connection established" not in text, text
    assert "tlsa.dnssec" in failed_checks(report)
    assert not dane_ok(report)
