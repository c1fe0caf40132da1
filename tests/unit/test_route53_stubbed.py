"""Route 53 behaviours that moto does not reproduce, tested with botocore's Stubber.

moto neither throttles, nor rejects a whole batch atomically (it applies part of a rejected
batch), nor keeps changes PENDING. The responses below are shaped as the Route 53 API
reference gives them for ListHostedZonesByName, ChangeResourceRecordSets (with the
InvalidChangeBatch and Throttling errors) and GetChange.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import dns.rrset
import pytest
from botocore.stub import ANY, Stubber

from provisioner.backends.route53 import Route53Backend
from provisioner.backends.route53.batches import BatchLimits
from provisioner.clock import ManualClock
from provisioner.errors import BackendError
from provisioner.spec.models import Route53Publish
from provisioner.store.local import LocalStore
from provisioner.zone.model import ZoneData
from provisioner.zone.plan import ZonePlan, diff_zone

START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
ZONE_ID = "Z0123456789ABCDEFGHIJ"


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return boto3.client(
        "route53",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def stubber(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    with LocalStore(tmp_path / "state") as opened:
        yield opened


def backend_for(
    client: Any, clock: ManualClock, store: LocalStore | None = None, **options: Any
) -> Route53Backend:
    publish = Route53Publish(backend="route53", hosted_zone_id=ZONE_ID, wait_timeout=60)
    backend = Route53Backend(
        "example.com.",
        publish,
        store,
        clients=lambda service, publish: client,
        clock=clock,
        rng=random.Random(7),
        **options,
    )
    # The hosted zone id is given and was checked by an earlier run.
    backend._checked_zone_id = True
    return backend


def change_info(change_id: str, status: str = "PENDING") -> dict[str, Any]:
    return {"Id": f"/change/{change_id}", "Status": status, "SubmittedAt": START}


def plan_creating(names: list[str]) -> tuple[ZonePlan, ZoneData]:
    desired = ZoneData("example.com.")
    for name in names:
        desired.add(dns.rrset.from_text(f"{name}.example.com.", 300, "IN", "A", "192.0.2.1"))
    changes, left_alone = diff_zone(ZoneData("example.com."), desired, owned=set())
    return ZonePlan("example.com.", "route53", None, 1, changes, left_alone), desired


def test_throttled_change_is_retried(client: Any, stubber: Stubber) -> None:
    clock = ManualClock(START)
    backend = backend_for(client, clock)
    zone_plan, desired = plan_creating(["a"])
    for code in ("Throttling", "PriorRequestNotComplete"):
        stubber.add_client_error(
            "change_resource_record_sets",
            service_error_code=code,
            service_message="Rate exceeded",
            http_status_code=400,
        )
    stubber.add_response(
        "change_resource_record_sets",
        {"ChangeInfo": change_info("C1")},
        {"HostedZoneId": ZONE_ID, "ChangeBatch": ANY},
    )

    backend.apply(zone_plan, desired)

    assert backend.change_ids == ["/change/C1"]
    assert backend.caller.retries == 2
    assert clock.now() > START, "the retries waited on the clock"


def test_throttling_gives_up_after_attempts(client: Any, stubber: Stubber) -> None:
    from provisioner.backends.route53.calls import RetryPolicy

    clock = ManualClock(START)
    backend = backend_for(client, clock, retry=RetryPolicy(attempts=3))
    for _ in range(3):
        stubber.add_client_error(
            "list_resource_record_sets",
            service_error_code="Throttling",
            service_message="Rate exceeded",
            http_status_code=400,
        )

    with pytest.raises(BackendError) as raised:
        backend.read()

    assert "Throttling" in raised.value.message
    assert backend.caller.retries == 2
    # Full jitter: each wait is at most 0.5 s, then 1 s.
    assert clock.now() - START <= dt.timedelta(seconds=1.5)


def test_rejected_batch_records_landed_changes(
    client: Any, stubber: Stubber, store: LocalStore
) -> None:
    clock = ManualClock(START)
    backend = backend_for(client, clock, store, limits=BatchLimits(max_elements=2))
    store.set_owned("example.com.", {("old.example.com.", "A")})
    zone_plan, desired = plan_creating(["a", "b", "c"])
    stubber.add_response(
        "change_resource_record_sets",
        {"ChangeInfo": change_info("C1")},
        {"HostedZoneId": ZONE_ID, "ChangeBatch": ANY},
    )
    stubber.add_client_error(
        "change_resource_record_sets",
        service_error_code="InvalidChangeBatch",
        service_message="Invalid change batch",
        http_status_code=400,
        modeled_fields={
            "messages": [
                "Tried to create resource record set [name='c.example.com.', type='A'] "
                "but it already exists"
            ]
        },
    )

    with pytest.raises(BackendError) as raised:
        backend.apply(zone_plan, desired)

    assert "batch 2 of 2" in raised.value.message
    assert "but it already exists" in raised.value.message
    assert "1 of 2 batches were applied" in raised.value.message
    assert store.owned("example.com.") == {
        ("old.example.com.", "A"),
        ("a.example.com.", "A"),
        ("b.example.com.", "A"),
    }
    assert store.zone_state("example.com.") is None


def test_wait_insync_polls_until_in_sync(client: Any, stubber: Stubber) -> None:
    clock = ManualClock(START)
    backend = backend_for(client, clock)
    backend.change_ids = ["/change/C1"]
    stubber.add_response("get_change", {"ChangeInfo": change_info("C1")}, {"Id": "/change/C1"})
    stubber.add_response(
        "get_change", {"ChangeInfo": change_info("C1", "INSYNC")}, {"Id": "/change/C1"}
    )

    backend.wait_insync()

    assert clock.now() == START + dt.timedelta(seconds=5)


def test_wait_insync_times_out(client: Any, stubber: Stubber) -> None:
    clock = ManualClock(START)
    backend = backend_for(client, clock)
    backend.change_ids = ["/change/C1"]
    for _ in range(3):
        stubber.add_response("get_change", {"ChangeInfo": change_info("C1")}, {"Id": "/change/C1"})

    with pytest.raises(BackendError) as raised:
        backend.wait_insync(timeout=10)

    assert "still PENDING after 10 s" in raised.value.message


def test_zone_found_by_name(client: Any, stubber: Stubber) -> None:
    publish = Route53Publish(backend="route53")
    backend = Route53Backend(
        "example.com.", publish, None, clients=lambda s, p: client, clock=ManualClock(START)
    )
    stubber.add_response(
        "list_hosted_zones_by_name",
        {
            "HostedZones": [
                {"Id": f"/hostedzone/{ZONE_ID}", "Name": "example.com.", "CallerReference": "r"},
                {"Id": "/hostedzone/ZOTHER", "Name": "example.com.cn.", "CallerReference": "s"},
            ],
            "IsTruncated": False,
            "MaxItems": "100",
        },
        {"DNSName": "example.com.", "MaxItems": "100"},
    )

    assert backend.zone_id == ZONE_ID


def test_two_zones_of_one_name_need_an_id(client: Any, stubber: Stubber) -> None:
    publish = Route53Publish(backend="route53")
    backend = Route53Backend(
        "example.com.", publish, None, clients=lambda s, p: client, clock=ManualClock(START)
    )
    zones = [
        {"Id": f"/hostedzone/Z{index}", "Name": "example.com.", "CallerReference": str(index)}
        for index in (1, 2)
    ]
    stubber.add_response(
        "list_hosted_zones_by_name",
        {"HostedZones": zones, "IsTruncated": False, "MaxItems": "100"},
        {"DNSName": "example.com.", "MaxItems": "100"},
    )

    with pytest.raises(BackendError) as raised:
        _ = backend.zone_id

    assert "2 Route 53 hosted zones are named example.com.: Z1, Z2" in raised.value.message


def test_escaped_wildcard_read(client: Any, stubber: Stubber) -> None:
    backend = backend_for(client, ManualClock(START))
    stubber.add_response(
        "list_resource_record_sets",
        {
            "ResourceRecordSets": [
                {
                    "Name": "\\052.example.com.",
                    "Type": "TXT",
                    "TTL": 300,
                    "ResourceRecords": [{"Value": '"wild"'}],
                },
                {
                    "Name": "www.example.com.",
                    "Type": "A",
                    "AliasTarget": {
                        "HostedZoneId": "Z2FDTNDATAQYW2",
                        "DNSName": "d1.cloudfront.net.",
                        "EvaluateTargetHealth": False,
                    },
                },
            ],
            "IsTruncated": True,
            "NextRecordName": "\\052.example.com.",
            "NextRecordType": "TXT",
            "MaxItems": "1",
        },
        {"HostedZoneId": ZONE_ID, "MaxItems": "300"},
    )
    stubber.add_response(
        "list_resource_record_sets",
        {
            "ResourceRecordSets": [
                {
                    "Name": "mail.example.com.",
                    "Type": "A",
                    "TTL": 60,
                    "ResourceRecords": [{"Value": "192.0.2.25"}],
                }
            ],
            "IsTruncated": False,
            "MaxItems": "300",
        },
        {
            "HostedZoneId": ZONE_ID,
            "MaxItems": "300",
            "StartRecordName": "\\052.example.com.",
            "StartRecordType": "TXT",
        },
    )

    zone = backend.read()

    assert zone is not None
    assert zone.get("*.example.com.", "TXT") is not None
    assert zone.get("mail.example.com.", "A") is not None
    assert zone.get("www.example.com.", "A") is None
    assert len(backend.unmanaged) == 1


def plan_for(desired: ZoneData) -> ZonePlan:
    changes, left_alone = diff_zone(ZoneData("example.com."), desired, owned=set())
    return ZonePlan("example.com.", "route53", None, 1, changes, left_alone)


def test_unsupported_type_rejected_at_plan(client: Any) -> None:
    backend = backend_for(client, ManualClock(START))
    desired = ZoneData("example.com.")
    desired.add(
        dns.rrset.from_text("loc.example.com.", 300, "IN", "LOC", "52 22 23 N 4 53 32 E 0m")
    )

    with pytest.raises(BackendError) as raised:
        backend.check_plan(plan_for(desired), desired)

    assert "LOC at loc.example.com." in raised.value.message
    assert raised.value.hint is not None
    assert "TLSA" in raised.value.hint


def test_smimea_rejected_with_remedy(client: Any) -> None:
    backend = backend_for(client, ManualClock(START))
    desired = ZoneData("example.com.")
    owner = "2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db._smimecert.example.com."
    desired.add(dns.rrset.from_text(owner, 300, "IN", "SMIMEA", "3 0 1 " + "ab" * 32))

    with pytest.raises(BackendError) as raised:
        backend.check_plan(plan_for(desired), desired)

    assert "does not accept SMIMEA" in raised.value.message
    assert owner in raised.value.message
    assert raised.value.hint is not None
    assert "_smimecert.<domain>" in raised.value.hint


def test_value_over_4000_characters_rejected(client: Any) -> None:
    backend = backend_for(client, ManualClock(START))
    strings = " ".join('"' + "z" * 255 + '"' for _ in range(16))
    desired = ZoneData("example.com.")
    desired.add(dns.rrset.from_text("long.example.com.", 300, "IN", "TXT", strings))

    with pytest.raises(BackendError) as raised:
        backend.check_plan(plan_for(desired), desired)

    assert "has 4127 characters" in raised.value.message
    assert "at most 4000" in raised.value.message
