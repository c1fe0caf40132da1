"""What a deployment installs where: hosts, their roles, and the controller files they get.

These dataclasses are the input of the inventory builder. They are filled from the spec and
the state store by :mod:`provisioner.deploy.mapping`, or built by hand by a caller (a test,
the rollover engine) that already knows the files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from provisioner.deploy.models import (
    ConnectionSettings,
    MtaDeploy,
    PrimaryDeploy,
    ResolverDeploy,
)


@dataclass(frozen=True)
class CertificateFiles:
    """One certificate that Postfix presents: controller paths of its PEM files."""

    name: str
    certificate: Path
    key: Path
    # Intermediate certificates; None when ``certificate`` already holds the whole chain.
    chain: Path | None = None


@dataclass(frozen=True)
class ZoneFile:
    """A zone served by a primary, and the controller file to install for it."""

    name: str
    # Target path of the zone file on the primary.
    target: str
    # Controller file to install; None leaves the target file as it is.
    source: Path | None = None
    # always: install on every run; initial: only when missing (the zone then changes through
    # RFC 2136 updates).
    install: Literal["always", "initial"] = "always"
    signing: Literal["provisioner", "server"] = "provisioner"
    policy: str | None = None
    update_key: str | None = None


@dataclass(frozen=True)
class TsigKeyFile:
    """A TSIG key in the server's own syntax, as a controller file, and its target path."""

    name: str
    source: Path
    target: str


@dataclass
class MtaTarget:
    host: str
    settings: MtaDeploy
    certificates: list[CertificateFiles]


@dataclass
class PrimaryTarget:
    host: str
    settings: PrimaryDeploy
    zones: list[ZoneFile]
    tsig_keys: list[TsigKeyFile] = field(default_factory=list)


@dataclass
class ResolverTarget:
    host: str
    settings: ResolverDeploy
    # Trust anchors in presentation format, inline and derived from the spec's zones.
    trust_anchors: list[str] = field(default_factory=list)


@dataclass
class DeployTargets:
    """Every host of one deployment, with the defaults and inventory that apply to all."""

    mtas: list[MtaTarget] = field(default_factory=list)
    primaries: list[PrimaryTarget] = field(default_factory=list)
    resolvers: list[ResolverTarget] = field(default_factory=list)
    defaults: ConnectionSettings = field(default_factory=ConnectionSettings)
    inventory_file: Path | None = None

    def host_names(self) -> list[str]:
        names: list[str] = []
        for target in [*self.primaries, *self.resolvers, *self.mtas]:
            if target.host not in names:
                names.append(target.host)
        return names
