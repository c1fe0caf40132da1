"""TSIG keys (RFC 8945) for zone transfers and UPDATE messages.

A key comes from a BIND key file (``key "name" { algorithm hmac-sha256; secret "..."; };``,
the format that ``tsig-keygen`` writes and ``named.conf`` includes) or from an environment
variable that contains the base64 secret; never from the spec's text. The secret is kept out
of ``repr`` and of every log line and message.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import dns.name
import dns.tsig

from provisioner.errors import BackendError

log = logging.getLogger(__name__)

STRONG_ALGORITHMS = ("hmac-sha256", "hmac-sha384", "hmac-sha512")
WEAK_ALGORITHMS = ("hmac-sha1", "hmac-md5")

_ALGORITHM_NAMES = {
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
    "hmac-sha1": dns.tsig.HMAC_SHA1,
    "hmac-md5": dns.tsig.HMAC_MD5,
}

# One `key "name" { ... };` statement; comments are removed before matching.
_KEY_STATEMENT = re.compile(r'key\s+"?([^"\s{]+)"?\s*\{(.*?)\}\s*;', re.DOTALL)
_ALGORITHM_CLAUSE = re.compile(r"algorithm\s+\"?([A-Za-z0-9.-]+)\"?\s*;")
_SECRET_CLAUSE = re.compile(r'secret\s+"([^"]*)"\s*;')
# A quoted string, or a comment in one of the three styles named.conf allows.
_STRINGS_AND_COMMENTS = re.compile(r'("[^"]*")|(/\*.*?\*/)|(//[^\n]*)|(#[^\n]*)', re.DOTALL)


@dataclass(frozen=True)
class TsigKey:
    """A TSIG key: name, algorithm (as in BIND: ``hmac-sha256``) and the raw secret."""

    name: dns.name.Name
    algorithm: str
    secret: bytes = field(repr=False)

    def keyring(self) -> dict[dns.name.Name, dns.tsig.Key]:
        return {self.name: self.key()}

    def key(self) -> dns.tsig.Key:
        return dns.tsig.Key(self.name, self.secret, _ALGORITHM_NAMES[self.algorithm])

    def describe(self) -> str:
        """Return "name (algorithm)" for messages; never the secret."""
        return f"{self.name.to_text(omit_final_dot=True)} ({self.algorithm})"


@dataclass(frozen=True)
class KeyFileEntry:
    name: str
    algorithm: str
    secret: str = field(repr=False)


def parse_key_file(text: str) -> list[KeyFileEntry]:
    """Return every key statement of a BIND key file, in order.

    Raises BackendError when a statement lacks its algorithm or secret clause.
    """
    cleaned = _strip_comments(text)
    entries: list[KeyFileEntry] = []
    for match in _KEY_STATEMENT.finditer(cleaned):
        name, body = match.group(1), match.group(2)
        algorithm = _ALGORITHM_CLAUSE.search(body)
        secret = _SECRET_CLAUSE.search(body)
        if algorithm is None or secret is None:
            missing = "algorithm" if algorithm is None else "secret"
            raise BackendError(f"key {name!r} in the key file has no {missing} clause")
        entries.append(KeyFileEntry(name, algorithm.group(1).lower(), secret.group(1)))
    return entries


def _strip_comments(text: str) -> str:
    """Remove comments but keep quoted strings, where "//" is part of a base64 secret."""
    return _STRINGS_AND_COMMENTS.sub(lambda match: match.group(1) or " ", text)


def load_tsig_key(
    *,
    name: str | None,
    algorithm: str,
    key_file: Path | None,
    secret_env: str | None,
    allow_weak: bool,
    environ: dict[str, str] | None = None,
) -> TsigKey:
    """Read a TSIG key from a BIND key file or from the environment variable ``secret_env``.

    With a key file, ``name`` selects the key when the file contains several, and the file's
    algorithm clause wins over ``algorithm``. hmac-sha1 and hmac-md5 need ``allow_weak`` and
    log a warning. Raises BackendError naming the file or variable and what to fix.
    """
    if key_file is not None:
        key_name, key_algorithm, encoded, origin = _from_key_file(key_file, name)
    elif secret_env is not None:
        source = os.environ if environ is None else environ
        encoded = source.get(secret_env, "").strip()
        origin = f"environment variable {secret_env}"
        if not encoded:
            raise BackendError(
                f"the {origin} is not set or empty, so the TSIG key {name!r} has no secret",
                hint=f"export {secret_env}=<base64 secret>, as written by tsig-keygen",
            )
        if name is None:
            raise BackendError(f"the TSIG key from the {origin} needs a 'name'")
        key_name, key_algorithm = name, algorithm
    else:
        raise BackendError("a TSIG key needs key_file or secret_env")

    key_algorithm = key_algorithm.lower().rstrip(".")
    if key_algorithm not in _ALGORITHM_NAMES:
        allowed = ", ".join(STRONG_ALGORITHMS + WEAK_ALGORITHMS)
        raise BackendError(
            f"unsupported TSIG algorithm {key_algorithm!r} in the {origin}; allowed: {allowed}"
        )
    if key_algorithm in WEAK_ALGORITHMS:
        if not allow_weak:
            raise BackendError(
                f"the TSIG key {key_name!r} in the {origin} uses the weak algorithm "
                f"{key_algorithm}",
                hint="create a new key with: tsig-keygen -a hmac-sha256 NAME, "
                "or set allow_weak: true on this key",
            )
        log.warning(
            "TSIG key %s uses the weak algorithm %s; replace it with hmac-sha256",
            key_name,
            key_algorithm,
        )

    try:
        secret = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BackendError(
            f"the secret of TSIG key {key_name!r} in the {origin} is not valid base64",
            hint="copy the secret exactly as tsig-keygen wrote it",
        ) from None
    if not secret:
        raise BackendError(f"the secret of TSIG key {key_name!r} in the {origin} is empty")
    try:
        parsed_name = dns.name.from_text(key_name)
    except dns.exception.DNSException as error:
        raise BackendError(f"invalid TSIG key name {key_name!r} in the {origin}: {error}") from None
    return TsigKey(parsed_name, key_algorithm, secret)


def _from_key_file(path: Path, name: str | None) -> tuple[str, str, str, str]:
    origin = f"key file {path}"
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except FileNotFoundError:
        raise BackendError(
            f"the TSIG {origin} does not exist",
            hint="create it with: tsig-keygen -a hmac-sha256 NAME > FILE; chmod 600 FILE",
        ) from None
    except OSError as error:
        raise BackendError(f"cannot read the TSIG {origin}: {error.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "TSIG key file %s is readable by group or others (mode %o); run: chmod 600 %s",
            path,
            stat.S_IMODE(mode),
            path,
        )

    entries = parse_key_file(text)
    if not entries:
        raise BackendError(
            f"the TSIG {origin} contains no key statement",
            hint='expected: key "NAME" { algorithm hmac-sha256; secret "BASE64"; };',
        )
    if name is None:
        if len(entries) > 1:
            names = ", ".join(entry.name for entry in entries)
            raise BackendError(
                f"the TSIG {origin} contains several keys ({names})",
                hint="give the key's 'name' in the spec",
            )
        chosen = entries[0]
    else:
        wanted = dns.name.from_text(name)
        matches = [e for e in entries if dns.name.from_text(e.name) == wanted]
        if not matches:
            names = ", ".join(entry.name for entry in entries)
            raise BackendError(
                f"the TSIG {origin} has no key named {name!r} (it has: {names})",
                hint="correct 'name' in the spec, or leave it out to use the file's only key",
            )
        chosen = matches[0]
    return chosen.name, chosen.algorithm, chosen.secret, origin
