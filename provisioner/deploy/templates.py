"""Rendering of the server configuration templates outside Ansible.

The templates under ``templates/`` are the ones the playbooks install. Rendering them here,
with the defaults of the role that uses them, gives the same text that Ansible's template
module writes (plain Jinja2 with ``trim_blocks``), so unit tests and the end-to-end lab can
check and run a configuration without starting Ansible.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jinja2
from ruamel.yaml import YAML

from provisioner.errors import DeployError

# Which role's defaults fill in the variables of each template.
TEMPLATE_ROLES: dict[str, str] = {
    "postfix/main.cf.j2": "postfix_tls",
    "postfix/master.cf.j2": "postfix_tls",
    "bind/named.conf.j2": "dns_primary",
    "knot/knot.conf.j2": "dns_primary",
    "nsd/nsd.conf.j2": "dns_primary",
    "unbound/unbound.conf.j2": "unbound_resolver",
    "system/resolv.conf.j2": "postfix_tls",
}

# Variables that a template fixes: the Knot template is rendered with the Knot defaults.
TEMPLATE_FIXED: dict[str, dict[str, Any]] = {
    "bind/named.conf.j2": {"dns_server": "bind"},
    "knot/knot.conf.j2": {"dns_server": "knot"},
    "nsd/nsd.conf.j2": {"dns_server": "nsd"},
}

# Default values that refer to other variables are resolved in at most this many passes.
_MAX_RESOLVE_PASSES = 8


def asset_dir(name: str) -> Path:
    """Return the ``playbooks`` or ``templates`` folder shipped beside the package.

    The environment variable PROVISIONER_ASSETS names another folder that holds both.
    """
    base = os.environ.get("PROVISIONER_ASSETS")
    root = Path(base) if base else Path(__file__).resolve().parents[2]
    path = root / name
    if not path.is_dir():
        raise DeployError(
            f"the {name} folder was not found at {path}",
            hint="set PROVISIONER_ASSETS to the folder that holds playbooks/ and templates/",
        )
    return path


def role_defaults(role: str) -> dict[str, Any]:
    """Load ``defaults/main.yml`` of one of the shipped roles."""
    path = asset_dir("playbooks") / "roles" / role / "defaults" / "main.yml"
    loaded = YAML(typ="safe").load(path.read_text())
    return dict(loaded or {})


def _environment(searchpath: Path | None = None) -> jinja2.Environment:
    loader = jinja2.FileSystemLoader(str(searchpath)) if searchpath else None
    return jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def _resolve(value: Any, variables: dict[str, Any], environment: jinja2.Environment) -> Any:
    if isinstance(value, str) and "{{" in value:
        return environment.from_string(value).render(variables)
    if isinstance(value, dict):
        return {key: _resolve(item, variables, environment) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve(item, variables, environment) for item in value]
    return value


def template_variables(template: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Merge the role defaults of ``template`` with ``overrides`` and resolve references."""
    role = TEMPLATE_ROLES.get(template)
    if role is None:
        raise DeployError(
            f"unknown template {template!r}",
            hint=f"use one of: {', '.join(sorted(TEMPLATE_ROLES))}",
        )
    variables = role_defaults(role)
    variables["role_path"] = str(asset_dir("playbooks") / "roles" / role)
    overrides = {**TEMPLATE_FIXED.get(template, {}), **overrides}
    variables.update(overrides)

    environment = _environment()
    for _ in range(_MAX_RESOLVE_PASSES):
        resolved = {
            key: value if key in overrides else _resolve(value, variables, environment)
            for key, value in variables.items()
        }
        if resolved == variables:
            break
        variables = resolved
    return variables


def render_template(template: str, overrides: dict[str, Any] | None = None) -> str:
    """Render one template (a path below ``templates/``) with role defaults and ``overrides``."""
    variables = template_variables(template, overrides or {})
    environment = _environment(asset_dir("templates"))
    try:
        return environment.get_template(template).render(variables)
    except jinja2.UndefinedError as error:
        raise DeployError(
            f"template {template} needs a variable that is not set: {error.message}",
            hint="pass the variable in the overrides",
        ) from error
