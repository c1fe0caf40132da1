"""A signed zone served by real BIND validates in a real Unbound, and a broken RRSIG does not.

BIND serves the zone file as a plain primary on 127.0.0.1; Unbound on another port sends
example.com to it as a stub zone and holds the KSK's DS as its trust anchor.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from provisioner.dnssec.keys import KSK_FLAGS, ZSK_FLAGS, generate_key, make_ds
from provisioner.dnssec.policy import DnssecPolicy
from provisioner.dnssec.signer import KeyAssignment, KeyRole, ZoneSigner
from provisioner.zone.model import ZoneData

pytestmark = pytest.mark.servers

ORIGIN = "example.com."
TLSA_OWNER = "_25._tcp.mx1.example.com."
SMIMEA_OWNER = hashlib.sha256(b"alice").hexdigest()[:56] + "._smimecert.example.com."
ZONE = f"""
@ 3600 IN SOA ns1 hostmaster 2026120401 7200 3600 1209600 300
@ 3600 IN NS ns1
@ 3600 IN MX 10 mx1
ns1 3600 IN A 127.0.0.1
mx1 3600 IN A 192.0.2.25
{TLSA_OWNER} 3600 IN TLSA 3 1 1 {"ab" * 32}
{SMIMEA_OWNER} 3600 IN SMIMEA 3 1 1 {"cd" * 32}
sub 3600 IN NS ns.sub
sub 3600 IN DS 12345 13 2 {"ef" * 32}
ns.sub 3600 IN A 192.0.2.53
"""


def free_port() -> int:
    """Return a port that is free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port on 127.0.0.1")


def wait_for_answer(port: int, name: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    query = dns.message.make_query(name, "SOA")
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5)
            return
        except (dns.exception.Timeout, OSError):
            time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not answer: {log.read_text()[-2000:]}")


class Servers:
    """BIND and Unbound started on free ports, with configuration in a temporary directory."""

    def __init__(self, directory: Path, trust_anchor: str) -> None:
        self.directory = directory
        self.trust_anchor = trust_anchor
        self.bind_port = free_port()
        self.unbound_port = free_port()
        self.named: subprocess.Popen[bytes] | None = None
        self.unbound: subprocess.Popen[bytes] | None = None
        self.zone_file = directory / "example.com.zone"

    def start_named(self) -> None:
        config = self.directory / "named.conf"
        config.write_text(f"""
options {{
    directory "{self.directory}";
    listen-on port {self.bind_port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    pid-file "{self.directory}/named.pid";
    session-keyfile "{self.directory}/session.key";
    recursion no;
    dnssec-validation no;
    allow-query {{ any; }};
}};
controls {{ }};
zone "example.com" {{ type primary; file "{self.zone_file}"; }};
""")
        log = self.directory / "named.log"
        with log.open("ab") as output:
            self.named = subprocess.Popen(
                ["named", "-g", "-n", "1", "-c", str(config)], stdout=output, stderr=output
            )
        wait_for_answer(self.bind_port, ORIGIN, self.named, log)

    def start_unbound(self) -> None:
        config = self.directory / "unbound.conf"
        config.write_text(f"""
server:
    interface: 127.0.0.1
    port: {self.unbound_port}
    do-ip6: no
    do-not-query-localhost: no
    module-config: "validator iterator"
    chroot: ""
    username: ""
    pidfile: ""
    directory: "{self.directory}"
    use-syslog: no
    logfile: ""
    verbosity: 1
    val-log-level: 2
    qname-minimisation: no
    trust-anchor: "{self.trust_anchor}"
stub-zone:
    name: "example.com"
    stub-addr: 127.0.0.1@{self.bind_port}
remote-control:
    control-enable: no
""")
        log = self.directory / "unbound.log"
        with log.open("ab") as output:
            self.unbound = subprocess.Popen(
                ["unbound", "-d", "-c", str(config)], stdout=output, stderr=output
            )
        wait_for_answer(self.unbound_port, ORIGIN, self.unbound, log)

    def restart(self) -> None:
        self.stop()
        self.start_named()
        self.start_unbound()

    def stop(self) -> None:
        for process in (self.unbound, self.named):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.named = None
        self.unbound = None

    def resolve(self, name: str, rdtype: str) -> dns.message.Message:
        query = dns.message.make_query(name, rdtype, want_dnssec=True)
        return dns.query.udp(query, "127.0.0.1", port=self.unbound_port, timeout=10)


def signed_zone() -> tuple[ZoneData, str]:
    ksk = generate_key(13, KSK_FLAGS)
    zsk = generate_key(13, ZSK_FLAGS)
    signer = ZoneSigner(
        [KeyAssignment(ksk, KeyRole.KSK), KeyAssignment(zsk, KeyRole.ZSK)],
        DnssecPolicy(algorithm=13, denial="nsec3"),
    )
    # The servers run on the real clock, so the zone is signed for now.
    signed = signer.sign(ZoneData.from_text(ZONE, ORIGIN), dt.datetime.now(dt.UTC))
    trust_anchor = f"{ORIGIN} DS {make_ds(ORIGIN, ksk, 2).to_text()}"
    return signed.zone, trust_anchor


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[Servers, ZoneData]]:
    for binary in ("named", "unbound"):
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} is not installed")
    zone, trust_anchor = signed_zone()
    running = Servers(tmp_path, trust_anchor)
    running.zone_file.write_text(zone.to_text())
    try:
        running.start_named()
        running.start_unbound()
        yield running, zone
    finally:
        running.stop()


def test_tlsa_and_smimea_validate_then_fail_when_broken(
    servers: tuple[Servers, ZoneData],
) -> None:
    running, zone = servers
    for owner, rdtype in ((TLSA_OWNER, "TLSA"), (SMIMEA_OWNER, "SMIMEA")):
        response = running.resolve(owner, rdtype)
        assert response.rcode() == dns.rcode.NOERROR, response
        assert response.flags & dns.flags.AD, f"{owner} {rdtype} is not validated: {response}"
        assert (
            response.get_rrset(
                response.answer,
                dns.name.from_text(owner),
                dns.rdataclass.IN,
                dns.rdatatype.from_text(rdtype),
            )
            is not None
        )

    # Break one bit of the TLSA signature; the resolver must then refuse the answer.
    key = (dns.name.from_text(TLSA_OWNER), dns.rdatatype.RRSIG, dns.rdatatype.TLSA)
    sigs = zone.rrsets[key]
    first = next(iter(sigs))
    broken = bytearray(first.signature)
    broken[10] ^= 0x01
    replacement = dns.rrset.RRset(key[0], sigs.rdclass, dns.rdatatype.RRSIG, dns.rdatatype.TLSA)
    replacement.add(first.replace(signature=bytes(broken)), sigs.ttl)
    zone.rrsets[key] = replacement
    running.zone_file.write_text(zone.to_text())
    running.restart()

    assert running.resolve(TLSA_OWNER, "TLSA").rcode() == dns.rcode.SERVFAIL
    smimea = running.resolve(SMIMEA_OWNER, "SMIMEA")
    assert smimea.rcode() == dns.rcode.NOERROR
    assert smimea.flags & dns.flags.AD
