"""SMIMEA records (RFC 8162): owner names of mailbox addresses and record derivation."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import dns.name
import dns.rdata
from cryptography import x509

from provisioner.dane.params import (
    SMIMEA_DEFAULT,
    DaneParameters,
    MatchingType,
    Selector,
    Usage,
    parse_parameters,
)
from provisioner.dane.records import (
    AnchorChoice,
    DaneRecord,
    association_data,
    certificate_for_usage,
    owner_domain,
    smimea_rdata_from_data,
)
from provisioner.errors import DaneError

SMIMEA_LABEL = b"_smimecert"
# RFC 8162 section 3: the SHA2-256 hash of the local part, truncated to 28 octets.
LOCAL_PART_HASH_OCTETS = 28


def smimea_owner(address: str) -> dns.name.Name:
    """Return the SMIMEA owner name of a mailbox address (RFC 8162 section 3).

    The local part is hashed exactly as given (UTF-8, no case folding or other
    canonicalisation); the domain is converted to A-labels. For example,
    hugh@example.com gives
    ``c93f1e400f26708f98cb19d936620da35eec8f72e57f9eec01c1afd6._smimecert.example.com.``
    """
    local, separator, domain = address.rpartition("@")
    if not separator or not local or not domain:
        raise DaneError(
            f"invalid mailbox address {address!r}",
            hint="give an address of the form local-part@domain, such as hugh@example.com",
        )
    digest = hashlib.sha256(local.encode("utf-8")).digest()[:LOCAL_PART_HASH_OCTETS]
    return dns.name.Name((digest.hex().encode("ascii"), SMIMEA_LABEL)).concatenate(
        owner_domain(domain)
    )


def smimea_rdata(
    usage: Usage | int | str,
    selector: Selector | int | str,
    matching: MatchingType | int | str,
    cert_for_record: x509.Certificate,
) -> dns.rdata.Rdata:
    """Return SMIMEA rdata computed from ``cert_for_record``, the certificate of the usage."""
    parameters = parse_parameters(usage, selector, matching)
    data = association_data(cert_for_record, parameters.selector, parameters.matching)
    return smimea_rdata_from_data(parameters, data)


def derive_smimea(
    end_entity: x509.Certificate,
    address: str,
    *,
    parameters: DaneParameters = SMIMEA_DEFAULT,
    chain: Sequence[x509.Certificate] = (),
    root: x509.Certificate | None = None,
    anchor: AnchorChoice | str = AnchorChoice.ISSUER,
) -> DaneRecord:
    """Derive the SMIMEA record for the S/MIME certificate ``end_entity`` of ``address``.

    The default 3 0 0 publishes the whole certificate, so a sender's mail client can fetch
    it from the DNS and encrypt to it. A hashed record only lets a client check a
    certificate it already has.
    """
    owner = smimea_owner(address)
    cert = certificate_for_usage(parameters.usage, end_entity, chain, root=root, anchor=anchor)
    rdata = smimea_rdata(parameters.usage, parameters.selector, parameters.matching, cert)
    warnings: list[str] = []
    if parameters.usage in (Usage.PKIX_TA, Usage.DANE_TA) or parameters.matching != 0:
        warnings.append(
            f"SMIMEA {parameters}: mail clients cannot fetch the user's certificate from "
            "this record, only check one they already have; use 3 0 0 to publish it"
        )
    return DaneRecord(owner=owner, rdata=rdata, warnings=tuple(warnings))
