"""Import of certificates from PEM, DER and PKCS#12 files made by the openssl command."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from provisioner.clock import ManualClock
from provisioner.errors import PKIError
from provisioner.pki.ca import (
    IssuedCertificate,
    create_intermediate_ca,
    create_root_ca,
    issue_server_certificate,
    issue_smime_certificate,
)
from provisioner.pki.importer import (
    CertificateFormat,
    PasswordSource,
    detect_format,
    import_certificate,
)
from provisioner.pki.keys import KeyType, generate_private_key, private_key_to_pem

START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
LATER = START + dt.timedelta(days=10)
PASSWORD = "s3cret pass"


def openssl(*args: str) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        pytest.skip("openssl is not installed (Debian package openssl)")
    subprocess.run([binary, *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def server() -> IssuedCertificate:
    clock = ManualClock(START)
    root = create_root_ca("Import Root", generate_private_key(KeyType.ECDSA_P256), clock)
    issuing = create_intermediate_ca(
        root, "Import Issuing", generate_private_key(KeyType.ECDSA_P256), clock
    )
    return issue_server_certificate(
        issuing,
        generate_private_key(KeyType.RSA_2048),
        ["mx1.example.org", "*.mail.example.org"],
        clock,
    )


@pytest.fixture
def files(server: IssuedCertificate, tmp_path: Path) -> dict[str, Path]:
    paths = {
        "cert": tmp_path / "cert.pem",
        "key": tmp_path / "key.pem",
        "chain": tmp_path / "chain.pem",
        "password": tmp_path / "password.txt",
    }
    paths["cert"].write_bytes(server.certificate_pem())
    paths["key"].write_bytes(server.private_key_pem())
    paths["chain"].write_bytes(server.chain_pem())
    paths["password"].write_text(PASSWORD + "\n")
    return paths


def test_import_pem_with_key_and_chain(server: IssuedCertificate, files: dict[str, Path]) -> None:
    imported = import_certificate(
        files["cert"],
        ManualClock(LATER),
        key_path=files["key"],
        chain_path=files["chain"],
        hosts=["mx1.example.org", "smtp.mail.example.org"],
    )
    assert imported.format is CertificateFormat.PEM
    assert imported.certificate == server.certificate
    assert imported.chain == server.chain
    assert imported.private_key is not None
    assert private_key_to_pem(imported.private_key) == server.private_key_pem()
    assert imported.source == str(files["cert"])


def test_import_der_made_by_openssl(server: IssuedCertificate, files: dict[str, Path]) -> None:
    der_cert = files["cert"].with_suffix(".der")
    der_key = files["key"].with_suffix(".der")
    openssl("x509", "-in", str(files["cert"]), "-outform", "DER", "-out", str(der_cert))
    openssl("pkey", "-in", str(files["key"]), "-outform", "DER", "-out", str(der_key))
    assert detect_format(der_cert.read_bytes()) is CertificateFormat.DER
    imported = import_certificate(
        der_cert, ManualClock(LATER), key_path=der_key, hosts=["mx1.example.org"]
    )
    assert imported.format is CertificateFormat.DER
    assert imported.certificate == server.certificate
    assert imported.chain == ()


def make_pkcs12(files: dict[str, Path], *, with_chain: bool = True) -> Path:
    bundle = files["cert"].with_suffix(".p12")
    args = [
        "pkcs12",
        "-export",
        "-in",
        str(files["cert"]),
        "-inkey",
        str(files["key"]),
        "-passout",
        f"file:{files['password']}",
        "-out",
        str(bundle),
    ]
    if with_chain:
        args += ["-certfile", str(files["chain"])]
    openssl(*args)
    return bundle


def test_import_pkcs12_password_file(server: IssuedCertificate, files: dict[str, Path]) -> None:
    bundle = make_pkcs12(files)
    assert detect_format(bundle.read_bytes()) is CertificateFormat.PKCS12
    imported = import_certificate(
        bundle,
        ManualClock(LATER),
        password=PasswordSource(file=files["password"]),
        hosts=["mx1.example.org"],
    )
    assert imported.format is CertificateFormat.PKCS12
    assert imported.certificate == server.certificate
    assert imported.chain == server.chain
    assert imported.private_key is not None


def test_import_pkcs12_password_env(server: IssuedCertificate, files: dict[str, Path]) -> None:
    bundle = make_pkcs12(files, with_chain=False)
    imported = import_certificate(
        bundle,
        ManualClock(LATER),
        password=PasswordSource(env="P12_PASSWORD"),
        environ={"P12_PASSWORD": PASSWORD},
    )
    assert imported.certificate == server.certificate


def test_pkcs12_wrong_password_names_file(files: dict[str, Path]) -> None:
    bundle = make_pkcs12(files)
    with pytest.raises(PKIError, match=f"^{re.escape(str(bundle))}: cannot read the PKCS#12 file"):
        import_certificate(
            bundle,
            ManualClock(LATER),
            password=PasswordSource(env="P12_PASSWORD"),
            environ={"P12_PASSWORD": "wrong"},
        )


def test_pkcs12_missing_env_variable(files: dict[str, Path]) -> None:
    bundle = make_pkcs12(files)
    with pytest.raises(PKIError, match="P12_PASSWORD is not set"):
        import_certificate(
            bundle, ManualClock(LATER), password=PasswordSource(env="P12_PASSWORD"), environ={}
        )


def test_password_source_needs_one_origin(tmp_path: Path) -> None:
    with pytest.raises(PKIError, match="exactly one"):
        PasswordSource()
    with pytest.raises(PKIError, match="exactly one"):
        PasswordSource(file=tmp_path / "p", env="P")


def test_combined_pem_file(server: IssuedCertificate, files: dict[str, Path]) -> None:
    combined = files["cert"].with_name("combined.pem")
    combined.write_bytes(server.fullchain_pem() + server.private_key_pem())
    imported = import_certificate(combined, ManualClock(LATER))
    assert imported.chain == server.chain
    assert imported.private_key is not None


def test_fullchain_as_chain_file(server: IssuedCertificate, files: dict[str, Path]) -> None:
    fullchain = files["chain"].with_name("fullchain.pem")
    fullchain.write_bytes(server.fullchain_pem())
    imported = import_certificate(
        files["cert"], ManualClock(LATER), key_path=files["key"], chain_path=fullchain
    )
    assert imported.chain == server.chain


def test_chain_with_root_out_of_order(server: IssuedCertificate, files: dict[str, Path]) -> None:
    assert server.root is not None
    reordered = files["chain"].with_name("reordered.pem")
    reordered.write_bytes(
        IssuedCertificate(certificate=server.root, chain=server.chain).fullchain_pem()
    )
    imported = import_certificate(
        files["cert"], ManualClock(LATER), key_path=files["key"], chain_path=reordered
    )
    assert imported.chain == (*server.chain, server.root)
    assert imported.as_issued().root == server.root


def test_openssl_self_signed_certificate(tmp_path: Path) -> None:
    cert = tmp_path / "self.pem"
    key = tmp_path / "self.key"
    openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(cert),
        "-subj",
        "/CN=mx1.example.org",
        "-addext",
        "subjectAltName=DNS:mx1.example.org",
        "-days",
        "30",
    )
    imported = import_certificate(
        cert, ManualClock(_not_before(cert) + dt.timedelta(days=1)), key_path=key
    )
    assert imported.chain == ()


def _not_before(path: Path) -> dt.datetime:
    from cryptography import x509

    return x509.load_pem_x509_certificate(path.read_bytes()).not_valid_before_utc


# Each fault names the file that has to be fixed.


def test_missing_file_names_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(
        PKIError, match=f"^{re.escape(str(missing))}: cannot read the certificate file"
    ):
        import_certificate(missing, ManualClock(LATER))


def test_garbage_file_names_file(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(PKIError, match=f"^{re.escape(str(garbage))}: cannot parse the certificate"):
        import_certificate(garbage, ManualClock(LATER))
    binary = tmp_path / "garbage.der"
    binary.write_bytes(b"\x30\x03\x01\x02\x03")
    with pytest.raises(PKIError, match=f"^{re.escape(str(binary))}: cannot parse the certificate"):
        import_certificate(binary, ManualClock(LATER))


def test_garbage_key_names_key_file(files: dict[str, Path]) -> None:
    files["key"].write_bytes(b"nonsense")
    with pytest.raises(
        PKIError, match=f"^{re.escape(str(files['key']))}: cannot load the private key"
    ):
        import_certificate(files["cert"], ManualClock(LATER), key_path=files["key"])


def test_missing_key_rejected(files: dict[str, Path]) -> None:
    with pytest.raises(PKIError, match=f"^{re.escape(str(files['cert']))}: no private key"):
        import_certificate(files["cert"], ManualClock(LATER))
    imported = import_certificate(files["cert"], ManualClock(LATER), require_key=False)
    assert imported.private_key is None


def test_key_mismatch_names_key_file(files: dict[str, Path]) -> None:
    other = files["key"].with_name("other.pem")
    other.write_bytes(private_key_to_pem(generate_private_key(KeyType.RSA_2048)))
    with pytest.raises(PKIError, match=f"^{re.escape(str(other))}: the private key does not match"):
        import_certificate(files["cert"], ManualClock(LATER), key_path=other)


@pytest.mark.parametrize(
    "host", ["mx2.example.org", "example.org", "a.b.mail.example.org", "mail.example.org"]
)
def test_host_not_covered_names_file(files: dict[str, Path], host: str) -> None:
    with pytest.raises(
        PKIError, match=f"^{re.escape(str(files['cert']))}: .* does not cover host {host}"
    ):
        import_certificate(files["cert"], ManualClock(LATER), key_path=files["key"], hosts=[host])


def test_address_not_covered_names_file(tmp_path: Path) -> None:
    clock = ManualClock(START)
    root = create_root_ca("Import Root", generate_private_key(KeyType.ECDSA_P256), clock)
    issued = issue_smime_certificate(
        root, generate_private_key(KeyType.ECDSA_P256), "hugh@example.com", clock
    )
    path = tmp_path / "smime.pem"
    path.write_bytes(issued.certificate_pem() + issued.private_key_pem())
    imported = import_certificate(path, ManualClock(LATER), addresses=["hugh@EXAMPLE.com"])
    assert imported.private_key is not None
    with pytest.raises(
        PKIError, match=f"^{re.escape(str(path))}: .* does not cover address Hugh@example.com"
    ):
        import_certificate(path, ManualClock(LATER), addresses=["Hugh@example.com"])
    with pytest.raises(PKIError, match="does not cover address anna@example.com"):
        import_certificate(path, ManualClock(LATER), addresses=["anna@example.com"])


def test_expired_names_file(files: dict[str, Path]) -> None:
    late = ManualClock(START + dt.timedelta(days=91))
    with pytest.raises(
        PKIError, match=f"^{re.escape(str(files['cert']))}: .* expired at 2026-05-30T12:00:00Z"
    ):
        import_certificate(files["cert"], late, key_path=files["key"])


def test_not_yet_valid_names_file(files: dict[str, Path]) -> None:
    early = ManualClock(START - dt.timedelta(hours=2))
    with pytest.raises(PKIError, match=f"^{re.escape(str(files['cert']))}: .* is not yet valid"):
        import_certificate(files["cert"], early, key_path=files["key"])


def test_unrelated_chain_names_chain_file(files: dict[str, Path]) -> None:
    clock = ManualClock(START)
    stranger = create_root_ca("Other Root", generate_private_key(KeyType.ECDSA_P256), clock)
    files["chain"].write_bytes(stranger.certificate_pem())
    with pytest.raises(
        PKIError, match=f"^{re.escape(str(files['chain']))}: the chain does not link"
    ):
        import_certificate(
            files["cert"], ManualClock(LATER), key_path=files["key"], chain_path=files["chain"]
        )


def test_same_name_other_key_fails_signature(files: dict[str, Path]) -> None:
    clock = ManualClock(START)
    impostor_root = create_root_ca("Import Root", generate_private_key(KeyType.ECDSA_P256), clock)
    impostor = create_intermediate_ca(
        impostor_root, "Import Issuing", generate_private_key(KeyType.ECDSA_P256), clock
    )
    files["chain"].write_bytes(impostor.certificate_pem())
    with pytest.raises(
        PKIError, match=f"^{re.escape(str(files['chain']))}: the signature of .* does not verify"
    ):
        import_certificate(
            files["cert"], ManualClock(LATER), key_path=files["key"], chain_path=files["chain"]
        )


def test_key_picks_end_entity_in_pem(server: IssuedCertificate, files: dict[str, Path]) -> None:
    assert server.root is not None
    combined = files["cert"].with_name("ca-first.pem")
    combined.write_bytes(
        server.chain_pem()
        + IssuedCertificate(certificate=server.root).certificate_pem()
        + server.certificate_pem()
        + server.private_key_pem()
    )
    imported = import_certificate(combined, ManualClock(LATER), hosts=["mx1.example.org"])
    assert imported.certificate == server.certificate
    assert imported.chain == (*server.chain, server.root)


def test_openssl_pkcs12_text_output(server: IssuedCertificate, files: dict[str, Path]) -> None:
    bundle = make_pkcs12(files)
    text = files["cert"].with_name("all.pem")
    openssl(
        "pkcs12",
        "-in",
        str(bundle),
        "-passin",
        f"file:{files['password']}",
        "-nodes",
        "-out",
        str(text),
    )
    assert text.read_bytes().startswith(b"Bag Attributes")
    imported = import_certificate(text, ManualClock(LATER), hosts=["mx1.example.org"])
    assert imported.certificate == server.certificate
    assert imported.chain == server.chain


def test_pkcs12_empty_password(server: IssuedCertificate, files: dict[str, Path]) -> None:
    bundle = files["cert"].with_name("empty.p12")
    openssl(
        "pkcs12",
        "-export",
        "-in",
        str(files["cert"]),
        "-inkey",
        str(files["key"]),
        "-passout",
        "pass:",
        "-out",
        str(bundle),
    )
    imported = import_certificate(bundle, ManualClock(LATER))
    assert imported.certificate == server.certificate


def test_pkcs12_without_password_needs_one(files: dict[str, Path]) -> None:
    bundle = make_pkcs12(files)
    with pytest.raises(PKIError, match="cannot read the PKCS#12 file") as raised:
        import_certificate(bundle, ManualClock(LATER))
    assert raised.value.hint is not None
    assert "password file or environment variable" in raised.value.hint
