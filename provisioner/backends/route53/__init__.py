"""The Route 53 publication backend (boto3): records, change batches, throttling retries."""

from __future__ import annotations

from provisioner.backends.route53.backend import Route53Backend
from provisioner.backends.route53.batches import BatchLimits, Change, split_batches
from provisioner.backends.route53.calls import Caller, RetryPolicy, make_client
from provisioner.clock import Clock
from provisioner.errors import BackendError
from provisioner.spec.models import Route53Publish, Spec, ZoneSpec
from provisioner.store.local import LocalStore

__all__ = [
    "BatchLimits",
    "Caller",
    "Change",
    "Route53Backend",
    "RetryPolicy",
    "make_client",
    "make_route53_backend",
    "split_batches",
]


def make_route53_backend(
    spec: Spec, zone_spec: ZoneSpec, store: LocalStore, *, clock: Clock | None = None
) -> Route53Backend:
    """Return the backend of ``zone_spec``, whose publish section is a Route53Publish."""
    publish = zone_spec.publish
    if not isinstance(publish, Route53Publish):
        raise BackendError(f"zone {zone_spec.name} is not published to Route 53")
    from provisioner.backends.route53 import calls

    return Route53Backend(zone_spec.name, publish, store, clients=calls.client_factory, clock=clock)
