"""TLSA records (RFC 6698, RFC 7671) for SMTP and other TLS services: pure derivation."""

from __future__ import annotations

import re
from collections.abc import Sequence

import dns.name
import dns.rdata
from cryptography import x509

from provisioner.dane.params import (
    TLSA_DEFAULT,
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
    tlsa_rdata_from_data,
)
from provisioner.errors import DaneError

SMTP_PORT = 25
_PROTOCOL = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


def tlsa_owner(host: str, port: int = SMTP_PORT, protocol: str = "tcp") -> dns.name.Name:
    """Return the TLSA owner name ``_port._protocol.host.``: ``_25._tcp.mx1.example.org.``."""
    if isinstance(port, bool) or not 0 < int(port) <= 65535:
        raise DaneError(f"invalid port {port!r}", hint="give a port number from 1 to 65535")
    protocol = protocol.strip().lower()
    if not _PROTOCOL.match(protocol):
        raise DaneError(
            f"invalid protocol {protocol!r}", hint="give a transport protocol such as tcp or udp"
        )
    return dns.name.Name((f"_{int(port)}".encode(), f"_{protocol}".encode())).concatenate(
        owner_domain(host)
    )


def tlsa_rdata(
    usage: Usage | int | str,
    selector: Selector | int | str,
    matching: MatchingType | int | str,
    cert_for_record: x509.Certificate,
) -> dns.rdata.Rdata:
    """Return TLSA rdata computed from ``cert_for_record``, the certificate the usage refers to.

    The caller picks that certificate (see ``certificate_for_usage``): the end entity for
    usages 1 and 3, a CA certificate for usages 0 and 2.
    """
    parameters = parse_parameters(usage, selector, matching)
    data = association_data(cert_for_record, parameters.selector, parameters.matching)
    return tlsa_rdata_from_data(parameters, data)


def usage_warnings(usage: Usage | int, port: int) -> list[str]:
    """Return warnings about a usage that clients of ``port`` do not support."""
    usage = Usage(usage)
    if port == SMTP_PORT and usage in (Usage.PKIX_TA, Usage.PKIX_EE):
        return [
            f"usage {int(usage)} ({usage.name.replace('_', '-')}) on port 25: SMTP clients "
            "treat PKIX-TA and PKIX-EE records as unusable (RFC 7672); "
            "use 3 (DANE-EE) or 2 (DANE-TA)"
        ]
    return []


def derive_tlsa(
    end_entity: x509.Certificate,
    host: str,
    *,
    port: int = SMTP_PORT,
    protocol: str = "tcp",
    parameters: DaneParameters = TLSA_DEFAULT,
    chain: Sequence[x509.Certificate] = (),
    root: x509.Certificate | None = None,
    anchor: AnchorChoice | str = AnchorChoice.ISSUER,
) -> DaneRecord:
    """Derive the TLSA record for a server presenting ``end_entity`` with ``chain``.

    ``chain`` is what the server sends after its certificate (issuing CA first). For usage
    2 (DANE-TA), ``anchor`` picks the issuing CA (default) or the root. A root that the
    server does not send gives a warning, because DANE-TA clients find the trust anchor
    only in the chain the server presents (RFC 7671).
    """
    owner = tlsa_owner(host, port, protocol)
    cert = certificate_for_usage(parameters.usage, end_entity, chain, root=root, anchor=anchor)
    rdata = tlsa_rdata(parameters.usage, parameters.selector, parameters.matching, cert)
    warnings = usage_warnings(parameters.usage, port)
    if parameters.usage is Usage.DANE_TA and cert not in chain:
        warnings.append(
            f"usage 2 (DANE-TA) refers to {cert.subject.rfc4514_string()}, which is not in "
            "the chain the server sends; add it to the server's chain file or clients "
            "will not match the record"
        )
    return DaneRecord(owner=owner, rdata=rdata, warnings=tuple(warnings))
