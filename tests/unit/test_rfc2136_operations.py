"""RR-level UPDATE operations and their packing into messages."""

from __future__ import annotations

import dns.name
import dns.rdatatype
import dns.rrset
import pytest

from provisioner.backends.rfc2136.operations import (
    MAX_MESSAGE_SIZE,
    MESSAGE_MARGIN,
    ChangeOperations,
    pack_messages,
    plan_operations,
    rrset_operations,
)
from provisioner.zone.model import NONE, rrset_key
from provisioner.zone.plan import RRsetChange

RdataType = dns.rdatatype.RdataType


def rrset(owner: str, rdtype: str, ttl: int, *values: str) -> dns.rrset.RRset:
    return dns.rrset.from_text_list(owner, ttl, "IN", rdtype, list(values))


def test_one_changed_rr_is_one_delete_one_add() -> None:
    before = rrset("www.example.test.", "A", 300, "192.0.2.1", "192.0.2.2", "192.0.2.3")
    after = rrset("www.example.test.", "A", 300, "192.0.2.1", "192.0.2.2", "192.0.2.4")

    result = rrset_operations(rrset_key(after), before, after)

    assert [op.kind for op in result.operations] == ["delete_rr", "add"]
    assert [r.to_text() for r in result.operations[0].rdatas] == ["192.0.2.3"]
    assert [r.to_text() for r in result.operations[1].rdatas] == ["192.0.2.4"]


def test_ttl_change_replaces_rrset() -> None:
    before = rrset("www.example.test.", "A", 300, "192.0.2.1")
    after = rrset("www.example.test.", "A", 600, "192.0.2.1")

    result = rrset_operations(rrset_key(after), before, after)

    assert [op.kind for op in result.operations] == ["delete_rrset", "add"]
    assert result.operations[1].ttl == 600


def test_deleted_rrset_is_one_operation() -> None:
    before = rrset("old.example.test.", "TXT", 300, '"a"', '"b"')
    result = rrset_operations(rrset_key(before), before, None)
    assert [op.kind for op in result.operations] == ["delete_rrset"]


def test_rrsig_deleted_rr_by_rr() -> None:
    signature = (
        "A 13 3 300 20300101000000 20200101000000 12345 example.test. "
        "dGVzdHNpZ25hdHVyZXRlc3RzaWduYXR1cmU="
    )
    before = rrset("www.example.test.", "RRSIG", 300, signature)
    key = (dns.name.from_text("www.example.test."), RdataType.RRSIG, RdataType.A)

    result = rrset_operations(key, before, None)

    assert [op.kind for op in result.operations] == ["delete_rr"]
    assert len(result.operations[0].rdatas) == 1


def test_create_adds_every_rr() -> None:
    after = rrset("mx.example.test.", "A", 300, "192.0.2.1", "192.0.2.2")
    result = rrset_operations(rrset_key(after), None, after)
    assert [op.kind for op in result.operations] == ["add"]
    assert len(result.operations[0].rdatas) == 2


def test_soa_left_out_of_plan_operations() -> None:
    soa_before = rrset("example.test.", "SOA", 300, "ns1. h. 1 2 3 4 5")
    soa_after = rrset("example.test.", "SOA", 300, "ns1. h. 2 2 3 4 5")
    a = rrset("www.example.test.", "A", 300, "192.0.2.1")
    changes = [
        RRsetChange("update", rrset_key(soa_after), soa_before, soa_after),
        RRsetChange("create", rrset_key(a), None, a),
    ]
    result = plan_operations(changes)
    assert [c.key[1] for c in result] == [RdataType.A]
    assert result[0].key[2] == NONE


def smimea_changes(count: int, size: int) -> list[ChangeOperations]:
    changes = []
    for index in range(count):
        owner = f"{index:056x}._smimecert.example.test."
        after = rrset(owner, "SMIMEA", 3600, "3 0 0 " + "ab" * size)
        changes.append(rrset_operations(rrset_key(after), None, after))
    return changes


def test_batches_fit_message_limit() -> None:
    changes = smimea_changes(400, 700)
    batches = pack_messages(changes)

    limit = MAX_MESSAGE_SIZE - MESSAGE_MARGIN
    assert len(batches) > 1
    for batch in batches:
        assert sum(op.wire_size() for op in batch) <= limit
    assert sum(len(batch) for batch in batches) == 400


def test_oversized_change_is_split() -> None:
    rdatas = [f"3 0 0 {index:04x}" + "cd" * 1000 for index in range(100)]
    after = rrset("big.example.test.", "SMIMEA", 3600, *rdatas)
    change = rrset_operations(rrset_key(after), None, after)

    batches = pack_messages([change])

    assert len(batches) >= 2
    assert sum(len(op.rdatas) for batch in batches for op in batch) == 100


def test_single_rr_over_limit_raises() -> None:
    after = rrset("huge.example.test.", "SMIMEA", 3600, "3 0 0 " + "ef" * 2000)
    change = rrset_operations(rrset_key(after), None, after)
    with pytest.raises(ValueError, match="more than an UPDATE can hold"):
        pack_messages([change], limit=1000)
