"""CAA evaluation for ACME orders (RFC 8659 and the validationmethods parameter of RFC 8657)."""

from __future__ import annotations

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest

from provisioner.pki.acme.caa import CaaRdata, caa_verdict, relevant_caa

HOST = dns.name.from_text("mx1.mail.example.org.")


def caa(owner: str, *values: str) -> dict[dns.name.Name, list[CaaRdata]]:
    records = [dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.CAA, value) for value in values]
    return {dns.name.from_text(owner): records}  # type: ignore[dict-item]


def test_no_caa_allows_any_ca() -> None:
    verdict = caa_verdict(HOST, {}, "letsencrypt.org")
    assert verdict.allowed is True
    assert verdict.owner is None


def test_closest_rrset_governs() -> None:
    sets = {
        **caa("example.org.", '0 issue "letsencrypt.org"'),
        **caa("mail.example.org.", '0 issue "other-ca.example"'),
    }
    owner, _ = relevant_caa(HOST, sets) or (None, None)
    assert owner == dns.name.from_text("mail.example.org.")
    assert caa_verdict(HOST, sets, "letsencrypt.org").allowed is False
    assert caa_verdict(HOST, sets, "other-ca.example").allowed is True


@pytest.mark.parametrize(
    ("values", "identity", "allowed"),
    [
        (['0 issue "letsencrypt.org"'], "letsencrypt.org", True),
        (['0 issue "LetsEncrypt.org."'], "letsencrypt.org", True),
        (['0 issue "letsencrypt.org; accounturi=https://a.example/1"'], "letsencrypt.org", True),
        (['0 issue "other.example"'], "letsencrypt.org", False),
        (['0 issue ";"'], "letsencrypt.org", False),
        (['0 issuewild "other.example"'], "letsencrypt.org", True),
        (['0 iodef "mailto:security@example.org"'], "letsencrypt.org", True),
        (['128 tbs "unknown"'], "letsencrypt.org", False),
        (['0 tbs "unknown"'], "letsencrypt.org", True),
        (['0 issue "letsencrypt.org; validationmethods=dns-01"'], "letsencrypt.org", True),
        (['0 issue "letsencrypt.org; validationmethods=http-01"'], "letsencrypt.org", False),
        (['0 issue "other.example"', '0 issue "letsencrypt.org"'], "letsencrypt.org", True),
    ],
)
def test_issue_property(values: list[str], identity: str, allowed: bool) -> None:
    verdict = caa_verdict(HOST, caa("example.org.", *values), identity)
    assert verdict.allowed is allowed, verdict.reason


def test_unknown_identity_is_undecided() -> None:
    verdict = caa_verdict(HOST, caa("example.org.", '0 issue "letsencrypt.org"'), None)
    assert verdict.allowed is None
    assert "example.org." in verdict.reason


def test_forbidding_reason_names_allowed_cas() -> None:
    verdict = caa_verdict(HOST, caa("example.org.", '0 issue "other.example"'), "pebble.test")
    assert verdict.reason == (
        "the CAA RRset at example.org. allows only other.example, not pebble.test"
    )
