"""The STARTTLS probe against a real loopback SMTP server, over IPv4 and IPv6, and its errors."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from provisioner.check.probe import probe_starttls
from tests.integration.servers_check import issue, make_ca, write_chain
from tests.integration.smtp_server import SmtpServer

pytestmark = pytest.mark.servers


def free_port(address: str) -> int:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def chain_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    pki = make_ca()
    leaf, key = issue(pki, ["mx.example.test"])
    return write_chain(tmp_path_factory.mktemp("probe"), "mx", [leaf, pki.ca], key)


def test_probe_ipv4_chain(chain_files: tuple[Path, Path]) -> None:
    port = free_port("127.0.0.1")
    with SmtpServer("127.0.0.1", port, *chain_files):
        result = probe_starttls("mx.example.test", "127.0.0.1", port, timeout=5)
    assert result.error is None
    assert result.starttls_offered
    assert [c.subject.rfc4514_string() for c in result.chain] == [
        "CN=mx.example.test",
        "CN=Test Mail CA",
    ]
    assert result.endpoint == f"127.0.0.1:{port}"


def test_probe_ipv6(chain_files: tuple[Path, Path]) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 support")
    try:
        port = free_port("::1")
    except OSError as error:
        pytest.skip(f"no IPv6 loopback: {error}")
    with SmtpServer("::1", port, *chain_files):
        result = probe_starttls("mx.example.test", "::1", port, timeout=5)
    assert result.error is None
    assert len(result.chain) == 2
    assert result.endpoint == f"[::1]:{port}"


def test_probe_without_starttls(chain_files: tuple[Path, Path]) -> None:
    port = free_port("127.0.0.1")
    with SmtpServer("127.0.0.1", port, *chain_files, offer_starttls=False):
        result = probe_starttls("mx.example.test", "127.0.0.1", port, timeout=5)
    assert result.error is None
    assert not result.starttls_offered
    assert result.chain == []


def test_probe_connection_refused() -> None:
    port = free_port("127.0.0.1")
    result = probe_starttls("mx.example.test", "127.0.0.1", port, timeout=5)
    assert result.error is not None
    assert result.error.startswith(f"cannot connect to 127.0.0.1:{port}")


def test_probe_server_closes_after_greeting() -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def greet_and_close() -> None:
        connection, _ = listener.accept()
        connection.sendall(b"220 mx ESMTP\r\n")
        connection.close()

    thread = threading.Thread(target=greet_and_close)
    thread.start()
    try:
        result = probe_starttls("mx.example.test", "127.0.0.1", port, timeout=5)
    finally:
        thread.join(timeout=5)
        listener.close()
    assert result.error is not None
    # Depending on timing, the EHLO meets a closed socket (reset) or an end of file.
    assert result.error.startswith(f"the SMTP session with 127.0.0.1:{port} failed: ")
