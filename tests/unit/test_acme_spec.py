"""Spec checks of ACME authorities: errors that stop a run, and warnings about fragile choices."""

from __future__ import annotations

import pytest

from provisioner.errors import SpecError
from provisioner.spec.loader import load_spec_text
from provisioner.spec.semantics import acme_warnings

AUTHORITY = """\
authorities:
  - name: le
    type: acme
    directory: https://127.0.0.1:14000/dir
{options}"""

BASE = """\
zones:
  - name: example.org
    nameservers: [ns1.example.org]
    records: {records}
mail_servers:
  - host: mx1.example.org
    certificate: {{authority: le{certificate}}}
    tlsa: [{tlsa}]
"""


def spec_text(
    *,
    options: str = "",
    records: str = "[]",
    certificate: str = "",
    tlsa: str = "{usage: 3, selector: 1, matching: 1}",
    extra: str = "",
) -> str:
    return (
        AUTHORITY.format(options=options)
        + BASE.format(records=records, certificate=certificate, tlsa=tlsa)
        + extra
    )


def errors_of(text: str) -> list[str]:
    with pytest.raises(SpecError) as raised:
        load_spec_text(text)
    return [f"{error.field}: {error.message}" for error in raised.value.errors]


def test_acme_spec_loads() -> None:
    spec = load_spec_text(spec_text(options="    caa_identity: letsencrypt.org\n"))
    assert spec.authorities[0].type == "acme"
    assert acme_warnings(spec) == []


def test_directory_must_be_https() -> None:
    text = spec_text().replace("https://127.0.0.1", "http://127.0.0.1")
    (error,) = errors_of(text)
    assert "must be an https:// URL" in error


@pytest.mark.parametrize(
    "binding",
    [
        "{key_id: kid-1}",
        "{key_id: kid-1, hmac_key_file: eab.key, hmac_key_env: EAB_HMAC}",
    ],
)
def test_eab_needs_one_hmac_source(binding: str) -> None:
    (error,) = errors_of(spec_text(options=f"    external_account_binding: {binding}\n"))
    assert "exactly one of hmac_key_file or hmac_key_env" in error


def test_eab_rejects_literal_key() -> None:
    binding = "{key_id: kid-1, hmac_key: c2VjcmV0}"
    (error,) = errors_of(spec_text(options=f"    external_account_binding: {binding}\n"))
    assert "hmac_key" in error


def test_user_from_acme_is_rejected() -> None:
    users = "users:\n  - address: alice@example.org\n    certificate: {authority: le}\n"
    (error,) = errors_of(spec_text(extra=users))
    assert error.startswith("users[0].certificate.authority")
    assert "only MX host certificates" in error


def test_ed25519_key_is_rejected() -> None:
    (error,) = errors_of(spec_text(certificate=", key_type: ed25519"))
    assert error.startswith("mail_servers[0].certificate.key_type")
    assert "RSA and ECDSA" in error


def test_caa_forbidding_the_ca_is_an_error() -> None:
    records = "[{type: CAA, value: '0 issue \"other-ca.example\"'}]"
    text = spec_text(options="    caa_identity: letsencrypt.org\n", records=records)
    (error,) = errors_of(text)
    assert error.startswith("mail_servers[0].certificate.authority")
    assert "allows only other-ca.example, not letsencrypt.org" in error
    assert "'CAA 0 issue \"letsencrypt.org\"' at example.org." in error


def test_caa_naming_the_ca_passes() -> None:
    records = "[{type: CAA, value: '0 issue \"letsencrypt.org\"'}]"
    spec = load_spec_text(spec_text(options="    caa_identity: letsencrypt.org\n", records=records))
    assert acme_warnings(spec) == []


def test_caa_without_identity_warns() -> None:
    records = "[{type: CAA, value: '0 issue \"letsencrypt.org\"'}]"
    (warning,) = acme_warnings(load_spec_text(spec_text(records=records)))
    assert "has no caa_identity" in warning
    assert warning.startswith("mail server mx1.example.org.")


def test_dane_ta_pin_warns() -> None:
    spec = load_spec_text(spec_text(tlsa="{usage: 2, selector: 1, matching: 1}"))
    (warning,) = acme_warnings(spec)
    assert "TLSA usage 2 (DANE-TA) pins the intermediate CA of the ACME CA le" in warning
    assert "prefer 3 1 1" in warning
