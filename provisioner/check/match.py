"""Matching of TLSA and SMIMEA records against certificates, with RFC 7672 rules for SMTP.

Pure functions: they take certificates and RRsets and return verdicts, without I/O.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Sequence

import dns.name
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

PKIX_TA, PKIX_EE, DANE_TA, DANE_EE = 0, 1, 2, 3
USAGE_NAMES = {0: "PKIX-TA", 1: "PKIX-EE", 2: "DANE-TA", 3: "DANE-EE"}
SELECTOR_NAMES = {0: "Cert", 1: "SPKI"}
MATCHING_NAMES = {0: "Full", 1: "SHA2-256", 2: "SHA2-512"}


def describe_record(usage: int, selector: int, mtype: int) -> str:
    return (
        f"{usage} {selector} {mtype} ({USAGE_NAMES.get(usage, '?')} "
        f"{SELECTOR_NAMES.get(selector, '?')} {MATCHING_NAMES.get(mtype, '?')})"
    )


def association_data(certificate: x509.Certificate, selector: int, mtype: int) -> bytes | None:
    """Return the certificate association data for a selector and matching type, or None."""
    if selector == 0:
        data = certificate.public_bytes(serialization.Encoding.DER)
    elif selector == 1:
        data = certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    else:
        return None
    if mtype == 0:
        return data
    if mtype == 1:
        return hashlib.sha256(data).digest()
    if mtype == 2:
        return hashlib.sha512(data).digest()
    return None


def record_matches(rdata: object, certificate: x509.Certificate) -> bool:
    """Return whether one TLSA or SMIMEA rdata matches ``certificate``."""
    expected = association_data(
        certificate,
        rdata.selector,  # type: ignore[attr-defined]
        rdata.mtype,  # type: ignore[attr-defined]
    )
    return expected is not None and expected == rdata.cert  # type: ignore[attr-defined]


@dataclasses.dataclass
class DaneVerdict:
    """Whether a presented chain is authenticated by a TLSA RRset, and why."""

    authenticated: bool
    reason: str
    matched: str | None = None  # the TLSA record (usage selector matching) that matched
    unsupported: list[str] = dataclasses.field(default_factory=list)
    unusable: bool = False  # no record of a usable usage, selector and matching type


def certificate_names(certificate: x509.Certificate) -> list[str]:
    """Return the DNS-ID names of ``certificate``, or its common names when it has no SAN."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return [
            str(attribute.value)
            for attribute in certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        ]
    return list(san.value.get_values_for_type(x509.DNSName))


def name_matches(pattern: str, reference: str) -> bool:
    """Match a certificate DNS name (a wildcard only as the whole left-most label) to a name."""
    pattern = pattern.rstrip(".").lower()
    reference = reference.rstrip(".").lower()
    if pattern == reference:
        return True
    if pattern.startswith("*."):
        head, _, rest = reference.partition(".")
        return bool(head) and rest == pattern[2:]
    return False


def _chain_from(chain: Sequence[x509.Certificate], anchor_index: int) -> str | None:
    """Return why the chain from the leaf up to ``anchor_index`` is broken, or None."""
    for index in range(anchor_index):
        child, issuer = chain[index], chain[index + 1]
        if child.issuer != issuer.subject:
            return (
                f"certificate {index} (issuer {child.issuer.rfc4514_string()}) is not issued by "
                f"certificate {index + 1} ({issuer.subject.rfc4514_string()})"
            )
        try:
            child.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature) as error:
            return (
                f"the signature on certificate {index} does not verify with certificate "
                f"{index + 1}: {error}"
            )
    return None


def _validity_problem(certificate: x509.Certificate, now: dt.datetime, label: str) -> str | None:
    not_after = certificate.not_valid_after_utc
    not_before = certificate.not_valid_before_utc
    if now > not_after:
        return f"the {label} expired at {not_after:%Y-%m-%d %H:%M:%S} UTC"
    if now < not_before:
        return f"the {label} is not valid before {not_before:%Y-%m-%d %H:%M:%S} UTC"
    return None


def match_tlsa_smtp(
    tlsa: Sequence[object],
    chain: Sequence[x509.Certificate],
    reference_names: Sequence[str],
    now: dt.datetime,
) -> DaneVerdict:
    """Authenticate an SMTP server's chain (leaf first) with TLSA records, per RFC 7672.

    DANE-EE(3) matches the leaf with no name or validity checks (section 3.1.1). DANE-TA(2)
    needs the matched trust anchor in the presented chain, a signature chain from it to the
    leaf, the leaf valid at ``now``, and a leaf name among ``reference_names`` (sections 3.1.2
    and 3.2.2). PKIX-TA(0) and PKIX-EE(1) are unusable for SMTP (section 3.1.3).
    """
    if not chain:
        return DaneVerdict(False, "the server presented no certificate")
    leaf = chain[0]
    unsupported: list[str] = []
    usable = 0
    problems: list[str] = []
    for rdata in tlsa:
        usage = rdata.usage  # type: ignore[attr-defined]
        selector = rdata.selector  # type: ignore[attr-defined]
        mtype = rdata.mtype  # type: ignore[attr-defined]
        text = describe_record(usage, selector, mtype)
        if usage in (PKIX_TA, PKIX_EE):
            unsupported.append(text)
            continue
        if usage not in (DANE_TA, DANE_EE) or selector not in (0, 1) or mtype not in (0, 1, 2):
            unsupported.append(text)
            continue
        usable += 1
        if usage == DANE_EE:
            if record_matches(rdata, leaf):
                return DaneVerdict(
                    True, f"the leaf certificate matches TLSA {text}", text, unsupported
                )
            problems.append(f"TLSA {text} does not match the leaf certificate")
            continue
        anchors = [index for index, cert in enumerate(chain) if record_matches(rdata, cert)]
        if not anchors:
            problems.append(f"TLSA {text} matches no certificate in the presented chain")
            continue
        anchor_index = anchors[0]
        chain_problem = _chain_from(chain, anchor_index)
        if chain_problem:
            problems.append(f"TLSA {text} matches certificate {anchor_index}, but {chain_problem}")
            continue
        validity = _validity_problem(leaf, now, "leaf certificate")
        if validity:
            problems.append(f"TLSA {text} matches certificate {anchor_index}, but {validity}")
            continue
        names = certificate_names(leaf)
        if not any(name_matches(name, ref) for name in names for ref in reference_names):
            problems.append(
                f"TLSA {text} matches certificate {anchor_index}, but the leaf names "
                f"({', '.join(names) or 'none'}) do not include "
                f"{' or '.join(str(r).rstrip('.') for r in reference_names)}"
            )
            continue
        return DaneVerdict(
            True,
            f"TLSA {text} matches certificate {anchor_index} of the chain, which issues the leaf",
            text,
            unsupported,
        )
    if usable == 0:
        return DaneVerdict(
            False,
            "no TLSA record has a usage, selector and matching type usable for SMTP "
            f"({', '.join(unsupported)})",
            unsupported=unsupported,
            unusable=True,
        )
    return DaneVerdict(False, "; ".join(problems), unsupported=unsupported)


def smimea_owner(address: str) -> dns.name.Name:
    """Return the SMIMEA owner name of a mail address (RFC 8162, section 3).

    The local part is hashed as given, without case folding.
    """
    local, separator, domain = address.rpartition("@")
    if not separator or not local or not domain:
        raise ValueError(f"{address!r} is not a mail address of the form local@domain")
    digest = hashlib.sha256(local.encode()).digest()[:28].hex()
    return dns.name.from_text(f"{digest}._smimecert.{domain}")


def tlsa_owner(host: dns.name.Name | str, port: int, protocol: str = "tcp") -> dns.name.Name:
    """Return ``_PORT._PROTOCOL.HOST`` (RFC 6698, section 3)."""
    if isinstance(host, str):
        host = dns.name.from_text(host)
    return dns.name.from_text(f"_{port}._{protocol}", host)
