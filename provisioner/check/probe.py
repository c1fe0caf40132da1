"""SMTP STARTTLS probe: connect, EHLO, STARTTLS, and fetch the full certificate chain.

The TLS handshake uses pyOpenSSL because ``ssl`` in Python 3.11 returns only the leaf
certificate of an unverified peer, and DANE-TA(2) needs the whole presented chain. No
certificate verification happens here: the chain is judged against TLSA records afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import select
import socket
import time

from cryptography import x509
from OpenSSL import SSL

log = logging.getLogger(__name__)

MAX_REPLY_LINES = 100


@dataclasses.dataclass
class ProbeResult:
    """The outcome of one STARTTLS connection.

    ``error`` is set when the probe could not complete. ``starttls_offered`` is False when the
    server's EHLO reply lacks STARTTLS, and then ``chain`` is empty.
    """

    host: str
    address: str
    port: int
    starttls_offered: bool = False
    chain: list[x509.Certificate] = dataclasses.field(default_factory=list)
    tls_version: str | None = None
    error: str | None = None

    @property
    def endpoint(self) -> str:
        address = f"[{self.address}]" if ":" in self.address else self.address
        return f"{address}:{self.port}"


class _SmtpError(Exception):
    pass


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def line(self) -> bytes:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise _SmtpError("the server closed the connection")
            self.buffer += chunk
            if len(self.buffer) > 65536:
                raise _SmtpError("the server sent a line longer than 64 KiB")
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.rstrip(b"\r")

    def reply(self) -> tuple[int, list[str]]:
        lines: list[str] = []
        for _ in range(MAX_REPLY_LINES):
            raw = self.line()
            text = raw.decode("utf-8", "replace")
            if len(text) < 3 or not text[:3].isdigit():
                raise _SmtpError(f"invalid SMTP reply line {text[:80]!r}")
            lines.append(text[4:])
            if len(text) == 3 or text[3] == " ":
                return int(text[:3]), lines
        raise _SmtpError(f"SMTP reply longer than {MAX_REPLY_LINES} lines")


def _handshake(connection: SSL.Connection, sock: socket.socket, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection.do_handshake()
            return
        except SSL.WantReadError:
            wait_read, wait_write = [sock], []
        except SSL.WantWriteError:
            wait_read, wait_write = [], [sock]
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the TLS handshake timed out")
        ready = select.select(wait_read, wait_write, [], remaining)
        if not any(ready):
            raise TimeoutError("the TLS handshake timed out")


def probe_starttls(
    host: str,
    address: str,
    port: int = 25,
    *,
    timeout: float = 10.0,
    helo_name: str = "provisioner-check.invalid",
) -> ProbeResult:
    """Connect to ``address``:``port``, EHLO, STARTTLS with SNI ``host``, and collect the chain."""
    result = ProbeResult(host.rstrip("."), address, port)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as error:
        result.error = f"cannot create a socket for {result.endpoint}: {error.strerror}"
        return result
    try:
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
        except OSError as error:
            result.error = f"cannot connect to {result.endpoint}: {error.strerror or error}"
            return result
        reader = _Reader(sock)
        code, lines = reader.reply()
        if code != 220:
            result.error = f"the server greeted with {code} {' '.join(lines)[:200]}"
            return result
        sock.sendall(f"EHLO {helo_name}\r\n".encode())
        code, lines = reader.reply()
        if code != 250:
            result.error = f"EHLO was rejected with {code} {' '.join(lines)[:200]}"
            return result
        keywords = {line.split()[0].upper() for line in lines[1:] if line.split()}
        if "STARTTLS" not in keywords:
            sock.sendall(b"QUIT\r\n")
            return result
        result.starttls_offered = True
        sock.sendall(b"STARTTLS\r\n")
        code, lines = reader.reply()
        if code != 220:
            result.error = f"STARTTLS was rejected with {code} {' '.join(lines)[:200]}"
            return result
        if reader.buffer:
            result.error = "the server sent data after its STARTTLS reply (possible injection)"
            return result
        context = SSL.Context(SSL.TLS_CLIENT_METHOD)
        context.set_verify(SSL.VERIFY_NONE, lambda *_: True)
        connection = SSL.Connection(context, sock)
        connection.set_tlsext_host_name(result.host.encode("idna"))
        connection.set_connect_state()
        sock.setblocking(False)
        _handshake(connection, sock, timeout)
        peer_chain = connection.get_peer_cert_chain() or []
        result.chain = [cert.to_cryptography() for cert in peer_chain]
        result.tls_version = connection.get_protocol_version_name()
        if not result.chain:
            leaf = connection.get_peer_certificate()
            if leaf is not None:
                result.chain = [leaf.to_cryptography()]
        with contextlib.suppress(SSL.Error):
            connection.shutdown()
    except (OSError, TimeoutError) as error:
        result.error = f"the SMTP session with {result.endpoint} failed: {error}"
    except _SmtpError as error:
        result.error = f"the SMTP session with {result.endpoint} failed: {error}"
    except SSL.Error as error:
        result.error = f"the TLS handshake with {result.endpoint} failed: {error}"
    finally:
        sock.close()
    log.debug("probe %s %s: %s", host, result.endpoint, result.error or "ok")
    return result
