"""Deployment with Ansible: an inventory from the spec, the shipped playbooks, a result per host.

Python API::

    from provisioner.deploy import deploy
    result = deploy(spec, state_dir, check=False, limit=None, hosts=None)
    result.failed, result.hosts["mx1.example.com"].failures

``deploy`` is the step that the certificate rollover calls after it publishes new TLSA
records. ``deploy_targets`` runs hand-made targets without a spec.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from provisioner.deploy.inventory import build_inventory
from provisioner.deploy.mapping import MappedDeployment, targets_from_spec
from provisioner.deploy.runner import DeployResult, HostResult, TaskFailure, run_playbook
from provisioner.deploy.targets import DeployTargets
from provisioner.errors import DeployError

__all__ = [
    "DeployResult",
    "DeployTargets",
    "HostResult",
    "TaskFailure",
    "deploy",
    "deploy_targets",
]


def _limit_pattern(limit: str | None, hosts: Sequence[str] | None) -> str | None:
    patterns = [limit] if limit else []
    if hosts is not None:
        if not hosts:
            raise DeployError("the list of hosts to deploy is empty", hint="name at least one")
        # Ansible's ":&" intersects the two patterns.
        patterns.append(("&" if patterns else "") + ",".join(hosts))
    return ":".join(patterns) if patterns else None


def deploy_targets(
    targets: DeployTargets,
    *,
    check: bool = False,
    limit: str | None = None,
    hosts: Sequence[str] | None = None,
    inventory_file: Path | None = None,
    secret_files: dict[str, bytes] | None = None,
    artifact_dir: Path | None = None,
) -> DeployResult:
    """Run the playbooks for ``targets``; see :func:`deploy` for the options."""
    if not targets.host_names():
        raise DeployError(
            "there is nothing to deploy: no mail server has a deploy section and the spec "
            "lists no primaries or resolvers under deploy",
            hint="add 'deploy: {...}' to a mail server, or deploy.primaries/deploy.resolvers",
        )
    # ansible-playbook runs in the playbooks folder, so relative paths would point there.
    inventory_files = [
        Path(path).absolute()
        for path in (targets.inventory_file, inventory_file)
        if path is not None
    ]
    for path in inventory_files:
        if not path.exists():
            raise DeployError(
                f"the inventory file {path} does not exist",
                hint="check the path given with --inventory or in deploy.inventory",
            )
    return run_playbook(
        build_inventory(targets),
        check=check,
        limit=_limit_pattern(limit, hosts),
        inventory_files=inventory_files,
        extra_files=secret_files,
        artifact_dir=artifact_dir,
    )


@contextlib.contextmanager
def _opened_store(state: Any) -> Iterator[Any]:
    if not isinstance(state, str | Path):
        # A store that the caller has open (and locked) already.
        yield state
        return
    from provisioner.store.local import LocalStore

    with LocalStore(Path(state)) as store:
        yield store


def deploy(
    spec: Any,
    state_dir: Path | str | Any,
    check: bool = False,
    limit: str | None = None,
    hosts: Sequence[str] | None = None,
    *,
    inventory_file: Path | None = None,
    artifact_dir: Path | None = None,
) -> DeployResult:
    """Deploy certificates, zones and server configuration to the hosts of ``spec``.

    ``state_dir`` is the state store folder, or a store object that the caller keeps open.
    ``check`` runs Ansible in check mode: nothing changes and each host reports what would.
    ``limit`` is an Ansible host pattern; ``hosts`` restricts the run to these inventory
    names. ``inventory_file`` is an existing inventory that supplies connection details.
    ``artifact_dir`` keeps ansible-runner's artifacts there. A host that fails does not stop
    the others; ``DeployResult.failed`` is true when any host failed or was unreachable.
    """
    with _opened_store(state_dir) as store:
        mapped: MappedDeployment = targets_from_spec(spec, store)
        return deploy_targets(
            mapped.targets,
            check=check,
            limit=limit,
            hosts=hosts,
            inventory_file=inventory_file,
            secret_files=mapped.secret_files,
            artifact_dir=artifact_dir,
        )
