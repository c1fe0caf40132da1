"""Key generation, PKCS#8 round trips and key matching."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from provisioner.errors import PKIError
from provisioner.pki.keys import (
    KeyType,
    generate_private_key,
    key_type_of,
    load_private_key,
    private_key_to_pem,
    signature_hash_for,
)


@pytest.mark.parametrize("key_type", list(KeyType))
def test_generated_key_has_its_type(key_type: KeyType) -> None:
    key = generate_private_key(key_type)
    assert key_type_of(key) is key_type
    assert key_type_of(key.public_key()) is key_type


def test_key_type_accepts_string() -> None:
    assert key_type_of(generate_private_key("ecdsa-p384")) is KeyType.ECDSA_P384


def test_unknown_key_type_rejected() -> None:
    with pytest.raises(PKIError, match="unsupported key type 'dsa-1024'") as raised:
        generate_private_key("dsa-1024")
    assert raised.value.hint is not None
    assert "ecdsa-p256" in raised.value.hint


def test_unsupported_curve_rejected() -> None:
    with pytest.raises(PKIError, match="unsupported elliptic curve secp521r1"):
        key_type_of(ec.generate_private_key(ec.SECP521R1()))


@pytest.mark.parametrize("key_type", list(KeyType))
def test_pem_round_trip_is_pkcs8(key_type: KeyType) -> None:
    key = generate_private_key(key_type)
    pem = private_key_to_pem(key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = load_private_key(pem)
    assert private_key_to_pem(loaded) == pem


def test_encrypted_pem_needs_password() -> None:
    key = generate_private_key(KeyType.ECDSA_P256)
    pem = private_key_to_pem(key, b"correct horse")
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert private_key_to_pem(load_private_key(pem, b"correct horse")) == private_key_to_pem(key)
    with pytest.raises(PKIError, match="cannot load the private key"):
        load_private_key(pem)
    with pytest.raises(PKIError, match="cannot load the private key"):
        load_private_key(pem, b"wrong")


def test_garbage_key_rejected() -> None:
    with pytest.raises(PKIError, match="cannot load the private key"):
        load_private_key(b"not a key")


def test_openssl_reads_pkcs8(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed (Debian package openssl)")
    key = generate_private_key(KeyType.ED25519)
    path = tmp_path / "key.pem"
    path.write_bytes(private_key_to_pem(key))
    result = subprocess.run(
        [openssl, "pkey", "-in", str(path), "-noout", "-text"],
        capture_output=True,
        check=True,
        text=True,
    )
    assert "ED25519 Private-Key" in result.stdout


def test_openssl_traditional_key_loads(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed (Debian package openssl)")
    path = tmp_path / "ec.pem"
    subprocess.run(
        [openssl, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(path)],
        check=True,
        capture_output=True,
    )
    assert b"BEGIN EC PRIVATE KEY" in path.read_bytes()
    assert key_type_of(load_private_key(path.read_bytes())) is KeyType.ECDSA_P256


def test_signature_hash_follows_key() -> None:
    assert isinstance(signature_hash_for(generate_private_key("ecdsa-p256")), hashes.SHA256)
    assert isinstance(signature_hash_for(generate_private_key("ecdsa-p384")), hashes.SHA384)
    assert isinstance(signature_hash_for(generate_private_key("rsa-2048")), hashes.SHA256)
    assert signature_hash_for(generate_private_key("ed25519")) is None
