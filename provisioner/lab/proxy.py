"""A man in the middle for SMTP that removes STARTTLS from the server's EHLO response.

Run inside the lab's namespace on the MX address, forwarding to the real MTA moved elsewhere:

    python -m provisioner.lab.proxy --listen 127.0.20.25:25 --upstream 127.0.20.26:25

A client that only uses TLS when it is offered would then send the mail in plaintext through
the proxy; a DANE client must refuse. Each connection and each removed line is logged.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import socket
import threading

log = logging.getLogger("provisioner.lab.proxy")


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def _strip_starttls(lines: list[bytes]) -> list[bytes]:
    """Drop the STARTTLS line of a multi-line 250 reply and keep its last line final."""
    kept = [line for line in lines if line[4:].strip().upper() != b"STARTTLS"]
    if len(kept) != len(lines):
        log.info("removed STARTTLS from the EHLO response")
        if kept and kept[-1][3:4] == b"-":
            kept[-1] = kept[-1][:3] + b" " + kept[-1][4:]
    return kept


def _server_to_client(upstream: socket.socket, client: socket.socket) -> None:
    reader = upstream.makefile("rb")
    reply: list[bytes] = []
    try:
        for line in reader:
            reply.append(line)
            if line[3:4] == b"-":
                continue  # more lines of the same reply follow
            if reply[0].startswith(b"250"):
                reply = _strip_starttls(reply)
            client.sendall(b"".join(reply))
            reply = []
    except OSError:
        pass
    finally:
        _close(client)


def _client_to_server(client: socket.socket, upstream: socket.socket) -> None:
    try:
        while data := client.recv(65536):
            if b"STARTTLS" in data.upper():
                log.info("client sent STARTTLS although it was not offered")
            upstream.sendall(data)
    except OSError:
        pass
    finally:
        _close(upstream)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def serve(listen: tuple[str, int], upstream: tuple[str, int]) -> None:
    server = socket.create_server(listen, reuse_port=False)
    log.info("listening on %s:%d, forwarding to %s:%d", *listen, *upstream)
    while True:
        client, peer = server.accept()
        log.info("connection from %s:%d", *peer)
        try:
            remote = socket.create_connection(upstream, timeout=10)
            remote.settimeout(None)
        except OSError as error:
            log.warning("cannot reach the upstream %s:%d: %s", *upstream, error)
            client.close()
            continue
        threading.Thread(target=_server_to_client, args=(remote, client), daemon=True).start()
        threading.Thread(target=_client_to_server, args=(client, remote), daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="ADDR:PORT to accept SMTP on")
    parser.add_argument("--upstream", required=True, help="ADDR:PORT of the real MTA")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    serve(_address(arguments.listen), _address(arguments.upstream))


if __name__ == "__main__":
    main()
