"""Build the SMIMEA records and the zone of N users; report time and peak memory.

Measured separately:
  issue     S/MIME certificates from an enterprise CA (one P-256 key per user)
  records   SMIMEA 3 0 0 derivation and the unsigned zone (provisioner.zone.builder)
  write     rendering the zone in master-file format and writing it atomically
and, for comparison in the same run:
  openssl   deriving the same SMIMEA 3 0 0 data with the openssl command, one process per user,
            as shell scripts do (measured on a sample, scaled to N)
  bind      named-compilezone loading and writing the same zone file

Run: python benchmarks/bench_zone_build.py [--users 100000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provisioner.clock import ManualClock  # noqa: E402
from provisioner.pki import ca as pki_ca  # noqa: E402
from provisioner.pki.encoding import certificate_to_pem  # noqa: E402
from provisioner.pki.keys import generate_private_key  # noqa: E402
from provisioner.spec.loader import load_spec_text  # noqa: E402
from provisioner.store.atomic import write_atomic  # noqa: E402
from provisioner.zone.builder import BuildInputs, PublishedCertificate, build_zones  # noqa: E402


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--openssl-sample", type=int, default=200)
    arguments = parser.parse_args()
    users = arguments.users

    clock = ManualClock(dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    root = pki_ca.create_root_ca("Bench Root", generate_private_key("ecdsa-p256"), clock)
    issuing = pki_ca.create_intermediate_ca(
        root, "Bench Issuing", generate_private_key("ecdsa-p256"), clock
    )

    started = time.perf_counter()
    certificates = []
    for index in range(users):
        key = generate_private_key("ecdsa-p256")
        issued = pki_ca.issue_smime_certificate(issuing, key, f"user{index}@bench.test", clock)
        certificates.append(issued.certificate)
    issue_seconds = time.perf_counter() - started
    memory_after_issue = peak_mib()

    spec_text = (
        "version: 1\nzones:\n  - name: bench.test\n"
        "    nameservers: [{name: ns1.bench.test, addresses: [127.0.0.1]}]\n"
    )
    spec_text += "    dnssec: {signer: none}\nusers:\n"
    spec_text += "".join(
        f"  - {{address: user{index}@bench.test, certificate: {{self_signed: true}}}}\n"
        for index in range(users)
    )
    started = time.perf_counter()
    spec = load_spec_text(spec_text)
    load_seconds = time.perf_counter() - started

    started = time.perf_counter()
    inputs = BuildInputs(
        users={
            f"user{index}@bench.test": [PublishedCertificate(certificates[index])]
            for index in range(users)
        }
    )
    zone = build_zones(spec, inputs, {"bench.test.": 1})["bench.test."]
    records_seconds = time.perf_counter() - started

    folder = Path(tempfile.mkdtemp(prefix="bench-zone-"))
    started = time.perf_counter()
    write_atomic(folder / "bench.test.zone", zone.to_text())
    write_seconds = time.perf_counter() - started

    sample = min(arguments.openssl_sample, users)
    pem_files = []
    for index in range(sample):
        path = folder / f"user{index}.pem"
        path.write_bytes(certificate_to_pem(certificates[index]))
        pem_files.append(path)
    started = time.perf_counter()
    for path in pem_files:
        subprocess.run(
            ["openssl", "x509", "-in", str(path), "-outform", "DER"],
            check=True,
            capture_output=True,
        )
    openssl_seconds = (time.perf_counter() - started) * users / sample

    bind_seconds = None
    if shutil.which("named-compilezone"):
        started = time.perf_counter()
        result = subprocess.run(
            [
                "named-compilezone",
                "-o",
                str(folder / "compiled.zone"),
                "bench.test",
                str(folder / "bench.test.zone"),
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            sys.exit(f"named-compilezone failed: {result.stdout}{result.stderr}")
        bind_seconds = time.perf_counter() - started

    build_seconds = records_seconds + write_seconds
    print(f"users: {users}, RRsets in zone: {len(zone)}")
    print(f"issue certificates:      {issue_seconds:8.2f} s ({users / issue_seconds:,.0f}/s)")
    print(f"load the YAML spec:      {load_seconds:8.2f} s")
    print(f"SMIMEA records + zone:   {records_seconds:8.2f} s")
    print(f"zone file write:         {write_seconds:8.2f} s")
    print(
        f"peak memory:             {peak_mib():8.0f} MiB (after issuing: {memory_after_issue:.0f})"
    )
    print(
        f"openssl per user (est.): {openssl_seconds:8.2f} s  ratio "
        f"{openssl_seconds / records_seconds:.1f}x slower than provisioner's records"
    )
    if bind_seconds is not None:
        print(
            f"named-compilezone:       {bind_seconds:8.2f} s  ratio provisioner/BIND "
            f"{build_seconds / bind_seconds:.2f} (records + write vs load + write)"
        )
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
