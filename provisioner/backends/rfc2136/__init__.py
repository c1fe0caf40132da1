"""The rfc2136 backend: publish a zone to a primary server by RFC 2136 UPDATE with TSIG.

``make_rfc2136_backend(spec, zone_spec, store)`` is what provisioner.backends.registry calls.
"""

from __future__ import annotations

import ipaddress
import socket

import dns.name

from provisioner.backends.rfc2136.backend import Rfc2136Backend
from provisioner.backends.rfc2136.transport import Endpoint
from provisioner.backends.tsig import TsigKey, load_tsig_key
from provisioner.clock import Clock, SystemClock
from provisioner.errors import BackendError
from provisioner.spec.models import Rfc2136Publish, Spec, TsigSource, ZoneSpec
from provisioner.store.local import LocalStore

__all__ = ["Rfc2136Backend", "make_rfc2136_backend", "server_address", "tsig_key"]


def make_rfc2136_backend(
    spec: Spec, zone_spec: ZoneSpec, store: LocalStore | None, clock: Clock | None = None
) -> Rfc2136Backend:
    publish = zone_spec.publish
    if not isinstance(publish, Rfc2136Publish):
        raise BackendError(f"zone {zone_spec.name} is not published with the rfc2136 backend")
    update_key = tsig_key(spec, publish.tsig)
    transfer_key = tsig_key(spec, publish.transfer_tsig) if publish.transfer_tsig else update_key
    endpoint = Endpoint(
        zone=dns.name.from_text(zone_spec.name),
        server=server_address(publish.server),
        port=publish.port,
        update_key=update_key,
        transfer_key=transfer_key,
        timeout=float(publish.timeout),
    )
    return Rfc2136Backend(
        endpoint,
        signer=zone_spec.dnssec.signer,
        server_type=publish.server_type,
        clock=clock or SystemClock(),
    )


def tsig_key(spec: Spec, source: TsigSource | None) -> TsigKey | None:
    """Load the key that ``source`` names, resolving a key file against the spec's folder."""
    if source is None:
        return None
    return load_tsig_key(
        name=source.name,
        algorithm=source.algorithm,
        key_file=spec.resolve(source.key_file) if source.key_file else None,
        secret_env=source.secret_env,
        allow_weak=source.allow_weak,
    )


def server_address(server: str) -> str:
    """Return ``server`` as an IP address, resolving a host name with the system resolver."""
    try:
        return str(ipaddress.ip_address(server))
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(server, 53, proto=socket.IPPROTO_TCP)
    except socket.gaierror as error:
        raise BackendError(
            f"cannot resolve the primary server name {server!r}: {error.strerror}",
            hint="give the primary's IP address in publish.server",
        ) from None
    return str(infos[0][4][0])
