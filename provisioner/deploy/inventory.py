"""The Ansible inventory of a deployment: groups by role, role variables as host variables.

Groups: ``mta`` (postfix_tls role), ``dns_primary`` (dns_primary role) and ``resolver``
(unbound_resolver role). The inventory carries paths only: private keys and TSIG secrets
stay in files that the playbooks copy by path.
"""

from __future__ import annotations

from typing import Any

from provisioner.deploy.models import ConnectionSettings
from provisioner.deploy.targets import DeployTargets, MtaTarget, PrimaryTarget, ResolverTarget
from provisioner.errors import DeployError

GROUPS = ("mta", "dns_primary", "resolver")


def connection_variables(
    settings: ConnectionSettings, defaults: ConnectionSettings
) -> dict[str, Any]:
    """Return the Ansible connection variables set in ``settings`` or else in ``defaults``."""

    def pick(name: str) -> Any:
        value = getattr(settings, name)
        return getattr(defaults, name) if value is None else value

    variables: dict[str, Any] = {}
    for field, variable in (
        ("connection", "ansible_connection"),
        ("ansible_host", "ansible_host"),
        ("ansible_port", "ansible_port"),
        ("ansible_user", "ansible_user"),
        ("become", "ansible_become"),
        ("python_interpreter", "ansible_python_interpreter"),
        ("root", "provisioner_root"),
    ):
        value = pick(field)
        if value is not None:
            variables[variable] = value
    if variables.get("ansible_connection") == "local":
        # Modules of a local connection run in the Python of ansible-playbook itself.
        variables.setdefault("ansible_python_interpreter", "{{ ansible_playbook_python }}")
    return variables


def _set(variables: dict[str, Any], name: str, value: Any) -> None:
    if value is not None:
        variables[name] = value


def mta_variables(target: MtaTarget) -> dict[str, Any]:
    settings = target.settings
    variables: dict[str, Any] = dict(settings.variables)
    variables["postfix_tls_certificates"] = [
        {
            "name": files.name,
            "cert_src": str(files.certificate),
            "chain_src": str(files.chain) if files.chain else "",
            "key_src": str(files.key),
        }
        for files in target.certificates
    ]
    _set(variables, "postfix_config_dir", settings.postfix_config_dir)
    _set(variables, "postfix_manage_main_cf", settings.manage_main_cf)
    _set(variables, "postfix_smtpd_listeners", settings.listeners)
    _set(variables, "postfix_inet_interfaces", settings.inet_interfaces)
    _set(variables, "postfix_reload_command", settings.reload_command)
    if settings.resolvers:
        variables["postfix_dns_resolvers"] = list(settings.resolvers)
    return variables


def primary_variables(target: PrimaryTarget) -> dict[str, Any]:
    settings = target.settings
    variables: dict[str, Any] = dict(settings.variables)
    variables["dns_server"] = settings.server
    zones: list[dict[str, Any]] = []
    for zone in target.zones:
        entry: dict[str, Any] = {
            "name": zone.name,
            "file": zone.target,
            "install": zone.install,
            "signing": zone.signing,
        }
        if zone.source is not None:
            entry["src"] = str(zone.source)
        if zone.policy:
            entry["policy"] = zone.policy
        if zone.update_key:
            entry["update_key"] = zone.update_key
        zones.append(entry)
    variables["dns_zones"] = zones
    variables["dns_tsig_keys"] = [
        {"name": key.name, "src": str(key.source), "file": key.target} for key in target.tsig_keys
    ]
    _set(variables, "dns_config_file", settings.config_file)
    _set(variables, "dns_listen_addresses", settings.listen_addresses)
    _set(variables, "dns_port", settings.port)
    _set(variables, "dns_reload_command", settings.reload_command)
    return variables


def resolver_variables(target: ResolverTarget) -> dict[str, Any]:
    settings = target.settings
    variables: dict[str, Any] = dict(settings.variables)
    _set(variables, "unbound_config_file", settings.config_file)
    _set(variables, "unbound_interfaces", settings.interfaces)
    _set(variables, "unbound_port", settings.port)
    _set(variables, "unbound_reload_command", settings.reload_command)
    _set(variables, "unbound_auto_trust_anchor_file", settings.auto_trust_anchor_file)
    if settings.trust_anchor_file is not None:
        variables["unbound_trust_anchor_src"] = str(settings.trust_anchor_file)
        variables.setdefault("unbound_trust_anchor_file", "/etc/unbound/provisioner.anchors")
    variables["unbound_trust_anchors"] = list(target.trust_anchors)
    variables["unbound_stub_zones"] = [
        {"name": stub.name, "addresses": list(stub.addresses)} for stub in settings.stub_zones
    ]
    if settings.allow_query_localhost:
        variables["unbound_allow_query_localhost"] = True
    return variables


def build_inventory(targets: DeployTargets) -> dict[str, Any]:
    """Return the inventory of ``targets`` as the dict form of Ansible's YAML inventory."""
    hostvars: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[str]] = {group: [] for group in GROUPS}

    def add(host: str, group: str, settings: ConnectionSettings, role: dict[str, Any]) -> None:
        if host in groups[group]:
            raise DeployError(
                f"host {host} is listed twice as a member of group {group}",
                hint="give each host one entry per role in the spec's deploy settings",
            )
        groups[group].append(host)
        variables = hostvars.setdefault(host, {})
        for name, value in connection_variables(settings, targets.defaults).items():
            if name in variables and variables[name] != value:
                raise DeployError(
                    f"host {host} has two different values for {name}: "
                    f"{variables[name]!r} and {value!r}",
                    hint="give the host the same connection settings in every role",
                )
            variables[name] = value
        variables.update(role)

    for primary in targets.primaries:
        add(primary.host, "dns_primary", primary.settings, primary_variables(primary))
    for resolver in targets.resolvers:
        add(resolver.host, "resolver", resolver.settings, resolver_variables(resolver))
    for mta in targets.mtas:
        add(mta.host, "mta", mta.settings, mta_variables(mta))

    return {
        "all": {
            "children": {
                group: {"hosts": {host: hostvars[host] for host in members}}
                for group, members in groups.items()
            }
        }
    }
