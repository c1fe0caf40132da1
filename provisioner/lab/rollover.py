"""An MX certificate rollover of organisation B while A keeps sending mail to it.

The steps are those of a DANE-EE key rollover (RFC 7671 section 8.1): issue the next
certificate with a new key, publish its TLSA record beside the current one, wait until no
resolver can hold the old RRset alone, deploy the new certificate, wait again, and remove the
old record. No message may be deferred at any moment.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from provisioner.clock import SystemClock
from provisioner.lab.lab import Lab
from provisioner.lab.netns import LabError
from provisioner.lab.scenarios import (
    RECIPIENT,
    SENDER,
    Outcome,
    delivered,
    new_token,
    plain_message,
)
from provisioner.lab.servers import wait_until
from provisioner.store.local import LocalStore

log = logging.getLogger(__name__)

# Seconds between two messages sent during the rollover.
SEND_INTERVAL = 1.0


def _set_status(lab: Lab, host: str, changes: dict[str, str]) -> None:
    """Move B's MX certificates between statuses, e.g. {"current": "previous"}."""
    with LocalStore(lab.spec.state_dir()) as store, store.transaction():
        for old, new in changes.items():
            for record in store.certificates(purpose="server", owner=host, status=old):
                store.set_certificate_status(record.id, new)


def _issue_next(lab: Lab, host: str) -> None:
    from provisioner.workflows.certificates import CertificateManager

    server = next(s for s in lab.spec.mail_servers if s.host == host)
    with LocalStore(lab.spec.state_dir()) as store:
        CertificateManager(lab.spec, store, SystemClock(), dry_run=False).issue_next_server(
            server, "lab-mx-rollover"
        )


def _tlsa_records(lab: Lab, host: str) -> list[str]:
    answer = lab.dig(f"_25._tcp.{host}", "TLSA", "+short")
    return [line for line in answer.splitlines() if line and not line.startswith("TLSA ")]


def mx_rollover(lab: Lab) -> Outcome:
    """Roll B's MX certificate while A sends a message every second; none may be deferred."""
    # TODO: drive these steps with `provisioner rollover start|run` once the rollover engine
    # has a command line; until then the lab moves the certificate statuses itself.
    outcome = Outcome("mx-rollover")
    org_a, org_b = lab.organisation("example.com"), lab.organisation("example.net")
    a, b = org_a.postfix, org_b.postfix
    server = next(s for s in lab.spec.mail_servers if s.host == org_b.mx_host)
    wait = (server.tlsa_ttl or lab.spec.zone("example.net").ttl) + 2.0
    offset = len(a.log_text())

    tokens: list[str] = []
    stop = threading.Event()

    def send_continuously() -> None:
        while not stop.is_set():
            token = new_token()
            a.send(SENDER, RECIPIENT, plain_message(token))
            tokens.append(token)
            stop.wait(SEND_INTERVAL)

    sender = threading.Thread(target=send_continuously, daemon=True)
    sender.start()
    try:
        _issue_next(lab, org_b.mx_host)
        lab.apply()
        records = wait_until(
            lambda: (
                len(_tlsa_records(lab, org_b.mx_host)) == 2 and _tlsa_records(lab, org_b.mx_host)
            ),
            30,
            "both TLSA records to be served",
        )
        outcome.expect(True, f"published current and next TLSA: {records}")
        stop.wait(wait)

        _set_status(lab, org_b.mx_host, {"current": "previous", "next": "current"})
        lab.apply()
        certificates = lab.spec.output_dir() / "certs" / org_b.mx_host.rstrip(".")
        b.key_file = Path((certificates / "key.path").read_text().strip())
        b.write_config()
        b.postfix("reload")
        outcome.expect(True, "deployed the new certificate to B's Postfix (postfix reload)")
        stop.wait(wait)

        _set_status(lab, org_b.mx_host, {"previous": "retired"})
        lab.apply()
        records = wait_until(
            lambda: (
                len(_tlsa_records(lab, org_b.mx_host)) == 1 and _tlsa_records(lab, org_b.mx_host)
            ),
            30,
            "the old TLSA record to be removed",
        )
        outcome.expect(True, f"removed the old TLSA record, served now: {records}")
        stop.wait(wait)
    finally:
        stop.set()
        sender.join(30)

    missing = []
    for token in tokens:
        try:
            wait_until(lambda token=token: delivered(b, token), 60, f"delivery of {token}")
        except LabError:
            missing.append(token)
    outcome.expect(not missing, f"{len(tokens) - len(missing)} of {len(tokens)} messages delivered")
    deferred = [line for line in a.log_text()[offset:].splitlines() if "status=deferred" in line]
    outcome.expect(
        not deferred,
        "no message was deferred" if not deferred else f"deferred: {deferred[0]}",
    )
    verified = sum(
        "Verified TLS connection established to mx1.example.net" in line
        for line in a.log_text()[offset:].splitlines()
    )
    outcome.expect(verified > 0, f"{verified} DANE-verified TLS connections during the rollover")
    return outcome.finish()
