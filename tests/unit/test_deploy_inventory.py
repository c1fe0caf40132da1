"""Inventory building, deploy models, TSIG key files and the reading of ansible-runner events."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from provisioner.deploy import _limit_pattern, deploy_targets
from provisioner.deploy.inventory import build_inventory, connection_variables
from provisioner.deploy.mapping import MappedDeployment, deploy_settings, map_primary
from provisioner.deploy.models import (
    ConnectionSettings,
    DeploySettings,
    MtaDeploy,
    PrimaryDeploy,
    ResolverDeploy,
)
from provisioner.deploy.runner import collect_results
from provisioner.deploy.targets import (
    CertificateFiles,
    DeployTargets,
    MtaTarget,
    PrimaryTarget,
    ResolverTarget,
    ZoneFile,
)
from provisioner.deploy.tsig import key_file_text, make_key, parse_bind_key_file
from provisioner.errors import DeployError

SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I="


def mta_target(host: str = "mx1", **settings: Any) -> MtaTarget:
    files = CertificateFiles("mx1", Path("/store/cert.pem"), Path("/store/key.pem"))
    return MtaTarget(host, MtaDeploy(**settings), [files])


def hostvars(inventory: dict[str, Any], group: str, host: str) -> dict[str, Any]:
    return inventory["all"]["children"][group]["hosts"][host]


# --- connection variables ---------------------------------------------------------------------


def test_connection_defaults_fill_unset_fields() -> None:
    defaults = ConnectionSettings(connection="ssh", ansible_user="deploy", root="/srv/host")
    settings = ConnectionSettings(ansible_host="192.0.2.1", root="")
    variables = connection_variables(settings, defaults)
    assert variables["ansible_connection"] == "ssh"
    assert variables["ansible_user"] == "deploy"
    assert variables["ansible_host"] == "192.0.2.1"
    assert variables["provisioner_root"] == ""


def test_unset_connection_fields_are_omitted() -> None:
    assert connection_variables(ConnectionSettings(), ConnectionSettings()) == {}


def test_local_connection_uses_playbook_python() -> None:
    variables = connection_variables(ConnectionSettings(connection="local"), ConnectionSettings())
    assert variables["ansible_python_interpreter"] == "{{ ansible_playbook_python }}"


# --- inventory ----------------------------------------------------------------------------------


def test_inventory_groups_hosts_by_role() -> None:
    primary = PrimaryTarget(
        "ns1",
        PrimaryDeploy(host="ns1", server="knot", port=5353),
        [ZoneFile("example.com.", "/var/lib/knot/example.com.zone", Path("/out/example.zone"))],
    )
    resolver = ResolverTarget("res1", ResolverDeploy(host="res1"), ["example. DS 1 13 2 AA"])
    targets = DeployTargets(mtas=[mta_target()], primaries=[primary], resolvers=[resolver])
    inventory = build_inventory(targets)

    groups = inventory["all"]["children"]
    assert set(groups) == {"mta", "dns_primary", "resolver"}
    assert list(groups["mta"]["hosts"]) == ["mx1"]
    ns1 = hostvars(inventory, "dns_primary", "ns1")
    assert ns1["dns_server"] == "knot"
    assert ns1["dns_port"] == 5353
    assert ns1["dns_zones"][0]["src"] == "/out/example.zone"
    assert ns1["dns_zones"][0]["install"] == "always"
    assert "dns_listen_addresses" not in ns1
    res1 = hostvars(inventory, "resolver", "res1")
    assert res1["unbound_trust_anchors"] == ["example. DS 1 13 2 AA"]


def test_inventory_holds_key_paths_only() -> None:
    inventory = build_inventory(DeployTargets(mtas=[mta_target(resolvers=["127.0.0.1"])]))
    mx1 = hostvars(inventory, "mta", "mx1")
    assert mx1["postfix_tls_certificates"] == [
        {"name": "mx1", "cert_src": "/store/cert.pem", "chain_src": "", "key_src": "/store/key.pem"}
    ]
    assert mx1["postfix_dns_resolvers"] == ["127.0.0.1"]


def test_inventory_passes_role_variables() -> None:
    target = mta_target(variables={"postfix_queue_directory": "/q"}, manage_main_cf="fragment")
    mx1 = hostvars(build_inventory(DeployTargets(mtas=[target])), "mta", "mx1")
    assert mx1["postfix_queue_directory"] == "/q"
    assert mx1["postfix_manage_main_cf"] == "fragment"


def test_host_in_two_groups_shares_connection() -> None:
    primary = PrimaryTarget("mx1", PrimaryDeploy(host="mx1", server="bind", connection="local"), [])
    targets = DeployTargets(mtas=[mta_target(connection="local")], primaries=[primary])
    inventory = build_inventory(targets)
    assert hostvars(inventory, "mta", "mx1")["ansible_connection"] == "local"
    assert hostvars(inventory, "dns_primary", "mx1")["dns_server"] == "bind"


def test_conflicting_connection_is_rejected() -> None:
    primary = PrimaryTarget("mx1", PrimaryDeploy(host="mx1", server="bind", root="/a"), [])
    targets = DeployTargets(mtas=[mta_target(root="/b")], primaries=[primary])
    with pytest.raises(DeployError, match="provisioner_root"):
        build_inventory(targets)


def test_duplicate_group_member_is_rejected() -> None:
    with pytest.raises(DeployError, match="listed twice"):
        build_inventory(DeployTargets(mtas=[mta_target(), mta_target()]))


def test_empty_targets_are_rejected() -> None:
    with pytest.raises(DeployError, match="nothing to deploy"):
        deploy_targets(DeployTargets())


def test_limit_and_hosts_intersect() -> None:
    assert _limit_pattern(None, None) is None
    assert _limit_pattern("mta", None) == "mta"
    assert _limit_pattern(None, ["mx1", "mx2"]) == "mx1,mx2"
    assert _limit_pattern("mta", ["mx1"]) == "mta:&mx1"
    with pytest.raises(DeployError):
        _limit_pattern(None, [])


# --- models ----------------------------------------------------------------------------------


def test_models_reject_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="extra"):
        MtaDeploy.model_validate({"connection": "local", "postfix_dir": "/etc/postfix"})


def test_root_must_be_absolute() -> None:
    with pytest.raises(ValidationError, match="absolute"):
        ConnectionSettings(root="hosts/mx1")
    assert ConnectionSettings(root="/srv/mx1/").root == "/srv/mx1"


def test_port_must_be_in_range() -> None:
    with pytest.raises(ValidationError):
        PrimaryDeploy(host="ns1", server="bind", port=70000)


def test_deploy_settings_from_spec_dict() -> None:
    spec = SimpleNamespace(deploy={"defaults": {"connection": "ssh"}, "primaries": []})
    settings = deploy_settings(spec)
    assert isinstance(settings, DeploySettings)
    assert settings.defaults.connection == "ssh"
    assert deploy_settings(SimpleNamespace(deploy=None)) == DeploySettings()


def test_invalid_deploy_section_names_the_field() -> None:
    spec = SimpleNamespace(deploy={"primaries": [{"host": "ns1", "server": "powerdns"}]})
    with pytest.raises(DeployError, match=r"deploy\.primaries\[0\]\.server"):
        deploy_settings(spec)


# --- mapping ------------------------------------------------------------------------------------


def fake_zone(name: str, *, backend: str = "zonefile", signer: str = "provisioner") -> Any:
    return SimpleNamespace(
        name=name,
        publish=SimpleNamespace(backend=backend, tsig=None, path=None),
        dnssec=SimpleNamespace(signer=signer),
    )


def test_nsd_rejects_server_signed_zone() -> None:
    spec = SimpleNamespace(zones=[fake_zone("example.com.", backend="rfc2136", signer="server")])
    store = SimpleNamespace(signed_zone_path=lambda zone: Path("/nonexistent/zone"))
    primary = PrimaryDeploy(host="ns1", server="nsd")
    with pytest.raises(DeployError, match="NSD"):
        map_primary(spec, store, primary, MappedDeployment(DeployTargets()))


def test_primary_with_unknown_zone_is_rejected() -> None:
    spec = SimpleNamespace(zones=[fake_zone("example.com.")])
    primary = PrimaryDeploy(host="ns1", server="bind", zones=["example.org"])
    with pytest.raises(DeployError, match=r"example\.org\."):
        map_primary(spec, SimpleNamespace(), primary, MappedDeployment(DeployTargets()))


# --- TSIG ------------------------------------------------------------------------------------


def test_bind_key_file_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "update.key"
    path.write_text(f'key "update-key" {{\n\talgorithm hmac-sha256;\n\tsecret "{SECRET}";\n}};\n')
    key = parse_bind_key_file(path)
    assert (key.name, key.algorithm, key.secret) == ("update-key", "hmac-sha256", SECRET)
    assert SECRET not in repr(key)


def test_key_file_without_key_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "empty.key"
    path.write_text("# nothing here\n")
    with pytest.raises(DeployError, match="exactly one key"):
        parse_bind_key_file(path)


def test_invalid_secret_is_rejected() -> None:
    with pytest.raises(DeployError, match="base64"):
        make_key("update-key", "hmac-sha256", "not base64 !")


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("bind", f'key "k" {{\n    algorithm hmac-sha256;\n    secret "{SECRET}";\n}};\n'),
        ("knot", f"key:\n  - id: k\n    algorithm: hmac-sha256\n    secret: {SECRET}\n"),
        ("nsd", f'key:\n    name: "k"\n    algorithm: hmac-sha256\n    secret: "{SECRET}"\n'),
    ],
)
def test_key_file_text_per_server(server: str, expected: str) -> None:
    assert key_file_text(make_key("k", "hmac-sha256", SECRET), server) == expected


# --- ansible-runner events -----------------------------------------------------------------


def event(kind: str, host: str, task: str, **data: Any) -> dict[str, Any]:
    return {"event": kind, "event_data": {"host": host, "task": task, **data}}


def test_events_fold_into_host_results() -> None:
    events = [
        event("runner_on_ok", "mx1", "Install the private keys", res={"changed": True}),
        event("runner_on_ok", "mx1", "Install main.cf", res={"changed": False}),
        event("runner_on_skipped", "mx1", "Compare main.cf and master.cf"),
        event(
            "runner_on_failed",
            "res1",
            "Write unbound.conf",
            res={"msg": "failed to validate", "stderr": "unknown keyword"},
        ),
        event(
            "runner_on_unreachable",
            "ns1",
            "Create the server folders",
            res={
                "msg": "All items completed",
                "results": [{"unreachable": True, "msg": "Connection refused"}],
            },
        ),
        event("runner_on_failed", "mx1", "Optional step", ignore_errors=True, res={}),
    ]
    hosts = collect_results(events)

    assert hosts["mx1"].status == "changed"
    assert hosts["mx1"].changed_tasks == ["Install the private keys"]
    assert hosts["mx1"].skipped == 1
    assert hosts["mx1"].failures == []
    assert hosts["res1"].status == "failed"
    assert hosts["res1"].failures[0].task == "Write unbound.conf"
    assert hosts["res1"].failures[0].message == "failed to validate\nunknown keyword"
    assert hosts["ns1"].status == "unreachable"
    assert hosts["ns1"].failures[0].message == "Connection refused"


def test_rfc2136_zone_gets_key_and_initial_file(tmp_path: Path) -> None:
    key_file = tmp_path / "update.key"
    key_file.write_text(f'key "update-key" {{ algorithm hmac-sha256; secret "{SECRET}"; }};\n')
    zone = fake_zone("example.com.", backend="rfc2136")
    zone.publish.tsig = SimpleNamespace(key_file=key_file, name=None)
    signed = tmp_path / "example.com.zone"
    signed.write_text("; signed zone\n")
    spec = SimpleNamespace(zones=[zone], resolve=lambda path: path)
    store = SimpleNamespace(signed_zone_path=lambda name: signed)
    mapped = MappedDeployment(DeployTargets())

    map_primary(spec, store, PrimaryDeploy(host="ns1", server="knot"), mapped)

    target = mapped.targets.primaries[0]
    assert target.zones[0].install == "initial"
    assert target.zones[0].source == signed
    assert target.zones[0].update_key == "update-key"
    assert target.tsig_keys[0].target == "/etc/knot/update-key.key"
    assert str(target.tsig_keys[0].source) == "{{ provisioner_files }}/tsig-ns1-update-key.key"
    knot_text = mapped.secret_files["tsig-ns1-update-key.key"].decode()
    assert knot_text.startswith("key:\n  - id: update-key\n")
    assert SECRET in knot_text
