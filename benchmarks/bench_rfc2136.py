"""Push a zone of N SMIMEA users to BIND and Knot by RFC 2136; compare with nsupdate/knsupdate.

For each server type, two fresh primaries are started on 127.0.0.1:
  provisioner  the rfc2136 backend sends the N SMIMEA RRsets (creation), then a change of one
               user's SMIMEA RR, and reports messages, RRs and wall time of each step
  tool         nsupdate (BIND) or knsupdate (Knot) sends the same RRs in the same batches
               (one ``send`` per batch of the backend), from one script, with the same key
The SMIMEA data are 3 0 0 records of a 500-octet stand-in certificate (about the size of a
P-256 end-entity certificate); owner names are RFC 8162 hashes of the user names.

Run: python benchmarks/bench_rfc2136.py [--users 20000] [--servers bind,knot]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provisioner.backends.rfc2136.backend import Rfc2136Backend  # noqa: E402
from provisioner.backends.rfc2136.operations import (  # noqa: E402
    count_records,
    pack_messages,
    plan_operations,
)
from provisioner.backends.rfc2136.transport import Endpoint  # noqa: E402
from provisioner.backends.tsig import TsigKey  # noqa: E402
from provisioner.clock import SystemClock  # noqa: E402
from provisioner.zone.model import ZoneData  # noqa: E402
from provisioner.zone.plan import ZonePlan, diff_zone  # noqa: E402
from tests.integration.dnsservers import (  # noqa: E402
    RunningServer,
    TsigKeyConfig,
    ZoneConfig,
    start_bind,
    start_knot,
)

ZONE = "example.test."


def smimea_rrsets(users: int) -> list[dns.rrset.RRset]:
    result = []
    certificate = secrets.token_bytes(500).hex()
    for index in range(users):
        local = f"user{index:06d}".encode()
        owner = f"{hashlib.sha256(local).digest()[:28].hex()}._smimecert.{ZONE}"
        rrset = dns.rrset.from_text(owner, 3600, "IN", "SMIMEA", f"3 0 0 {certificate}")
        result.append(rrset)
    return result


def backend_for(server: RunningServer, key: TsigKeyConfig) -> Rfc2136Backend:
    import base64

    tsig = TsigKey(dns.name.from_text(key.name), key.algorithm, base64.b64decode(key.secret))
    endpoint = Endpoint(dns.name.from_text(ZONE), server.address, server.port, tsig, tsig, 30.0)
    return Rfc2136Backend(endpoint, signer="none", server_type=server.kind, clock=SystemClock())


def desired_zone(served: ZoneData, rrsets: list[dns.rrset.RRset]) -> ZoneData:
    desired = served.copy()
    for rrset in rrsets:
        desired.replace(rrset)
    return desired


def push_with_backend(server: RunningServer, key: TsigKeyConfig, rrsets) -> dict[str, float]:
    backend = backend_for(server, key)
    started = time.perf_counter()
    served = backend.read()
    assert served is not None
    desired = desired_zone(served, rrsets)
    changes, _ = diff_zone(backend.comparable(served, desired), desired, owned=None)
    plan = ZonePlan(ZONE, "rfc2136", None, served.soa[0].serial, changes)
    backend.apply(plan, desired)
    elapsed = time.perf_counter() - started
    return {
        "messages": backend.updates_sent,
        "records": backend.records_sent,
        "seconds": round(elapsed, 2),
    }


def change_one_with_backend(server: RunningServer, key: TsigKeyConfig, rrsets) -> dict:
    backend = backend_for(server, key)
    started = time.perf_counter()
    served = backend.read()
    assert served is not None
    changed = list(rrsets)
    first = changed[0]
    replacement = dns.rrset.from_text(
        first.name, first.ttl, "IN", "SMIMEA", f"3 0 0 {secrets.token_bytes(500).hex()}"
    )
    changed[0] = replacement
    desired = desired_zone(served, changed)
    changes, _ = diff_zone(backend.comparable(served, desired), desired, owned=None)
    plan = ZonePlan(ZONE, "rfc2136", None, served.soa[0].serial, changes)
    backend.apply(plan, desired)
    return {
        "messages": backend.updates_sent,
        "records": backend.records_sent,
        "seconds": round(time.perf_counter() - started, 2),
    }


def push_with_tool(server: RunningServer, key: TsigKeyConfig, rrsets) -> dict[str, float]:
    empty = ZoneData(ZONE)
    desired = ZoneData(ZONE, rrsets)
    changes, _ = diff_zone(empty, desired, owned=None)
    batches = pack_messages(plan_operations(changes))
    tool = "nsupdate" if server.kind == "bind" else "knsupdate"
    lines = [f"server {server.address} {server.port}", f"zone {ZONE}"]
    lines.append(f"key {key.algorithm}:{key.name} {key.secret}")
    for batch in batches:
        for operation in batch:
            for rdata in operation.rdatas:
                lines.append(
                    f"update add {operation.name} {operation.ttl} SMIMEA {rdata.to_text()}"
                )
        lines.append("send")
    script = "\n".join(lines) + "\n"
    started = time.perf_counter()
    completed = subprocess.run(
        [tool, "-v"] if tool == "nsupdate" else [tool],
        input=script,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{tool} failed: {completed.stderr[-500:]}")
    return {
        "messages": len(batches),
        "records": count_records(batches),
        "seconds": round(elapsed, 2),
    }


def run(kind: str, users: int, folder: Path) -> dict[str, object]:
    key = TsigKeyConfig.generate("bench-update")
    start = start_bind if kind == "bind" else start_knot
    rrsets = smimea_rrsets(users)
    figures: dict[str, object] = {"server": kind, "users": users}

    server = start(
        folder / f"{kind}-provisioner", zones=[ZoneConfig(ZONE, update_key=key.name)], keys=[key]
    )
    try:
        figures["provisioner_create"] = push_with_backend(server, key, rrsets)
        figures["provisioner_change_one"] = change_one_with_backend(server, key, rrsets)
    finally:
        server.stop()

    server = start(
        folder / f"{kind}-tool", zones=[ZoneConfig(ZONE, update_key=key.name)], keys=[key]
    )
    try:
        figures["tool_create"] = push_with_tool(server, key, rrsets)
    finally:
        server.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--servers", default="bind,knot")
    arguments = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for kind in arguments.servers.split(","):
            results.append(run(kind, arguments.users, Path(folder)))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
