"""An MX certificate rollover of organisation B while A keeps sending mail to it.

`provisioner rollover start --mx` and `provisioner rollover run` (the rollover engine) take
the steps of a DANE-EE key rollover (RFC 7671 section 8.1): issue the next certificate with a
new key, publish its TLSA record beside the current one, wait until no resolver can hold the
old RRset alone, deploy the new certificate, and remove the old record. The lab plays the
operator who installs the new certificate on B's Postfix when the engine asks for it; the
engine then observes that the MTA presents it. No message may be deferred at any moment.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

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

log = logging.getLogger(__name__)

# Seconds between two messages sent during the rollover, and between two `rollover run`.
SEND_INTERVAL = 1.0
RUN_INTERVAL = 2.0
# Upper bound of the whole rollover. With the lab's TTLs it took about 45 s when measured.
ROLLOVER_TIMEOUT = 240.0


def _engine(lab: Lab, *arguments: str) -> dict[str, Any]:
    """Run one `provisioner rollover` command in the namespace and return its JSON output."""
    result = lab.run_in_namespace("rollover", *arguments, str(lab.spec_path), "--json")
    try:
        report: dict[str, Any] = json.loads(result.stdout)
    except json.JSONDecodeError as error:
        raise LabError(
            f"provisioner rollover {arguments[0]} failed (status {result.returncode}): "
            f"{(result.stderr.strip() or result.stdout.strip())[-1000:]}"
        ) from error
    return report


def _tlsa_records(lab: Lab, host: str) -> list[str]:
    answer = lab.dig(f"_25._tcp.{host}", "TLSA", "+short")
    # +short prints the RRSIG too, as "TLSA 13 5 ...": keep only the TLSA rdata.
    return [line for line in answer.splitlines() if line[:1].isdigit()]


def _deploy(lab: Lab) -> None:
    """Install B's current certificate (the new one, once the engine switched) and reload."""
    org_b = lab.organisation("example.net")
    certificates = lab.spec.output_dir() / "certs" / org_b.mx_host.rstrip(".")
    org_b.postfix.install_certificate(
        Path((certificates / "key.path").read_text().strip()), certificates / "fullchain.pem"
    )
    org_b.postfix.postfix("reload")


def _drive(lab: Lab, host: str, outcome: Outcome) -> None:
    """Start the MX rollover of ``host`` and run the engine until it completes."""
    started = lab.run_in_namespace("rollover", "start", str(lab.spec_path), "--mx", host)
    if started.returncode != 0:
        raise LabError(f"provisioner rollover start failed: {started.stderr.strip()[-1000:]}")
    outcome.expect(True, started.stdout.strip())
    steps_seen: list[str] = []
    deployed = False
    deadline = time.monotonic() + ROLLOVER_TIMEOUT
    while time.monotonic() < deadline:
        report = _engine(lab, "run")
        if report.get("errors"):
            raise LabError(f"provisioner rollover run reported: {report['errors']}")
        mine = [r for r in report.get("rollovers", []) if r.get("subject") == host]
        if not mine or any(host.rstrip(".") in done for done in report.get("completed", [])):
            outcome.expect(True, f"the engine completed the rollover through {steps_seen}")
            return
        step = mine[0]["step"]
        if step not in steps_seen:
            steps_seen.append(step)
            records = _tlsa_records(lab, host)
            outcome.expect(True, f"step {step}: Unbound serves {len(records)} TLSA: {records}")
        if step == "deploy-new" and not deployed:
            _deploy(lab)
            deployed = True
            outcome.expect(True, "installed the new certificate on B's Postfix (postfix reload)")
        time.sleep(RUN_INTERVAL)
    raise LabError(f"the rollover did not complete within {ROLLOVER_TIMEOUT:g} s: {steps_seen}")


def mx_rollover(lab: Lab) -> Outcome:
    """Roll B's MX certificate while A sends a message every second; none may be deferred."""
    outcome = Outcome("mx-rollover")
    org_b = lab.organisation("example.net")
    a, b = lab.organisation("example.com").postfix, org_b.postfix
    offset = len(a.log_text())
    before = _tlsa_records(lab, org_b.mx_host)

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
        _drive(lab, org_b.mx_host, outcome)
    except LabError as error:
        outcome.expect(False, f"the rollover stopped: {error}")
    finally:
        stop.set()
        sender.join(30)

    # Unbound may hold the two-record RRset for one more TTL after the old record is removed.
    try:
        after = wait_until(
            lambda: (
                (records := _tlsa_records(lab, org_b.mx_host)) and len(records) == 1 and records
            ),
            60,
            "the old TLSA record to expire from Unbound's cache",
        )
    except LabError:
        after = _tlsa_records(lab, org_b.mx_host)
    outcome.expect(
        len(after) == 1 and after != before,
        f"the TLSA RRset changed from {before} to {after}",
    )
    missing = []
    for token in tokens:
        try:
            wait_until(lambda token=token: delivered(b, token), 60, f"delivery of {token}")
        except LabError:
            missing.append(token)
    outcome.expect(not missing, f"{len(tokens) - len(missing)} of {len(tokens)} messages delivered")
    lines = a.log_text()[offset:].splitlines()
    deferred = [line for line in lines if "status=deferred" in line]
    outcome.expect(
        not deferred, "no message was deferred" if not deferred else f"deferred: {deferred[0]}"
    )
    verified = sum(
        "Verified TLS connection established to mx1.example.net" in line for line in lines
    )
    outcome.expect(verified > 0, f"{verified} DANE-verified TLS connections during the rollover")
    return outcome.finish()
