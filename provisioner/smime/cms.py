"""Read a CMS SignedData structure (RFC 5652) and verify its signature over detached content.

cryptography can create PKCS #7 signatures but not verify them, so this module reads the few
fields that verification needs with a small DER/BER reader and checks the signature with
cryptography's public-key primitives.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from provisioner.errors import ProvisionerError


class SmimeError(ProvisionerError):
    """An S/MIME message or signature is malformed or does not verify."""


OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
OID_DATA = "1.2.840.113549.1.7.1"
OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"

DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "1.3.14.3.2.26": hashes.SHA1,
    "2.16.840.1.101.3.4.2.4": hashes.SHA224,
    "2.16.840.1.101.3.4.2.1": hashes.SHA256,
    "2.16.840.1.101.3.4.2.2": hashes.SHA384,
    "2.16.840.1.101.3.4.2.3": hashes.SHA512,
}
RSA_PKCS1 = {
    "1.2.840.113549.1.1.1",  # rsaEncryption: the hash is the signer's digest algorithm
    "1.2.840.113549.1.1.5",
    "1.2.840.113549.1.1.11",
    "1.2.840.113549.1.1.12",
    "1.2.840.113549.1.1.13",
}
ECDSA = {"1.2.840.10045.2.1", "1.2.840.10045.4.3.2", "1.2.840.10045.4.3.3", "1.2.840.10045.4.3.4"}
ED25519 = "1.3.101.112"

TAG_INTEGER = 0x02
TAG_OCTET_STRING = 0x04
TAG_OID = 0x06
TAG_SEQUENCE = 0x30
TAG_SET = 0x31
TAG_CONTEXT_0 = 0xA0
TAG_CONTEXT_0_PRIMITIVE = 0x80


@dataclass
class Tlv:
    """One BER element: its tag octet, content octets and complete encoding."""

    tag: int
    content: bytes
    encoding: bytes
    children: list[Tlv] = field(default_factory=list)

    @property
    def constructed(self) -> bool:
        return bool(self.tag & 0x20)


def _parse(data: bytes, offset: int) -> tuple[Tlv, int]:
    start = offset
    if offset + 2 > len(data):
        raise SmimeError("the CMS structure is truncated")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise SmimeError("the CMS structure uses a multi-octet tag, which is not supported")
    length_octet = data[offset + 1]
    offset += 2
    if length_octet == 0x80:
        # Indefinite length (BER, as OpenSSL writes streamed signatures): children up to 00 00.
        if not tag & 0x20:
            raise SmimeError("a primitive BER element has an indefinite length")
        children = []
        while data[offset : offset + 2] != b"\x00\x00":
            child, offset = _parse(data, offset)
            children.append(child)
        offset += 2
        content = b"".join(child.encoding for child in children)
        return Tlv(tag, content, data[start:offset], children), offset
    if length_octet & 0x80:
        count = length_octet & 0x7F
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    else:
        length = length_octet
    end = offset + length
    if end > len(data):
        raise SmimeError("the CMS structure is truncated")
    tlv = Tlv(tag, data[offset:end], data[start:end])
    if tlv.constructed:
        position = offset
        while position < end:
            child, position = _parse(data, position)
            tlv.children.append(child)
    return tlv, end


def parse_der(data: bytes) -> Tlv:
    tlv, _ = _parse(data, 0)
    return tlv


def decode_oid(content: bytes) -> str:
    first = content[0]
    parts = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    value = 0
    for octet in content[1:]:
        value = (value << 7) | (octet & 0x7F)
        if not octet & 0x80:
            parts.append(value)
            value = 0
    return ".".join(str(part) for part in parts)


def _octets(tlv: Tlv) -> bytes:
    """Return the value of an OCTET STRING, joining the segments of a constructed one."""
    if tlv.constructed:
        return b"".join(_octets(child) for child in tlv.children)
    return tlv.content


def _expect(tlv: Tlv, tag: int, what: str) -> Tlv:
    if tlv.tag != tag:
        raise SmimeError(f"invalid CMS structure: expected {what}, found tag 0x{tlv.tag:02x}")
    return tlv


@dataclass
class SignerInfo:
    """The fields of one CMS SignerInfo that verification uses."""

    issuer: bytes | None  # DER of the issuer Name when the signer is named by issuer and serial
    serial_number: int | None
    subject_key_identifier: bytes | None
    digest_oid: str
    signed_attributes: Tlv | None
    signature_oid: str
    signature: bytes

    def identifies(self, certificate: x509.Certificate) -> bool:
        if self.subject_key_identifier is not None:
            try:
                extension = certificate.extensions.get_extension_for_class(
                    x509.SubjectKeyIdentifier
                )
            except x509.ExtensionNotFound:
                return False
            return extension.value.digest == self.subject_key_identifier
        return (
            certificate.serial_number == self.serial_number
            and certificate.issuer.public_bytes() == self.issuer
        )

    def attribute(self, oid: str) -> Tlv | None:
        """Return the first value of the signed attribute ``oid``."""
        if self.signed_attributes is None:
            return None
        for attribute in self.signed_attributes.children:
            if decode_oid(attribute.children[0].content) == oid:
                values = attribute.children[1].children
                return values[0] if values else None
        return None


@dataclass
class SignedData:
    certificates: list[x509.Certificate]
    signers: list[SignerInfo]


def _signer_info(tlv: Tlv) -> SignerInfo:
    fields = _expect(tlv, TAG_SEQUENCE, "SignerInfo").children
    sid = fields[1]
    issuer = serial = key_id = None
    if sid.tag == TAG_SEQUENCE:
        issuer = sid.children[0].encoding
        serial = int.from_bytes(
            _expect(sid.children[1], TAG_INTEGER, "serial").content, "big", signed=True
        )
    elif sid.tag == TAG_CONTEXT_0_PRIMITIVE:
        key_id = sid.content
    else:
        raise SmimeError("invalid CMS structure: unknown signer identifier")
    digest_oid = decode_oid(fields[2].children[0].content)
    position = 3
    signed_attributes = None
    if fields[position].tag == TAG_CONTEXT_0:
        signed_attributes = fields[position]
        position += 1
    signature_oid = decode_oid(fields[position].children[0].content)
    signature = _octets(fields[position + 1])
    return SignerInfo(
        issuer, serial, key_id, digest_oid, signed_attributes, signature_oid, signature
    )


def parse_signed_data(der: bytes) -> SignedData:
    """Read a ContentInfo holding SignedData; raise SmimeError when it is something else."""
    content_info = _expect(parse_der(der), TAG_SEQUENCE, "ContentInfo")
    if decode_oid(content_info.children[0].content) != OID_SIGNED_DATA:
        raise SmimeError("the signature part is not CMS SignedData")
    signed = content_info.children[1].children[0].children
    certificates: list[x509.Certificate] = []
    signers: list[SignerInfo] = []
    for element in signed[3:]:
        if element.tag == TAG_CONTEXT_0:
            for child in element.children:
                if child.tag == TAG_SEQUENCE:
                    certificates.append(x509.load_der_x509_certificate(child.encoding))
        elif element.tag == TAG_SET:
            signers = [_signer_info(child) for child in element.children]
    if not signers:
        raise SmimeError("the CMS signature has no SignerInfo")
    return SignedData(certificates, signers)


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(data)
    return digest.finalize()


def verify_signer(signer: SignerInfo, certificate: x509.Certificate, content: bytes) -> None:
    """Check ``signer``'s signature over ``content`` with ``certificate``'s public key.

    Raises SmimeError saying which check failed: an unknown algorithm, a message digest that
    does not match the content, or a signature that does not verify.
    """
    digest_class = DIGESTS.get(signer.digest_oid)
    if digest_class is None:
        raise SmimeError(f"unsupported digest algorithm {signer.digest_oid} in the signature")
    algorithm = digest_class()
    if signer.signed_attributes is not None:
        message_digest = signer.attribute(OID_MESSAGE_DIGEST)
        if message_digest is None:
            raise SmimeError("the signed attributes have no message digest")
        if not hmac.compare_digest(_octets(message_digest), _digest(algorithm, content)):
            raise SmimeError(
                "the message digest in the signature does not match the content: "
                "the message was changed after it was signed"
            )
        # The signature covers the DER of the attributes with the SET OF tag (RFC 5652 5.4).
        signed_bytes = bytes([TAG_SET]) + signer.signed_attributes.encoding[1:]
    else:
        signed_bytes = content

    key = certificate.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey) and signer.signature_oid in RSA_PKCS1:
            key.verify(signer.signature, signed_bytes, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and signer.signature_oid in ECDSA:
            key.verify(signer.signature, signed_bytes, ec.ECDSA(algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey) and signer.signature_oid == ED25519:
            key.verify(signer.signature, signed_bytes)
        else:
            raise SmimeError(
                f"unsupported signature algorithm {signer.signature_oid} "
                f"for a {type(key).__name__} key"
            )
    except InvalidSignature:
        raise SmimeError("the signature does not verify with the signer's public key") from None
