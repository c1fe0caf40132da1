"""The pieces of the lab's fault scenarios that need no servers."""

from __future__ import annotations

from provisioner.lab.proxy import _strip_starttls
from provisioner.lab.scenarios import forge_zone

ZONE = """\
mx1.example.net. 60 IN A 127.0.20.25
mx1.example.net. 60 IN RRSIG A 13 3 60 20261218 20261204 1 example.net. AAAA
_25._tcp.mx1.example.net. 10 IN TLSA 3 1 1 aabbcc
"""


def test_proxy_removes_last_starttls_line() -> None:
    reply = [b"250-mx1.example.net\r\n", b"250-PIPELINING\r\n", b"250 STARTTLS\r\n"]

    assert _strip_starttls(reply) == [b"250-mx1.example.net\r\n", b"250 PIPELINING\r\n"]


def test_proxy_removes_middle_starttls_line() -> None:
    reply = [b"250-mx1.example.net\r\n", b"250-STARTTLS\r\n", b"250 8BITMIME\r\n"]

    assert _strip_starttls(reply) == [b"250-mx1.example.net\r\n", b"250 8BITMIME\r\n"]


def test_forged_zone_keeps_old_signatures() -> None:
    forged = forge_zone(ZONE, "mx1.example.net.", "127.0.20.66", "ddeeff")

    assert "mx1.example.net. 60 IN A 127.0.20.66" in forged
    assert "TLSA 3 1 1 ddeeff" in forged
    assert "RRSIG A 13 3 60 20261218 20261204 1 example.net. AAAA" in forged
