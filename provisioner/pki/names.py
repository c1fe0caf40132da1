"""Host names and mailbox addresses as certificates carry them, and RFC 6125 name matching.

Certificates carry dNSName and rfc822Name values as ASCII (IA5String), so internationalised
domain names are converted to A-labels (IDNA 2008 with UTS #46 mapping) before they are
written into or compared with a certificate.
"""

from __future__ import annotations

import re

import idna

from provisioner.errors import PKIError

_LDH_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_MAX_NAME_LENGTH = 253


def to_a_label(label: str) -> str:
    """Convert one domain label to its lowercase ASCII form; raise PKIError if invalid."""
    if label.isascii():
        return label.lower()
    try:
        return idna.encode(label, uts46=True).decode("ascii")
    except idna.IDNAError as error:
        raise PKIError(f"invalid internationalised label {label!r}: {error}") from None


def normalize_host(host: str, *, allow_wildcard: bool = False) -> str:
    """Return ``host`` as lowercase A-labels without the final dot; raise PKIError if invalid.

    With ``allow_wildcard``, the leftmost label may be ``*`` (a wildcard certificate name).
    """
    name = host.strip().rstrip(".")
    if not name:
        raise PKIError(f"invalid host name {host!r}: it is empty")
    labels = [to_a_label(label) for label in name.split(".")]
    for position, label in enumerate(labels):
        if position == 0 and label == "*" and allow_wildcard:
            continue
        if not _LDH_LABEL.match(label):
            raise PKIError(
                f"invalid host name {host!r}: label {label!r} is not letters, digits and hyphens",
                hint="give a DNS host name such as mx1.example.org",
            )
    normalized = ".".join(labels)
    if len(normalized) > _MAX_NAME_LENGTH:
        raise PKIError(f"invalid host name {host!r}: longer than {_MAX_NAME_LENGTH} characters")
    return normalized


def split_address(address: str) -> tuple[str, str]:
    """Split a mailbox address at its last ``@`` into (local part, domain)."""
    local, separator, domain = address.strip().rpartition("@")
    if not separator or not local or not domain:
        raise PKIError(
            f"invalid mailbox address {address!r}",
            hint="give an address of the form local-part@domain, such as hugh@example.com",
        )
    return local, domain


def normalize_address(address: str) -> str:
    """Return ``address`` with its local part as given and its domain as lowercase A-labels.

    An rfc822Name is ASCII, so a non-ASCII local part (which needs an SmtpUTF8Mailbox
    otherName, RFC 8398) is rejected.
    """
    local, domain = split_address(address)
    if not local.isascii():
        raise PKIError(
            f"unsupported mailbox address {address!r}: the local part is not ASCII",
            hint="an rfc822Name carries only ASCII local parts",
        )
    return f"{local}@{normalize_host(domain)}"


def host_matches(presented: str, reference: str) -> bool:
    """Return whether the certificate name ``presented`` covers host ``reference`` (RFC 6125).

    Names compare case-insensitively as A-labels. A wildcard is accepted only as the whole
    leftmost label and matches exactly one label, and never a name with fewer labels than
    the wildcard name (``*.example.org`` does not cover ``example.org``). A wildcard needs
    at least two labels after it, so ``*.org`` covers nothing.
    """
    try:
        reference_name = normalize_host(reference)
        presented_name = normalize_host(presented, allow_wildcard=True)
    except PKIError:
        return False
    presented_labels = presented_name.split(".")
    reference_labels = reference_name.split(".")
    if presented_labels[0] != "*":
        return presented_labels == reference_labels
    if len(presented_labels) < 3 or len(reference_labels) != len(presented_labels):
        return False
    return presented_labels[1:] == reference_labels[1:]


def address_matches(presented: str, reference: str) -> bool:
    """Return whether an rfc822Name equals mailbox ``reference``.

    The local part compares exactly (RFC 5280 section 7.5), the domain case-insensitively.
    """
    try:
        presented_local, presented_domain = split_address(presented)
        reference_local, reference_domain = split_address(reference)
        return presented_local == reference_local and normalize_host(
            presented_domain
        ) == normalize_host(reference_domain)
    except PKIError:
        return False
