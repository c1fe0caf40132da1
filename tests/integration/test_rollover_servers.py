"""KSK (double-DS, double-KSK) and MX certificate rollovers against BIND and Unbound.

BIND serves the parent zone test. and the child example.test. from the zone files that apply
writes (reloaded with rndc); Unbound has the parent's DNSKEY as trust anchor. A thread queries
Unbound throughout both rollovers; no answer may be SERVFAIL. TTLs are a few seconds and the
real clock runs, because waiting for real caches is the point here.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from integration.smtp_server import SmtpServer  # noqa: E402
from model.world import skip_unless_verifier_allows  # noqa: E402

from provisioner.clock import SystemClock  # noqa: E402
from provisioner.errors import ProvisionerError  # noqa: E402
from provisioner.spec.loader import load_spec  # noqa: E402
from provisioner.store.local import LocalStore  # noqa: E402
from provisioner.workflows.apply import apply  # noqa: E402
from provisioner.workflows.rollover import live_engine  # noqa: E402

pytestmark = pytest.mark.servers

for binary in ("named", "rndc", "unbound"):
    if shutil.which(binary) is None:
        pytest.skip(f"{binary} is not installed (Debian bind9, unbound)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            dns.query.udp(
                dns.message.make_query("test.", "SOA"), "127.0.0.1", port=port, timeout=0.5
            )
            return
        except (OSError, dns.exception.Timeout):
            time.sleep(0.2)
    raise AssertionError(f"no DNS server answered on port {port}")


POLICY = (
    "{algorithm: 13, dnskey_ttl: 3, ds_ttl: 4, propagation_delay: 1, "
    "parent_propagation_delay: 1, publish_safety: 1, retire_safety: 1, zsk_lifetime: 0}"
)


def write_spec(folder: Path, rndc_conf: Path, smtp_port: int) -> Path:
    reload = f'["rndc", "-c", "{rndc_conf}", "reload"]'
    text = f"""
version: 1
state: state
output: out
authorities:
  - name: ca
    type: enterprise
    subject: {{common_name: Test CA}}
    key_type: ecdsa-p256
zones:
  - name: test.
    ttl: 2
    soa: {{rname: hostmaster.test, minimum: 2}}
    nameservers: [{{name: ns1.test., addresses: [127.0.0.1]}}]
    dnssec: {POLICY}
    publish: {{backend: zonefile, path: zones/test.zone, reload: {reload}}}
  - name: example.test.
    ttl: 2
    soa: {{rname: hostmaster.example.test, minimum: 2}}
    nameservers: [{{name: ns1.example.test., addresses: [127.0.0.1]}}]
    records:
      - {{name: "@", type: A, value: 127.0.0.1}}
    dnssec: {POLICY}
    publish: {{backend: zonefile, path: zones/example.test.zone, reload: {reload}}}
mail_servers:
  - host: mx1.example.test.
    addresses: [127.0.0.1]
    ports: [{smtp_port}]
    certificate: {{authority: ca}}
    tlsa: [{{usage: 3, selector: 1, matching: 1}}]
    tlsa_ttl: 2
"""
    path = folder / "provisioner.yaml"
    path.write_text(text)
    return path


def start_bind(folder: Path, port: int, control_port: int) -> tuple[subprocess.Popen, Path]:  # type: ignore[type-arg]
    secret = base64.b64encode(os.urandom(32)).decode()
    key = f'key "rk" {{ algorithm hmac-sha256; secret "{secret}"; }};\n'
    (folder / "named.conf").write_text(
        key
        + f"""
controls {{ inet 127.0.0.1 port {control_port} allow {{ 127.0.0.1; }} keys {{ "rk"; }}; }};
options {{
    directory "{folder}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    pid-file "{folder}/named.pid";
    recursion no;
    dnssec-validation no;
}};
zone "test." {{ type primary; file "{folder}/zones/test.zone"; }};
zone "example.test." {{ type primary; file "{folder}/zones/example.test.zone"; }};
"""
    )
    rndc_conf = folder / "rndc.conf"
    rndc_conf.write_text(
        key
        + 'options { default-key "rk"; default-server 127.0.0.1; '
        + f"default-port {control_port}; }};\n"
    )
    process = subprocess.Popen(
        ["named", "-g", "-c", str(folder / "named.conf")],
        stdout=(folder / "named.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    return process, rndc_conf


def start_unbound(folder: Path, port: int, dns_port: int) -> subprocess.Popen:  # type: ignore[type-arg]
    zone = (folder / "zones" / "test.zone").read_text().splitlines()
    anchors = [line for line in zone if " DNSKEY 257 " in line]
    (folder / "anchor").write_text("\n".join(anchors) + "\n")
    (folder / "unbound.conf").write_text(
        f"""
server:
    interface: 127.0.0.1
    port: {port}
    do-ip6: no
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "{folder}"
    pidfile: "{folder}/unbound.pid"
    use-syslog: no
    logfile: "{folder}/unbound.log"
    verbosity: 1
    val-log-level: 2
    do-not-query-localhost: no
    qname-minimisation: no
    trust-anchor-file: "{folder}/anchor"
stub-zone:
    name: "test."
    stub-addr: 127.0.0.1@{dns_port}
stub-zone:
    name: "example.test."
    stub-addr: 127.0.0.1@{dns_port}
"""
    )
    return subprocess.Popen(["unbound", "-d", "-c", str(folder / "unbound.conf")])


class Prober(threading.Thread):
    """Query the validating resolver in a loop and count SERVFAIL answers."""

    QUESTIONS = [
        ("example.test.", "SOA"),
        ("example.test.", "DNSKEY"),
        ("example.test.", "A"),
        ("nx.example.test.", "A"),
    ]

    def __init__(self, port: int, tlsa_owner: str) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.questions = [*self.QUESTIONS, (tlsa_owner, "TLSA")]
        self.stopping = threading.Event()
        self.answers = 0
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            for name, rdtype in self.questions:
                query = dns.message.make_query(name, rdtype, want_dnssec=True)
                try:
                    response = dns.query.udp(query, "127.0.0.1", port=self.port, timeout=2)
                except (OSError, dns.exception.Timeout) as error:
                    self.failures.append(f"{name} {rdtype}: {error}")
                    continue
                self.answers += 1
                if response.rcode() == dns.rcode.SERVFAIL:
                    self.failures.append(f"{name} {rdtype}: SERVFAIL at {time.time():.1f}")
            time.sleep(0.2)


@pytest.mark.parametrize("method", ["double-ds", "double-ksk"])
def test_ksk_and_mx_rollovers_no_servfail(tmp_path: Path, method: str) -> None:
    skip_unless_verifier_allows(f"ksk-{method}")
    dns_port, control_port, unbound_port, smtp_port = (free_port() for _ in range(4))
    (tmp_path / "zones").mkdir()
    clock = SystemClock()
    named, rndc_conf = start_bind(tmp_path, dns_port, control_port)
    spec_path = write_spec(tmp_path, rndc_conf, smtp_port)
    spec = load_spec(spec_path)
    # named needs the zone files before it serves them: publish first, then reload. The first
    # reload may run before named listens, so its failure is expected.
    with LocalStore(spec.state_dir()) as store, contextlib.suppress(ProvisionerError):
        apply(spec, store, clock)
    time.sleep(1)
    subprocess.run(["rndc", "-c", str(rndc_conf), "reload"], check=False, capture_output=True)
    wait_for_port(dns_port)
    unbound = start_unbound(tmp_path, unbound_port, dns_port)
    try:
        with LocalStore(spec.state_dir()) as store:
            record = store.current_certificate("server", "mx1.example.test.")
            assert record is not None and record.key_id is not None
            chain = store.certificate_path(record.id)
            key = store.key_path(record.key_id)
        with SmtpServer("127.0.0.1", smtp_port, chain, key) as smtp:
            prober = Prober(unbound_port, f"_{smtp_port}._tcp.mx1.example.test.")
            time.sleep(1)
            prober.start()

            def deploy(spec, store, server, new):  # type: ignore[no-untyped-def]
                assert new.key_id is not None
                smtp._server.context.load_cert_chain(
                    str(store.certificate_path(new.id)), str(store.key_path(new.key_id))
                )

            with LocalStore(spec.state_dir()) as store:
                engine = live_engine(spec, store, clock, dns_port=dns_port)
                engine.deployer = deploy
                ksk = engine.start_dnssec("example.test.", "ksk", method=method)
                mx = engine.start_mx("mx1.example.test.")
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline:
                with LocalStore(spec.state_dir()) as store:
                    engine = live_engine(spec, store, clock, dns_port=dns_port)
                    engine.deployer = deploy
                    report = engine.run()
                    states = {s.id: s.state for s in engine.status()}
                assert report.errors == []
                if states[ksk] == "complete" and states[mx] == "complete":
                    break
                time.sleep(0.5)
            time.sleep(3)
            prober.stopping.set()
            prober.join(timeout=10)
            assert states[ksk] == "complete", states
            assert states[mx] == "complete", states
            assert prober.answers > 50
            assert prober.failures == []
    finally:
        unbound.terminate()
        named.terminate()
        unbound.wait(timeout=10)
        named.wait(timeout=10)
