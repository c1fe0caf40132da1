"""The lab's scenarios: what DANE and SMIMEA protect against, shown with real servers.

Each scenario sends mail from organisation A (example.com) to organisation B (example.net),
changes one thing an attacker could change, and records the output of Postfix, Unbound, OpenSSL
and `provisioner check`. Every scenario that breaks something restores it and then checks
that the deferred mail is delivered, so the next scenario starts from a working lab.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import secrets
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from provisioner.lab.lab import Lab, provisioner_command
from provisioner.lab.netns import LabError, run
from provisioner.lab.servers import AuthoritativeServer, PostfixInstance, wait_until
from provisioner.store.atomic import write_private

log = logging.getLogger(__name__)

SENDER = "alice@example.com"
RECIPIENT = "bob@example.net"
# Time allowed for a message to be delivered or deferred; retries are forced by flushing.
MAIL_TIMEOUT = 60.0
IMPOSTOR_ADDRESS = "127.0.20.66"
MOVED_MX_ADDRESS = "127.0.20.26"


@dataclass
class Outcome:
    """The result of one scenario: the evidence it collected and the checks that failed."""

    name: str
    passed: bool = False
    evidence: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def expect(self, condition: bool, description: str) -> None:
        (self.evidence if condition else self.failures).append(description)

    def finish(self) -> Outcome:
        self.passed = not self.failures
        return self

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "passed": self.passed,
            "evidence": self.evidence,
            "failures": self.failures,
        }


# --- helpers ----------------------------------------------------------------------------------


def new_token() -> str:
    return f"lab-{secrets.token_hex(6)}"


def plain_message(token: str, sender: str = SENDER, recipient: str = RECIPIENT) -> bytes:
    return (
        f"From: {sender}\nTo: {recipient}\nSubject: {token}\n"
        f"Message-ID: <{token}@example.com>\n\nLab message {token}.\n"
    ).encode()


def delivered(postfix: PostfixInstance, token: str, address: str = RECIPIENT) -> Path | None:
    """Return the delivered message file that contains ``token``, if any."""
    for path in postfix.mailbox(address):
        if token.encode() in path.read_bytes():
            return path
    return None


def _log_lines(postfix: PostfixInstance, offset: int) -> list[str]:
    return postfix.log_text()[offset:].splitlines()


def wait_for_log(
    postfix: PostfixInstance, offset: int, pattern: str, timeout: float = MAIL_TIMEOUT
) -> str:
    """Wait until a log line written after ``offset`` matches ``pattern``; return that line."""
    compiled = re.compile(pattern)

    def find() -> str | None:
        for line in _log_lines(postfix, offset):
            if compiled.search(line):
                return line
        postfix.flush()
        return None

    return wait_until(find, timeout, f"a log line matching {pattern!r}", interval=1.0)


def wait_delivered(postfix: PostfixInstance, sender: PostfixInstance, token: str) -> Path:
    def check() -> Path | None:
        found = delivered(postfix, token)
        if found is None:
            sender.flush()
        return found

    return wait_until(check, MAIL_TIMEOUT, f"delivery of {token}", interval=1.0)


def failed_findings(report: dict[str, object]) -> list[dict[str, object]]:
    findings = report.get("findings", [])
    assert isinstance(findings, list)
    return [f for f in findings if isinstance(f, dict) and f.get("status") == "fail"]


def describe(finding: dict[str, object]) -> str:
    return f"{finding.get('check')}: {finding.get('subject')}: {finding.get('message')}"


def self_signed(folder: Path, host: str) -> tuple[Path, Path]:
    """Write a self-signed certificate and key for ``host``: what an impostor would present."""
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_file = folder / "key.pem"
    cert_file = folder / "cert.pem"
    write_private(
        key_file,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


def impostor(lab: Lab, address: str) -> PostfixInstance:
    """Return a Postfix that claims to be B's MX with a certificate B never published."""
    b = lab.organisation("example.net")
    key_file, cert_file = self_signed(lab.workdir / "impostor" / "tls", b.mx_host.rstrip("."))
    return PostfixInstance(
        lab.namespace,
        lab.workdir / "impostor" / address,
        b.mx_host,
        b.domain,
        address,
        key_file=key_file,
        chain_file=cert_file,
        mailboxes=[RECIPIENT],
    )


def _check_names(outcome: Outcome, lab: Lab, patterns: list[str], what: str) -> None:
    """Run `provisioner check` and expect a failed finding matching one of ``patterns``."""
    report = lab.check()
    failures = failed_findings(report)
    text = [describe(f) for f in failures]
    hit = next((t for t in text if any(re.search(p, t, re.IGNORECASE) for p in patterns)), None)
    outcome.expect(
        hit is not None,
        f"provisioner check names the cause ({what}): {hit}"
        if hit
        else f"provisioner check does not name {what}; its failures: {text or 'none'}",
    )


# --- scenario 1: DANE for SMTP ----------------------------------------------------------------


def dane_delivery(lab: Lab) -> Outcome:
    """Show that mail from A to B goes over TLS that Postfix verified with B's TLSA record."""
    outcome = Outcome("dane-delivery")
    a, b = lab.organisation("example.com").postfix, lab.organisation("example.net").postfix
    offset = len(a.log_text())
    token = new_token()
    a.send(SENDER, RECIPIENT, plain_message(token))
    wait_delivered(b, a, token)
    outcome.expect(True, f"message {token} delivered to {RECIPIENT}")
    verified = [
        line
        for line in _log_lines(a, offset)
        if "Verified TLS connection established to mx1.example.net" in line
    ]
    outcome.expect(
        bool(verified), f"A's log: {verified[0] if verified else 'no Verified TLS line'}"
    )
    sent = [line for line in _log_lines(a, offset) if "status=sent" in line]
    outcome.expect(bool(sent), f"A's log: {sent[0] if sent else 'no status=sent line'}")
    report = lab.check()
    outcome.expect(
        report.get("status") == "ok",
        f"provisioner check: {report.get('status')} {report.get('summary')}",
    )
    return outcome.finish()


def _expect_recovery(outcome: Outcome, lab: Lab, token: str) -> None:
    a, b = lab.organisation("example.com").postfix, lab.organisation("example.net").postfix
    try:
        wait_delivered(b, a, token)
        outcome.expect(True, f"after the repair the deferred message {token} was delivered")
    except LabError as error:
        outcome.expect(False, f"the deferred message {token} was not delivered: {error}")


def impostor_mx(lab: Lab) -> Outcome:
    """Show that Postfix defers mail to an MX that presents another certificate."""
    outcome = Outcome("impostor-mx")
    org_b = lab.organisation("example.net")
    a, b = lab.organisation("example.com").postfix, org_b.postfix
    fake = impostor(lab, org_b.address)
    b.stop()
    fake.start()
    token = new_token()
    try:
        offset = len(a.log_text())
        a.send(SENDER, RECIPIENT, plain_message(token))
        line = wait_for_log(a, offset, rf"to=<{RECIPIENT}>.*status=deferred")
        outcome.expect(True, f"A's log: {line}")
        outcome.expect(
            "certificate not verified" in line or "TLSA" in line,
            f"the deferral names the failed DANE authentication: {line}",
        )
        outcome.expect(delivered(fake, token) is None, "the impostor received nothing")
        _check_names(outcome, lab, [r"tlsa", r"match"], "the TLSA mismatch")
    finally:
        fake.stop()
        b.start()
    _expect_recovery(outcome, lab, token)
    return outcome.finish()


def starttls_stripped(lab: Lab) -> Outcome:
    """Show that Postfix defers mail, not sends it in plaintext, when STARTTLS is stripped."""
    outcome = Outcome("starttls-stripped")
    org_b = lab.organisation("example.net")
    a, b = lab.organisation("example.com").postfix, org_b.postfix
    original = b.address
    b.stop()
    b.address = MOVED_MX_ADDRESS
    b.start()
    proxy_log = lab.workdir / "proxy.log"
    proxy = lab.namespace.popen(
        provisioner_command(
            "lab",
            "strip-starttls",
            "--listen",
            f"{original}:25",
            "--upstream",
            f"{MOVED_MX_ADDRESS}:25",
        ),
        proxy_log,
    )
    token = new_token()
    try:
        wait_until(
            lambda: "listening on" in proxy_log.read_text(), 20, "the STARTTLS-stripping proxy"
        )
        offset = len(a.log_text())
        a.send(SENDER, RECIPIENT, plain_message(token))
        line = wait_for_log(a, offset, rf"to=<{RECIPIENT}>.*status=deferred")
        outcome.expect(True, f"A's log: {line}")
        outcome.expect(
            "TLS is required, but was not offered" in line,
            f"the deferral says STARTTLS was missing: {line}",
        )
        outcome.expect("removed STARTTLS" in proxy_log.read_text(), "the proxy removed STARTTLS")
        outcome.expect(delivered(b, token) is None, "nothing was delivered in plaintext")
        _check_names(outcome, lab, [r"starttls"], "the missing STARTTLS")
    finally:
        proxy.terminate()
        try:
            proxy.wait(10)
        except subprocess.TimeoutExpired:
            proxy.kill()
        b.stop()
        b.address = original
        b.start()
    _expect_recovery(outcome, lab, token)
    return outcome.finish()


def forge_zone(signed_text: str, host: str, address: str, tlsa_data: str) -> str:
    """Return ``signed_text`` with ``host``'s A and TLSA records replaced, old RRSIGs kept.

    This is what an attacker who can answer for the zone, but has no zone key, can serve.
    """
    forged = signed_text
    for pattern, replacement in (
        (rf"^({re.escape(host)}\s+\d+\s+IN\s+A\s+)\S+$", rf"\g<1>{address}"),
        (rf"^(_25\._tcp\.{re.escape(host)}\s+\d+\s+IN\s+TLSA\s+3 1 1\s+).*$", rf"\g<1>{tlsa_data}"),
    ):
        forged, count = re.subn(pattern, replacement, forged, flags=re.MULTILINE)
        if count == 0:
            raise LabError(f"no record matching {pattern!r} in the zone to forge")
    return forged


def forged_dns(lab: Lab) -> Outcome:
    """Show that Unbound rejects a rogue server's example.net that moves B's MX host.

    Its A record points at the impostor and its TLSA record pins the impostor's certificate,
    but the RRSIGs are the old ones: without DNSSEC the impostor would get the mail.
    """
    outcome = Outcome("forged-dns")
    org_b = lab.organisation("example.net")
    a = lab.organisation("example.com").postfix
    assert lab.resolver is not None
    real = lab.authoritative["example.net."]
    fake = impostor(lab, IMPOSTOR_ADDRESS)
    fake_certificate = x509.load_pem_x509_certificate(fake.chain_file.read_bytes())
    spki = fake_certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forged_file = lab.workdir / "rogue" / "example.net.zone"
    forged_file.parent.mkdir(parents=True, exist_ok=True)
    forged_file.write_text(
        forge_zone(
            lab.zone_file("example.net.").read_text(),
            org_b.mx_host,
            IMPOSTOR_ADDRESS,
            hashlib.sha256(spki).hexdigest(),
        )
    )
    rogue = AuthoritativeServer(
        lab.namespace,
        lab.workdir / "rogue",
        "rogue example.net.",
        real.addresses,
        {"example.net.": forged_file},
    )
    real.stop()
    rogue.start()
    fake.start()
    lab.resolver.flush()
    token = new_token()
    try:
        answer = lab.dig(org_b.mx_host, "A")
        outcome.expect(
            "status: SERVFAIL" in answer, "Unbound answers SERVFAIL for the forged A record"
        )
        offset = len(a.log_text())
        a.send(SENDER, RECIPIENT, plain_message(token))
        line = wait_for_log(a, offset, rf"to=<{RECIPIENT}>.*status=deferred")
        outcome.expect(True, f"A's log: {line}")
        outcome.expect(delivered(fake, token) is None, "the impostor received nothing")
        _check_names(outcome, lab, [r"bogus", r"signature", r"rrsig"], "the bogus signature")
    finally:
        fake.stop()
        rogue.stop()
        real.start()
        lab.resolver.flush()
    _expect_recovery(outcome, lab, token)
    return outcome.finish()


# --- scenario 2: S/MIME with SMIMEA -----------------------------------------------------------


def _smime_verify(lab: Lab, message: Path, *, own_validation: bool = True) -> dict[str, object]:
    """Run `provisioner smime verify` at B: validating from the root's trust anchor itself, or
    (``own_validation`` false) trusting Unbound's AD bit."""
    arguments = ["smime", "verify", str(message), "--json", "--resolver", "127.0.0.53"]
    if own_validation:
        arguments += ["--trust-anchor", str(lab.anchor_file)]
    result = lab.run_in_namespace(*arguments)
    try:
        verdict: dict[str, object] = json.loads(result.stdout)
    except json.JSONDecodeError as error:
        raise LabError(f"smime verify printed no JSON: {result.stderr.strip()[-1000:]}") from error
    verdict["exit_status"] = result.returncode
    return verdict


def _openssl_verify(message: Path, ca_file: Path) -> tuple[int, str]:
    result = run(
        [
            "openssl",
            "smime",
            "-verify",
            "-in",
            str(message),
            "-CAfile",
            str(ca_file),
            "-out",
            "/dev/null",
        ],
        check=False,
    )
    return result.returncode, (result.stderr.strip() or result.stdout.strip()).splitlines()[-1]


def _signed_mail(lab: Lab, key: Path, cert: Path, token: str) -> Path:
    """Sign a message as alice, send it from A to B, and return the file B delivered."""
    a, b = lab.organisation("example.com").postfix, lab.organisation("example.net").postfix
    source = lab.workdir / "smime" / f"{token}.txt"
    signed = lab.workdir / "smime" / f"{token}.eml"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(plain_message(token))
    run(
        provisioner_command(
            "smime",
            "sign",
            "--key",
            str(key),
            "--cert",
            str(cert),
            "--in",
            str(source),
            "--out",
            str(signed),
        )
    )
    a.send(SENDER, RECIPIENT, signed.read_bytes())
    return wait_delivered(b, a, token)


def issue_unpublished_certificate(lab: Lab) -> tuple[Path, Path]:
    """Issue alice a second certificate from her CA that is never published as SMIMEA."""
    from provisioner.clock import SystemClock
    from provisioner.pki import ca as pki_ca
    from provisioner.pki.keys import generate_private_key, private_key_to_pem
    from provisioner.store.local import LocalStore
    from provisioner.workflows.certificates import CertificateManager

    spec = lab.spec
    with LocalStore(spec.state_dir()) as store:
        authority = CertificateManager(spec, store, SystemClock(), dry_run=False).authority(
            "orga-ca"
        )
    key = generate_private_key("ecdsa-p256")
    issued = pki_ca.issue_smime_certificate(authority, key, SENDER, SystemClock())
    folder = lab.workdir / "smime" / "unpublished"
    folder.mkdir(parents=True, exist_ok=True)
    write_private(folder / "key.pem", private_key_to_pem(key))
    (folder / "fullchain.pem").write_bytes(issued.fullchain_pem())
    return folder / "key.pem", folder / "fullchain.pem"


def smime_signed_mail(lab: Lab) -> Outcome:
    """Verify alice's signed mail at B against SMIMEA, and reject a certificate not in the DNS."""
    outcome = Outcome("smime-smimea")
    user = lab.spec.output_dir() / "smime" / SENDER
    ca_file = lab.spec.output_dir() / "ca" / "orga-ca" / "root.pem"
    key = Path((user / "key.path").read_text().strip())

    received = _signed_mail(lab, key, user / "fullchain.pem", new_token())
    verdict = _smime_verify(lab, received)
    outcome.expect(
        verdict.get("ok") is True and verdict["exit_status"] == 0,
        f"provisioner smime verify: {verdict.get('reason')}",
    )
    verdict = _smime_verify(lab, received, own_validation=False)
    outcome.expect(
        verdict.get("ok") is True, f"with Unbound's AD bit instead: {verdict.get('reason')}"
    )
    status, said = _openssl_verify(received, ca_file)
    outcome.expect(status == 0, f"openssl smime -verify agrees (exit {status}): {said}")

    other_key, other_cert = issue_unpublished_certificate(lab)
    received = _signed_mail(lab, other_key, other_cert, new_token())
    verdict = _smime_verify(lab, received)
    reason = str(verdict.get("reason"))
    outcome.expect(
        verdict.get("ok") is False and verdict["exit_status"] == 1 and "not in the DNS" in reason,
        f"provisioner smime verify rejects the unpublished certificate: {reason}",
    )
    status, said = _openssl_verify(received, ca_file)
    # OpenSSL only checks the signature and the path to the CA, which are both valid here:
    # whether the certificate is the one the domain publishes is what SMIMEA adds.
    outcome.expect(
        status == 0,
        f"openssl smime -verify accepts it, since it checks only the CA chain (exit {status}): "
        f"{said}",
    )
    return outcome.finish()


def forge_smimea(signed_text: str, owner: str, certificate: x509.Certificate) -> str:
    """Return ``signed_text`` with the SMIMEA 3 0 0 record at ``owner`` replaced by one for
    ``certificate``, keeping the old RRSIG."""
    data = certificate.public_bytes(serialization.Encoding.DER).hex()
    pattern = rf"^({re.escape(owner)}\s+\d+\s+IN\s+SMIMEA\s+3 0 0\s+).*$"
    forged, count = re.subn(pattern, rf"\g<1>{data}", signed_text, flags=re.MULTILINE)
    if count == 0:
        raise LabError(f"no SMIMEA 3 0 0 record at {owner} in the zone to forge")
    return forged


def forged_smimea(lab: Lab) -> Outcome:
    """Show that a forged SMIMEA record, served without a valid signature, is rejected.

    A rogue server answers for example.com with alice's SMIMEA record replaced by one for a
    certificate the attacker holds; a message signed with that certificate must not verify.
    """
    from provisioner.dane.smimea import smimea_owner

    outcome = Outcome("smime-forged-smimea")
    assert lab.resolver is not None
    key, chain = issue_unpublished_certificate(lab)
    certificate = x509.load_pem_x509_certificate(chain.read_bytes())
    token = new_token()
    source = lab.workdir / "smime" / f"{token}.txt"
    signed = lab.workdir / "smime" / f"{token}.eml"
    source.write_bytes(plain_message(token))
    run(
        provisioner_command(
            "smime",
            "sign",
            "--key",
            str(key),
            "--cert",
            str(chain),
            "--in",
            str(source),
            "--out",
            str(signed),
        )
    )

    real = lab.authoritative["example.com."]
    forged_file = lab.workdir / "rogue-smimea" / "example.com.zone"
    forged_file.parent.mkdir(parents=True, exist_ok=True)
    forged_file.write_text(
        forge_smimea(
            lab.zone_file("example.com.").read_text(), smimea_owner(SENDER).to_text(), certificate
        )
    )
    rogue = AuthoritativeServer(
        lab.namespace,
        forged_file.parent,
        "rogue example.com.",
        real.addresses,
        {"example.com.": forged_file},
    )
    real.stop()
    rogue.start()
    lab.resolver.flush()
    try:
        for own_validation in (True, False):
            verdict = _smime_verify(lab, signed, own_validation=own_validation)
            how = "validating itself" if own_validation else "trusting the AD bit"
            outcome.expect(
                verdict.get("ok") is False and verdict["exit_status"] == 1,
                f"provisioner smime verify ({how}) rejects it: {verdict.get('reason')}",
            )
            outcome.expect(
                "not DNSSEC-secure" in str(verdict.get("reason")),
                f"the reason is the insecure SMIMEA answer: {verdict.get('reason')}",
            )
    finally:
        rogue.stop()
        real.start()
        lab.resolver.flush()
    return outcome.finish()


SCENARIOS: dict[str, Callable[[Lab], Outcome]] = {
    "dane-delivery": dane_delivery,
    "impostor-mx": impostor_mx,
    "starttls-stripped": starttls_stripped,
    "forged-dns": forged_dns,
    "smime-smimea": smime_signed_mail,
    "smime-forged-smimea": forged_smimea,
}


def run_scenarios(lab: Lab, names: list[str] | None = None) -> list[Outcome]:
    """Run the named scenarios (default: all, in order); a crash counts as a failed outcome."""
    from provisioner.lab.rollover import mx_rollover

    table = {**SCENARIOS, "mx-rollover": mx_rollover}
    outcomes = []
    for name in names or list(table):
        if name not in table:
            raise LabError(f"unknown scenario {name!r}", hint=f"choose from: {', '.join(table)}")
        started = time.monotonic()
        log.info("scenario %s: start", name)
        try:
            outcome = table[name](lab)
        except (LabError, OSError, subprocess.SubprocessError) as error:
            outcome = Outcome(name, failures=[f"the scenario stopped: {error}"]).finish()
        log.info(
            "scenario %s: %s in %.0f s",
            name,
            "passed" if outcome.passed else "FAILED",
            time.monotonic() - started,
        )
        outcomes.append(outcome)
    return outcomes
