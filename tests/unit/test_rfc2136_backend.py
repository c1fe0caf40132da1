"""The rfc2136 backend's comparison view, serial floor and plan checks, without a server."""

from __future__ import annotations

import datetime as dt

import dns.name
import dns.rdatatype
import dns.rrset
import pytest

from provisioner.backends.rfc2136.backend import Rfc2136Backend, serial_greater
from provisioner.backends.rfc2136.transport import Endpoint
from provisioner.clock import ManualClock
from provisioner.errors import BackendError
from provisioner.zone.model import ZoneData
from provisioner.zone.plan import ZonePlan, diff_zone

ZONE = "example.test."


def backend(signer: str, server_type: str = "knot") -> Rfc2136Backend:
    endpoint = Endpoint(dns.name.from_text(ZONE), "127.0.0.1", 53, None, None, 1.0)
    clock = ManualClock(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    return Rfc2136Backend(endpoint, signer=signer, server_type=server_type, clock=clock)


def zone(*lines: str) -> ZoneData:
    return ZoneData.from_text("\n".join(lines) + "\n", ZONE)


SOA_SERVER = f"{ZONE} 3600 IN SOA ns1.{ZONE} hostmaster.{ZONE} 17 7200 3600 1209600 3600"
SOA_SPEC = f"{ZONE} 3600 IN SOA ns1.{ZONE} hostmaster.{ZONE} 2026010100 7200 3600 1209600 3600"
NS = f"{ZONE} 3600 IN NS ns1.{ZONE}"
DNSKEY = (
    f"{ZONE} 3600 IN DNSKEY 257 3 13 vFBfYYpLO677+TI31Wspoej1yIr/CkvutaRnkN/93y0Aakn0jvy1OWew"
    "Xp7GHWBFWWl0FazMEXywerPgOY5wVA=="
)
NSEC = f"{ZONE} 3600 IN NSEC www.{ZONE} SOA NS DNSKEY RRSIG NSEC"
WWW = f"www.{ZONE} 3600 IN A 192.0.2.1"


def test_server_records_and_serial_left_out() -> None:
    served = zone(SOA_SERVER, NS, DNSKEY, NSEC, WWW)
    desired = zone(SOA_SPEC, NS, WWW)

    view = backend("server").comparable(served, desired)

    assert view is not None
    changes, left_alone = diff_zone(view, desired, owned=set())
    assert changes == []
    assert left_alone == []


def test_other_soa_field_still_counts() -> None:
    served = zone(SOA_SERVER.replace(" 7200 ", " 9999 "), NS)
    desired = zone(SOA_SPEC, NS)

    view = backend("server").comparable(served, desired)

    changes, _ = diff_zone(view, desired, owned=set())
    assert [c.key[1] for c in changes] == [dns.rdatatype.SOA]


def test_provisioner_signing_compares_everything() -> None:
    served = zone(SOA_SERVER, NS, DNSKEY)
    desired = zone(SOA_SPEC, NS)
    assert backend("provisioner").comparable(served, desired) is served


def test_minimum_serial_counts_messages() -> None:
    signer = backend("provisioner")
    signer.published_serial = 100
    served = zone(SOA_SERVER, NS)
    desired = zone(SOA_SPEC, NS, WWW)
    changes, _ = diff_zone(served, desired, owned=None)
    plan = ZonePlan(ZONE, "rfc2136", 100, 2026010100, changes)

    assert signer.minimum_serial(plan) == 101
    assert signer.minimum_serial(ZonePlan(ZONE, "rfc2136", 100, 100, [])) is None
    assert backend("server").minimum_serial(plan) is None


def test_bind_rejects_provisioner_signing() -> None:
    plan = ZonePlan(ZONE, "rfc2136", 1, 2, [])
    with pytest.raises(BackendError, match="BIND cannot serve a zone that provisioner signs"):
        backend("provisioner", "bind").check_plan(plan, zone(SOA_SPEC, NS))


def test_server_signing_rejects_dnskey_in_spec() -> None:
    plan = ZonePlan(ZONE, "rfc2136", 1, 2, [])
    with pytest.raises(BackendError, match="provisioner does not sign it"):
        backend("server").check_plan(plan, zone(SOA_SPEC, NS, DNSKEY))


def test_serial_arithmetic() -> None:
    assert serial_greater(2, 1)
    assert not serial_greater(1, 1)
    assert serial_greater(0, 2**32 - 1)
    assert not serial_greater(2**31 + 5, 1)
