"""The spec loader: models, defaults, and positioned errors reported all at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provisioner.errors import SpecError
from provisioner.spec.durations import parse_duration
from provisioner.spec.loader import load_spec, load_spec_text

MINIMAL = """\
version: 1
zones:
  - name: example.org
    nameservers: [{name: ns1.example.org, addresses: [127.0.0.1]}]
"""
NO_GLUE = MINIMAL.replace("[{name: ns1.example.org, addresses: [127.0.0.1]}]", "[ns1.example.org]")

FIVE_MISTAKES = """\
version: 1
authorities:
  - name: ca
    type: enterprise
    subject: {common_name: X}
zones:
  - name: example.org
    nameservers: [ns1.example.org]
    colour: blue
    records:
      - {name: www, type: A, value: 300.1.1.1}
    dnssec: {algorithm: 5}
mail_servers:
  - host: mx1.example.org
    certificate: {authority: ca}
    tlsa: [{usage: 7, selector: 1, matching: 1}]
users:
  - address: not-an-address
    certificate: {authority: ca}
"""


def test_minimal_spec_defaults() -> None:
    spec = load_spec_text(MINIMAL)
    zone = spec.zones[0]
    assert zone.name == "example.org."
    assert zone.dnssec.signer == "provisioner"
    assert zone.dnssec.algorithm == 13
    assert zone.publish.backend == "zonefile"


def test_tlsa_and_smimea_defaults() -> None:
    spec = load_spec_text(
        MINIMAL
        + "mail_servers:\n  - host: mx.example.org\n    certificate: {self_signed: true}\n"
        + "users:\n  - address: a@example.org\n    certificate: {self_signed: true}\n"
    )
    assert [p.as_tuple() for p in spec.mail_servers[0].tlsa] == [(3, 1, 1)]
    assert [p.as_tuple() for p in spec.users[0].smimea] == [(3, 0, 0)]


def test_five_mistakes_five_positioned_errors() -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_text(FIVE_MISTAKES, "five.yaml")
    errors = caught.value.errors
    assert len(errors) == 5
    where = {(e.line, e.field) for e in errors}
    assert (9, "zones[0].colour") in where
    assert (11, "zones[0].records[0]") in where
    assert (12, "zones[0].dnssec.algorithm") in where
    assert (16, "mail_servers[0].tlsa[0].usage") in where
    assert (18, "users[0].address") in where
    for error in errors:
        assert error.file == "five.yaml"
        assert error.column is not None


def test_unknown_key_is_rejected() -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_text(MINIMAL + "extra: 1\n")
    assert "unknown key" in caught.value.errors[0].message
    assert caught.value.errors[0].line == 5


def test_invalid_yaml_is_positioned() -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_text("zones: [\n  - name: x\n", "broken.yaml")
    error = caught.value.errors[0]
    assert error.file == "broken.yaml"
    assert error.line is not None
    assert "invalid YAML" in error.message


def test_semantic_errors_name_the_field() -> None:
    text = MINIMAL + (
        "mail_servers:\n  - host: mx.elsewhere.test\n    certificate: {authority: missing}\n"
    )
    with pytest.raises(SpecError) as caught:
        load_spec_text(text)
    messages = [str(e) for e in caught.value.errors]
    assert any("no zone of the spec contains mx.elsewhere.test." in m for m in messages)
    assert any("unknown authority 'missing'" in m for m in messages)


def test_soa_expire_beyond_signature_validity() -> None:
    text = MINIMAL + "    soa: {expire: 30d}\n    dnssec: {signature_validity: 14d, refresh: 5d}\n"
    with pytest.raises(SpecError) as caught:
        load_spec_text(text)
    assert any("SOA expire" in e.message for e in caught.value.errors)


def test_durations() -> None:
    assert parse_duration("2d12h") == 216000
    assert parse_duration(60) == 60
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_example_spec_loads() -> None:
    spec = load_spec(Path(__file__).parents[2] / "examples" / "nccoe" / "provisioner.yaml")
    assert [z.name for z in spec.zones] == ["example.com.", "example.net."]
    assert len(spec.users) == 4


def test_validate_command_reports_all_errors(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    spec = tmp_path / "five.yaml"
    spec.write_text(FIVE_MISTAKES)
    result = cli("validate", spec, cwd=tmp_path)
    assert result.returncode == 1
    assert "5 error(s)" in result.stderr
    assert f"{spec}:9:5: zones[0].colour" in result.stderr
    assert list(tmp_path.iterdir()) == [spec]


def test_validate_json_output(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    spec = tmp_path / "five.yaml"
    spec.write_text(FIVE_MISTAKES)
    result = cli("validate", "--json", spec)
    payload = json.loads(result.stdout)
    assert payload["ok"] is False
    assert len(payload["errors"]) == 5


def test_schema_command(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("schema", check=True)
    schema = json.loads(result.stdout)
    assert schema["title"] == "provisioner spec"
    assert "zones" in schema["properties"]
    assert schema["additionalProperties"] is False


def test_apply_with_mistakes_writes_nothing(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    spec = tmp_path / "five.yaml"
    spec.write_text(FIVE_MISTAKES)
    result = cli("apply", spec, cwd=tmp_path)
    assert result.returncode == 1
    assert "5 error(s)" in result.stderr
    assert list(tmp_path.iterdir()) == [spec]


def test_model_and_reference_errors_together() -> None:
    text = MINIMAL + (
        "mail_servers:\n"
        "  - host: mx.example.org\n"
        "    ports: [0]\n"
        "    certificate: {self_signed: true}\n"
        "  - host: mx2.example.org\n"
        "    certificate: {authority: missing}\n"
    )
    with pytest.raises(SpecError) as caught:
        load_spec_text(text)
    fields = [e.field for e in caught.value.errors]
    assert fields == ["mail_servers[0].ports", "mail_servers[1].certificate.authority"]
    assert caught.value.errors[1].line == 10


def test_fast_and_positioned_loaders_agree() -> None:
    from ruamel.yaml import YAML

    from provisioner.spec import fastyaml
    from provisioner.spec.loader import _plain

    text = (Path(__file__).parents[2] / "examples" / "nccoe" / "provisioner.yaml").read_text()
    text += "deploy: {a: yes, b: 010, c: '1:20', d: 1:20, e: 0x10, f: NO, g: ~, h: 1.5}\n"
    assert fastyaml.load(text) == _plain(YAML(typ="rt").load(text))


def test_duplicate_key_is_an_error() -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_text(MINIMAL + "version: 1\n")
    assert "duplicate" in caught.value.errors[0].message


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        (
            "    records:\n      - {name: w, type: CNAME, value: x.test.}\n"
            "      - {name: w, type: TXT, value: hi}\n",
            "zones[0].records[0]",
            "beside other data",
        ),
        (
            "    records:\n      - {name: '@', type: CNAME, value: x.test.}\n",
            "zones[0].records[0]",
            "beside other data",
        ),
        (
            "    records:\n      - {name: '@', type: DS, value: '1 13 2 " + "ab" * 32 + "'}\n",
            "zones[0].records[0].type",
            "parent zone",
        ),
        (
            "    records:\n      - {name: www.other.test., type: A, value: 127.0.0.1}\n",
            "zones[0].records[0].name",
            "outside the zone",
        ),
        ("    ttl: 2147483648\n", "zones[0].ttl", "less than or equal to 2147483647"),
    ],
)
def test_zone_content_servers_refuse(extra: str, field: str, words: str) -> None:
    text = MINIMAL
    with pytest.raises(SpecError) as caught:
        load_spec_text(text + extra)
    matching = [e for e in caught.value.errors if e.field == field]
    assert matching, [str(e) for e in caught.value.errors]
    assert words in matching[0].message


def test_in_zone_nameserver_needs_address() -> None:
    from provisioner.spec.semantics import zone_warnings

    (warning,) = zone_warnings(load_spec_text(NO_GLUE))
    assert "ns1.example.org. is inside the zone but has no address" in warning
    assert zone_warnings(load_spec_text(MINIMAL)) == []


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("a@b@example.org", "contains '@'"),
        ("al ice@example.org", "a space"),
        ("x" * 65 + "@example.org", "64 octets"),
    ],
)
def test_invalid_user_addresses(address: str, words: str) -> None:
    text = MINIMAL
    text += f"users:\n  - address: '{address}'\n    certificate: {{self_signed: true}}\n"
    with pytest.raises(SpecError) as caught:
        load_spec_text(text)
    assert words in caught.value.errors[0].message


def test_invalid_ip_address_and_validity() -> None:
    text = MINIMAL.replace("127.0.0.1", "1.2.3")
    text += (
        "mail_servers:\n  - host: mx.example.org\n    addresses: [300.1.1.1]\n"
        "    certificate: {self_signed: true, validity: 1000000000000}\n"
    )
    with pytest.raises(SpecError) as caught:
        load_spec_text(text)
    fields = {e.field for e in caught.value.errors}
    assert any(f.startswith("zones[0].nameservers[0]") for f in fields)
    assert any("mail_servers[0].addresses" in f for f in fields)
    assert any("validity" in f for f in fields)


@pytest.mark.parametrize("name", ["provisioner.yaml", "lab.yaml"])
def test_examples_valid_against_json_schema(name: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from provisioner.spec import fastyaml
    from provisioner.spec.schema import spec_json_schema

    path = Path(__file__).parents[2] / "examples" / "nccoe" / name
    validator = jsonschema.Draft202012Validator(spec_json_schema())
    errors = [error.message for error in validator.iter_errors(fastyaml.load(path.read_text()))]
    assert errors == []


def test_json_schema_rejects_unknown_key() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from provisioner.spec import fastyaml
    from provisioner.spec.schema import spec_json_schema

    validator = jsonschema.Draft202012Validator(spec_json_schema())
    assert list(validator.iter_errors(fastyaml.load(MINIMAL + "colour: blue\n")))
