"""Start and stop real BIND, Knot and Unbound servers on 127.0.0.1 for tests.

Public API (reused by the rfc2136, lab and rollover tests):

    TsigKeyConfig.generate(name, algorithm="hmac-sha256")  a fresh key; .write_key_file(path)
    ZoneConfig(name, records=..., update_key=..., transfer_key=..., signing=..., nsec3=...,
               policy=...)
    start_bind(directory, zones=[...], keys=[...], extra_policies=[...], extra_config=...)
    start_knot(directory, zones=[...], keys=[...], extra_policies=[...], extra_config=...)
    start_unbound(directory, stubs={zone: (address, port)}, trust_anchors=[...]) -> RunningServer
    RunningServer: .address .port .directory .stop() .reload() .query(...)
        .control(*args): rndc (BIND) or knotc (Knot) with ``args``
        .soa_serial(zone) .log_text() .nsupdate(script, key) (BIND) / .knsupdate(...) (Knot)

Configuration comes from templates/servers/*.j2, the same files users can start from. Every
server runs as the current user with all its files under ``directory``; a port free for TCP
and UDP is chosen at start. Callers stop servers in fixture teardown (``stop`` is idempotent).
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import jinja2
import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates" / "servers"
LOCALHOST = "127.0.0.1"
START_TIMEOUT = 30.0


def require(*binaries: str) -> None:
    """Skip the calling test when a server binary is missing."""
    for binary in binaries:
        if shutil.which(binary) is None:
            pytest.skip(
                f"{binary} is not installed (Debian packages bind9, bind9-utils, "
                "bind9-dnsutils, knot, knot-dnsutils, unbound)"
            )


def free_port(address: str = LOCALHOST) -> int:
    """Return a port that is free for both TCP and UDP on ``address``."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((address, 0))
            port = int(probe.getsockname()[1])
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.bind((address, port))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no port free for TCP and UDP on {address}")


@dataclass(frozen=True)
class TsigKeyConfig:
    """A TSIG key as servers and BIND key files write it (secret in base64)."""

    name: str
    algorithm: str = "hmac-sha256"
    secret: str = field(default="", repr=False)

    @classmethod
    def generate(cls, name: str, algorithm: str = "hmac-sha256") -> TsigKeyConfig:
        size = {"hmac-sha384": 48, "hmac-sha512": 64}.get(algorithm, 32)
        return cls(name, algorithm, base64.b64encode(secrets.token_bytes(size)).decode())

    def key_file_text(self) -> str:
        return (
            f'key "{self.name}" {{\n\talgorithm {self.algorithm};\n\tsecret "{self.secret}";\n}};\n'
        )

    def write_key_file(self, path: Path) -> Path:
        path.write_text(self.key_file_text())
        path.chmod(0o600)
        return path


@dataclass
class ZoneConfig:
    """One zone a test server serves.

    ``records`` are zone-file lines with absolute owner names (an SOA and NS are added when
    missing). ``signing`` makes the server sign the zone (BIND dnssec-policy, Knot automatic
    signing); ``nsec3`` picks NSEC3 instead of NSEC for that, and ``policy`` names another
    policy (one of ``extra_policies`` of start_bind or start_knot). ``serial_policy`` is the
    server's serial-update-method (BIND) or serial-policy (Knot); the default is increment.
    """

    name: str
    records: Sequence[str] = ()
    update_key: str | None = None
    transfer_key: str | None = None
    signing: bool = False
    nsec3: bool = False
    policy: str | None = None
    serial_policy: str | None = None

    @property
    def origin(self) -> str:
        return dns.name.from_text(self.name).to_text()

    def zone_text(self) -> str:
        origin = self.origin
        lines = [f"$ORIGIN {origin}", "$TTL 3600"]
        if not any(" SOA " in line for line in self.records):
            lines.append(
                f"{origin} 3600 IN SOA ns1.{origin} hostmaster.{origin} 1 7200 3600 1209600 3600"
            )
        if not any(" NS " in line for line in self.records):
            lines.append(f"{origin} 3600 IN NS ns1.{origin}")
            lines.append(f"ns1.{origin} 3600 IN A 127.0.0.1")
        lines.extend(self.records)
        return "\n".join(lines) + "\n"


class RunningServer:
    """A server process started by this module, with helpers to drive and inspect it."""

    def __init__(
        self,
        kind: str,
        process: subprocess.Popen[bytes],
        address: str,
        port: int,
        directory: Path,
        config: Path,
        log: Path,
        zones: Sequence[ZoneConfig] = (),
        keys: Sequence[TsigKeyConfig] = (),
        control_command: Sequence[str] = (),
    ) -> None:
        self.kind = kind
        self.process = process
        self.address = address
        self.port = port
        self.directory = directory
        self.config = config
        self.log = log
        self.zones = list(zones)
        self.keys = {key.name: key for key in keys}
        self.control_command = list(control_command)

    def __repr__(self) -> str:
        return f"<{self.kind} on {self.address}@{self.port}>"

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def reload(self) -> None:
        """Make the server read its configuration and zone files again (SIGHUP)."""
        self.process.send_signal(signal.SIGHUP)
        time.sleep(0.5)

    def control(self, *args: str) -> str:
        """Run rndc (BIND) or knotc (Knot) with ``args`` against this server; return the output."""
        if not self.control_command:
            raise NotImplementedError(f"{self.kind} has no control channel here")
        command = [*self.control_command, *args]
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command[:1] + list(args))} failed: "
                f"{(completed.stderr or completed.stdout).strip()}"
            )
        return completed.stdout

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def query(
        self, name: str, rdtype: str, *, tcp: bool = False, dnssec: bool = False
    ) -> dns.message.Message:
        query = dns.message.make_query(name, rdtype, want_dnssec=dnssec)
        if self.kind == "unbound":
            query.flags |= dns.flags.RD
        send = dns.query.tcp if tcp else dns.query.udp
        return send(query, self.address, port=self.port, timeout=5)

    def soa_serial(self, zone: str) -> int:
        response = self.query(zone, "SOA", tcp=True)
        return int(response.answer[0][0].serial)

    def send_update_script(
        self, lines: Iterable[str], key: TsigKeyConfig | None = None, zone: str | None = None
    ) -> str:
        """Send an nsupdate (BIND) or knsupdate (Knot) script of ``lines`` to this server.

        The script gets the server, zone (default: the first zone served) and key lines and a
        final ``send``; returns the tool's output.
        """
        tool = "nsupdate" if self.kind == "bind" else "knsupdate"
        script = [f"server {self.address} {self.port}"]
        zone = zone or (self.zones[0].origin if self.zones else None)
        if zone is not None:
            script.append(f"zone {zone}")
        if key is not None:
            script.append(f"key {key.algorithm}:{key.name} {key.secret}")
        script.extend(lines)
        script.append("send")
        completed = subprocess.run(
            [tool], input="\n".join(script) + "\n", capture_output=True, text=True, check=False
        )
        if completed.returncode != 0:
            raise RuntimeError(f"{tool} failed: {completed.stdout} {completed.stderr}".strip())
        return completed.stdout


def _render(template: str, target: Path, **values: object) -> Path:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    target.write_text(environment.get_template(template).render(**values))
    return target


def _wait_until_serving(server: RunningServer, zone: str | None) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last_error = "no answer"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.kind} exited with status {server.process.returncode}:\n"
                f"{server.log_text()[-3000:]}"
            )
        try:
            if zone is None:
                response = server.query(".", "NS")
                return
            response = server.query(zone, "SOA", tcp=True)
            if response.rcode() == dns.rcode.NOERROR and response.answer:
                return
            last_error = dns.rcode.to_text(response.rcode())
        except (OSError, dns.exception.DNSException) as error:
            last_error = str(error) or type(error).__name__
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(
        f"{server.kind} on {server.address}@{server.port} did not serve {zone}: {last_error}\n"
        f"{server.log_text()[-3000:]}"
    )


def _launch(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        return subprocess.Popen(
            command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )


def start_bind(
    directory: Path,
    *,
    zones: Sequence[ZoneConfig],
    keys: Sequence[TsigKeyConfig] = (),
    address: str = LOCALHOST,
    port: int | None = None,
    extra_policies: Sequence[str] = (),
    extra_config: str = "",
) -> RunningServer:
    """Start named (BIND 9.18) serving ``zones``; a zone with ``signing`` has dnssec-policy.

    ``extra_policies`` are complete ``dnssec-policy "name" { ... };`` statements that zones
    can name in ``policy``. rndc reaches the server through ``control()``.
    """
    require("named", "rndc")
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port(address)
    control_key = TsigKeyConfig.generate("rndc-key")
    control = {
        "port": free_port(LOCALHOST),
        "key_name": control_key.name,
        "algorithm": control_key.algorithm,
        "secret": control_key.secret,
    }
    rndc_config = directory / "rndc.conf"
    rndc_config.write_text(
        control_key.key_file_text()
        + f'options {{ default-key "{control_key.name}"; default-server 127.0.0.1; '
        + f"default-port {control['port']}; }};\n"
    )
    rndc_config.chmod(0o600)
    zone_values = []
    for zone in zones:
        path = directory / f"{zone.origin}db"
        path.write_text(zone.zone_text())
        policy = None
        if zone.signing:
            policy = zone.policy or ("csk-nsec3" if zone.nsec3 else "csk")
        zone_values.append(
            {
                "name": zone.origin,
                "file": str(path),
                "update_key": zone.update_key,
                "transfer_key": zone.transfer_key,
                "dnssec_policy": policy,
                "serial_policy": zone.serial_policy,
            }
        )
    policies = [
        {"name": "csk", "algorithm": "ecdsap256sha256", "nsec3": False},
        {"name": "csk-nsec3", "algorithm": "ecdsap256sha256", "nsec3": True},
    ]
    config = _render(
        "bind-primary.conf.j2",
        directory / "named.conf",
        directory=str(directory),
        address=address,
        port=port,
        keys=[vars(key) for key in keys],
        zones=zone_values,
        policies=policies,
        extra_policies=list(extra_policies),
        control=control,
        extra_config=extra_config,
    )
    log = directory / "named.log"
    process = _launch(["named", "-g", "-c", str(config), "-n", "1"], log)
    rndc = ["rndc", "-c", str(rndc_config)]
    server = RunningServer(
        "bind", process, address, port, directory, config, log, zones, keys, rndc
    )
    _wait_for_zones(server, zones)
    return server


def start_knot(
    directory: Path,
    *,
    zones: Sequence[ZoneConfig],
    keys: Sequence[TsigKeyConfig] = (),
    address: str = LOCALHOST,
    port: int | None = None,
    extra_policies: Sequence[Mapping[str, object]] = (),
    extra_config: str = "",
) -> RunningServer:
    """Start knotd (Knot DNS 3.2) serving ``zones``; ``signing`` turns automatic signing on.

    ``extra_policies`` are Knot policy items (``{"id": "slow", "zsk-lifetime": "30d"}``)
    that zones can name in ``policy``. knotc reaches the server through ``control()``.
    """
    require("knotd")
    directory.mkdir(parents=True, exist_ok=True)
    for folder in ("run", "db", "zones"):
        (directory / folder).mkdir(exist_ok=True)
    port = port or free_port(address)
    zone_values = []
    for zone in zones:
        path = directory / "zones" / f"{zone.origin}zone"
        path.write_text(zone.zone_text())
        zone_values.append(
            {
                "name": zone.origin,
                "file": str(path),
                "update_key": zone.update_key,
                "transfer_key": zone.transfer_key,
                "signing": zone.signing,
                "nsec3": zone.nsec3,
                "policy": zone.policy,
                "serial_policy": zone.serial_policy,
            }
        )
    config = _render(
        "knot-primary.conf.j2",
        directory / "knot.conf",
        directory=str(directory),
        address=address,
        port=port,
        keys=[vars(key) for key in keys],
        zones=zone_values,
        extra_policies=[dict(policy) for policy in extra_policies],
        extra_config=extra_config,
    )
    log = directory / "knotd.log"
    process = _launch(["knotd", "-c", str(config)], log)
    knotc = ["knotc", "-c", str(config)]
    server = RunningServer(
        "knot", process, address, port, directory, config, log, zones, keys, knotc
    )
    _wait_for_zones(server, zones)
    return server


def _wait_for_zones(server: RunningServer, zones: Sequence[ZoneConfig]) -> None:
    for zone in zones or [None]:  # type: ignore[list-item]
        _wait_until_serving(server, zone.origin if zone else None)
        if zone is not None and zone.signing:
            _wait_for_dnskey(server, zone.origin)


def _wait_for_dnskey(server: RunningServer, zone: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        response = server.query(zone, "DNSKEY", tcp=True)
        if response.answer:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{server.kind} did not sign {zone}:\n{server.log_text()[-3000:]}")


def start_unbound(
    directory: Path,
    *,
    stubs: Mapping[str, tuple[str, int] | Sequence[tuple[str, int]]],
    trust_anchors: Sequence[str],
    address: str = LOCALHOST,
    port: int | None = None,
) -> RunningServer:
    """Start a validating Unbound that reaches each zone of ``stubs`` at (address, port).

    ``trust_anchors`` are DS or DNSKEY records in zone-file format, such as
    "example.test. IN DS 12345 13 2 ABCD...".
    """
    require("unbound")
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port(address)
    stub_values = []
    for name, where in stubs.items():
        targets = [where] if isinstance(where[0], str) else list(where)  # type: ignore[list-item]
        stub_values.append(
            {
                "name": dns.name.from_text(name).to_text(),
                "addresses": [f"{host}@{target_port}" for host, target_port in targets],
            }
        )
    config = _render(
        "unbound-validator.conf.j2",
        directory / "unbound.conf",
        directory=str(directory),
        address=address,
        port=port,
        stubs=stub_values,
        trust_anchors=[" ".join(anchor.split()) for anchor in trust_anchors],
    )
    log = directory / "unbound.log"
    process = _launch(["unbound", "-d", "-c", str(config)], log)
    server = RunningServer("unbound", process, address, port, directory, config, log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"unbound exited:\n{server.log_text()[-3000:]}")
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"unbound did not start:\n{server.log_text()[-3000:]}")


def environment_without_proxies() -> dict[str, str]:
    """Return the environment for a provisioner subprocess run by a test."""
    return {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
