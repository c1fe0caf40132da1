"""Running the playbooks through ansible-runner and reading a result per host from its events."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provisioner.deploy.templates import asset_dir
from provisioner.errors import DeployError

log = logging.getLogger(__name__)

# Environment of ansible-playbook, beside ANSIBLE_CONFIG pointing at the shipped ansible.cfg:
# output has no colors or cows, and an unreachable host fails fast instead of retrying.
# Host key checking stays on.
ANSIBLE_ENVIRONMENT = {
    "ANSIBLE_NOCOLOR": "1",
    "ANSIBLE_NOCOWS": "1",
    "ANSIBLE_RETRY_FILES_ENABLED": "0",
    "ANSIBLE_FORCE_COLOR": "0",
    "ANSIBLE_DISPLAY_ARGS_TO_STDOUT": "0",
    "ANSIBLE_SSH_RETRIES": "0",
    "ANSIBLE_TIMEOUT": "10",
    "ANSIBLE_GATHERING": "explicit",
    "ANSIBLE_INVENTORY_UNPARSED_FAILED": "1",
    "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
    "ANSIBLE_DEPRECATION_WARNINGS": "0",
}

# Cut a task's message to this many characters in results and logs.
_MAX_MESSAGE = 2000


@dataclass
class TaskFailure:
    """A task that failed, or could not reach its host."""

    task: str
    message: str
    unreachable: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"task": self.task, "message": self.message, "unreachable": self.unreachable}


@dataclass
class HostResult:
    """Outcome of one host: counts of tasks, and the tasks that changed or failed."""

    host: str
    ok: int = 0
    changed: int = 0
    skipped: int = 0
    failed: bool = False
    unreachable: bool = False
    changed_tasks: list[str] = field(default_factory=list)
    failures: list[TaskFailure] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.unreachable:
            return "unreachable"
        if self.failed:
            return "failed"
        return "changed" if self.changed else "ok"

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "status": self.status,
            "ok": self.ok,
            "changed": self.changed,
            "skipped": self.skipped,
            "failed": self.failed,
            "unreachable": self.unreachable,
            "changed_tasks": list(self.changed_tasks),
            "failures": [failure.as_dict() for failure in self.failures],
        }


@dataclass
class DeployResult:
    """Outcome of one deployment; ``check`` is true for a dry run that changed nothing."""

    hosts: dict[str, HostResult]
    check: bool
    status: str
    rc: int

    @property
    def failed(self) -> bool:
        return self.rc != 0 or any(h.failed or h.unreachable for h in self.hosts.values())

    @property
    def changed(self) -> bool:
        return any(host.changed for host in self.hosts.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "failed": self.failed,
            "changed": self.changed,
            "ansible_status": self.status,
            "ansible_rc": self.rc,
            "hosts": [self.hosts[name].as_dict() for name in sorted(self.hosts)],
        }


def _failure_message(result: dict[str, Any]) -> str:
    # A loop task reports "All items completed"; the reason is in the first item that failed.
    for item in result.get("results") or []:
        if isinstance(item, dict) and (item.get("failed") or item.get("unreachable")):
            return _failure_message(item)
    parts: list[str] = []
    message = result.get("msg")
    if message:
        parts.append(str(message))
    for stream in ("stderr", "stdout", "module_stderr"):
        text = str(result.get(stream) or "").strip()
        if text and text not in parts:
            parts.append(text)
    text = "\n".join(parts) or "the task failed without a message"
    return text[:_MAX_MESSAGE]


def collect_results(events: list[dict[str, Any]]) -> dict[str, HostResult]:
    """Fold ansible-runner's job events into one result per host."""
    hosts: dict[str, HostResult] = {}

    def host_result(data: dict[str, Any]) -> HostResult:
        name = str(data.get("host") or data.get("remote_addr") or "?")
        return hosts.setdefault(name, HostResult(name))

    for event in events:
        kind = event.get("event")
        data = event.get("event_data") or {}
        task = str(data.get("task") or "")
        result = data.get("res") or {}
        if kind == "runner_on_ok":
            host = host_result(data)
            host.ok += 1
            if result.get("changed"):
                host.changed += 1
                host.changed_tasks.append(task)
        elif kind == "runner_on_skipped":
            host_result(data).skipped += 1
        elif kind == "runner_on_failed":
            host = host_result(data)
            if data.get("ignore_errors"):
                host.ok += 1
                continue
            host.failed = True
            host.failures.append(TaskFailure(task, _failure_message(result)))
        elif kind == "runner_on_unreachable":
            host = host_result(data)
            host.unreachable = True
            host.failures.append(TaskFailure(task, _failure_message(result), unreachable=True))
    return hosts


def run_playbook(
    inventory: dict[str, Any],
    *,
    playbook: str = "site.yml",
    check: bool = False,
    limit: str | None = None,
    inventory_files: list[Path] | None = None,
    extravars: dict[str, Any] | None = None,
    artifact_dir: Path | None = None,
    extra_files: dict[str, bytes] | None = None,
) -> DeployResult:
    """Run ``playbook`` from the shipped playbooks against ``inventory``.

    ``inventory_files`` are existing inventories read before the generated one, so the
    generated values take precedence. ``extra_files`` are written, mode 0600, to a folder
    outside the artifacts, and ``extravars["provisioner_files"]`` names that folder.
    ``artifact_dir`` keeps ansible-runner's artifacts (job events, stdout) for inspection;
    by default they are removed with the temporary folder.
    """
    try:
        import ansible_runner
    except ImportError as error:
        raise DeployError(
            "ansible-runner is not installed",
            hint="install it with: pip install 'provisioner[ansible]'",
        ) from error
    if shutil.which("ansible-playbook") is None:
        raise DeployError(
            "ansible-playbook was not found on PATH",
            hint="install ansible-core (Debian: apt-get install ansible)",
        )

    playbooks = asset_dir("playbooks")
    private_data_dir = Path(tempfile.mkdtemp(prefix="provisioner-deploy-"))
    try:
        variables = dict(extravars or {})
        if extra_files:
            files_dir = private_data_dir / "files"
            files_dir.mkdir(mode=0o700)
            for name, data in extra_files.items():
                descriptor = os.open(files_dir / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "wb") as handle:
                    handle.write(data)
            variables["provisioner_files"] = str(files_dir)

        inventory_dir = private_data_dir / "inventory"
        inventory_dir.mkdir()
        generated = inventory_dir / "provisioner.json"
        generated.write_text(json.dumps(inventory, indent=2, sort_keys=True))
        sources = [str(path) for path in inventory_files or []] + [str(generated)]

        command_line = "--check --diff" if check else None
        environment = {
            **ANSIBLE_ENVIRONMENT,
            "ANSIBLE_CONFIG": str(playbooks / "ansible.cfg"),
            "ANSIBLE_ROLES_PATH": str(playbooks / "roles"),
            "ANSIBLE_LOCAL_TEMP": str(private_data_dir / "tmp"),
        }
        log.info(
            "running %s on %s%s", playbook, limit or "all hosts", " in check mode" if check else ""
        )
        runner = ansible_runner.run(
            private_data_dir=str(private_data_dir),
            project_dir=str(playbooks),
            playbook=playbook,
            inventory=sources,
            extravars=variables,
            limit=limit,
            cmdline=command_line,
            envvars=environment,
            artifact_dir=str(artifact_dir) if artifact_dir else None,
            quiet=True,
            json_mode=False,
        )
        hosts = collect_results(list(runner.events))
        result = DeployResult(hosts=hosts, check=check, status=str(runner.status), rc=runner.rc)
        if runner.status not in ("successful", "failed") or (result.rc != 0 and not hosts):
            stdout = runner.stdout.read() if runner.stdout else ""
            raise DeployError(
                f"ansible-playbook ended with status {runner.status} (exit code {runner.rc})"
                f" before any host ran: {stdout.strip()[-_MAX_MESSAGE:]}",
                hint="check the inventory and the deploy settings of the spec",
            )
        if not hosts and limit:
            raise DeployError(
                f"no host of the inventory matches the limit {limit!r}",
                hint="name hosts as the deploy settings of the spec name them",
            )
        for host in hosts.values():
            for failure in host.failures:
                log.info("%s: task %r failed: %s", host.host, failure.task, failure.message)
        return result
    finally:
        shutil.rmtree(private_data_dir, ignore_errors=True)
