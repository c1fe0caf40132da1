"""TSIG key files in the syntax of each DNS server, made from a BIND key file or a secret.

The text returned here holds the secret: callers write it to a mode-0600 file and pass the
path to Ansible, never the text.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from pathlib import Path

from provisioner.errors import DeployError

_KEY_STATEMENT = re.compile(
    r'key\s+"?(?P<name>[^"\s{]+)"?\s*\{(?P<body>[^}]*)\}\s*;', re.IGNORECASE | re.DOTALL
)
_ALGORITHM = re.compile(r'algorithm\s+"?(?P<value>[A-Za-z0-9.-]+)"?\s*;', re.IGNORECASE)
_SECRET = re.compile(r'secret\s+"(?P<value>[A-Za-z0-9+/=\s]+)"\s*;', re.IGNORECASE)
_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class TsigKey:
    name: str
    algorithm: str
    secret: str

    def __repr__(self) -> str:
        return f"TsigKey(name={self.name!r}, algorithm={self.algorithm!r}, secret=<hidden>)"


def parse_bind_key_file(path: Path, name: str | None = None) -> TsigKey:
    """Read the key statement named ``name`` (or the only one) from a BIND key file."""
    try:
        text = path.read_text()
    except OSError as error:
        raise DeployError(
            f"cannot read the TSIG key file {path}: {error.strerror}",
            hint="check the key_file path of the TSIG key in the spec",
        ) from error
    keys: list[TsigKey] = []
    for match in _KEY_STATEMENT.finditer(text):
        algorithm = _ALGORITHM.search(match.group("body"))
        secret = _SECRET.search(match.group("body"))
        if algorithm and secret:
            key_name = match.group("name").rstrip(".")
            keys.append(TsigKey(key_name, algorithm.group("value").lower(), secret.group("value")))
    if name is not None:
        keys = [key for key in keys if key.name == name.rstrip(".")]
    if len(keys) != 1:
        wanted = f"a key named {name}" if name else "exactly one key statement"
        raise DeployError(
            f"the TSIG key file {path} does not contain {wanted}",
            hint='expected BIND syntax: key "NAME" { algorithm hmac-sha256; secret "BASE64"; };',
        )
    return make_key(keys[0].name, keys[0].algorithm, keys[0].secret)


def make_key(name: str, algorithm: str, secret: str) -> TsigKey:
    """Check a key's name and secret so they can be written into any server's syntax."""
    name = name.rstrip(".")
    if not _NAME.match(name):
        raise DeployError(
            f"invalid TSIG key name {name!r}",
            hint="use letters, digits, dots, hyphens and underscores",
        )
    secret = "".join(secret.split())
    try:
        base64.b64decode(secret, validate=True)
    except binascii.Error as error:
        raise DeployError(
            f"the secret of TSIG key {name} is not valid base64",
            hint="generate a key with tsig-keygen or keymgr -t",
        ) from error
    return TsigKey(name, algorithm.lower(), secret)


def key_file_text(key: TsigKey, server: str) -> str:
    """Return the key in the configuration syntax of ``server`` (bind, knot or nsd)."""
    if server == "bind":
        return (
            f'key "{key.name}" {{\n    algorithm {key.algorithm};\n'
            f'    secret "{key.secret}";\n}};\n'
        )
    if server == "knot":
        return (
            f"key:\n  - id: {key.name}\n    algorithm: {key.algorithm}\n    secret: {key.secret}\n"
        )
    if server == "nsd":
        return (
            f'key:\n    name: "{key.name}"\n    algorithm: {key.algorithm}\n'
            f'    secret: "{key.secret}"\n'
        )
    raise DeployError(f"unknown DNS server {server!r}", hint="use bind, knot or nsd")
