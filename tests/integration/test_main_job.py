"""The main job end to end on the bundled example, checked by BIND, Knot, ldns and openssl."""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
from pathlib import Path

import dns.rdatatype
import pytest

from provisioner.zone.model import ZoneData
from tests.conftest import require_tool

ZONES = ("example.com", "example.net")


@pytest.fixture
def applied(example: Path, cli) -> Path:  # type: ignore[no-untyped-def]
    cli("apply", example, cwd=example.parent, check=True)
    return example.parent


def _zone(folder: Path, name: str) -> ZoneData:
    return ZoneData.from_text((folder / "out" / "zones" / f"{name}.zone").read_text(), name)


def test_zone_files_pass_named_checkzone(applied: Path) -> None:
    require_tool("named-checkzone")
    for name in ZONES:
        path = applied / "out" / "zones" / f"{name}.zone"
        result = subprocess.run(
            ["named-checkzone", "-i", "full", name, str(path)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_zone_files_pass_kzonecheck(applied: Path) -> None:
    require_tool("kzonecheck")
    for name in ZONES:
        path = applied / "out" / "zones" / f"{name}.zone"
        result = subprocess.run(
            ["kzonecheck", "-o", name, str(path)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_signed_zones_pass_dnssec_verify_and_ldns(applied: Path) -> None:
    require_tool("dnssec-verify", "ldns-verify-zone")
    for name in ZONES:
        path = str(applied / "out" / "zones" / f"{name}.zone")
        bind = subprocess.run(["dnssec-verify", "-o", name, path], capture_output=True, text=True)
        assert bind.returncode == 0, bind.stderr
        ldns = subprocess.run(["ldns-verify-zone", path], capture_output=True, text=True)
        assert ldns.returncode == 0, ldns.stdout + ldns.stderr


def test_dnskey_ttl_follows_policy(applied: Path) -> None:
    for name in ZONES:
        zone = _zone(applied, name)
        assert zone.get(f"{name}.", "DNSKEY").ttl == 3600
        assert zone.get(f"{name}.", "RRSIG", dns.rdatatype.DNSKEY)[0].original_ttl == 3600


def test_every_certificate_is_written(applied: Path) -> None:
    out = applied / "out"
    for host in ("mx1.example.com", "mx1.example.net"):
        assert (out / "certs" / host / "cert.pem").read_text().startswith("-----BEGIN CERT")
    for address in (
        "alice@example.com",
        "hugh@example.com",
        "bob@example.net",
        "carol@example.net",
    ):
        assert (out / "smime" / address / "cert.pem").exists()
    assert (out / "ca" / "orga-ca" / "root.pem").exists()


def _openssl(*args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=True).stdout


def _openssl_digest(der: bytes, matching: int) -> str:
    if matching == 0:
        return der.hex()
    algorithm = {1: "-sha256", 2: "-sha512"}[matching]
    return _openssl("dgst", algorithm, "-binary", data=der).hex()


def test_tlsa_values_equal_openssl(applied: Path) -> None:
    require_tool("openssl")
    zone = _zone(applied, "example.com")
    cert_pem = (applied / "out" / "certs" / "mx1.example.com" / "cert.pem").read_bytes()
    chain_pem = (applied / "out" / "certs" / "mx1.example.com" / "chain.pem").read_bytes()
    tlsa = zone.get("_25._tcp.mx1.example.com.", "TLSA")
    assert tlsa is not None
    assert len(tlsa) == 2
    for rdata in tlsa:
        source = cert_pem if rdata.usage == 3 else chain_pem
        if rdata.selector == 0:
            der = _openssl("x509", "-outform", "DER", data=source)
        else:
            pubkey = _openssl("x509", "-pubkey", "-noout", data=source)
            der = _openssl("pkey", "-pubin", "-outform", "DER", data=pubkey)
        assert rdata.cert.hex() == _openssl_digest(der, rdata.mtype)


def test_imported_certificate_tlsa_matches_file(applied: Path) -> None:
    require_tool("openssl")
    zone = _zone(applied, "example.net")
    cert = (applied / "imported" / "mx1.example.net.cert.pem").read_bytes()
    pubkey = _openssl("x509", "-pubkey", "-noout", data=cert)
    spki = _openssl("pkey", "-pubin", "-outform", "DER", data=pubkey)
    expected = hashlib.sha256(spki).hexdigest()
    for port in (25, 465):
        tlsa = zone.get(f"_{port}._tcp.mx1.example.net.", "TLSA")
        assert tlsa is not None
        assert [r.cert.hex() for r in tlsa] == [expected]


def test_smimea_is_the_user_certificate(applied: Path) -> None:
    zone = _zone(applied, "example.com")
    owner = "c93f1e400f26708f98cb19d936620da35eec8f72e57f9eec01c1afd6._smimecert.example.com."
    smimea = zone.get(owner, "SMIMEA")
    assert smimea is not None
    der = _openssl(
        "x509",
        "-outform",
        "DER",
        data=(applied / "out" / "smime" / "hugh@example.com" / "cert.pem").read_bytes(),
    )
    assert [(r.usage, r.selector, r.mtype, r.cert) for r in smimea] == [(3, 0, 0, der)]


def test_second_apply_changes_nothing(applied: Path, cli) -> None:  # type: ignore[no-untyped-def]
    before = {n: (applied / "out" / "zones" / f"{n}.zone").read_bytes() for n in ZONES}
    result = cli("apply", "--json", applied / "provisioner.yaml", check=True)
    report = json.loads(result.stdout)
    assert all(
        zone["counts"] == {"create": 0, "update": 0, "delete": 0} for zone in report["zones"]
    )
    assert report["certificates_issued"] == []
    after = {n: (applied / "out" / "zones" / f"{n}.zone").read_bytes() for n in ZONES}
    assert before == after


def test_plan_detailed_exitcode(applied: Path, cli) -> None:  # type: ignore[no-untyped-def]
    spec = applied / "provisioner.yaml"
    assert cli("plan", "--detailed-exitcode", spec).returncode == 0
    spec.write_text(spec.read_text().replace("value: 127.0.10.1", "value: 127.0.10.2"))
    result = cli("plan", "--detailed-exitcode", spec)
    assert result.returncode == 2
    assert "example.com. A" in result.stdout


def test_change_bumps_serial_once(applied: Path, cli) -> None:  # type: ignore[no-untyped-def]
    spec = applied / "provisioner.yaml"
    serial = _zone(applied, "example.com").soa[0].serial
    spec.write_text(spec.read_text().replace("value: 127.0.10.1", "value: 127.0.10.2"))
    cli("apply", spec, check=True)
    changed = _zone(applied, "example.com")
    assert changed.soa[0].serial > serial
    assert [r.address for r in changed.get("example.com.", "A")] == ["127.0.10.2"]
    cli("apply", spec, check=True)
    assert _zone(applied, "example.com").soa[0].serial == changed.soa[0].serial


def _mixed_ttl(text: str) -> str:
    return text.replace(
        "_25._tcp.mx1.example.com. 300 IN TLSA 3 1 1",
        "_25._tcp.mx1.example.com. 3600 IN TLSA 3 1 1",
    )


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(_mixed_ttl, id="mixed-ttl"),
        pytest.param(lambda text: text + "www.example.org. 300 IN A 127.0.30.99\n", id="outside"),
        pytest.param(lambda text: text.replace("\n", "\r\n"), id="crlf"),
    ],
)
def test_hand_edit_parsed_alike_is_rewritten(applied: Path, cli, edit) -> None:  # type: ignore[no-untyped-def]
    # Each edit parses to the same RRsets, but servers load it differently or reject it.
    require_tool("kzonecheck")
    path = applied / "out" / "zones" / "example.com.zone"
    serial = _zone(applied, "example.com").soa[0].serial
    edited = edit(path.read_bytes().decode())
    path.write_bytes(edited.encode())
    plan = cli("plan", "--detailed-exitcode", applied / "provisioner.yaml")
    assert plan.returncode == 2
    assert "differs from the text provisioner writes" in plan.stdout + plan.stderr
    cli("apply", applied / "provisioner.yaml", check=True)
    rewritten = path.read_bytes()
    assert rewritten != edited.encode()
    assert b"\r" not in rewritten
    assert b"example.org" not in rewritten
    assert _zone(applied, "example.com").soa[0].serial > serial
    check = subprocess.run(
        ["kzonecheck", "-o", "example.com.", str(path)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_private_keys_have_mode_0600(applied: Path) -> None:
    keys = list((applied / ".provisioner" / "keys").iterdir())
    assert keys
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert stat.S_IMODE((applied / ".provisioner" / "keys").stat().st_mode) == 0o700


def test_ds_command(applied: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("ds", applied / "provisioner.yaml", "example.com", check=True)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("example.com. 86400 IN DS ")
    zone = _zone(applied, "example.com")
    ksk = [k for k in zone.get("example.com.", "DNSKEY") if k.flags == 257]
    assert " 13 2 " in lines[0]
    assert len(ksk) == 1


def test_no_secret_in_output(applied: Path, cli) -> None:  # type: ignore[no-untyped-def]
    spec = applied / "provisioner.yaml"
    (applied / "out" / "zones" / "example.com.zone").unlink()
    result = cli("-vv", "apply", spec, check=True)
    for key in (applied / ".provisioner" / "keys").iterdir():
        body = "".join(key.read_text().splitlines()[1:-1])
        assert body[:40] not in result.stdout + result.stderr
    assert "PRIVATE KEY" not in result.stdout + result.stderr


def test_store_lock_rejects_second_run(applied: Path) -> None:
    from provisioner.errors import StoreError
    from provisioner.store.local import LocalStore

    with (
        LocalStore(applied / ".provisioner"),
        pytest.raises(StoreError, match="locked by another run"),
    ):
        LocalStore(applied / ".provisioner").open()


def test_other_state_store_is_rejected(applied: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec = applied / "provisioner.yaml"
    before = (applied / "out" / "zones" / "example.com.zone").read_bytes()
    certificate = (applied / "out" / "certs" / "mx1.example.com" / "cert.pem").read_bytes()
    result = cli("--state", tmp_path / "other-state", "apply", spec)
    assert result.returncode == 1
    assert not (tmp_path / "other-state" / "keys").exists() or not any(
        (tmp_path / "other-state" / "keys").iterdir()
    )
    assert "does not hold" in result.stderr
    assert "--state" in result.stderr
    assert (applied / "out" / "zones" / "example.com.zone").read_bytes() == before
    assert (applied / "out" / "certs" / "mx1.example.com" / "cert.pem").read_bytes() == certificate


def test_replaced_import_key_waits_for_rollover(applied: Path, cli) -> None:  # type: ignore[no-untyped-def]
    require_tool("openssl")
    imported = applied / "imported"
    before = {
        r.cert.hex() for r in _zone(applied, "example.net").get("_25._tcp.mx1.example.net.", "TLSA")
    }
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            str(imported / "mx1.example.net.key.pem"),
            "-out",
            str(imported / "mx1.example.net.cert.pem"),
            "-days",
            "30",
            "-subj",
            "/CN=mx1.example.net",
            "-addext",
            "subjectAltName=DNS:mx1.example.net",
        ],
        check=True,
        capture_output=True,
    )
    spec = applied / "provisioner.yaml"

    result = cli("apply", spec, check=True)
    assert "EMERGENCY" in result.stderr
    assert "rollover run" in result.stderr
    after_apply = {
        r.cert.hex() for r in _zone(applied, "example.net").get("_25._tcp.mx1.example.net.", "TLSA")
    }
    assert after_apply == before

    cli("rollover", "run", spec, check=True)
    after_run = {
        r.cert.hex() for r in _zone(applied, "example.net").get("_25._tcp.mx1.example.net.", "TLSA")
    }
    assert before < after_run
    assert len(after_run) == 2


def test_spec_changes_needing_rollover_warn(applied: Path, cli) -> None:  # type: ignore[no-untyped-def]
    spec = applied / "provisioner.yaml"
    text = spec.read_text()
    text = text.replace(
        "dnssec: {algorithm: 13, denial: nsec}", "dnssec: {algorithm: 15, denial: nsec}"
    )
    text = text.replace(
        "{authority: orga-ca, key_type: ecdsa-p256}", "{authority: orga-ca, key_type: rsa-2048}"
    )
    spec.write_text(text)
    result = cli("plan", "--detailed-exitcode", spec)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "asks for 15" in result.stderr
    assert "rollover run" in result.stderr
    assert "sets rsa-2048" in result.stderr
    assert "rollover start SPEC --mx mx1.example.com" in result.stderr


def test_removed_user_loses_smimea_and_files(applied: Path, cli) -> None:  # type: ignore[no-untyped-def]
    spec = applied / "provisioner.yaml"
    spec.write_text(
        spec.read_text().replace(
            "  - address: bob@example.net\n    certificate: {authority: orgb-ca}\n", ""
        )
    )
    cli("apply", spec, check=True)
    zone = _zone(applied, "example.net")
    owners = {r.name.to_text() for r in zone if r.rdtype == dns.rdatatype.SMIMEA}
    assert len(owners) == 1
    assert not (applied / "out" / "smime" / "bob@example.net").exists()
    assert (applied / "out" / "smime" / "carol@example.net").exists()
