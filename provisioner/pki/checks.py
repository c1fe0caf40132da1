"""Checks of a certificate before it is used: key match, names, validity period, chain.

Each check raises PKIError whose message starts with ``source``, the file (or other
origin) the certificate came from, so the user knows which file to fix.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from provisioner.clock import Clock
from provisioner.errors import PKIError
from provisioner.pki.keys import PrivateKey, PublicKey, public_key_matches
from provisioner.pki.names import address_matches, host_matches


def describe(cert: x509.Certificate) -> str:
    """Return a short description of ``cert`` for messages: subject and serial number."""
    return f"{cert.subject.rfc4514_string() or '(empty subject)'} (serial {cert.serial_number:x})"


def check_key_matches(cert: x509.Certificate, key: PrivateKey | PublicKey, source: str) -> None:
    """Raise PKIError unless ``key`` belongs to ``cert``."""
    if not public_key_matches(cert, key):
        raise PKIError(
            f"{source}: the private key does not match the certificate {describe(cert)}",
            hint="give the key file that was used to request this certificate",
        )


def _subject_alternative_names(cert: x509.Certificate) -> x509.SubjectAlternativeName | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def dns_names(cert: x509.Certificate) -> list[str]:
    """Return the dNSName values of the certificate's subjectAltName."""
    names = _subject_alternative_names(cert)
    return [] if names is None else names.get_values_for_type(x509.DNSName)


def email_addresses(cert: x509.Certificate) -> list[str]:
    """Return the rfc822Name values of the certificate's subjectAltName."""
    names = _subject_alternative_names(cert)
    return [] if names is None else names.get_values_for_type(x509.RFC822Name)


def check_covers_host(cert: x509.Certificate, host: str, source: str) -> None:
    """Raise PKIError unless a dNSName of ``cert`` covers ``host`` (RFC 6125 matching).

    The subject common name is not consulted: RFC 6125 allows it only when there is no
    subjectAltName, and current TLS clients no longer read it.
    """
    names = dns_names(cert)
    if any(host_matches(name, host) for name in names):
        return
    listed = ", ".join(names) if names else "none"
    raise PKIError(
        f"{source}: the certificate does not cover host {host} (its DNS names: {listed})",
        hint="use a certificate whose subjectAltName lists this host or a matching wildcard",
    )


def check_covers_address(cert: x509.Certificate, address: str, source: str) -> None:
    """Raise PKIError unless an rfc822Name of ``cert`` equals mailbox ``address``."""
    addresses = email_addresses(cert)
    if any(address_matches(presented, address) for presented in addresses):
        return
    listed = ", ".join(addresses) if addresses else "none"
    raise PKIError(
        f"{source}: the certificate does not cover address {address} "
        f"(its email addresses: {listed})",
        hint="use an S/MIME certificate whose subjectAltName lists this address",
    )


def check_validity(cert: x509.Certificate, clock: Clock, source: str) -> None:
    """Raise PKIError if ``cert`` is expired or not yet valid at ``clock.now()``."""
    now = clock.now()
    not_before = cert.not_valid_before_utc
    not_after = cert.not_valid_after_utc
    if now < not_before:
        raise PKIError(
            f"{source}: the certificate {describe(cert)} is not yet valid: "
            f"valid from {_timestamp(not_before)}, now is {_timestamp(now)}",
            hint="check the system clock, or wait until the certificate becomes valid",
        )
    if now > not_after:
        raise PKIError(
            f"{source}: the certificate {describe(cert)} expired at {_timestamp(not_after)}",
            hint="renew the certificate",
        )


def _timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_self_signed(cert: x509.Certificate) -> bool:
    """Return whether ``cert`` names itself as issuer and its signature verifies with its key."""
    return cert.subject == cert.issuer and _signed_by(cert, cert)


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def order_chain(
    cert: x509.Certificate, chain: Sequence[x509.Certificate], source: str
) -> list[x509.Certificate]:
    """Return ``chain`` ordered from the issuer of ``cert`` upwards, checking every link.

    Each certificate must be issued by the next: its issuer name equals the next subject
    and its signature verifies with the next public key. Raise PKIError when a certificate
    of ``chain`` has no place in that path, or when the path stops at a certificate whose
    issuer is missing while unused certificates remain. A chain that ends below the root is
    accepted, because servers usually do not send the root.
    """
    remaining = list(chain)
    ordered: list[x509.Certificate] = []
    current = cert
    while remaining and not is_self_signed(current):
        issuer = next(
            (candidate for candidate in remaining if candidate.subject == current.issuer), None
        )
        if issuer is None:
            break
        if not _signed_by(current, issuer):
            raise PKIError(
                f"{source}: the signature of {describe(current)} does not verify with the "
                f"key of {describe(issuer)}",
                hint="the chain contains a different CA certificate with the same name; "
                "give the chain of the CA that issued this certificate",
            )
        ordered.append(issuer)
        remaining.remove(issuer)
        current = issuer
    if remaining:
        unused = "; ".join(describe(extra) for extra in remaining)
        raise PKIError(
            f"{source}: the chain does not link: no certificate in it is the issuer of "
            f"{describe(current)} (issuer {current.issuer.rfc4514_string()}); "
            f"not linked: {unused}",
            hint="give the chain of the CA that issued the certificate, issuing CA first",
        )
    return ordered


def check_chain(
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate],
    clock: Clock,
    source: str,
) -> list[x509.Certificate]:
    """Check that ``chain`` links ``cert`` up towards a root and that each CA is valid now.

    Return the chain in path order (issuing CA first). See ``order_chain`` for the linking rules.
    """
    ordered = order_chain(cert, chain, source)
    for ca_cert in ordered:
        check_validity(ca_cert, clock, source)
    return ordered
