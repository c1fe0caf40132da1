"""TSIG keys from BIND key files and the environment."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from provisioner.backends.tsig import load_tsig_key, parse_key_file
from provisioner.errors import BackendError

SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0ISE//w=="

KEY_FILE = f"""# written by tsig-keygen
key "update-key" {{
\talgorithm hmac-sha256;
\tsecret "{SECRET}";
}};
/* a second key */
key transfer-key {{ algorithm hmac-sha512; secret "Zm9vYmFy"; }};
"""


def write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "tsig.key"
    path.write_text(text)
    path.chmod(mode)
    return path


def load(**values):
    arguments = {
        "name": None,
        "algorithm": "hmac-sha256",
        "key_file": None,
        "secret_env": None,
        "allow_weak": False,
    }
    arguments.update(values)
    return load_tsig_key(**arguments)


def test_parse_key_file_keeps_slashes_in_secret() -> None:
    entries = parse_key_file(KEY_FILE)
    assert [(e.name, e.algorithm) for e in entries] == [
        ("update-key", "hmac-sha256"),
        ("transfer-key", "hmac-sha512"),
    ]
    assert entries[0].secret == SECRET


def test_key_chosen_by_name(tmp_path: Path) -> None:
    key = load(name="transfer-key", key_file=write(tmp_path, KEY_FILE))
    assert key.name.to_text() == "transfer-key."
    assert key.algorithm == "hmac-sha512"
    assert key.secret == b"foobar"


def test_several_keys_need_name(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="contains several keys"):
        load(key_file=write(tmp_path, KEY_FILE))


def test_missing_name_listed(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="no key named 'other'"):
        load(name="other", key_file=write(tmp_path, KEY_FILE))


def test_secret_never_in_repr(tmp_path: Path) -> None:
    key = load(name="update-key", key_file=write(tmp_path, KEY_FILE))
    assert SECRET not in repr(key)
    assert "secret" not in key.describe()


def test_loose_file_mode_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        load(name="update-key", key_file=write(tmp_path, KEY_FILE, 0o644))
    assert "readable by group or others" in caplog.text
    assert SECRET not in caplog.text


def test_weak_algorithm_needs_allow_weak(tmp_path: Path, caplog) -> None:
    text = 'key "old" { algorithm hmac-md5; secret "Zm9vYmFy"; };'
    with pytest.raises(BackendError, match="weak algorithm hmac-md5"):
        load(key_file=write(tmp_path, text))
    with caplog.at_level(logging.WARNING):
        key = load(key_file=write(tmp_path, text), allow_weak=True)
    assert key.algorithm == "hmac-md5"
    assert "weak algorithm" in caplog.text


def test_environment_secret() -> None:
    key = load(name="env-key", secret_env="TSIG_SECRET", environ={"TSIG_SECRET": "Zm9vYmFy"})
    assert key.secret == b"foobar"
    assert key.algorithm == "hmac-sha256"


def test_environment_unset() -> None:
    with pytest.raises(BackendError, match="TSIG_SECRET is not set"):
        load(name="env-key", secret_env="TSIG_SECRET", environ={})


def test_invalid_base64(tmp_path: Path) -> None:
    text = 'key "bad" { algorithm hmac-sha256; secret "not base64!"; };'
    with pytest.raises(BackendError, match="not valid base64"):
        load(key_file=write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="does not exist"):
        load(key_file=tmp_path / "absent.key")


def test_unsupported_algorithm(tmp_path: Path) -> None:
    text = 'key "gss" { algorithm gss-tsig; secret "Zm9vYmFy"; };'
    with pytest.raises(BackendError, match="unsupported TSIG algorithm"):
        load(key_file=write(tmp_path, text))
