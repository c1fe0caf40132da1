"""CAA evaluation (RFC 8659, with the validationmethods parameter of RFC 8657).

Pure: the CAA RRsets are handed in by owner name. The relevant RRset of a host is the first
non-empty one found walking from the host towards the root (the root itself excluded).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import dns.name
import dns.rdtypes.ANY.CAA

CaaRdata = dns.rdtypes.ANY.CAA.CAA

# Tags a CA understands (RFC 8659 section 4); an unknown tag with the critical flag set forbids
# issuance by every CA.
_KNOWN_TAGS = {b"issue", b"issuewild", b"iodef", b"contactemail", b"contactphone"}
_CRITICAL = 0x80


@dataclass(frozen=True)
class CaaVerdict:
    """Whether the CAA records at or above a host let a CA issue for it.

    ``allowed`` is None when the CA's identity is unknown and an ``issue`` property exists,
    so the outcome cannot be decided. ``owner`` is the owner name of the relevant RRset.
    """

    allowed: bool | None
    owner: dns.name.Name | None
    reason: str


def relevant_caa(
    host: dns.name.Name, caa_sets: Mapping[dns.name.Name, Sequence[CaaRdata]]
) -> tuple[dns.name.Name, Sequence[CaaRdata]] | None:
    """Return the owner and records of the CAA RRset that governs ``host``, or None."""
    name = host
    while name != dns.name.root:
        records = caa_sets.get(name)
        if records:
            return name, records
        name = name.parent()
    return None


def caa_verdict(
    host: dns.name.Name,
    caa_sets: Mapping[dns.name.Name, Sequence[CaaRdata]],
    identity: str | None,
    *,
    method: str = "dns-01",
) -> CaaVerdict:
    """Decide whether the CA whose CAA issuer domain is ``identity`` may issue for ``host``."""
    found = relevant_caa(host, caa_sets)
    if found is None:
        return CaaVerdict(True, None, "no CAA record governs the name")
    owner, records = found

    for record in records:
        if record.flags & _CRITICAL and record.tag.lower() not in _KNOWN_TAGS:
            tag = record.tag.decode(errors="replace")
            return CaaVerdict(
                False, owner, f"the CAA record at {owner} has the unknown critical tag {tag!r}"
            )

    issue = [record for record in records if record.tag.lower() == b"issue"]
    if not issue:
        return CaaVerdict(True, owner, f"the CAA RRset at {owner} has no 'issue' property")
    if identity is None:
        return CaaVerdict(None, owner, f"the CAA RRset at {owner} restricts issuance to named CAs")

    expected = identity.strip().rstrip(".").lower()
    named = []
    for record in issue:
        domain, parameters = _parse_issue_value(record.value.decode(errors="replace"))
        named.append(domain or ";")
        if domain != expected:
            continue
        methods = parameters.get("validationmethods")
        if methods is not None and method not in methods.split(","):
            return CaaVerdict(
                False,
                owner,
                f"the CAA record at {owner} names {expected} but limits validation to "
                f"{methods}, and provisioner validates with {method}",
            )
        return CaaVerdict(True, owner, f"the CAA RRset at {owner} names {expected}")
    return CaaVerdict(
        False,
        owner,
        f"the CAA RRset at {owner} allows only {', '.join(sorted(set(named)))}, not {expected}",
    )


def _parse_issue_value(value: str) -> tuple[str, dict[str, str]]:
    """Split an issue value such as 'ca.example; validationmethods=dns-01' (RFC 8659 4.2)."""
    domain, _, rest = value.partition(";")
    parameters: dict[str, str] = {}
    for item in rest.split(";"):
        key, equals, parameter_value = item.strip().partition("=")
        if equals:
            parameters[key.strip().lower()] = parameter_value.strip().lower()
    return domain.strip().rstrip(".").lower(), parameters
