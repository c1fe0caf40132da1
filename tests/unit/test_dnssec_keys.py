"""Keys: RFC 6605 and RFC 8080 test vectors, key tags, DS, CDS/CDNSKEY, PEM round trips."""

from __future__ import annotations

import base64

import dns.dnssec
import dns.name
import dns.rdata
import dns.rrset
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from provisioner.dnssec.keys import (
    KSK_FLAGS,
    ZSK_FLAGS,
    InMemoryKey,
    SigningKey,
    cdnskey_rrset,
    cds_delete_rrsets,
    cds_rrset,
    ds_rrset,
    generate_key,
    key_tag,
    load_key,
    make_ds,
)
from provisioner.errors import DnssecError

# RFC 6605, section 6.1 (P-256) and 6.2 (P-384): private keys, DNSKEY, key tag and DS.
RFC6605_P256 = {
    "private": "GU6SnQ/Ou+xC5RumuIUIuJZteXT2z0O/ok1s38Et6mQ=",
    "dnskey": "257 3 13 GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+"
    "Wi9xMWyQLc8NAA==",
    "tag": 55648,
    "ds": "55648 13 2 b4c8c1fe2e7477127b27115656ad6256f424625bf5c1e2770ce6d6e37df61d17",
    "rrsig": "A 13 3 3600 20100909100439 20100812100439 55648 example.net. qx6wLYqmh+l9oCKTN6qIc+"
    "bw6ya+KJ8oMz0YP107epXAyGmt+3SNruPFKG7tZoLBLlUzGGus7ZwmwWep666VCw==",
    "algorithm": 13,
    "curve": ec.SECP256R1(),
}
RFC6605_P384 = {
    "private": "WURgWHCcYIYUPWgeLmiPY2DJJk02vgrmTfitxgqcL4vwW7BOrbawVmVe0d9V94SR",
    "dnskey": "257 3 14 xKYaNhWdGOfJ+nPrL8/arkwf2EY3MDJ+SErKivBVSum1w/egsXvSADtNJhyem5RCOpgQ6K8X1"
    "DRSEkrbYQ+OB+v8/uX45NBwY8rp65F6Glur8I/mlVNgF6W/qTI37m40",
    "tag": 10771,
    "ds": "10771 14 4 72d7b62976ce06438e9c0bf319013cf801f09ecc84b8d7e9495f27e305c6a9b0563a9b5f4d"
    "288405c3008a946df983d6",
    "rrsig": "A 14 3 3600 20100909102025 20100812102025 10771 example.net. /L5hDKIvGDyI1fcARX3z65qr"
    "mPsVz73QD1Mr5CEqOiLP95hxQouuroGCeZOvzFaxsT8Glr74hbavRKayJNuydCuzWTSSPdz7wnqXL5bdcJzusdnI0RSMROx"
    "xwGipWcJm",
    "algorithm": 14,
    "curve": ec.SECP384R1(),
}
# RFC 8080, section 6.1: Ed25519 private key, DNSKEY, key tag and DS.
RFC8080_PRIVATE = "ODIyNjAzODQ2MjgwODAxMjI2NDUxOTAyMDQxNDIyNjI="
RFC8080_DNSKEY = "257 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4="
RFC8080_DS = "3613 15 2 3aa5ab37efce57f737fc1627013fee07bdf241bd10f3b1964ab55c78e79a304b"


def _ecdsa_key(vector: dict[str, object]) -> InMemoryKey:
    secret = int.from_bytes(base64.b64decode(str(vector["private"])), "big")
    private_key = ec.derive_private_key(secret, vector["curve"])  # type: ignore[arg-type]
    return InMemoryKey(private_key, int(vector["algorithm"]), KSK_FLAGS)  # type: ignore[arg-type]


def _rdata(rdtype: str, text: str) -> dns.rdata.Rdata:
    return dns.rdata.from_text("IN", rdtype, text)


@pytest.mark.parametrize("vector", [RFC6605_P256, RFC6605_P384], ids=["p256", "p384"])
def test_rfc6605_dnskey_tag_and_ds(vector: dict[str, object]) -> None:
    key = _ecdsa_key(vector)
    assert key.dnskey == _rdata("DNSKEY", str(vector["dnskey"]))
    assert key.key_tag == vector["tag"]
    digest_type = 2 if vector is RFC6605_P256 else 4
    assert make_ds("example.net.", key, digest_type) == _rdata("DS", str(vector["ds"]))


@pytest.mark.parametrize("vector", [RFC6605_P256, RFC6605_P384], ids=["p256", "p384"])
def test_rfc6605_own_signature_validates(vector: dict[str, object]) -> None:
    # ECDSA is randomized, so the RFC's signature cannot be reproduced; ours must validate
    # where the RFC's does.
    key = _ecdsa_key(vector)
    origin = dns.name.from_text("example.net.")
    rrset = dns.rrset.from_text("www.example.net.", 3600, "IN", "A", "192.0.2.1")
    keys = {origin: dns.rrset.from_rdata(origin, 3600, key.dnskey)}
    published = _rdata("RRSIG", str(vector["rrsig"]))
    dns.dnssec.validate_rrsig(rrset, published, keys, origin, published.inception + 10)

    data = dns.dnssec._make_rrsig_signature_data(rrset, published, origin)
    ours = published.replace(signature=key.sign(data))
    dns.dnssec.validate_rrsig(rrset, ours, keys, origin, published.inception + 10)
    assert len(ours.signature) == len(published.signature)


def test_rfc8080_ed25519_key_tag_ds_and_signature() -> None:
    private_key = ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(RFC8080_PRIVATE))
    key = InMemoryKey(private_key, 15, KSK_FLAGS)
    assert key.dnskey == _rdata("DNSKEY", RFC8080_DNSKEY)
    assert key.key_tag == 3613
    assert make_ds("example.com.", key, 2) == _rdata("DS", RFC8080_DS)


def test_key_tag_matches_dnspython() -> None:
    for algorithm in (8, 13, 14, 15):
        key = generate_key(algorithm, ZSK_FLAGS)
        assert key_tag(key.dnskey) == dns.dnssec.key_id(key.dnskey)


def test_generated_key_fits_protocol() -> None:
    key = generate_key(13, KSK_FLAGS)
    assert isinstance(key, SigningKey)
    assert key.flags == 257
    assert key.dnskey.protocol == 3
    assert len(key.sign(b"data")) == 64


def test_signature_sizes() -> None:
    assert len(generate_key(14, ZSK_FLAGS).sign(b"x")) == 96
    assert len(generate_key(15, ZSK_FLAGS).sign(b"x")) == 64
    assert len(generate_key(8, ZSK_FLAGS, rsa_bits=2048).sign(b"x")) == 256


def test_generate_key_rejects_bad_input() -> None:
    with pytest.raises(DnssecError, match="algorithm 5"):
        generate_key(5, ZSK_FLAGS)
    with pytest.raises(DnssecError, match="RSA key size"):
        generate_key(8, ZSK_FLAGS, rsa_bits=1024)


@pytest.mark.parametrize("algorithm", [8, 13, 14, 15])
def test_pem_round_trip(algorithm: int) -> None:
    key = generate_key(algorithm, KSK_FLAGS)
    pem = key.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = load_key(pem, algorithm, KSK_FLAGS)
    assert loaded.dnskey == key.dnskey
    assert loaded.key_tag == key.key_tag


def test_pem_round_trip_with_password() -> None:
    key = generate_key(13, ZSK_FLAGS)
    pem = key.to_pem(password=b"secret")
    assert b"ENCRYPTED" in pem
    assert load_key(pem, 13, ZSK_FLAGS, password=b"secret").dnskey == key.dnskey
    with pytest.raises(DnssecError, match="cannot read"):
        load_key(pem, 13, ZSK_FLAGS, password=b"wrong")


def test_load_key_rejects_wrong_algorithm() -> None:
    pem = generate_key(13, ZSK_FLAGS).to_pem()
    with pytest.raises(DnssecError, match="does not fit DNSSEC algorithm 14"):
        load_key(pem, 14, ZSK_FLAGS)
    with pytest.raises(DnssecError, match="does not fit DNSSEC algorithm 15"):
        load_key(pem, 15, ZSK_FLAGS)


def test_ds_rrset_for_two_digests() -> None:
    key = _ecdsa_key(RFC6605_P256)
    rrset = ds_rrset("example.net.", [key], [2, 4], ttl=86400)
    assert rrset.ttl == 86400
    assert sorted(rdata.digest_type for rdata in rrset) == [2, 4]
    assert all(rdata.key_tag == 55648 for rdata in rrset)
    with pytest.raises(DnssecError, match="digest type 1"):
        make_ds("example.net.", key, 1)


def test_cds_and_cdnskey_match_ds_and_dnskey() -> None:
    key = _ecdsa_key(RFC6605_P256)
    cds = cds_rrset("example.net.", [key], [2], ttl=3600)
    cdnskey = cdnskey_rrset("example.net.", [key.dnskey], ttl=3600)
    assert cds.rdtype == dns.rdatatype.CDS
    assert cds[0].to_text() == RFC6605_P256["ds"]
    assert cdnskey.rdtype == dns.rdatatype.CDNSKEY
    assert cdnskey[0].to_text().replace(" ", "") == str(RFC6605_P256["dnskey"]).replace(" ", "")


def test_cds_delete_form() -> None:
    cds, cdnskey = cds_delete_rrsets("example.net.", ttl=300)
    assert cds[0].to_text() == "0 0 0 00"
    assert cdnskey[0].to_text() == "0 3 0 AA=="
    assert cds.ttl == 300
