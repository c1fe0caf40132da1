"""Choose the backend object for a zone from its ``publish`` section."""

from __future__ import annotations

from provisioner.backends.base import Backend
from provisioner.backends.zonefile import ZonefileBackend
from provisioner.errors import BackendError
from provisioner.spec.models import Spec, ZonefilePublish, ZoneSpec
from provisioner.store.local import LocalStore


def zone_file_path(spec: Spec, zone_spec: ZoneSpec) -> str:
    publish = zone_spec.publish
    if isinstance(publish, ZonefilePublish) and publish.path is not None:
        return str(spec.resolve(publish.path))
    filename = (zone_spec.name.rstrip(".") or "root") + ".zone"
    return str(spec.output_dir() / "zones" / filename)


def make_backend(spec: Spec, zone_spec: ZoneSpec, store: LocalStore) -> Backend:
    from pathlib import Path

    publish = zone_spec.publish
    if isinstance(publish, ZonefilePublish):
        return ZonefileBackend(
            zone_spec.name, Path(zone_file_path(spec, zone_spec)), publish.reload
        )
    if publish.backend == "rfc2136":
        try:
            from provisioner.backends.rfc2136 import make_rfc2136_backend
        except ImportError as error:
            raise BackendError("the rfc2136 backend is not available in this build") from error
        return make_rfc2136_backend(spec, zone_spec, store)
    if publish.backend == "route53":
        try:
            from provisioner.backends.route53 import make_route53_backend
        except ImportError as error:
            raise BackendError(
                "the route53 backend needs boto3",
                hint="install it with: pip install 'provisioner[route53]'",
            ) from error
        return make_route53_backend(spec, zone_spec, store)
    raise BackendError(f"unknown backend {publish.backend!r}")
