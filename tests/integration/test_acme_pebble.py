"""ACME issuance against Pebble, with DNS-01 published to BIND through the zonefile backend."""

from __future__ import annotations

import datetime as dt
import hashlib
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from provisioner.errors import PKIError
from provisioner.pki.encoding import load_certificates
from provisioner.pki.keys import generate_private_key
from provisioner.rollover.observe import LiveObserver, Observation
from provisioner.spec.loader import load_spec
from provisioner.spec.models import MailServerSpec, Spec
from provisioner.store.local import LocalStore
from provisioner.workflows.acme import account_key_id, issue_acme_certificate
from provisioner.workflows.apply import apply
from provisioner.workflows.rollover import RolloverEngine
from tests.integration.pebble import (  # noqa: F401  (the fixtures bind and pebble)
    EAB_HMAC_KEY,
    MX_HOST,
    Bind,
    OffsetClock,
    Pebble,
    bind_fixture,
    free_port,
    pebble_fixture,
    spec_text,
    start_pebble,
)

pytestmark = pytest.mark.servers

TLSA_OWNER = f"_25._tcp.{MX_HOST}"
CHALLENGE_OWNER = f"_acme-challenge.{MX_HOST}"


def write_spec(tmp_path: Path, text: str) -> Spec:
    path = tmp_path / "provisioner.yaml"
    path.write_text(text)
    return load_spec(path)


def spki_sha256(pem: bytes) -> str:
    certificate = load_certificates(pem)[0]
    der = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def assert_no_challenge(bind: Bind) -> None:
    assert "_acme-challenge" not in bind.zone_file.read_text()
    assert bind.served(CHALLENGE_OWNER, "TXT") == []


def test_issue_then_renew_keeps_key(tmp_path: Path, bind: Bind, pebble: Pebble) -> None:
    spec = write_spec(tmp_path, spec_text(pebble, bind))
    clock = OffsetClock()
    with LocalStore(spec.state_dir()) as store:
        first = apply(spec, store, clock)

        assert first.issued == [f"server {MX_HOST}"]
        record = store.current_certificate("server", MX_HOST)
        assert record is not None
        pem = store.read_certificate(record.id)
        chain = load_certificates(pem)
        assert len(chain) >= 2, "the chain of the ACME CA must be kept with the certificate"
        assert "Pebble" in chain[0].issuer.rfc4514_string()
        tlsa = bind.served(TLSA_OWNER, "TLSA")
        assert tlsa == [f"3 1 1 {spki_sha256(pem)}"]
        assert_no_challenge(bind)

        account = store.key(account_key_id(spec.authorities[0]))  # type: ignore[arg-type]
        assert account is not None
        assert account.purpose == "acme-account"
        assert account.data["account_url"].startswith(pebble.directory.rsplit("/", 1)[0])
        key_mode = stat.S_IMODE(store.key_path(account.id).stat().st_mode)
        assert key_mode == 0o600

        assert apply(spec, store, clock).issued == []

        renew_before = spec.mail_servers[0].certificate.renew_before
        renew_at = record.not_after - dt.timedelta(seconds=renew_before)
        clock.offset = renew_at - clock.now() + dt.timedelta(days=1)
        renewed = apply(spec, store, clock)

        assert renewed.issued == [f"server {MX_HOST}"]
        new_record = store.current_certificate("server", MX_HOST)
        assert new_record is not None
        assert new_record.id != record.id
        assert new_record.key_id == record.key_id
        assert spki_sha256(store.read_certificate(new_record.id)) == spki_sha256(pem)
        assert [r.status for r in store.certificates(purpose="server")] == ["retired", "current"]
        assert bind.served(TLSA_OWNER, "TLSA") == tlsa
        assert_no_challenge(bind)


class NoMtaObserver(LiveObserver):
    """Observe the real name servers; report the MTA as presenting the new certificate.

    These tests run no MTA, so the engine's deploy observation is taken as done.
    """

    def mta_presents(self, server: MailServerSpec, certificate: x509.Certificate) -> Observation:
        return Observation(True)


def test_key_change_through_rollover(tmp_path: Path, bind: Bind, pebble: Pebble) -> None:
    spec = write_spec(tmp_path, spec_text(pebble, bind))
    clock = OffsetClock()
    with LocalStore(spec.state_dir()) as store:
        apply(spec, store, clock)
        old = store.current_certificate("server", MX_HOST)
        assert old is not None
        old_spki = spki_sha256(store.read_certificate(old.id))

        engine = RolloverEngine(spec, store, clock, NoMtaObserver(clock, dns_port=bind.port))
        rollover_id = engine.start_mx(MX_HOST)

        (new,) = store.certificates(purpose="server", status="next")
        assert new.data["source"] == "authority:pebble"
        new_spki = spki_sha256(store.read_certificate(new.id))
        assert new_spki != old_spki
        both = sorted([f"3 1 1 {old_spki}", f"3 1 1 {new_spki}"])
        assert bind.served(TLSA_OWNER, "TLSA") == both
        assert_no_challenge(bind)

        for _ in range(10):
            if engine.record(rollover_id)["data"]["status"] == "complete":
                break
            clock.offset += dt.timedelta(days=1)
            engine.run()
        assert engine.record(rollover_id)["data"]["status"] == "complete"

        current = store.current_certificate("server", MX_HOST)
        assert current is not None
        assert current.id == new.id
        assert bind.served(TLSA_OWNER, "TLSA") == [f"3 1 1 {new_spki}"]
        assert apply(spec, store, clock).issued == []


def test_reload_failure_leaves_no_challenge(tmp_path: Path, bind: Bind, pebble: Pebble) -> None:
    closed_port = free_port()
    spec = write_spec(tmp_path, spec_text(pebble, bind, reload=bind.reload_command(closed_port)))
    with LocalStore(spec.state_dir()) as store:
        with pytest.raises(PKIError) as raised:
            apply(spec, store, OffsetClock())

        message = str(raised.value)
        assert "cannot publish the ACME DNS-01 challenge" in message
        assert "reload command" in message
        assert store.current_certificate("server", MX_HOST) is None
    assert_no_challenge(bind)


def test_failed_validation_leaves_no_challenge(tmp_path: Path, bind: Bind) -> None:
    # Pebble queries a port where nothing listens, so it cannot see the published challenge.
    unreachable = start_pebble(tmp_path, free_port())
    try:
        spec = write_spec(tmp_path, spec_text(unreachable, bind))
        with LocalStore(spec.state_dir()) as store:
            with pytest.raises(PKIError) as raised:
                key = generate_private_key("ecdsa-p256")
                issue_acme_certificate(spec, store, OffsetClock(), spec.mail_servers[0], key)

            assert "did not validate mx1.example.test" in str(raised.value)
    finally:
        unreachable.stop()
    assert_no_challenge(bind)


def test_blocked_name_is_rejected(tmp_path: Path, bind: Bind) -> None:
    refusing = start_pebble(tmp_path, bind.port, blocked_domains=[MX_HOST.rstrip(".")])
    try:
        spec = write_spec(tmp_path, spec_text(refusing, bind))
        with LocalStore(spec.state_dir()) as store:
            with pytest.raises(PKIError) as raised:
                apply(spec, store, OffsetClock())

            message = str(raised.value)
            assert "rejected the request to create an order for mx1.example.test" in message
            assert "rejectedIdentifier" in message
            assert store.current_certificate("server", MX_HOST) is None
    finally:
        refusing.stop()
    assert_no_challenge(bind)


def test_eab_required_but_missing(tmp_path: Path, bind: Bind) -> None:
    requiring = start_pebble(tmp_path, bind.port, eab_required=True)
    try:
        spec = write_spec(tmp_path, spec_text(requiring, bind))
        with LocalStore(spec.state_dir()) as store:
            with pytest.raises(PKIError) as raised:
                apply(spec, store, OffsetClock())

            assert "requires external account binding" in str(raised.value)
            assert "external_account_binding" in (raised.value.hint or "")
    finally:
        requiring.stop()
    assert_no_challenge(bind)


@pytest.mark.parametrize("source", ["env", "file"])
def test_eab_registers(
    tmp_path: Path, bind: Bind, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    requiring = start_pebble(tmp_path, bind.port, eab_required=True)
    try:
        text = spec_text(requiring, bind, eab=True)
        if source == "env":
            monkeypatch.setenv("TEST_ACME_EAB_HMAC", EAB_HMAC_KEY)
        else:
            (tmp_path / "eab.key").write_text(EAB_HMAC_KEY + "\n")
            text = text.replace("hmac_key_env: TEST_ACME_EAB_HMAC", "hmac_key_file: eab.key")
        spec = write_spec(tmp_path, text)
        with LocalStore(spec.state_dir()) as store:
            result = apply(spec, store, OffsetClock())

            assert result.issued == [f"server {MX_HOST}"]
    finally:
        requiring.stop()
    assert_no_challenge(bind)


def test_lost_account_is_registered_again(tmp_path: Path, bind: Bind, pebble: Pebble) -> None:
    spec = write_spec(tmp_path, spec_text(pebble, bind))
    clock = OffsetClock()
    with LocalStore(spec.state_dir()) as store:
        apply(spec, store, clock)
        key_id = account_key_id(spec.authorities[0])  # type: ignore[arg-type]
        first_account = store.key(key_id)
        assert first_account is not None

        # Pebble keeps accounts in memory only, so a restart makes the stored URL unknown.
        pebble.stop()
        pebble.start()
        key = generate_private_key("ecdsa-p256")
        issued = issue_acme_certificate(spec, store, clock, spec.mail_servers[0], key)

        assert issued.chain
        second_account = store.key(key_id)
        assert second_account is not None
        assert second_account.data["account_url"] != first_account.data["account_url"]
    assert_no_challenge(bind)


def test_valid_authorization_skips_challenge(tmp_path: Path, bind: Bind) -> None:
    # Pebble reuses every valid authorization, so the second order needs no challenge.
    reusing = start_pebble(tmp_path, bind.port, authorization_reuse=100)
    try:
        spec = write_spec(tmp_path, spec_text(reusing, bind))
        clock = OffsetClock()
        with LocalStore(spec.state_dir()) as store:
            apply(spec, store, clock)
            publications = len(store.publications(spec.zones[0].name))

            key = generate_private_key("ecdsa-p256")
            issued = issue_acme_certificate(spec, store, clock, spec.mail_servers[0], key)

            assert issued.chain
            assert len(store.publications(spec.zones[0].name)) == publications
    finally:
        reusing.stop()


def test_unsigned_zone_issue(tmp_path: Path, bind: Bind, pebble: Pebble) -> None:
    spec = write_spec(tmp_path, spec_text(pebble, bind, signer="none"))
    with LocalStore(spec.state_dir()) as store:
        result = apply(spec, store, OffsetClock())

        assert result.issued == [f"server {MX_HOST}"]
    assert "RRSIG" not in bind.zone_file.read_text()
    assert len(bind.served(TLSA_OWNER, "TLSA")) == 1
    assert_no_challenge(bind)
