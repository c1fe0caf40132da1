"""A small SMTP server with STARTTLS for the check tests (or without STARTTLS).

It answers EHLO, STARTTLS, MAIL, RCPT, RSET, NOOP and QUIT, which is all that the provisioner
probe, posttls-finger and swaks need to see a certificate chain. It runs in a thread of the
test process (``SmtpServer``) or as a script, for use inside a network namespace:

    python smtp_server.py ADDRESS PORT CHAIN_PEM KEY_PEM [--no-starttls]
"""

from __future__ import annotations

import socket
import socketserver
import ssl
import sys
import threading
from pathlib import Path


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def _send(self, text: str) -> None:
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        self._send("220 mx.test ESMTP provisioner-test")
        tls_active = False
        while True:
            try:
                line = self.rfile.readline(4096)
            except (OSError, ssl.SSLError):
                return
            if not line:
                return
            command = line.decode(errors="replace").strip().upper()
            verb = command.split(" ", 1)[0]
            if verb in ("EHLO", "HELO"):
                extensions = ["PIPELINING", "SIZE 10240000", "8BITMIME"]
                if self.server.offer_starttls and not tls_active:
                    extensions.append("STARTTLS")
                self._send("250-mx.test")
                for extension in extensions[:-1]:
                    self._send(f"250-{extension}")
                self._send(f"250 {extensions[-1]}")
            elif verb == "STARTTLS" and self.server.offer_starttls and not tls_active:
                self._send("220 2.0.0 Ready to start TLS")
                try:
                    tls = self.server.context.wrap_socket(self.connection, server_side=True)
                except (OSError, ssl.SSLError):
                    return
                self.connection = tls
                self.request = tls
                self.rfile = tls.makefile("rb")
                self.wfile = tls.makefile("wb")
                tls_active = True
            elif verb == "QUIT":
                self._send("221 2.0.0 Bye")
                return
            elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                self._send("250 2.0.0 Ok")
            else:
                self._send("502 5.5.2 Command not implemented")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext, offer: bool) -> None:
        self.context = context
        self.offer_starttls = offer
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        super().__init__(address, _Handler)


class SmtpServer:
    """An SMTP server on ``address``:``port`` presenting ``chain`` (PEM, leaf first)."""

    def __init__(
        self,
        address: str,
        port: int,
        chain: Path,
        key: Path,
        *,
        offer_starttls: bool = True,
    ) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(chain), str(key))
        self._server = _Server((address, port), context, offer_starttls)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> SmtpServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def main(argv: list[str]) -> int:
    address, port, chain, key = argv[:4]
    offer = "--no-starttls" not in argv[4:]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain, key)
    server = _Server((address, int(port)), context, offer)
    print("ready", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
