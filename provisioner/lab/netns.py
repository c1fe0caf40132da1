"""A Linux network namespace that holds the whole lab, with its own resolv.conf.

Inside a fresh namespace the loopback interface owns all of 127.0.0.0/8, so every server binds
its own 127.x address on the real ports 25 and 53 and nothing collides with the host.
`ip netns exec` bind-mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf for the commands
it runs, which is how Postfix's stub resolver reaches the lab's validating resolver. The host's
own /etc/resolv.conf is never touched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from provisioner.errors import ProvisionerError

log = logging.getLogger(__name__)

NETNS_ETC = Path("/etc/netns")


class LabError(ProvisionerError):
    """The lab could not be set up, run or torn down."""


def run(
    command: Sequence[str],
    *,
    check: bool = True,
    timeout: float = 60,
    input_text: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one command, capturing its output; raise LabError when it fails and ``check`` is set."""
    log.debug("run %s", " ".join(command))
    try:
        result = subprocess.run(
            list(command),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            input=input_text,
            cwd=cwd,
        )
    except FileNotFoundError as error:
        raise LabError(
            f"command not found: {command[0]}",
            hint="install the lab's Debian packages (see docs/lab.md)",
        ) from error
    except subprocess.TimeoutExpired as error:
        raise LabError(f"command timed out after {timeout:g} s: {' '.join(command)}") from error
    if check and result.returncode != 0:
        output = (result.stderr.strip() or result.stdout.strip())[-2000:]
        raise LabError(
            f"command failed with status {result.returncode}: {' '.join(command)}: {output}"
        )
    return result


class Namespace:
    """A network namespace: ``create`` makes it, ``delete`` removes it with everything in it."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def etc_dir(self) -> Path:
        return NETNS_ETC / self.name

    def exists(self) -> bool:
        return Path("/run/netns", self.name).exists()

    def create(self, nameserver: str) -> None:
        """Create the namespace, bring up its loopback interface and write its resolv.conf."""
        if os.geteuid() != 0:
            raise LabError(
                "the lab needs root to create a network namespace",
                hint="run it as root (sudo make lab)",
            )
        if self.exists():
            raise LabError(
                f"the network namespace {self.name} already exists",
                hint="run 'provisioner lab down' with the same --workdir first",
            )
        run(["ip", "netns", "add", self.name])
        run(["ip", "-n", self.name, "link", "set", "lo", "up"])
        self.etc_dir.mkdir(parents=True, exist_ok=True)
        # trust-ad: glibc passes the AD bit of the answer to Postfix only with this option.
        (self.etc_dir / "resolv.conf").write_text(
            f"nameserver {nameserver}\noptions trust-ad attempts:1 timeout:5\n"
        )
        log.info("created network namespace %s (resolver %s)", self.name, nameserver)

    def add_address(self, address: str) -> None:
        """Put ``address`` on the loopback interface.

        The interface already routes all of 127.0.0.0/8, but Postfix accepts an
        inet_interfaces address only when an interface carries it.
        """
        existing = run(["ip", "-n", self.name, "-4", "addr", "show", "dev", "lo"]).stdout
        if f"inet {address}/" not in existing:
            run(["ip", "-n", self.name, "addr", "add", f"{address}/32", "dev", "lo"])

    def command(self, command: Sequence[str]) -> list[str]:
        """Return ``command`` wrapped to run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *command]

    def run(self, command: Sequence[str], **options: object) -> subprocess.CompletedProcess[str]:
        return run(self.command(command), **options)  # type: ignore[arg-type]

    def popen(self, command: Sequence[str], log_path: Path) -> subprocess.Popen[bytes]:
        """Start a foreground program inside the namespace, with its output in ``log_path``."""
        with log_path.open("ab") as output:
            return subprocess.Popen(
                self.command(command),
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def pids(self) -> list[int]:
        if not self.exists():
            return []
        result = run(["ip", "netns", "pids", self.name], check=False)
        return [int(word) for word in result.stdout.split() if word.isdigit()]

    def kill_all(self, grace: float = 5.0) -> None:
        """Stop every process in the namespace: SIGTERM, then SIGKILL after ``grace`` seconds."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.pids()
            if not pids:
                return
            log.info("sending %s to %d processes in %s", sig.name, len(pids), self.name)
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and self.pids():
                time.sleep(0.1)

    def delete(self) -> None:
        """Kill every process inside, delete the namespace and its /etc/netns folder."""
        self.kill_all()
        if self.exists():
            run(["ip", "netns", "delete", self.name], check=False)
        shutil.rmtree(self.etc_dir, ignore_errors=True)
        log.info("deleted network namespace %s", self.name)
