"""Turn a zone plan into RR-level UPDATE operations, and pack them into messages.

Pure: no I/O. An RRset whose RRs changed but whose TTL did not becomes deletes of the RRs
that went away and adds of the new ones (RFC 2136, section 2.5.4 and 2.5.1), so one changed
SMIMEA RR in an RRset of three costs two RRs in the message, not six. A TTL change replaces
the RRset, because servers apply the TTL of an added RR to the whole RRset. RRSIG RRsets are
always changed RR by RR: a class ANY delete of type RRSIG would remove the signatures of every
type at the owner name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import dns.name
import dns.rdata
import dns.rdatatype
import dns.rrset

from provisioner.zone.model import RRsetKey, describe_key
from provisioner.zone.plan import RRsetChange

RdataType = dns.rdatatype.RdataType

# An UPDATE travels over TCP, whose two-byte length prefix caps a message at 65535 octets.
# The margin covers the header, the zone section, the SOA prerequisite and a TSIG record
# with an hmac-sha512 MAC (about 130 octets) many times over.
MAX_MESSAGE_SIZE = 65535
MESSAGE_MARGIN = 2048

# The types that a signing server (BIND dnssec-policy, Knot automatic signing) adds itself.
# TYPE65534 is BIND's private record of signing progress (its sig-signing-type default).
SERVER_DNSSEC_TYPES = frozenset(
    {
        RdataType.DNSKEY,
        RdataType.RRSIG,
        RdataType.NSEC,
        RdataType.NSEC3,
        RdataType.NSEC3PARAM,
        RdataType.CDS,
        RdataType.CDNSKEY,
        RdataType.make(65534),
    }
)

OperationKind = Literal["add", "delete_rr", "delete_rrset"]


@dataclass(frozen=True)
class Operation:
    """One entry of the update section: add RRs, delete RRs, or delete a whole RRset."""

    kind: OperationKind
    name: dns.name.Name
    rdtype: RdataType
    ttl: int = 0
    rdatas: tuple[dns.rdata.Rdata, ...] = ()

    def wire_size(self) -> int:
        """Return an upper bound of the octets this operation takes in a message."""
        name_size = _wire_length(self.name)
        if self.kind == "delete_rrset":
            return name_size + 10
        return sum(name_size + 10 + _wire_length(rdata) for rdata in self.rdatas)


@dataclass
class ChangeOperations:
    """The operations that carry out one RRset change; they stay in one message if they fit."""

    key: RRsetKey
    operations: list[Operation] = field(default_factory=list)

    def wire_size(self) -> int:
        return sum(operation.wire_size() for operation in self.operations)


def rrset_operations(
    key: RRsetKey, before: dns.rrset.RRset | None, after: dns.rrset.RRset | None
) -> ChangeOperations:
    """Return the smallest set of operations that turns ``before`` into ``after``."""
    name, rdtype, _ = key
    result = ChangeOperations(key)
    is_rrsig = rdtype == RdataType.RRSIG

    if after is None:
        if before is None:
            return result
        if is_rrsig:
            result.operations.append(Operation("delete_rr", name, rdtype, 0, _sorted(before)))
        else:
            result.operations.append(Operation("delete_rrset", name, rdtype))
        return result

    if before is None:
        result.operations.append(Operation("add", name, rdtype, after.ttl, _sorted(after)))
        return result

    if before.ttl != after.ttl:
        if is_rrsig:
            result.operations.append(Operation("delete_rr", name, rdtype, 0, _sorted(before)))
        else:
            result.operations.append(Operation("delete_rrset", name, rdtype))
        result.operations.append(Operation("add", name, rdtype, after.ttl, _sorted(after)))
        return result

    removed = [rdata for rdata in before if rdata not in after]
    added = [rdata for rdata in after if rdata not in before]
    if removed:
        result.operations.append(Operation("delete_rr", name, rdtype, 0, _sorted(removed)))
    if added:
        result.operations.append(Operation("add", name, rdtype, after.ttl, _sorted(added)))
    return result


def plan_operations(changes: Iterable[RRsetChange]) -> list[ChangeOperations]:
    """Return the operations of every change except the apex SOA, in the plan's order.

    The SOA is left out because the backend decides its serial when it sends the last message.
    """
    result = []
    for change in changes:
        if change.key[1] == RdataType.SOA:
            continue
        operations = rrset_operations(change.key, change.before, change.after)
        if operations.operations:
            result.append(operations)
    return result


def pack_messages(
    changes: Sequence[ChangeOperations], limit: int = MAX_MESSAGE_SIZE - MESSAGE_MARGIN
) -> list[list[Operation]]:
    """Group operations into batches whose update sections fit within ``limit`` octets.

    A change stays whole inside one batch unless it alone is larger than the limit; then its
    operations, and the RRs of each operation, are split across batches. Raises ValueError
    when a single RR exceeds the limit.
    """
    batches: list[list[Operation]] = []
    current: list[Operation] = []
    size = 0

    def close() -> None:
        nonlocal current, size
        if current:
            batches.append(current)
        current, size = [], 0

    for change in changes:
        change_size = change.wire_size()
        if change_size <= limit:
            if size + change_size > limit:
                close()
            current.extend(change.operations)
            size += change_size
            continue
        for operation in change.operations:
            for piece in _split_operation(operation, limit, describe_key(change.key)):
                piece_size = piece.wire_size()
                if size + piece_size > limit:
                    close()
                current.append(piece)
                size += piece_size
    close()
    return batches


def _split_operation(operation: Operation, limit: int, what: str) -> list[Operation]:
    if operation.wire_size() <= limit:
        return [operation]
    pieces: list[Operation] = []
    chunk: list[dns.rdata.Rdata] = []
    chunk_size = 0
    name_size = _wire_length(operation.name)
    for rdata in operation.rdatas:
        rr_size = name_size + 10 + _wire_length(rdata)
        if rr_size > limit:
            raise ValueError(f"one RR of {what} is {rr_size} octets, more than an UPDATE can hold")
        if chunk and chunk_size + rr_size > limit:
            pieces.append(_with_rdatas(operation, chunk))
            chunk, chunk_size = [], 0
        chunk.append(rdata)
        chunk_size += rr_size
    if chunk:
        pieces.append(_with_rdatas(operation, chunk))
    return pieces


def _with_rdatas(operation: Operation, rdatas: list[dns.rdata.Rdata]) -> Operation:
    return Operation(operation.kind, operation.name, operation.rdtype, operation.ttl, tuple(rdatas))


def _wire_length(item: dns.name.Name | dns.rdata.Rdata) -> int:
    """Return the uncompressed wire length of a name or rdata."""
    return len(item.to_wire() or b"")


def _sorted(rdatas: Iterable[dns.rdata.Rdata]) -> tuple[dns.rdata.Rdata, ...]:
    return tuple(sorted(rdatas, key=lambda rdata: rdata.to_digestable()))


def count_records(batches: Sequence[Sequence[Operation]]) -> int:
    """Return the number of RRs in the update sections of ``batches``."""
    return sum(max(1, len(op.rdatas)) for batch in batches for op in batch)
