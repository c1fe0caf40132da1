"""Rfc2136Backend: edit a zone on a primary server by AXFR and RFC 2136 UPDATE with TSIG.

The SOA serial. When the server signs (signer ``server``) or the zone is unsigned (``none``),
the server owns the serial: every UPDATE makes it increment the serial itself (BIND's
serial-update-method, Knot's serial-policy). So provisioner compares SOA RRsets without the
serial, and sends an SOA only when another SOA field changed, with the served serial plus one.
When provisioner signs, the RRSIG over the SOA covers the serial, so provisioner sets it: the
last UPDATE message carries the signed SOA and its RRSIG, and the serial that provisioner
signs must exceed what the server reaches by incrementing once per earlier message
(``minimum_serial``).

Every message carries the prerequisite "apex SOA RRset exists with this value" (RFC 2136,
section 2.4.2). An edit that someone else makes between the AXFR and the UPDATE therefore makes
the server reject the message with NXRRSET, instead of silently mixing both edits.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import cast

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rrset
import dns.update
from dns.rdtypes.ANY.SOA import SOA

from provisioner.backends.rfc2136.operations import (
    MAX_MESSAGE_SIZE,
    MESSAGE_MARGIN,
    SERVER_DNSSEC_TYPES,
    ChangeOperations,
    Operation,
    count_records,
    pack_messages,
    plan_operations,
    rrset_operations,
)
from provisioner.backends.rfc2136.transport import Endpoint, PrerequisiteFailed, Transport
from provisioner.clock import Clock
from provisioner.errors import BackendError
from provisioner.zone.model import ZoneData, describe_key
from provisioner.zone.plan import ZonePlan

log = logging.getLogger(__name__)

RdataType = dns.rdatatype.RdataType


def serial_greater(a: int, b: int) -> bool:
    """Return whether serial ``a`` is greater than ``b`` in RFC 1982 arithmetic."""
    return a != b and (a - b) % 2**32 < 2**31


class Rfc2136Backend:
    name = "rfc2136"
    owns_whole_zone = False

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        signer: str,
        server_type: str,
        clock: Clock,
    ) -> None:
        self.endpoint = endpoint
        self.origin = endpoint.zone
        self.signer = signer
        self.server_type = server_type
        self.transport = Transport(endpoint, clock)
        self.served: ZoneData | None = None
        self.published_serial: int | None = None
        self.records_sent = 0
        # (owner, type) of the RRsets whose operations reached the server in this apply.
        self._sent: set[tuple[dns.name.Name, RdataType]] = set()

    @property
    def updates_sent(self) -> int:
        """Return the number of UPDATE messages that reached the server (retries included)."""
        return self.transport.updates_sent

    @property
    def server_owns_serial(self) -> bool:
        return self.signer != "provisioner"

    # --- reading --------------------------------------------------------------------------

    def read(self) -> ZoneData | None:
        """Return the zone as the primary serves it, read by AXFR (with the transfer key)."""
        self.served = self.transport.transfer()
        if self.served.get(self.origin, RdataType.SOA) is None:
            raise BackendError(f"the AXFR of zone {self.origin} returned no SOA")
        self.published_serial = self.served.soa[0].serial
        return self.served

    def comparable(self, current: ZoneData | None, desired: ZoneData) -> ZoneData | None:
        """Return ``current`` as the planner should compare it with ``desired``.

        When the server signs, its DNSSEC records are its own and are left out. When the server
        owns the serial, the served SOA takes the desired serial, so only the other SOA fields
        count.
        """
        if current is None or self.signer == "provisioner":
            return current
        view = ZoneData(current.origin)
        view.rrsets = {
            key: rrset for key, rrset in current.rrsets.items() if key[1] not in SERVER_DNSSEC_TYPES
        }
        served_soa = current.get(current.origin, RdataType.SOA)
        desired_soa = desired.get(desired.origin, RdataType.SOA)
        if served_soa is not None and desired_soa is not None:
            rewritten = served_soa[0].replace(serial=desired_soa[0].serial)
            soa = dns.rrset.RRset(current.origin, dns.rdataclass.IN, RdataType.SOA)
            soa.add(rewritten, served_soa.ttl)
            view.replace(soa)
        return view

    def minimum_serial(self, plan: ZonePlan) -> int | None:
        """Return the lowest serial that a zone signed by provisioner may carry for ``plan``.

        The server increments the serial once for each message before the last, which carries
        the signed SOA; that SOA is accepted only when its serial is greater. Returns None
        when the plan changes nothing.
        """
        if self.server_owns_serial or self.published_serial is None or not plan.changes:
            return None
        batches = self._batches(plan, plan_operations(plan.changes))
        return (self.published_serial + max(1, len(batches))) % 2**32

    def check_plan(self, plan: ZonePlan, desired: ZoneData) -> None:
        if self.signer == "provisioner" and self.server_type == "bind":
            raise BackendError(
                f"zone {self.origin}: BIND cannot serve a zone that provisioner signs through "
                "RFC 2136: it signs every update to a zone with DNSKEYs itself, so an UPDATE "
                "that adds provisioner's DNSKEY fails (BIND 9.18 looks for the private key and "
                "answers SERVFAIL)",
                hint="use dnssec.signer: server (BIND signs with dnssec-policy), a Knot primary "
                "with dnssec-signing: off, or the zonefile backend",
            )
        if self.signer == "provisioner":
            return
        for key in desired.rrsets:
            if key[1] in SERVER_DNSSEC_TYPES:
                raise BackendError(
                    f"zone {self.origin}: {describe_key(key)} is in the desired zone, but "
                    f"provisioner does not sign it (signer {self.signer}), and DNSSEC records "
                    "on an UPDATE target are the server's own",
                    hint="use signer: provisioner, or remove the record from the spec",
                )

    # --- writing --------------------------------------------------------------------------

    def apply(self, plan: ZonePlan, desired: ZoneData) -> None:
        """Send the plan's changes as UPDATE messages, each guarded by the SOA it expects."""
        if self.served is None:
            self.read()
        assert self.served is not None
        changes = plan_operations(plan.changes)
        self._sent = set()
        try:
            self._send_all(plan, changes, self.served.soa[0], predict=True)
        except PrerequisiteFailed:
            log.warning(
                "zone %s on %s did not have the expected SOA serial during apply (edited by "
                "someone else, or a serial policy other than increment); reading it again",
                self.origin,
                self.endpoint.where(),
            )
            remaining = self._replan(plan, desired)
            self._send_all(plan, remaining, self.served.soa[0], predict=False)
        self.published_serial = self.transport.query_soa().serial
        log.info(
            "zone %s: %d UPDATE message(s) with %d RR(s) sent to %s; served serial %d",
            self.origin,
            self.updates_sent,
            self.records_sent,
            self.endpoint.where(),
            self.published_serial,
        )

    def _send_all(
        self,
        plan: ZonePlan,
        changes: Sequence[ChangeOperations],
        expected_soa: dns.rdtypes.ANY.SOA.SOA,
        *,
        predict: bool,
    ) -> None:
        """Send ``changes``, guarding each message with the SOA that should be served.

        With ``predict``, the SOA after a message is computed: the SOA the message carried, or
        else the previous one with the serial plus one (BIND's and Knot's "increment" policy).
        A wrong guess fails the next prerequisite like an edit by someone else would, so no
        edit goes unnoticed. Without it, the SOA is queried after each message.
        """
        batches = self._batches(plan, changes)
        final_soa = self._final_soa(plan)
        for index, batch in enumerate(batches):
            is_last = index == len(batches) - 1
            if is_last and final_soa is not None and not self.server_owns_serial:
                served = expected_soa.serial
                wanted = final_soa.rdatas[0].serial  # type: ignore[attr-defined]
                if not serial_greater(wanted, served):
                    raise BackendError(
                        f"zone {self.origin}: the signed SOA serial {wanted} is not greater than "
                        f"the served serial {served}, so the server would not take it",
                        hint="run apply again; provisioner signs with a higher serial",
                    )
            message = self._message(batch, expected_soa)
            log.debug(
                "zone %s: UPDATE %d of %d with %d RR(s)",
                self.origin,
                index + 1,
                len(batches),
                count_records([batch]),
            )
            self.transport.send_update(message)
            self.records_sent += count_records([batch])
            self._sent.update((op.name, op.rdtype) for op in batch)
            if is_last:
                continue
            if predict:
                expected_soa = self._soa_after(batch, expected_soa)
            else:
                # NOTE: an edit by someone else between this UPDATE and the SOA query below is
                # not detected; the window is one round trip, after a re-plan only.
                expected_soa = self.transport.query_soa()

    def _soa_after(self, batch: Sequence[Operation], before: SOA) -> SOA:
        """Return the SOA the server serves after ``batch`` under an increment serial policy."""
        incremented = cast(SOA, before.replace(serial=(before.serial + 1) % 2**32))
        for operation in batch:
            if operation.rdtype != RdataType.SOA or operation.kind != "add":
                continue
            sent = cast(SOA, operation.rdatas[0])
            if self.server_owns_serial:
                return cast(SOA, sent.replace(serial=incremented.serial))
            return sent
        return incremented

    def _batches(
        self, plan: ZonePlan, changes: Sequence[ChangeOperations]
    ) -> list[list[Operation]]:
        """Pack ``changes`` into messages; the SOA and its RRSIG go into the last one.

        The signed SOA must arrive with its RRSIG, after everything else, so that the serial
        a secondary transfers belongs to the complete change.
        """
        soa_rrsig_key = (self.origin, RdataType.RRSIG, RdataType.SOA)
        body = [c for c in changes if c.key != soa_rrsig_key]
        final = [op for c in changes if c.key == soa_rrsig_key for op in c.operations]
        final_soa = self._final_soa(plan)
        if final_soa is not None:
            final.insert(0, final_soa)
        batches = pack_messages(body)
        if not final:
            return batches
        final_size = sum(op.wire_size() for op in final)
        last_size = sum(op.wire_size() for op in batches[-1]) if batches else 0
        if batches and last_size + final_size <= MAX_MESSAGE_SIZE - MESSAGE_MARGIN:
            batches[-1].extend(final)
        else:
            batches.append(final)
        return batches

    def _final_soa(self, plan: ZonePlan) -> Operation | None:
        soa_change = next((c for c in plan.changes if c.key[1] == RdataType.SOA), None)
        if soa_change is None or soa_change.after is None:
            return None
        wanted = soa_change.after[0]
        if self.server_owns_serial:
            # The server's serial after the earlier messages is not known yet; a serial of
            # zero is replaced in _message by the expected serial plus one.
            wanted = wanted.replace(serial=0)
        return Operation("add", self.origin, RdataType.SOA, soa_change.after.ttl, (wanted,))

    def _message(
        self, batch: Sequence[Operation], expected_soa: dns.rdtypes.ANY.SOA.SOA
    ) -> dns.update.UpdateMessage:
        message = dns.update.UpdateMessage(self.origin)
        message.present(self.origin, expected_soa)
        for operation in batch:
            rdatas: Sequence[dns.rdata.Rdata] = operation.rdatas
            if operation.rdtype == RdataType.SOA and self.server_owns_serial:
                next_serial = (expected_soa.serial + 1) % 2**32
                rdatas = [rdata.replace(serial=next_serial) for rdata in rdatas]
            if operation.kind == "add":
                message.add(operation.name, operation.ttl, *rdatas)
            elif operation.kind == "delete_rr":
                message.delete(operation.name, *rdatas)
            else:
                message.delete(operation.name, operation.rdtype)
        return message

    def _replan(self, plan: ZonePlan, desired: ZoneData) -> list[ChangeOperations]:
        """Read the zone again and return what remains to do, or raise when edits collide.

        A concurrent edit of an RRset that the plan does not touch is harmless, so the
        remaining changes are recomputed against the new zone. An edit of an RRset that the plan
        changes means two writers disagree, which only the user can settle.
        """
        served = self.read()
        assert served is not None
        current = self.comparable(served, desired)
        assert current is not None
        conflicts: list[str] = []
        remaining: list[ChangeOperations] = []
        for change in plan.changes:
            if change.key[1] == RdataType.SOA:
                continue
            now = current.rrsets.get(change.key)
            was_sent = (change.key[0], change.key[1]) in self._sent
            expected = change.after if was_sent else change.before
            if not _same_rrset(now, expected) and not _same_rrset(now, change.after):
                conflicts.append(describe_key(change.key))
                continue
            operations = rrset_operations(change.key, now, change.after)
            if operations.operations:
                remaining.append(operations)
        if conflicts:
            listed = ", ".join(conflicts[:5]) + (" ..." if len(conflicts) > 5 else "")
            raise PrerequisiteFailed(
                f"zone {self.origin} on {self.endpoint.where()} was changed by someone else "
                f"during apply, in RRsets that provisioner was changing: {listed}",
                hint="find out who else edits the zone; then run plan and apply again",
            )
        return remaining


def _same_rrset(a: dns.rrset.RRset | None, b: dns.rrset.RRset | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.ttl == b.ttl and set(a) == set(b)
