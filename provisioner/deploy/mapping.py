"""Build the deploy targets from the spec and the state store.

- Every mail server with a ``deploy`` section becomes an ``mta`` host that gets its current
  certificate, chain and key from the state store.
- Every entry of ``deploy.primaries`` becomes a ``dns_primary`` host serving the zones of the
  spec published by the zonefile backend (the signed zone file) or by rfc2136 (an initial
  zone file, after which updates keep the zone current).
- Every entry of ``deploy.resolvers`` becomes a ``resolver`` host.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from provisioner.deploy.models import (
    DeploySettings,
    MtaDeploy,
    PrimaryDeploy,
    ResolverDeploy,
)
from provisioner.deploy.targets import (
    CertificateFiles,
    DeployTargets,
    MtaTarget,
    PrimaryTarget,
    ResolverTarget,
    TsigKeyFile,
    ZoneFile,
)
from provisioner.deploy.tsig import TsigKey, key_file_text, make_key, parse_bind_key_file
from provisioner.errors import DeployError

ModelT = TypeVar("ModelT", bound=BaseModel)

# Default configuration file and zone folder of each server, as the Debian packages lay
# them out.
SERVER_CONFIG_FILES = {
    "bind": "/etc/bind/named.conf",
    "knot": "/etc/knot/knot.conf",
    "nsd": "/etc/nsd/nsd.conf",
}
SERVER_ZONE_DIRS = {"bind": "/var/lib/bind", "knot": "/var/lib/knot", "nsd": "/var/lib/nsd"}

# Secret files that the run writes into its private folder are named with this variable.
FILES_VARIABLE = "{{ provisioner_files }}"


@dataclass
class MappedDeployment:
    """Deploy targets and the secret files that the run must write before it starts."""

    targets: DeployTargets
    # File name in the run's private folder -> content (TSIG keys in a server's syntax).
    secret_files: dict[str, bytes] = field(default_factory=dict)


def _validate(model: type[ModelT], raw: Any, where: str) -> ModelT:
    """Parse a ``deploy`` section given as a plain mapping; report every problem at once."""
    if isinstance(raw, model):
        return raw
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            location = "".join(
                f"[{part}]" if isinstance(part, int) else f".{part}" for part in item["loc"]
            )
            problems.append(f"{where}{location}: {item['msg']}")
        raise DeployError(
            f"invalid deploy settings in the spec: {'; '.join(problems)}",
            hint="docs/deploy.md lists the fields of each deploy section",
        ) from None


def deploy_settings(spec: Any) -> DeploySettings:
    """Return the spec's top-level ``deploy`` section as :class:`DeploySettings`."""
    raw = getattr(spec, "deploy", None)
    if raw is None:
        return DeploySettings()
    return _validate(DeploySettings, raw, "deploy")


def _mta_settings(server: Any, index: int) -> MtaDeploy | None:
    raw = getattr(server, "deploy", None)
    if raw is None:
        return None
    return _validate(MtaDeploy, raw, f"mail_servers[{index}].deploy")


def _resolve(spec: Any, path: Path | str) -> Path:
    """Return ``path`` made absolute against the spec's folder, as Ansible needs."""
    resolve = getattr(spec, "resolve", None)
    resolved = Path(resolve(Path(path))) if resolve else Path(path)
    return resolved.absolute()


def _zone_file_name(zone: str) -> str:
    return (zone.rstrip(".") or "root") + ".zone"


def map_mtas(spec: Any, store: Any) -> list[MtaTarget]:
    targets: list[MtaTarget] = []
    for index, server in enumerate(spec.mail_servers):
        settings = _mta_settings(server, index)
        if settings is None:
            continue
        record = store.current_certificate("server", server.host)
        if record is None or not record.key_id:
            raise DeployError(
                f"mail server {server.host} has no current certificate with a key in the "
                "state store",
                hint="run 'provisioner apply' first, which issues the certificate",
            )
        name = server.host.rstrip(".")
        certificate = CertificateFiles(
            name=name,
            certificate=Path(store.certificate_path(record.id)).absolute(),
            key=Path(store.key_path(record.key_id)).absolute(),
        )
        targets.append(MtaTarget(settings.inventory_host or name, settings, [certificate]))
    return targets


def _zones_of_primary(spec: Any, primary: PrimaryDeploy) -> list[Any]:
    if primary.zones is None:
        return [zone for zone in spec.zones if zone.publish.backend in ("zonefile", "rfc2136")]
    wanted = {name.rstrip(".").lower() + "." for name in primary.zones}
    zones = [zone for zone in spec.zones if zone.name in wanted]
    missing = wanted - {zone.name for zone in zones}
    if missing:
        raise DeployError(
            f"primary {primary.host} lists zones that are not in the spec: "
            + ", ".join(sorted(missing)),
            hint="zones: " + ", ".join(zone.name for zone in spec.zones),
        )
    return zones


def _rfc2136_key(spec: Any, zone: Any) -> TsigKey | None:
    tsig = getattr(zone.publish, "tsig", None)
    if tsig is None:
        return None
    if tsig.key_file is not None:
        return parse_bind_key_file(_resolve(spec, tsig.key_file), tsig.name)
    import os

    secret = os.environ.get(tsig.secret_env or "")
    if not secret:
        raise DeployError(
            f"the environment variable {tsig.secret_env} with the TSIG secret of zone "
            f"{zone.name} is not set",
            hint="export it before running deploy",
        )
    return make_key(tsig.name, tsig.algorithm, secret)


def map_primary(spec: Any, store: Any, primary: PrimaryDeploy, mapped: MappedDeployment) -> None:
    from provisioner.backends.registry import zone_file_path

    config_file = primary.config_file or SERVER_CONFIG_FILES[primary.server]
    zone_dir = primary.zone_dir or SERVER_ZONE_DIRS[primary.server]
    keys: dict[str, TsigKey] = {}
    for item in primary.tsig_keys:
        keys[item.name] = parse_bind_key_file(_resolve(spec, item.key_file), item.name)

    zones: list[ZoneFile] = []
    for zone in _zones_of_primary(spec, primary):
        signing = "server" if zone.dnssec.signer == "server" else "provisioner"
        target = posixpath.join(zone_dir, _zone_file_name(zone.name))
        if zone.publish.backend == "zonefile":
            zones.append(
                ZoneFile(
                    zone.name, target, _resolve(spec, zone_file_path(spec, zone)), "always", signing
                )
            )
            continue
        key = _rfc2136_key(spec, zone)
        if key is not None:
            keys.setdefault(key.name, key)
        # NOTE: before the first apply the store has no zone file; the primary is then
        # configured for a zone file that nothing installs, and the server fails to load it.
        initial = Path(store.signed_zone_path(zone.name)).absolute()
        zones.append(
            ZoneFile(
                zone.name,
                target,
                initial if initial.exists() else None,
                "initial",
                signing,
                update_key=key.name if key else None,
            )
        )

    if primary.server == "nsd":
        rejected = [zone.name for zone in zones if zone.signing == "server" or zone.update_key]
        if rejected:
            raise DeployError(
                f"NSD on {primary.host} cannot serve {', '.join(rejected)}: NSD neither signs "
                "zones nor accepts RFC 2136 updates",
                hint="use BIND or Knot for these zones, or publish them as signed zone files",
            )

    tsig_files: list[TsigKeyFile] = []
    targets_by_name = {item.name: item.target for item in primary.tsig_keys}
    for name, key in sorted(keys.items()):
        file_name = f"tsig-{primary.host}-{name}.key"
        mapped.secret_files[file_name] = key_file_text(key, primary.server).encode()
        target = targets_by_name.get(name) or posixpath.join(
            posixpath.dirname(config_file), f"{name}.key"
        )
        tsig_files.append(TsigKeyFile(name, Path(f"{FILES_VARIABLE}/{file_name}"), target))

    settings = primary.model_copy(update={"config_file": config_file})
    mapped.targets.primaries.append(PrimaryTarget(primary.host, settings, zones, tsig_files))


def map_resolver(spec: Any, store: Any, resolver: ResolverDeploy) -> ResolverTarget:
    anchors = list(resolver.trust_anchors)
    if resolver.trust_anchor_zones:
        from provisioner.workflows.ds import ds_records

        for zone in resolver.trust_anchor_zones:
            anchors.extend(ds_records(spec, store, zone, None))
    settings = resolver
    if resolver.trust_anchor_file is not None:
        settings = resolver.model_copy(
            update={"trust_anchor_file": _resolve(spec, resolver.trust_anchor_file)}
        )
    return ResolverTarget(resolver.host, settings, anchors)


def targets_from_spec(spec: Any, store: Any) -> MappedDeployment:
    """Map the spec's deploy settings and the store's current files to deploy targets."""
    settings = deploy_settings(spec)
    inventory_file = _resolve(spec, settings.inventory) if settings.inventory else None
    mapped = MappedDeployment(
        DeployTargets(defaults=settings.defaults, inventory_file=inventory_file)
    )
    mapped.targets.mtas = map_mtas(spec, store)
    for primary in settings.primaries:
        map_primary(spec, store, primary, mapped)
    for resolver in settings.resolvers:
        mapped.targets.resolvers.append(map_resolver(spec, store, resolver))
    return mapped
