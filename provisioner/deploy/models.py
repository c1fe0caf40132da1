"""Spec models of the ``deploy`` settings: which hosts get which role, and how to reach them.

Two places of the spec hold them:

- ``mail_servers[].deploy`` (:class:`MtaDeploy`): the Postfix host that presents the MX
  certificate;
- the top-level ``deploy`` (:class:`DeploySettings`): defaults for every host, an optional
  existing Ansible inventory, the DNS primaries and the validating resolvers.

Every field is optional where Ansible or the role has a sensible default, and a value left
unset is not written into the inventory, so an existing inventory file can supply it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Port = Field(default=None, ge=1, le=65535)


class DeployModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConnectionSettings(DeployModel):
    """Connection details of a host, and the folder that is its filesystem root."""

    connection: Literal["local", "ssh"] | None = None
    ansible_host: str | None = None
    ansible_port: int | None = Port
    ansible_user: str | None = None
    become: bool | None = None
    python_interpreter: str | None = None
    # Folder standing for the host's filesystem root: every file is written below it. Unset or
    # "" is the real root.
    root: str | None = None

    @field_validator("root")
    @classmethod
    def _root_has_no_trailing_slash(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return value
        if not value.startswith("/"):
            raise ValueError(f"root must be an absolute path, not {value!r}")
        return value.rstrip("/")


class MtaDeploy(ConnectionSettings):
    """``mail_servers[].deploy``: the Postfix host that presents the MX certificate."""

    # Inventory name of the host (default: the MX host name without the final dot).
    inventory_host: str | None = None
    postfix_config_dir: str | None = None
    # full: provisioner writes main.cf and master.cf; fragment: it only sets the TLS and DANE
    # parameters in an existing main.cf.
    manage_main_cf: Literal["full", "fragment"] | None = None
    # master.cf smtpd listeners: "smtp" or "ADDRESS:PORT".
    listeners: list[str] | None = None
    inet_interfaces: str | None = None
    # Validating resolvers written to resolv.conf (with "options trust-ad").
    resolvers: list[str] = []
    reload_command: str | None = None
    # A command that installs a new certificate instead of the Ansible roles; the certificate
    # rollover runs it with PROVISIONER_HOST, PROVISIONER_CERTIFICATE and PROVISIONER_KEY set.
    command: list[str] | str | None = None
    # Further variables of the postfix_tls role, such as postfix_queue_directory.
    variables: dict[str, Any] = {}


class TsigKeyDeploy(DeployModel):
    """A TSIG key to install on a primary, read from a BIND key file on the controller."""

    name: str
    key_file: Path
    # Target path of the key file (default: beside the server's configuration file).
    target: str | None = None


class PrimaryDeploy(ConnectionSettings):
    """A DNS primary (BIND, Knot or NSD) that serves zones of the spec."""

    host: str
    server: Literal["bind", "knot", "nsd"]
    # Zones of the spec that this primary serves (default: every zone published with the
    # zonefile or rfc2136 backend).
    zones: list[str] | None = None
    config_file: str | None = None
    zone_dir: str | None = None
    listen_addresses: list[str] | None = None
    port: int | None = Port
    # TSIG keys to install; a zone published by rfc2136 with a key_file gets its key added.
    tsig_keys: list[TsigKeyDeploy] = []
    reload_command: str | None = None
    # Further variables of the dns_primary role, such as dns_working_dir.
    variables: dict[str, Any] = {}


class StubZone(DeployModel):
    name: str
    # "ADDRESS" or "ADDRESS@PORT".
    addresses: list[str] = Field(min_length=1)


class ResolverDeploy(ConnectionSettings):
    """An Unbound validating resolver for the MTAs."""

    host: str
    config_file: str | None = None
    interfaces: list[str] | None = None
    port: int | None = Port
    # Trust anchors given inline, in presentation format ("example. DS 12345 13 2 ...").
    trust_anchors: list[str] = []
    # Zones of the spec signed by provisioner whose DS records become trust anchors; for a
    # lab whose parent zones are not signed.
    trust_anchor_zones: list[str] = []
    # A static trust anchor file on the controller.
    trust_anchor_file: Path | None = None
    # Target path of the RFC 5011 trust anchor (empty string: none).
    auto_trust_anchor_file: str | None = None
    stub_zones: list[StubZone] = []
    # Let Unbound query loopback addresses, for stub zones served on 127.x.
    allow_query_localhost: bool = False
    reload_command: str | None = None
    # Further variables of the unbound_resolver role, such as unbound_access_control.
    variables: dict[str, Any] = {}


class DeploySettings(DeployModel):
    """The top-level ``deploy`` section of the spec."""

    # An existing Ansible inventory that supplies connection details; the values given in the
    # spec take precedence over it.
    inventory: Path | None = None
    defaults: ConnectionSettings = ConnectionSettings()
    primaries: list[PrimaryDeploy] = []
    resolvers: list[ResolverDeploy] = []
