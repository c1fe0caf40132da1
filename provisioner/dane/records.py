"""Parts common to TLSA and SMIMEA records: association data, the certificate a usage
refers to, and the derived record with its owner name and warnings."""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SMIMEA
import dns.rdtypes.ANY.TLSA
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from provisioner.dane.params import (
    DaneParameters,
    MatchingType,
    Selector,
    Usage,
    check_association_data,
    compute_matching_data,
)
from provisioner.errors import DaneError, PKIError
from provisioner.pki.names import normalize_host


class AnchorChoice(enum.StrEnum):
    """The choice of CA certificate that a usage 0 (PKIX-TA) or 2 (DANE-TA) record refers to."""

    ISSUER = "issuer"  # the CA that issued the end-entity certificate
    ROOT = "root"  # the self-signed trust anchor at the top of the chain


def selected_der(cert: x509.Certificate, selector: Selector | int) -> bytes:
    """Return the DER data a selector names: the whole certificate (0) or its SPKI (1)."""
    if Selector(selector) is Selector.CERT:
        return cert.public_bytes(serialization.Encoding.DER)
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def association_data(
    cert: x509.Certificate, selector: Selector | int, matching: MatchingType | int
) -> bytes:
    """Return the certificate association data of ``cert`` for ``selector`` and ``matching``."""
    return compute_matching_data(selected_der(cert, selector), matching)


def _make_rdata(
    rdtype: dns.rdatatype.RdataType, parameters: DaneParameters, data: bytes
) -> dns.rdata.Rdata:
    check_association_data(parameters.matching, data)
    kind = (
        dns.rdtypes.ANY.TLSA.TLSA if rdtype == dns.rdatatype.TLSA else dns.rdtypes.ANY.SMIMEA.SMIMEA
    )
    return kind(
        dns.rdataclass.IN,
        rdtype,
        int(parameters.usage),
        int(parameters.selector),
        int(parameters.matching),
        data,
    )


def tlsa_rdata_from_data(parameters: DaneParameters, data: bytes) -> dns.rdata.Rdata:
    """Build TLSA rdata from given association data, rejecting data of the wrong length."""
    return _make_rdata(dns.rdatatype.TLSA, parameters, data)


def smimea_rdata_from_data(parameters: DaneParameters, data: bytes) -> dns.rdata.Rdata:
    """Build SMIMEA rdata from given association data, rejecting data of the wrong length."""
    return _make_rdata(dns.rdatatype.SMIMEA, parameters, data)


def _is_self_signed(cert: x509.Certificate) -> bool:
    if cert.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def certificate_for_usage(
    usage: Usage | int,
    end_entity: x509.Certificate,
    chain: Sequence[x509.Certificate] = (),
    *,
    root: x509.Certificate | None = None,
    anchor: AnchorChoice | str = AnchorChoice.ISSUER,
) -> x509.Certificate:
    """Return the certificate a record of ``usage`` is computed from.

    Usages 1 (PKIX-EE) and 3 (DANE-EE) refer to ``end_entity``. Usages 0 (PKIX-TA) and
    2 (DANE-TA) refer to a CA certificate. With ``anchor`` "issuer" that is the CA in
    ``chain`` whose subject is the end entity's issuer. With "root" it is ``root`` or, when
    ``root`` is None, the self-signed certificate at the end of ``chain``. Raise DaneError
    when the needed CA certificate is not given.
    """
    usage = Usage(usage)
    if usage in (Usage.PKIX_EE, Usage.DANE_EE):
        return end_entity
    anchor = AnchorChoice(anchor)
    if anchor is AnchorChoice.ISSUER:
        for cert in chain:
            if cert.subject == end_entity.issuer:
                return cert
        if root is not None and root.subject == end_entity.issuer:
            return root
        raise DaneError(
            f"usage {int(usage)} ({usage.name.replace('_', '-')}) needs the issuing CA "
            f"certificate ({end_entity.issuer.rfc4514_string()}), which the chain does not contain",
            hint="give the chain file that the server sends with its certificate",
        )
    if root is not None:
        return root
    if chain and _is_self_signed(chain[-1]):
        return chain[-1]
    raise DaneError(
        f"usage {int(usage)} ({usage.name.replace('_', '-')}) with the root as trust anchor "
        "needs the root certificate, which the chain does not contain",
        hint="add the root CA certificate at the end of the chain, or use the issuing CA",
    )


@dataclass(frozen=True)
class DaneRecord:
    """One derived TLSA or SMIMEA record: owner name, rdata and any warnings about it."""

    owner: dns.name.Name
    rdata: dns.rdata.Rdata
    warnings: tuple[str, ...] = field(default=())

    def to_text(self, ttl: int | None = None) -> str:
        """Return the record as one zone-file line: ``owner [TTL] IN TYPE u s m hex``."""
        rdata = self.rdata
        type_name = dns.rdatatype.to_text(rdata.rdtype)
        fields = [self.owner.to_text()]
        if ttl is not None:
            fields.append(str(ttl))
        fields += [
            "IN",
            type_name,
            str(rdata.usage),
            str(rdata.selector),
            str(rdata.mtype),
            rdata.cert.hex(),
        ]
        return " ".join(fields)


@functools.lru_cache(maxsize=4096)
def owner_domain(domain: str) -> dns.name.Name:
    """Return ``domain`` as an absolute dnspython name in A-labels; raise DaneError if invalid."""
    try:
        return dns.name.from_text(normalize_host(domain) + ".")
    except PKIError as error:
        raise DaneError(error.message, hint=error.hint) from None
