"""Challenge publication through the apply machinery: zone files, signing, DS of child zones."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dns.rdatatype
import dns.rrset

from provisioner.clock import ManualClock
from provisioner.spec.loader import load_spec
from provisioner.spec.models import Spec
from provisioner.store.local import LocalStore
from provisioner.workflows.acme import publish_zones
from provisioner.workflows.apply import apply
from provisioner.zone.model import ZoneData

START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
CHALLENGE = "_acme-challenge.mx1.example.org."


def write_spec(tmp_path: Path) -> Spec:
    path = tmp_path / "provisioner.yaml"
    path.write_text(
        """\
zones:
  - name: example.org
    nameservers: [{name: ns1.example.org, addresses: [192.0.2.53]}]
  - name: sub.example.org
    nameservers: [{name: ns1.example.org, addresses: [192.0.2.53]}]
"""
    )
    return load_spec(path)


def zone_file(spec: Spec, name: str) -> ZoneData:
    text = (spec.output_dir() / "zones" / f"{name}.zone").read_text()
    return ZoneData.from_text(text, f"{name}.")


def test_challenge_added_and_removed(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    clock = ManualClock(START)
    challenge = dns.rrset.from_text(CHALLENGE, 60, "IN", "TXT", '"token-value"')
    with LocalStore(spec.state_dir()) as store:
        apply(spec, store, clock)
        ds_before = zone_file(spec, "example.org").get("sub.example.org.", "DS")
        child_before = (spec.output_dir() / "zones" / "sub.example.org.zone").read_text()
        assert ds_before is not None

        clock.advance(60)
        publish_zones(spec, store, clock, {"example.org.": [challenge]})
        published = zone_file(spec, "example.org")

        assert published.get(CHALLENGE, "TXT") == challenge
        assert published.get(CHALLENGE, "RRSIG", dns.rdatatype.TXT) is not None
        assert published.get("sub.example.org.", "DS") == ds_before

        clock.advance(60)
        publish_zones(spec, store, clock, {"example.org.": []})
        cleaned = zone_file(spec, "example.org")

        assert cleaned.get(CHALLENGE, "TXT") is None
        assert cleaned.get(CHALLENGE, "RRSIG", dns.rdatatype.TXT) is None
        assert cleaned.get("sub.example.org.", "DS") == ds_before
        child_after = (spec.output_dir() / "zones" / "sub.example.org.zone").read_text()
        assert child_after == child_before
        assert not apply(spec, store, clock).has_changes
