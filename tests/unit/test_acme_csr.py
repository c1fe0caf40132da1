"""The CSR sent to an ACME CA when an order is finalized."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from provisioner.errors import PKIError
from provisioner.pki.acme.csr import make_csr
from provisioner.pki.keys import generate_private_key, public_key_der


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "ecdsa-p384", "rsa-2048"])
def test_csr_names_and_key(key_type: str) -> None:
    key = generate_private_key(key_type)
    request = x509.load_pem_x509_csr(make_csr(key, ["MX1.example.org.", "mx2.example.org"]))

    assert request.is_signature_valid
    san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["mx1.example.org", "mx2.example.org"]
    common_name = request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert [attribute.value for attribute in common_name] == ["mx1.example.org"]
    assert public_key_der(request.public_key()) == public_key_der(key)  # type: ignore[arg-type]


def test_long_name_has_no_common_name() -> None:
    host = "a" * 60 + ".example.org"
    request = x509.load_pem_x509_csr(make_csr(generate_private_key("ecdsa-p256"), [host]))

    assert request.subject.get_attributes_for_oid(NameOID.COMMON_NAME) == []
    san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [host]


def test_csr_needs_a_name() -> None:
    with pytest.raises(PKIError):
        make_csr(generate_private_key("ecdsa-p256"), [])
