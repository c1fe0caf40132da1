"""The end-to-end lab: real NSD, Unbound and Postfix in a network namespace (root only).

One lab is brought up for the module; each test runs one scenario and restores what it broke.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.lab import scenarios
from provisioner.lab.lab import Lab
from provisioner.lab.rollover import mx_rollover
from provisioner.lab.servers import wait_until

pytestmark = [pytest.mark.lab, pytest.mark.servers, pytest.mark.slow]

BINARIES = (
    "ip",
    "named",
    "knotd",
    "nsd",
    "unbound",
    "unbound-control",
    "postfix",
    "dig",
    "openssl",
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("the lab creates a network namespace, which needs root")
    missing = [name for name in BINARIES if shutil.which(name) is None]
    if missing:
        pytest.skip(f"missing programs: {', '.join(missing)}")
    # Not below tmp_path: pytest's base folder has mode 0700, which the postfix user cannot enter.
    workdir = Path(tempfile.mkdtemp(prefix="provisioner-lab-"))
    running = Lab(workdir)
    try:
        running.up()
        yield running
    finally:
        running.down()
        shutil.rmtree(workdir, ignore_errors=True)


def assert_passed(outcome: scenarios.Outcome) -> None:
    assert not outcome.failures, "\n".join(outcome.failures + ["--- evidence:", *outcome.evidence])
    assert outcome.passed


def test_mail_delivered_with_dane(lab: Lab) -> None:
    assert_passed(scenarios.dane_delivery(lab))


def test_impostor_mx_deferred(lab: Lab) -> None:
    assert_passed(scenarios.impostor_mx(lab))


def test_stripped_starttls_deferred(lab: Lab) -> None:
    assert_passed(scenarios.starttls_stripped(lab))


def test_forged_dns_deferred(lab: Lab) -> None:
    assert_passed(scenarios.forged_dns(lab))


def test_smime_verified_against_smimea(lab: Lab) -> None:
    assert_passed(scenarios.smime_signed_mail(lab))


def test_forged_smimea_rejected(lab: Lab) -> None:
    assert_passed(scenarios.forged_smimea(lab))


def test_mx_rollover_defers_nothing(lab: Lab) -> None:
    assert_passed(mx_rollover(lab))


def test_down_kills_and_deletes(tmp_path: Path, lab: Lab) -> None:
    other = Lab(lab.workdir / "short-lived")
    other.namespace.create("127.0.0.53")
    sleeper = other.namespace.popen(["sleep", "300"], tmp_path / "sleep.log")
    wait_until(other.namespace.pids, 10, "the sleeper to enter the namespace")

    other.down()

    assert sleeper.wait(10) is not None
    assert not other.namespace.exists()
    assert not other.namespace.etc_dir.exists()
