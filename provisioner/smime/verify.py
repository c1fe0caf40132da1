"""Verify an S/MIME signature and bind the signer's certificate to the DNS with SMIMEA.

A message verifies when (1) the CMS signature over the signed part checks out with the
signer's certificate, (2) that certificate names the From address as an rfc822Name (or, when it
has none, as its subject e-mail address), (3) the SMIMEA RRset at the RFC 8162 owner name of
the From address is DNSSEC-secure, and (4) one of its records matches the certificate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import dns.name
import dns.rdata
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

from provisioner.dane.matching import record_matches
from provisioner.dane.smimea import smimea_owner
from provisioner.smime.cms import SignerInfo, SmimeError, parse_signed_data, verify_signer
from provisioner.smime.message import parse_signed_message

USAGE_NAMES = {0: "PKIX-TA", 1: "PKIX-EE", 2: "DANE-TA", 3: "DANE-EE"}


@dataclass
class SmimeaAnswer:
    """The outcome of one validated SMIMEA lookup."""

    owner: dns.name.Name
    secure: bool
    records: list[dns.rdata.Rdata]
    reason: str  # why the answer is secure, insecure, bogus or missing


SmimeaLookup = Callable[[str], SmimeaAnswer]


@dataclass
class Verdict:
    ok: bool
    sender: str
    reason: str
    signer: x509.Certificate | None = None
    owner: str | None = None
    matched: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "sender": self.sender,
            "reason": self.reason,
            "signer_subject": self.signer.subject.rfc4514_string() if self.signer else None,
            "smimea_owner": self.owner,
            "matched_records": self.matched,
            "steps": self.steps,
        }


def certificate_addresses(certificate: x509.Certificate) -> list[str]:
    """Return the mail addresses of ``certificate``: its rfc822Names, else its emailAddress."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        addresses = [str(value) for value in names.value.get_values_for_type(x509.RFC822Name)]
    except x509.ExtensionNotFound:
        addresses = []
    if not addresses:
        addresses = [
            str(attribute.value)
            for attribute in certificate.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)
        ]
    return addresses


def _same_address(left: str, right: str) -> bool:
    """Compare mail addresses: the local part exactly, the domain without case."""
    local_a, _, domain_a = left.rpartition("@")
    local_b, _, domain_b = right.rpartition("@")
    return local_a == local_b and domain_a.lower().rstrip(".") == domain_b.lower().rstrip(".")


def _chain_links(chain: list[x509.Certificate], top: x509.Certificate) -> bool:
    """Return whether each certificate of ``chain`` up to ``top`` is signed by the next one."""
    for lower, upper in zip(chain, chain[1:], strict=False):
        try:
            lower.verify_directly_issued_by(upper)
        except (InvalidSignature, ValueError, TypeError):
            return False
        if upper == top:
            return True
    return chain[0] == top


def _certificate_from_dns(answer: SmimeaAnswer, signer: SignerInfo) -> x509.Certificate | None:
    for rdata in answer.records:
        if rdata.selector != 0 or rdata.mtype != 0:
            continue
        try:
            certificate = x509.load_der_x509_certificate(rdata.cert)
        except ValueError:
            continue
        if signer.identifies(certificate):
            return certificate
    return None


def verify_message(raw: bytes, lookup: SmimeaLookup, now: dt.datetime) -> Verdict:
    """Verify the signed message ``raw`` and return a Verdict naming what failed or matched."""
    try:
        message = parse_signed_message(raw)
    except SmimeError as error:
        return Verdict(False, "", error.message)
    verdict = Verdict(False, message.sender, "")

    try:
        signed = parse_signed_data(message.signature)
    except (SmimeError, ValueError, IndexError) as error:
        verdict.reason = f"the CMS signature cannot be read: {error}"
        return verdict
    signer_info = signed.signers[0]
    signer = next((c for c in signed.certificates if signer_info.identifies(c)), None)
    answer: SmimeaAnswer | None = None
    if signer is None:
        # A signature may leave the certificate out: take it from a full-certificate
        # SMIMEA record (selector 0, matching type 0) of the From address instead.
        answer = lookup(message.sender)
        signer = _certificate_from_dns(answer, signer_info) if answer.secure else None
        if signer is None:
            verdict.reason = (
                "the signer's certificate is neither included in the signature nor "
                f"published as a secure SMIMEA x 0 0 record of {message.sender}"
            )
            return verdict
        verdict.steps.append(f"signer's certificate taken from SMIMEA at {answer.owner}")
    verdict.signer = signer
    try:
        verify_signer(signer_info, signer, message.content)
    except SmimeError as error:
        verdict.reason = error.message
        return verdict
    verdict.steps.append(f"signature valid, signed by {signer.subject.rfc4514_string()}")

    addresses = certificate_addresses(signer)
    if not any(_same_address(message.sender, address) for address in addresses):
        verdict.reason = (
            f"the signer's certificate is for {', '.join(addresses) or 'no mail address'}, "
            f"not for the From address {message.sender}"
        )
        return verdict
    if not signer.not_valid_before_utc <= now <= signer.not_valid_after_utc:
        verdict.reason = (
            f"the signer's certificate is not valid at {now:%Y-%m-%d %H:%M} UTC "
            f"(valid {signer.not_valid_before_utc:%Y-%m-%d} to "
            f"{signer.not_valid_after_utc:%Y-%m-%d})"
        )
        return verdict
    verdict.steps.append(f"certificate names the From address {message.sender}")

    if answer is None:
        answer = lookup(message.sender)
    verdict.owner = answer.owner.to_text()
    if not answer.secure:
        verdict.reason = (
            f"the SMIMEA RRset of {message.sender} at {verdict.owner} is not DNSSEC-secure: "
            f"{answer.reason}"
        )
        return verdict
    if not answer.records:
        verdict.reason = (
            f"the signing certificate is not in the DNS: {message.sender} has no SMIMEA "
            f"record at {verdict.owner} ({answer.reason})"
        )
        return verdict
    verdict.steps.append(
        f"SMIMEA RRset at {verdict.owner} is secure ({len(answer.records)} records)"
    )

    chain = [signer, *[c for c in signed.certificates if c != signer]]
    for rdata in answer.records:
        # NOTE: usages 0 and 1 also require PKIX path validation to a trust store, which is
        # not done here; like 2 and 3 they are accepted when the record matches.
        if not record_matches(rdata, signer, chain[1:]):
            continue
        if rdata.usage in (0, 2):
            anchor = next(c for c in chain[1:] if record_matches(rdata, signer, [c]))
            if not _chain_links(chain, anchor):
                continue
        verdict.matched.append(
            f"{rdata.usage} {rdata.selector} {rdata.mtype} ({USAGE_NAMES.get(rdata.usage, '?')})"
        )
    if not verdict.matched:
        verdict.reason = (
            f"the signing certificate is not in the DNS: none of the {len(answer.records)} "
            f"SMIMEA records of {message.sender} at {verdict.owner} matches it"
        )
        return verdict
    verdict.ok = True
    verdict.reason = (
        f"signature by {message.sender} verified; the certificate matches SMIMEA "
        f"{', '.join(verdict.matched)} at {verdict.owner}"
    )
    return verdict


def owner_of(address: str) -> dns.name.Name:
    return smimea_owner(address)
