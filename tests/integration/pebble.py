"""Pebble (a test ACME CA) and BIND (the zone's authoritative server) on 127.0.0.1 for tests.

Pebble validates DNS-01 by querying the server given with -dnsserver, which is the BIND
instance that serves the zone file written by provisioner's zonefile backend and reloaded
with rndc. Both run as the current user with files in the test's tmp_path, on ports chosen
free at run time, and are stopped in fixture teardown.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from provisioner.clock import SystemClock

ADDRESS = "127.0.0.1"
ZONE = "example.test."
MX_HOST = "mx1.example.test."
# An EAB key id and HMAC key (base64url of the bytes 0 to 47) made up for these tests.
EAB_KEY_ID = "kid-test"
EAB_HMAC_KEY = base64.urlsafe_b64encode(bytes(range(48))).decode().rstrip("=")
STARTUP_TIMEOUT = 20.0


def require(*binaries: str) -> None:
    for binary in binaries:
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} is not installed (Debian packages pebble, bind9, bind9-utils)")


def free_port() -> int:
    """Return a port of 127.0.0.1 that is free for both TCP and UDP right now."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((ADDRESS, 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((ADDRESS, port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port on 127.0.0.1")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class OffsetClock(SystemClock):
    """The system clock moved by ``offset``: real sleeps, so real servers keep pace.

    Renewal tests move ``offset`` forward to reach a certificate's renewal time.
    """

    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def now(self) -> dt.datetime:
        return super().now() + self.offset


# --- TLS of the ACME directory ----------------------------------------------------------------


def write_tls_material(directory: Path) -> tuple[Path, Path, Path]:
    """Write a CA and a certificate for 127.0.0.1 and localhost signed by it.

    Returns the paths of the CA certificate, the server certificate and the server key.
    """
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "provisioner test TLS CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(ADDRESS))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = directory / "tls-ca.pem"
    cert_path = directory / "tls-cert.pem"
    key_path = directory / "tls-key.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


# --- Pebble -----------------------------------------------------------------------------------


@dataclass
class Pebble:
    """One Pebble process; ``directory`` is its ACME directory URL."""

    workdir: Path
    dns_port: int
    eab_required: bool = False
    blocked_domains: Sequence[str] = ()
    authorization_reuse: int = 0
    port: int = 0
    management_port: int = 0
    ca_bundle: Path = field(default_factory=Path)
    process: subprocess.Popen[bytes] | None = None

    @property
    def directory(self) -> str:
        return f"https://{ADDRESS}:{self.port}/dir"

    def start(self) -> None:
        """Start Pebble; a restart keeps the ports and TLS material but loses every account."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        cert = self.workdir / "tls-cert.pem"
        key = self.workdir / "tls-key.pem"
        if not self.port:
            self.ca_bundle, cert, key = write_tls_material(self.workdir)
            self.port = free_port()
            self.management_port = free_port()
        settings: dict[str, object] = {
            "listenAddress": f"{ADDRESS}:{self.port}",
            "managementListenAddress": f"{ADDRESS}:{self.management_port}",
            "certificate": str(cert),
            "privateKey": str(key),
            # HTTP-01 and TLS-ALPN-01 are not used; these ports only have to be valid.
            "httpPort": free_port(),
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": self.eab_required,
            "domainBlocklist": list(self.blocked_domains),
        }
        if self.eab_required:
            settings["externalAccountMACKeys"] = {EAB_KEY_ID: EAB_HMAC_KEY}
        config = self.workdir / "pebble-config.json"
        config.write_text(json.dumps({"pebble": settings}, indent=2))
        environment = {
            **os.environ,
            "PEBBLE_VA_NOSLEEP": "1",
            "PEBBLE_WFE_NONCEREJECT": "0",
            "PEBBLE_AUTHZREUSE": str(self.authorization_reuse),
        }
        log = (self.workdir / "pebble.log").open("wb")
        self.process = subprocess.Popen(
            ["pebble", "-config", str(config), "-dnsserver", f"{ADDRESS}:{self.dns_port}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=self.workdir,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pebble exited: {self.log_text()}")
            try:
                requests.get(self.directory, verify=str(self.ca_bundle), timeout=2)
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(f"pebble did not start: {self.log_text()}")

    def log_text(self) -> str:
        path = self.workdir / "pebble.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


# --- BIND -------------------------------------------------------------------------------------


@dataclass
class Bind:
    """A BIND primary for ZONE, loading ``zone_file`` and reloaded with ``reload_command``."""

    workdir: Path
    port: int = 0
    control_port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def zone_file(self) -> Path:
        return self.workdir / "zones" / "example.test.zone"

    @property
    def key_file(self) -> Path:
        return self.workdir / "rndc.key"

    def reload_command(self, control_port: int | None = None) -> list[str]:
        port = self.control_port if control_port is None else control_port
        return [
            "rndc",
            "-s",
            ADDRESS,
            "-p",
            str(port),
            "-k",
            str(self.key_file),
            "reload",
            ZONE.rstrip("."),
        ]

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.zone_file.parent.mkdir(exist_ok=True)
        self.port = free_port()
        self.control_port = free_port()
        secret = base64.b64encode(secrets.token_bytes(32)).decode()
        key = f'key "rndc-key" {{ algorithm hmac-sha256; secret "{secret}"; }};\n'
        self.key_file.write_text(key)
        self.key_file.chmod(0o600)
        # A placeholder zone, so that the server starts with the zone loaded; provisioner's
        # zonefile backend replaces it on the first apply.
        self.zone_file.write_text(
            f"$TTL 300\n{ZONE} IN SOA ns1.{ZONE} hostmaster.{ZONE} 1 7200 3600 1209600 300\n"
            f"{ZONE} IN NS ns1.{ZONE}\nns1.{ZONE} IN A {ADDRESS}\n"
        )
        directory = self.workdir
        config = directory / "named.conf"
        config.write_text(
            f"""options {{
    directory "{directory}";
    pid-file "{directory}/named.pid";
    session-keyfile "{directory}/session.key";
    managed-keys-directory "{directory}";
    listen-on port {self.port} {{ {ADDRESS}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
}};
{key}
controls {{
    inet {ADDRESS} port {self.control_port} allow {{ {ADDRESS}; }} keys {{ "rndc-key"; }};
}};
zone "{ZONE.rstrip(".")}" {{
    type primary;
    file "{self.zone_file}";
}};
"""
        )
        log = (directory / "named.log").open("wb")
        self.process = subprocess.Popen(
            ["named", "-g", "-n", "1", "-c", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=directory,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"named exited: {self.log_text()}")
            if self.query(ZONE, "SOA") is not None:
                return
            time.sleep(0.1)
        raise RuntimeError(f"named did not start: {self.log_text()}")

    def query(self, name: str, rdtype: str) -> dns.message.Message | None:
        query = dns.message.make_query(name, dns.rdatatype.from_text(rdtype))
        try:
            return dns.query.udp(query, ADDRESS, port=self.port, timeout=1)
        except (dns.exception.Timeout, OSError):
            return None

    def served(self, name: str, rdtype: str) -> list[str]:
        """Return the rdata (text) of the RRset served at ``name``, empty when there is none."""
        response = self.query(name, rdtype)
        if response is None:
            raise AssertionError(f"named on port {self.port} did not answer")
        result = []
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.from_text(rdtype):
                result += [rdata.to_text() for rdata in rrset]
        return sorted(result)

    def log_text(self) -> str:
        path = self.workdir / "named.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


def spec_text(
    pebble: Pebble,
    bind: Bind,
    *,
    reload: list[str] | None = None,
    eab: bool = False,
    signer: str = "provisioner",
    extra_authority: str = "",
) -> str:
    """Return a spec: zone example.test. on ``bind``, mx1.example.test. from ``pebble``."""
    reload_command = bind.reload_command() if reload is None else reload
    eab_block = ""
    if eab:
        eab_block = (
            f"    external_account_binding:\n      key_id: {EAB_KEY_ID}\n"
            "      hmac_key_env: TEST_ACME_EAB_HMAC\n"
        )
    return f"""\
state: state
output: out
authorities:
  - name: pebble
    type: acme
    directory: {pebble.directory}
    ca_bundle: {pebble.ca_bundle}
    contact: [hostmaster@example.test]
    agree_terms_of_service: true
    nameserver_port: {bind.port}
    propagation_timeout: 30
    order_timeout: 60
{eab_block}{extra_authority}zones:
  - name: {ZONE}
    ttl: 300
    soa: {{minimum: 300}}
    nameservers:
      - name: ns1.{ZONE}
        addresses: [{ADDRESS}]
    dnssec: {{signer: {signer}}}
    publish:
      backend: zonefile
      path: {bind.zone_file}
      reload: {json.dumps(reload_command)}
mail_servers:
  - host: {MX_HOST}
    addresses: [{ADDRESS}]
    certificate:
      authority: pebble
"""


@pytest.fixture(name="bind")
def bind_fixture(tmp_path: Path) -> Iterator[Bind]:
    require("named", "rndc")
    server = Bind(tmp_path / "bind")
    server.start()
    yield server
    server.stop()


def start_pebble(tmp_path: Path, dns_port: int, **options: object) -> Pebble:
    require("pebble")
    server = Pebble(tmp_path / "pebble", dns_port, **options)  # type: ignore[arg-type]
    server.start()
    return server


@pytest.fixture(name="pebble")
def pebble_fixture(tmp_path: Path, bind: Bind) -> Iterator[Pebble]:
    server = start_pebble(tmp_path, bind.port)
    yield server
    server.stop()
