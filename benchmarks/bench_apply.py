"""Time `provisioner apply` on a generated spec of N users: first run, no change, one change.

The spec has one zone signed by provisioner (algorithm 13, NSEC unless --denial nsec3), an
enterprise authority, and N users whose S/MIME certificates that authority issues. Each apply
runs as its own process, as cron or CI runs it, and the script measures its wall time and max
RSS. The three runs are:
- first: issues N certificates, builds, signs and writes the zone;
- unchanged: the cron case, which reads the zone file and the store and finds nothing to publish;
- one user: removes one user, so one SMIMEA RRset and the NSEC records around it change.

No other tool does this job. As a reference from the same run, the script times BIND's
dnssec-verify reading the zone file that apply wrote, the check an operator would run after it.

Run: python benchmarks/bench_apply.py [--users 5000] [--denial nsec]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def write_spec(path: Path, users: int, denial: str) -> None:
    lines = [
        "version: 1",
        "state: .provisioner",
        "output: out",
        "authorities:",
        "  - name: ca",
        "    type: enterprise",
        "    subject: {common_name: Bench CA}",
        "zones:",
        "  - name: bench.test",
        "    soa: {rname: hostmaster.bench.test}",
        "    nameservers: [{name: ns1.bench.test, addresses: [127.0.0.1]}]",
        f"    dnssec: {{algorithm: 13, denial: {denial}}}",
        "users:",
    ]
    lines += [
        f"  - {{address: user{index}@bench.test, certificate: {{authority: ca}}}}"
        for index in range(users)
    ]
    path.write_text("\n".join(lines) + "\n")


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Run ``command``; return wall seconds and max RSS in MiB of its process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        error = process.stderr.read().decode() if process.stderr else ""
        raise RuntimeError(f"{command[0]} failed: {error.strip()[:2000]}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--denial", choices=("nsec", "nsec3"), default="nsec")
    arguments = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-apply-"))
    spec = folder / "spec.yaml"
    write_spec(spec, arguments.users, arguments.denial)
    apply = [sys.executable, "-m", "provisioner", "apply", str(spec)]
    rows = [("first", *timed(apply, folder)), ("unchanged", *timed(apply, folder))]
    text = spec.read_text()
    spec.write_text(
        text.replace("  - {address: user1@bench.test, certificate: {authority: ca}}\n", "")
    )
    rows.append(("one user", *timed(apply, folder)))

    zone_file = folder / "out" / "zones" / "bench.test.zone"
    if shutil.which("dnssec-verify"):
        rows.append(
            (
                "dnssec-verify (reference)",
                *timed(["dnssec-verify", "-q", "-o", "bench.test", str(zone_file)], folder),
            )
        )
    print(
        f"{arguments.users} users, {arguments.denial}, zone file {zone_file.stat().st_size} bytes"
    )
    print(f"{'run':<26} {'wall s':>8} {'max RSS MiB':>12}")
    for name, seconds, rss in rows:
        print(f"{name:<26} {seconds:>8.2f} {rss:>12.0f}")
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
