"""``provisioner tlsa generate`` and ``provisioner smimea generate``."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provisioner.cli.main import app
from provisioner.clock import ManualClock
from provisioner.dane.records import association_data
from provisioner.pki.ca import (
    IssuedCertificate,
    create_intermediate_ca,
    create_root_ca,
    issue_server_certificate,
    issue_smime_certificate,
)
from provisioner.pki.encoding import certificate_der
from provisioner.pki.keys import KeyType, generate_private_key

START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
HUGH_OWNER = "c93f1e400f26708f98cb19d936620da35eec8f72e57f9eec01c1afd6._smimecert.example.com."

runner = CliRunner()


@pytest.fixture(scope="module")
def issued() -> dict[str, IssuedCertificate]:
    clock = ManualClock(START)
    root = create_root_ca("CLI Root", generate_private_key(KeyType.ECDSA_P256), clock)
    issuing = create_intermediate_ca(
        root, "CLI Issuing", generate_private_key(KeyType.ECDSA_P256), clock
    )
    server = issue_server_certificate(
        issuing, generate_private_key(KeyType.RSA_2048), ["mx1.example.org"], clock
    )
    smime = issue_smime_certificate(
        issuing, generate_private_key(KeyType.ECDSA_P256), "hugh@example.com", clock
    )
    return {"server": server, "smime": smime}


@pytest.fixture
def server_files(issued: dict[str, IssuedCertificate], tmp_path: Path) -> dict[str, Path]:
    cert = tmp_path / "cert.pem"
    chain = tmp_path / "chain.pem"
    cert.write_bytes(issued["server"].certificate_pem())
    chain.write_bytes(issued["server"].chain_pem())
    return {"cert": cert, "chain": chain}


def test_tlsa_default_record(
    issued: dict[str, IssuedCertificate], server_files: dict[str, Path]
) -> None:
    result = runner.invoke(
        app, ["tlsa", "generate", "--cert", str(server_files["cert"]), "--host", "mx1.example.org"]
    )
    assert result.exit_code == 0, result.output
    digest = association_data(issued["server"].certificate, 1, 1).hex()
    assert result.stdout == f"_25._tcp.mx1.example.org. IN TLSA 3 1 1 {digest}\n"


def test_tlsa_matches_openssl(server_files: dict[str, Path]) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed (Debian package openssl)")
    der = subprocess.run(
        [openssl, "x509", "-in", str(server_files["cert"]), "-outform", "DER"],
        capture_output=True,
        check=True,
    ).stdout
    expected = hashlib.sha512(der).hexdigest()
    result = runner.invoke(
        app,
        [
            "tlsa",
            "generate",
            "--cert",
            str(server_files["cert"]),
            "--host",
            "mx1.example.org",
            "--port",
            "465",
            "--usage",
            "DANE-EE",
            "--selector",
            "Cert",
            "--matching",
            "SHA2-512",
            "--ttl",
            "3600",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == f"_465._tcp.mx1.example.org. 3600 IN TLSA 3 0 2 {expected}\n"


def test_tlsa_dane_ta_from_chain(
    issued: dict[str, IssuedCertificate], server_files: dict[str, Path]
) -> None:
    result = runner.invoke(
        app,
        [
            "tlsa",
            "generate",
            "--cert",
            str(server_files["cert"]),
            "--chain",
            str(server_files["chain"]),
            "--host",
            "mx1.example.org",
            "--usage",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    digest = association_data(issued["server"].chain[0], 1, 1).hex()
    assert result.stdout.endswith(f"IN TLSA 2 1 1 {digest}\n")


def test_tlsa_pkix_on_port_25_warns(server_files: dict[str, Path]) -> None:
    result = runner.invoke(
        app,
        [
            "tlsa",
            "generate",
            "--cert",
            str(server_files["cert"]),
            "--host",
            "mx1.example.org",
            "--usage",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "IN TLSA 1 1 1" in result.stdout
    assert "warning" in result.stderr
    assert "port 25" in result.stderr


def test_tlsa_invalid_usage_is_usage_error(server_files: dict[str, Path]) -> None:
    result = runner.invoke(
        app,
        [
            "tlsa",
            "generate",
            "--cert",
            str(server_files["cert"]),
            "--host",
            "mx1.example.org",
            "--usage",
            "4",
        ],
    )
    assert result.exit_code == 2
    assert "invalid certificate usage" in result.stderr
    assert result.stdout == ""


def test_tlsa_missing_file_fails(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    result = runner.invoke(
        app, ["tlsa", "generate", "--cert", str(missing), "--host", "mx1.example.org"]
    )
    assert result.exit_code == 1
    assert str(missing) in result.stderr
    assert result.stdout == ""


def test_tlsa_dane_ta_without_chain_fails(server_files: dict[str, Path]) -> None:
    result = runner.invoke(
        app,
        [
            "tlsa",
            "generate",
            "--cert",
            str(server_files["cert"]),
            "--host",
            "mx1.example.org",
            "--usage",
            "DANE-TA",
        ],
    )
    assert result.exit_code == 1
    assert "issuing CA" in result.stderr


def test_smimea_default_record(issued: dict[str, IssuedCertificate], tmp_path: Path) -> None:
    cert = tmp_path / "hugh.pem"
    cert.write_bytes(issued["smime"].certificate_pem())
    result = runner.invoke(
        app, ["smimea", "generate", "--cert", str(cert), "--address", "hugh@example.com"]
    )
    assert result.exit_code == 0, result.output
    expected = certificate_der(issued["smime"].certificate).hex()
    assert result.stdout == f"{HUGH_OWNER} IN SMIMEA 3 0 0 {expected}\n"
    assert result.stderr == ""


def test_smimea_from_pkcs12(issued: dict[str, IssuedCertificate], tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed (Debian package openssl)")
    cert = tmp_path / "hugh.pem"
    key = tmp_path / "hugh.key"
    bundle = tmp_path / "hugh.p12"
    cert.write_bytes(issued["smime"].certificate_pem())
    key.write_bytes(issued["smime"].private_key_pem())
    subprocess.run(
        [openssl, "pkcs12", "-export", "-in", str(cert), "-inkey", str(key)]
        + ["-passout", "env:HUGH_P12", "-out", str(bundle)],
        check=True,
        capture_output=True,
        env={"HUGH_P12": "pw", "PATH": "/usr/bin:/bin"},
    )

    result = runner.invoke(
        app,
        [
            "smimea",
            "generate",
            "--cert",
            str(bundle),
            "--address",
            "hugh@example.com",
            "--matching",
            "1",
            "--password-env",
            "HUGH_P12",
        ],
        env={"HUGH_P12": "pw"},
    )
    assert result.exit_code == 0, result.output

    digest = hashlib.sha256(certificate_der(issued["smime"].certificate)).hexdigest()
    assert result.stdout == f"{HUGH_OWNER} IN SMIMEA 3 0 1 {digest}\n"
    assert "warning" in result.stderr


def test_smimea_bad_address_fails(issued: dict[str, IssuedCertificate], tmp_path: Path) -> None:
    cert = tmp_path / "hugh.pem"
    cert.write_bytes(issued["smime"].certificate_pem())
    result = runner.invoke(app, ["smimea", "generate", "--cert", str(cert), "--address", "hugh"])
    assert result.exit_code == 1
    assert "invalid mailbox address" in result.stderr
