"""Build and take apart S/MIME multipart/signed messages (RFC 8551, detached signatures).

The signed part is the message's MIME body entity (its Content-* header fields and body);
the other header fields (From, To, Subject, ...) stay outside the signature, as mail user
agents do. Line ends are canonicalised to CRLF before signing and verifying, because mail
transport may store the message with LF line ends.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from provisioner.smime.cms import SmimeError

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_CONTENT_FIELD = re.compile(rb"^(content-|mime-version:)", re.IGNORECASE)


def canonical(data: bytes) -> bytes:
    """Return ``data`` with every line ending as CRLF."""
    return re.sub(rb"\r?\n", b"\r\n", data)


def _split(message: bytes) -> tuple[list[bytes], bytes]:
    """Return the header fields (unfolded, one entry each) and the body of ``message``."""
    match = _HEADER_END.search(message)
    if match is None:
        head, body = message, b""
    else:
        head, body = message[: match.start()], message[match.end() :]
    fields: list[bytes] = []
    for line in re.split(rb"\r?\n", head):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        elif line:
            fields.append(line)
    return fields, body


def sign_message(
    message: bytes,
    key: object,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate] = (),
) -> bytes:
    """Return ``message`` signed as multipart/signed with a detached CMS signature (SHA-256).

    The signer's certificate and ``chain`` travel in the signature, so that a receiver can
    build the path to its CA without other input.
    """
    fields, body = _split(message)
    outer = [f for f in fields if not _CONTENT_FIELD.match(f)]
    content_fields = [
        f for f in fields if _CONTENT_FIELD.match(f) and not f.lower().startswith(b"mime-version:")
    ]
    if not any(f.lower().startswith(b"content-type:") for f in content_fields):
        charset = b"us-ascii" if body.isascii() else b"utf-8"
        content_fields.insert(0, b"Content-Type: text/plain; charset=" + charset)
        if not body.isascii():
            content_fields.append(b"Content-Transfer-Encoding: 8bit")
    entity = canonical(b"\r\n".join(content_fields) + b"\r\n\r\n" + body)

    builder = pkcs7.PKCS7SignatureBuilder().set_data(entity)
    builder = builder.add_signer(certificate, key, hashes.SHA256())  # type: ignore[arg-type]
    for extra in chain:
        builder = builder.add_certificate(extra)
    signed = builder.sign(serialization.Encoding.SMIME, [pkcs7.PKCS7Options.DetachedSignature])
    text = canonical(b"\r\n".join(outer) + b"\r\n" + signed)
    # Files handed to sendmail(1) use the local line end.
    return text.replace(b"\r\n", b"\n")


@dataclass
class SignedMessage:
    """The parts of a multipart/signed message that verification needs."""

    sender: str  # the address of the From header field
    content: bytes  # the signed MIME entity, canonical (CRLF)
    signature: bytes  # the DER of the CMS ContentInfo
    subject: str


def parse_signed_message(raw: bytes) -> SignedMessage:
    """Split a multipart/signed message into sender, signed content and signature.

    Raises SmimeError when the message is not a detached S/MIME signature.
    """
    parsed = email.message_from_bytes(raw, policy=email.policy.compat32)
    _, sender = email.utils.parseaddr(str(parsed.get("From", "")))
    if not sender:
        raise SmimeError("the message has no From address", hint="S/MIME binds the From address")
    if parsed.get_content_type() != "multipart/signed":
        raise SmimeError(
            f"the message is {parsed.get_content_type()}, not multipart/signed",
            hint="sign it with 'provisioner smime sign'; opaque application/pkcs7-mime "
            "signatures are not supported",
        )
    boundary = parsed.get_boundary()
    if not boundary:
        raise SmimeError("the multipart/signed message has no boundary parameter")

    _, body = _split(raw)
    body = canonical(body)
    delimiter = b"\r\n--" + boundary.encode()
    # The CRLF before a delimiter belongs to the delimiter (RFC 2046 section 5.1.1).
    pieces = (b"\r\n" + body).split(delimiter)
    if len(pieces) < 4:
        raise SmimeError("the multipart/signed message does not have two body parts")
    content = pieces[1].split(b"\r\n", 1)[1] if b"\r\n" in pieces[1] else b""

    parts = parsed.get_payload()
    assert isinstance(parts, list)
    signature_part = parts[1]
    if signature_part.get_content_type() not in (
        "application/pkcs7-signature",
        "application/x-pkcs7-signature",
    ):
        raise SmimeError(
            f"the second part is {signature_part.get_content_type()}, "
            "not application/pkcs7-signature"
        )
    signature = signature_part.get_payload(decode=True)
    if not isinstance(signature, bytes) or not signature:
        raise SmimeError("the signature part is empty")
    return SignedMessage(
        sender=sender, content=content, signature=signature, subject=str(parsed.get("Subject", ""))
    )
