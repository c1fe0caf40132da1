"""The server templates rendered without Ansible, checked by each server's own checker."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from provisioner.deploy.templates import render_template, template_variables
from provisioner.deploy.tsig import key_file_text, make_key
from provisioner.errors import DeployError
from tests.conftest import require_tool

SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I="
ZONES = [
    {"name": "example.com.", "file": "/zones/example.com.zone"},
    {
        "name": "signed-by-server.example.",
        "file": "/zones/signed-by-server.zone",
        "signing": "server",
        "update_key": "update-key",
    },
]


def run_checker(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}{result.stderr}"


def make_folders(root: Path, *paths: str) -> None:
    for path in paths:
        (root / path.lstrip("/")).mkdir(parents=True, exist_ok=True)


def write_key(root: Path, server: str) -> str:
    target = f"/etc/{server}/update-key.key"
    path = root / target.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key_file_text(make_key("update-key", "hmac-sha256", SECRET), server))
    return target


def dns_overrides(root: Path, **extra: object) -> dict[str, object]:
    return {
        "provisioner_root": str(root),
        "dns_listen_addresses": ["127.0.0.1"],
        "dns_port": 5353,
        **extra,
    }


def test_named_conf_passes_named_checkconf(tmp_path: Path) -> None:
    require_tool("named-checkconf")
    key = write_key(tmp_path, "bind")
    make_folders(tmp_path, "/var/cache/bind", "/var/lib/bind/keys", "/run/named")
    text = render_template(
        "bind/named.conf.j2", dns_overrides(tmp_path, dns_zones=ZONES, dns_tsig_key_files=[key])
    )
    (tmp_path / "named.conf").write_text(text)
    run_checker(["named-checkconf", str(tmp_path / "named.conf")])
    assert 'dnssec-policy "default";' in text
    assert "listen-on-v6 port 5353 { none; };" in text


def test_knot_conf_passes_conf_check(tmp_path: Path) -> None:
    require_tool("knotc")
    key = write_key(tmp_path, "knot")
    make_folders(tmp_path, "/var/lib/knot/keys", "/run/knot")
    text = render_template(
        "knot/knot.conf.j2", dns_overrides(tmp_path, dns_zones=ZONES, dns_tsig_key_files=[key])
    )
    (tmp_path / "knot.conf").write_text(text)
    run_checker(["knotc", "-c", str(tmp_path / "knot.conf"), "conf-check"])
    assert "dnssec-signing: off" in text
    assert "dnssec-signing: on" in text
    assert "acl: update-update-key" in text


def test_nsd_conf_passes_nsd_checkconf(tmp_path: Path) -> None:
    require_tool("nsd-checkconf")
    key = write_key(tmp_path, "nsd")
    text = render_template(
        "nsd/nsd.conf.j2",
        dns_overrides(tmp_path, dns_zones=ZONES[:1], dns_tsig_key_files=[key]),
    )
    (tmp_path / "nsd.conf").write_text(text)
    run_checker(["nsd-checkconf", str(tmp_path / "nsd.conf")])


def test_unbound_conf_passes_unbound_checkconf(tmp_path: Path) -> None:
    require_tool("unbound-checkconf")
    make_folders(tmp_path, "/etc/unbound", "/run")
    text = render_template(
        "unbound/unbound.conf.j2",
        {
            "provisioner_root": str(tmp_path),
            "unbound_interfaces": ["127.0.0.1"],
            "unbound_port": 5300,
            "unbound_username": "",
            "unbound_auto_trust_anchor_file": "",
            "unbound_trust_anchors": ["example.com. DS 12345 13 2 " + "AB" * 32],
            "unbound_stub_zones": [{"name": "example.com", "addresses": ["127.0.0.1@5353"]}],
            "unbound_allow_query_localhost": True,
        },
    )
    (tmp_path / "unbound.conf").write_text(text)
    run_checker(["unbound-checkconf", str(tmp_path / "unbound.conf")])
    assert "do-not-query-localhost: no" in text


def test_postfix_config_passes_postfix_check(tmp_path: Path) -> None:
    require_tool("postfix")
    config = tmp_path / "etc/postfix"
    make_folders(tmp_path, "/etc/postfix", "/var/spool/postfix", "/var/lib/postfix")
    overrides = {
        "provisioner_root": str(tmp_path),
        "postfix_inet_interfaces": "127.0.0.1",
        "postfix_smtpd_listeners": ["127.0.0.1:2525"],
        "postfix_tls_chain_files": [f"{config}/tls/mx1.key.pem", f"{config}/tls/mx1.chain.pem"],
    }
    main_cf = render_template("postfix/main.cf.j2", overrides)
    (config / "main.cf").write_text(main_cf)
    (config / "master.cf").write_text(render_template("postfix/master.cf.j2", overrides))
    run_checker(["postfix", "-c", str(config), "check"])
    assert "smtp_tls_security_level = dane" in main_cf
    assert "smtp_dns_support_level = dnssec" in main_cf
    assert f"queue_directory = {tmp_path}/var/spool/postfix" in main_cf


def test_resolv_conf_sets_trust_ad() -> None:
    text = render_template("system/resolv.conf.j2", {"resolv_conf_nameservers": ["127.0.0.1"]})
    assert "nameserver 127.0.0.1\n" in text
    assert "options trust-ad\n" in text


def test_defaults_follow_the_server() -> None:
    knot = template_variables("knot/knot.conf.j2", {})
    assert knot["dns_config_file"] == "/etc/knot/knot.conf"
    assert knot["dns_working_dir"] == "/var/lib/knot"


def test_config_root_defaults_to_root() -> None:
    variables = template_variables("unbound/unbound.conf.j2", {"provisioner_root": "/srv/res"})
    assert variables["provisioner_config_root"] == "/srv/res"


def test_unknown_template_is_rejected() -> None:
    with pytest.raises(DeployError, match="unknown template"):
        render_template("apache/httpd.conf.j2")


def test_missing_variable_is_reported() -> None:
    with pytest.raises(DeployError, match="postfix_tls_chain_files"):
        render_template("postfix/main.cf.j2")
