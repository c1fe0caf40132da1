"""Splitting Route 53 changes into batches within the element and character limits."""

from __future__ import annotations

import dns.name
import dns.rrset
import pytest

from provisioner.backends.route53.batches import (
    BatchLimits,
    Change,
    route53_changes,
    split_batches,
)
from provisioner.backends.route53.records import (
    decode_name,
    encode_name,
    from_record_set,
    to_record_set,
)
from provisioner.errors import BackendError
from provisioner.zone.model import rrset_key
from provisioner.zone.plan import RRsetChange

LIMITS = BatchLimits()
DIGEST = "0123456789abcdef" * 4


def tlsa(index: int) -> dns.rrset.RRset:
    return dns.rrset.from_text(
        f"_25._tcp.mx{index}.example.com.", 3600, "IN", "TLSA", f"3 1 1 {DIGEST}"
    )


def txt(index: int, length: int = 252) -> dns.rrset.RRset:
    value = '"' + ("x" * length) + '"'
    return dns.rrset.from_text(f"t{index}.example.com.", 300, "IN", "TXT", value)


def assert_within_limits(batches: list[list[Change]]) -> None:
    for batch in batches:
        assert sum(change.elements for change in batch) <= LIMITS.max_elements
        assert sum(change.characters for change in batch) <= LIMITS.max_characters


def request_characters(batch: list[Change]) -> int:
    """Count the characters of the Value elements as they go into the request."""
    total = 0
    for change in batch:
        api = change.as_api()
        weight = 2 if api["Action"] == "UPSERT" else 1
        total += weight * sum(len(r["Value"]) for r in api["ResourceRecordSet"]["ResourceRecords"])
    return total


def test_2500_tlsa_creations_split_by_characters() -> None:
    changes = [Change("CREATE", tlsa(index)) for index in range(2500)]

    batches = split_batches(changes, LIMITS)

    assert_within_limits(batches)
    assert sum(len(batch) for batch in batches) == 2500
    # Each value has 70 characters, so 457 fit in 32,000 characters: 6 batches.
    assert [len(batch) for batch in batches] == [457] * 5 + [215]
    assert all(request_characters(batch) <= LIMITS.max_characters for batch in batches)


def test_2500_tlsa_upserts_count_twice() -> None:
    updates = [
        RRsetChange("update", rrset_key(tlsa(index)), tlsa(index), tlsa(index))
        for index in range(2500)
    ]
    changes = route53_changes(updates, LIMITS)

    batches = split_batches(changes, LIMITS)

    assert {change.action for change in changes} == {"UPSERT"}
    assert_within_limits(batches)
    assert max(len(batch) for batch in batches) == 228
    assert sum(len(batch) for batch in batches) == 2500


def test_1000_element_limit_binds_short_values() -> None:
    changes = [
        Change("CREATE", dns.rrset.from_text(f"h{i}.example.com.", 60, "IN", "A", "192.0.2.1"))
        for i in range(2500)
    ]

    batches = split_batches(changes, LIMITS)

    assert [len(batch) for batch in batches] == [1000, 1000, 500]


def test_200_txt_values_of_252_characters() -> None:
    changes = [Change("CREATE", txt(index)) for index in range(200)]

    batches = split_batches(changes, LIMITS)

    assert_within_limits(batches)
    # A value is 254 characters with its quotes: 125 fit in one batch.
    assert [len(batch) for batch in batches] == [125, 75]
    assert [request_characters(batch) for batch in batches] == [125 * 254, 75 * 254]


def test_200_txt_upserts_need_four_batches() -> None:
    changes = [Change("UPSERT", txt(index)) for index in range(200)]

    batches = split_batches(changes, LIMITS)

    assert_within_limits(batches)
    assert [len(batch) for batch in batches] == [62, 62, 62, 14]


def test_txt_rrset_of_200_values_is_rejected() -> None:
    rrset = dns.rrset.from_text_list(
        "big.example.com.", 300, "IN", "TXT", [f'"{index:03d}{"x" * 249}"' for index in range(200)]
    )

    with pytest.raises(BackendError) as raised:
        split_batches([Change("CREATE", rrset)], LIMITS)

    assert "50800 characters" in raised.value.message


def test_large_update_falls_back_to_delete_and_create() -> None:
    values = [f'"{index:03d}{"y" * 149}"' for index in range(150)]
    before = dns.rrset.from_text_list("big.example.com.", 300, "IN", "TXT", values[:100])
    after = dns.rrset.from_text_list("big.example.com.", 300, "IN", "TXT", values)

    changes = route53_changes([RRsetChange("update", rrset_key(after), before, after)], LIMITS)

    assert [change.action for change in changes] == ["DELETE", "CREATE"]
    assert changes[0].rrset is before
    assert_within_limits(split_batches(changes, LIMITS))


def test_changes_at_one_owner_stay_together() -> None:
    owner = "child.example.com."
    ns = dns.rrset.from_text(owner, 300, "IN", "NS", "ns1.example.net.")
    ds = dns.rrset.from_text(owner, 300, "IN", "DS", f"12345 13 2 {DIGEST}")
    filler = [Change("CREATE", txt(index)) for index in range(124)]
    limits = LIMITS

    batches = split_batches([*filler, Change("CREATE", ds), Change("CREATE", ns)], limits)

    together = [batch for batch in batches if any(c.rrset.name == ns.name for c in batch)]
    assert len(together) == 1
    types = [change.rrset.rdtype for change in together[0] if change.rrset.name == ns.name]
    assert types == [ns.rdtype, ds.rdtype], "NS is created before DS"


def test_ds_deleted_before_ns() -> None:
    owner = "child.example.com."
    ns = dns.rrset.from_text(owner, 300, "IN", "NS", "ns1.example.net.")
    ds = dns.rrset.from_text(owner, 300, "IN", "DS", f"12345 13 2 {DIGEST}")

    (batch,) = split_batches([Change("DELETE", ns), Change("DELETE", ds)], LIMITS)

    assert [change.rrset.rdtype for change in batch] == [ds.rdtype, ns.rdtype]


def test_delete_carries_the_served_rrset() -> None:
    served = dns.rrset.from_text_list("a.example.com.", 120, "IN", "A", ["192.0.2.2", "192.0.2.1"])

    (change,) = route53_changes([RRsetChange("delete", rrset_key(served), served, None)], LIMITS)

    assert change.as_api() == {
        "Action": "DELETE",
        "ResourceRecordSet": {
            "Name": "a.example.com.",
            "Type": "A",
            "TTL": 120,
            "ResourceRecords": [{"Value": "192.0.2.1"}, {"Value": "192.0.2.2"}],
        },
    }


def test_escaped_names_decode() -> None:
    assert decode_name("\\052.example.com.") == dns.name.from_text("*.example.com.")
    assert decode_name("a\\056b.example.com.").labels[0] == b"a.b"
    assert decode_name("example.com") == dns.name.from_text("example.com.")


def test_names_encode_with_octal_escapes() -> None:
    assert encode_name(dns.name.from_text("*.Example.COM.")) == "*.example.com."
    assert encode_name(dns.name.from_text("a\\.b.example.com.")) == "a\\056b.example.com."
    name = dns.name.from_text("a\\.b.example.com.")
    assert decode_name(encode_name(name)) == name


def test_record_set_round_trip() -> None:
    rrset = dns.rrset.from_text(
        "_25._tcp.mx1.example.com.", 3600, "IN", "TLSA", "3 1 0 " + "ab" * 91
    )

    record_set = to_record_set(rrset)
    parsed = from_record_set(record_set)

    assert " " not in record_set["ResourceRecords"][0]["Value"][6:]
    assert parsed == rrset
    assert parsed.ttl == 3600


def test_mx_value_keeps_absolute_name() -> None:
    parsed = from_record_set(
        {
            "Name": "example.com.",
            "Type": "MX",
            "TTL": 300,
            "ResourceRecords": [{"Value": "10 mx1.example.com"}],
        }
    )

    assert next(iter(parsed)).exchange == dns.name.from_text("mx1.example.com.")


def test_txt_escapes_become_octal() -> None:
    rrset = dns.rrset.from_text("t.example.com.", 300, "IN", "TXT", '"caf\\233 \\"q\\" a\\\\123"')

    (record,) = to_record_set(rrset)["ResourceRecords"]

    assert record["Value"] == '"caf\\351 \\"q\\" a\\\\123"'


def test_octal_txt_escapes_read() -> None:
    parsed = from_record_set(
        {
            "Name": "t.example.com.",
            "Type": "TXT",
            "TTL": 300,
            "ResourceRecords": [{"Value": '"caf\\351"'}],
        }
    )

    assert next(iter(parsed)).strings == (b"caf\xe9",)
