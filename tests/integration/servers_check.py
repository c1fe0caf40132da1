"""Real servers for the check tests: zones signed by BIND's dnssec-signzone, served by knotd,
validated by Unbound, and certificates for the STARTTLS server.

Everything runs on 127.53.0.0/24 addresses (all of 127.0.0.0/8 reaches the loopback
interface on Linux) with one free port shared by every DNS server, because a referral carries
addresses but no port. Faults are injected by editing the signed zone text.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dns.message
import dns.name
import dns.query
import dns.rdatatype
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NS1 = "127.53.0.1"
NS2 = "127.53.0.2"
RESOLVER = "127.53.0.53"
MX1 = "127.53.0.20"
MX2 = "127.53.0.21"
PARENT = "test."
UNSIGNED = "unsigned.test."  # delegated from test. without DS
CHILD = "example.test."
USER = "alice@example.test"


def require(*binaries: str) -> None:
    for binary in binaries:
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} is not installed (Debian packages bind9, bind9-utils, unbound)")


def free_port(addresses: list[str]) -> int:
    """Return a port that is free for TCP and UDP on every address in ``addresses``."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((addresses[0], 0))
            port = probe.getsockname()[1]
        sockets: list[socket.socket] = []
        try:
            for address in addresses:
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    sock = socket.socket(socket.AF_INET, kind)
                    sockets.append(sock)
                    sock.bind((address, port))
            return port
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free port on the test addresses")


def run(command: list[str], cwd: Path | None = None) -> str:
    completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({completed.returncode}): {completed.stderr.strip()}"
        )
    return completed.stdout


# -- keys and signing --------------------------------------------------------------------------


@dataclasses.dataclass
class ZoneKeys:
    zone: str
    ksk: Path  # path of the .key file
    zsk: Path

    def ds(self, digest: str = "2") -> str:
        return run(["dnssec-dsfromkey", f"-{digest}", str(self.ksk)]).strip()

    def dnskey_text(self) -> str:
        return self.ksk.read_text() + self.zsk.read_text()


def generate_keys(directory: Path, zone: str) -> ZoneKeys:
    directory.mkdir(parents=True, exist_ok=True)
    names = []
    for flags in (["-f", "KSK"], []):
        base = run(
            ["dnssec-keygen", "-q", "-a", "ECDSAP256SHA256", "-K", str(directory), *flags, zone]
        ).strip()
        names.append(directory / f"{base}.key")
    return ZoneKeys(zone, names[0], names[1])


def sign_zone(
    directory: Path,
    keys: ZoneKeys,
    body: str,
    *,
    serial: int = 2026120401,
    start: str = "now-3600",
    end: str = "now+2592000",
    nsec3: bool = False,
    verify: bool = True,
) -> str:
    """Sign ``body`` (records after the SOA) with dnssec-signzone and return the signed text."""
    zone = keys.zone
    unsigned = directory / f"{zone}zone"
    unsigned.write_text(
        f"$TTL 300\n{zone} IN SOA ns1.{CHILD if zone == CHILD else PARENT} "
        f"hostmaster.{zone} {serial} 3600 600 86400 300\n{body}\n" + keys.dnskey_text()
    )
    signed = directory / f"{zone}{serial}.{'nsec3' if nsec3 else 'nsec'}.signed"
    command = [
        "dnssec-signzone",
        "-q",
        "-O",
        "full",
        "-K",
        str(keys.ksk.parent),
        "-o",
        zone,
        "-f",
        str(signed),
        "-s",
        start,
        "-e",
        end,
        "-k",
        str(keys.ksk),
    ]
    if nsec3:
        command += ["-3", "-", "-H", "0"]
    if not verify:
        command.append("-P")
    command += [str(unsigned), str(keys.zsk)]
    run(command, cwd=directory)
    return signed.read_text()


def split_records(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.strip() and not line.startswith(";")]


def join_records(records: list[list[str]]) -> str:
    return "\n".join(" ".join(fields) for fields in records) + "\n"


def drop_types(text: str, rdtypes: set[str]) -> str:
    """Remove records of ``rdtypes`` and the RRSIGs that cover them (dnssec-signzone -O full)."""
    kept = []
    for fields in split_records(text):
        if fields[3] in rdtypes or (fields[3] == "RRSIG" and fields[4] in rdtypes):
            continue
        kept.append(fields)
    return join_records(kept)


def replace_rrsig(text: str, donor: str, owner: str, rdtype: str) -> str:
    """Put the RRSIG over ``owner``/``rdtype`` from ``donor`` in place of the one in ``text``."""

    def is_target(fields: list[str]) -> bool:
        return fields[0] == owner and fields[3] == "RRSIG" and fields[4] == rdtype

    donated = [fields for fields in split_records(donor) if is_target(fields)]
    kept = [fields for fields in split_records(text) if not is_target(fields)]
    return join_records(kept + donated)


def corrupt_rrsig(text: str, owner: str, rdtype: str) -> str:
    """Flip the signature bytes of the RRSIG over ``owner``/``rdtype``."""
    records = split_records(text)
    for fields in records:
        if fields[0] == owner and fields[3] == "RRSIG" and fields[4] == rdtype:
            signature = "".join(fields[12:])
            # Change one base64 character in the middle, keeping the encoding valid.
            middle = len(signature) // 2
            swapped = "A" if signature[middle] != "A" else "B"
            fields[12:] = [signature[:middle] + swapped + signature[middle + 1 :]]
    return join_records(records)


# -- certificates --------------------------------------------------------------------------------


@dataclasses.dataclass
class Pki:
    ca: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(common_name: str = "Test Mail CA") -> Pki:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Pki(cert, key)


def issue(
    pki: Pki | None,
    names: list[str],
    *,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    email: str | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Issue a leaf certificate from ``pki`` (self-signed when None)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = _name(email or names[0])
    san: list[x509.GeneralName] = [x509.DNSName(name) for name in names]
    if email:
        san = [x509.RFC822Name(email)]
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(pki.ca.subject if pki else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(days=1))
        .not_valid_after(not_after or now + dt.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
    )
    cert = builder.sign(pki.ca_key if pki else key, hashes.SHA256())
    return cert, key


def write_chain(
    directory: Path, stem: str, chain: list[x509.Certificate], key: ec.EllipticCurvePrivateKey
) -> tuple[Path, Path]:
    chain_path = directory / f"{stem}.chain.pem"
    key_path = directory / f"{stem}.key.pem"
    chain_path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(key_path, 0o600)
    return chain_path, key_path


def spki_sha256(cert: x509.Certificate) -> str:
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def cert_sha256(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def smimea_label(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{hashlib.sha256(local.encode()).digest()[:28].hex()}._smimecert.{domain}."


# -- servers --------------------------------------------------------------------------------------


def wait_for_dns(
    address: str,
    port: int,
    zone: str,
    process: subprocess.Popen[bytes],
    log: Path,
    prefix: list[str] | None = None,
) -> None:
    """Wait until the server answers a SOA query; inside a namespace, ask with dig there."""
    request = dns.message.make_query(zone, dns.rdatatype.SOA)
    for _ in range(100):
        if process.poll() is not None:
            raise RuntimeError(f"server on {address}:{port} exited: {log.read_text()[-2000:]}")
        if prefix:
            completed = subprocess.run(
                [
                    *prefix,
                    "dig",
                    "+time=1",
                    "+tries=1",
                    "-p",
                    str(port),
                    f"@{address}",
                    zone,
                    "SOA",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if completed.returncode == 0 and "status:" in completed.stdout:
                return
            time.sleep(0.1)
            continue
        try:
            dns.query.udp(request, address, port=port, timeout=0.2)
            return
        except (dns.exception.Timeout, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"server on {address}:{port} did not answer: {log.read_text()[-2000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_knot(
    directory: Path,
    address: str,
    port: int,
    zones: dict[str, str],
    prefix: list[str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start knotd on ``address``:``port`` serving ``zones`` (name -> signed zone text) as is.

    Knot rather than named serves here because named listens only on addresses configured on
    an interface, and the lab uses 127.53.0.x addresses that exist only through the 127/8
    loopback route. The zones are still signed by BIND's dnssec-signzone.
    """
    directory.mkdir(parents=True, exist_ok=True)
    zone_blocks = []
    for index, (zone, text) in enumerate(zones.items()):
        path = directory / f"zone{index}.db"
        path.write_text(text)
        zone_blocks.append(f"  - domain: {zone}\n    file: {path}")
    config = directory / "knot.conf"
    config.write_text(
        f"""server:
    listen: {address}@{port}
    rundir: {directory}
database:
    storage: {directory}
template:
  - id: default
    storage: {directory}
    semantic-checks: off
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    dnssec-signing: off
zone:
{chr(10).join(zone_blocks)}
log:
  - target: stdout
    any: info
"""
    )
    log = directory / "knotd.log"
    command = [*(prefix or []), "knotd", "-c", str(config)]
    with log.open("wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
    wait_for_dns(address, port, next(iter(zones)), process, log, prefix)
    return process


def start_unbound(
    directory: Path,
    address: str,
    port: int,
    stubs: dict[str, list[str]],
    stub_port: int,
    anchor_text: str,
    prefix: list[str] | None = None,
    validating: bool = True,
) -> subprocess.Popen[bytes]:
    """Start Unbound, validating unless ``validating`` is false, that reaches each zone of
    ``stubs`` through a stub-zone.

    Every zone cut needs its own stub-zone: a referral's glue carries no port, so Unbound
    would otherwise ask the child's servers on port 53.
    """
    directory.mkdir(parents=True, exist_ok=True)
    anchor = directory / "anchor.ds"
    anchor.write_text(anchor_text + "\n")
    stub_blocks = []
    for zone, addresses in stubs.items():
        lines = [f'stub-zone:\n    name: "{zone}"']
        lines.extend(f"    stub-addr: {a}@{stub_port}" for a in addresses)
        stub_blocks.append("\n".join(lines))
    first = next(iter(stubs))
    modules = "validator iterator" if validating else "iterator"
    config = directory / "unbound.conf"
    config.write_text(
        f"""server:
    interface: {address}
    port: {port}
    do-ip6: no
    do-not-query-localhost: no
    username: ""
    chroot: ""
    directory: "{directory}"
    pidfile: "{directory}/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 1
    val-log-level: 2
    trust-anchor-file: "{anchor}"
    access-control: 127.0.0.0/8 allow
    module-config: "{modules}"
    cache-max-ttl: 0
    local-zone: "{first}" nodefault
remote-control:
    control-enable: no
{chr(10).join(stub_blocks)}
"""
    )
    log = directory / "unbound.log"
    command = [*(prefix or []), "unbound", "-d", "-c", str(config)]
    with log.open("wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
    wait_for_dns(address, port, first, process, log, prefix)
    return process


# -- the lab ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Lab:
    """A signed parent and child zone with MX hosts, a user and the servers that serve them."""

    directory: Path
    port: int
    smtp_port: int
    parent_keys: ZoneKeys
    child_keys: ZoneKeys
    pki: Pki
    mx1_chain: list[x509.Certificate]
    mx1_key: ec.EllipticCurvePrivateKey
    user_cert: x509.Certificate
    processes: list[subprocess.Popen[bytes]] = dataclasses.field(default_factory=list)
    prefix: list[str] = dataclasses.field(default_factory=list)  # e.g. ip netns exec NAME

    def child_body(
        self, *, mx1_tlsa: str | None = None, with_mx2_tlsa: bool = False, smimea: str | None = None
    ) -> str:
        leaf = self.mx1_chain[0]
        tlsa = mx1_tlsa or f"3 1 1 {spki_sha256(leaf)}"
        smimea = smimea or f"3 0 1 {cert_sha256(self.user_cert)}"
        lines = [
            f"{CHILD} NS ns1.{CHILD}",
            f"{CHILD} NS ns2.{CHILD}",
            f"ns1.{CHILD} A {NS1}",
            f"ns2.{CHILD} A {NS2}",
            f"{CHILD} MX 10 mx1.{CHILD}",
            f"mx1.{CHILD} A {MX1}",
            f"mx2.{CHILD} A {MX2}",
            f"alias.{CHILD} CNAME mx1.{CHILD}",
            f"_{self.smtp_port}._tcp.mx1.{CHILD} TLSA {tlsa}",
            f"{smimea_label(USER)} SMIMEA {smimea}",
        ]
        if with_mx2_tlsa:
            lines.append(f"_{self.smtp_port}._tcp.mx2.{CHILD} TLSA {tlsa}")
        return "\n".join(lines)

    def parent_body(self, ds: str | None = None) -> str:
        ds = ds or self.child_keys.ds()
        return "\n".join(
            [
                f"{UNSIGNED} NS ns1.{CHILD}",
                f"{PARENT} NS ns1.{PARENT}",
                f"ns1.{PARENT} A {NS1}",
                f"{CHILD} NS ns1.{CHILD}",
                f"{CHILD} NS ns2.{CHILD}",
                f"ns1.{CHILD} A {NS1}",
                f"ns2.{CHILD} A {NS2}",
                ds,
            ]
        )

    def sign_parent(self, ds: str | None = None, **options: object) -> str:
        return sign_zone(self.directory, self.parent_keys, self.parent_body(ds), **options)  # type: ignore[arg-type]

    def sign_child(self, body: str | None = None, **options: object) -> str:
        return sign_zone(self.directory, self.child_keys, body or self.child_body(), **options)  # type: ignore[arg-type]

    def serve(
        self,
        parent: str,
        child: str,
        child_secondary: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        """Start ns1 (parent, child and ``extra`` zones) and ns2 (child, or ``child_secondary``)
        with knotd."""
        zones = {PARENT: parent, CHILD: child, **(extra or {})}
        self.processes.append(
            start_knot(self.directory / "ns1", NS1, self.port, zones, self.prefix)
        )
        self.processes.append(
            start_knot(
                self.directory / "ns2",
                NS2,
                self.port,
                {CHILD: child_secondary or child},
                self.prefix,
            )
        )

    def start_resolver(
        self, address: str = RESOLVER, port: int | None = None, validating: bool = True
    ) -> None:
        self.processes.append(
            start_unbound(
                self.directory / "unbound",
                address,
                port or self.port,
                {PARENT: [NS1], CHILD: [NS1, NS2], UNSIGNED: [NS1]},
                self.port,
                self.parent_keys.ds(),
                self.prefix,
                validating,
            )
        )

    def anchor_text(self) -> str:
        return self.parent_keys.ds()

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop(process)
        self.processes.clear()


@pytest.fixture(scope="session", name="lab_material")
def lab_material_fixture(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Keys and certificates, generated once per session because key generation is slow."""
    require("knotd", "dnssec-signzone", "dnssec-keygen", "dnssec-dsfromkey")
    directory = tmp_path_factory.mktemp("check-keys")
    pki = make_ca()
    leaf, leaf_key = issue(pki, [f"mx1.{CHILD}".rstrip(".")])
    user_cert, _ = issue(pki, [], email=USER)
    return {
        "parent_keys": generate_keys(directory / "keys", PARENT),
        "child_keys": generate_keys(directory / "keys", CHILD),
        "pki": pki,
        "mx1_chain": [leaf, pki.ca],
        "mx1_key": leaf_key,
        "user_cert": user_cert,
    }


@pytest.fixture(name="lab")
def lab_fixture(tmp_path: Path, lab_material: dict[str, object]) -> Iterator[Lab]:
    port = free_port([NS1, NS2, RESOLVER])
    smtp_port = free_port([MX1, MX2])
    instance = Lab(tmp_path, port, smtp_port, **lab_material)  # type: ignore[arg-type]
    yield instance
    instance.stop()


LabFactory = Callable[..., Lab]
