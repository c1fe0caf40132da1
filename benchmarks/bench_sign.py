"""Sign generated mail zones with provisioner and with established signers; compare time and memory.

Usage:
    python benchmarks/bench_sign.py --users 10000,100000 [--million] [--denial nsec,nsec3]
                                    [--render] [--repeat N]

Each zone holds an SOA, NS, MX and address records and one SMIMEA RRset per user (usage 3,
selector 1, matching type 1, at the SHA-256-based owner name of RFC 8162). Every signer uses
algorithm 13 (ECDSAP256SHA256) with a KSK and a ZSK, 14-day signatures, and NSEC or NSEC3 with
no salt and no extra iterations. Tools that are not installed are left out of the table.

Measured for each signer, in the same run on the same zone:
- time: wall-clock seconds of the signing process, from start to exit;
- peak PSS: the largest proportional set size of the signer's process tree, sampled every
  0.1 s from /proc/PID/smaps_rollup (so that pages shared between processes count once);
- max RSS: ru_maxrss from wait4(), the peak resident set of the largest single process.
For provisioner the zone is built in memory (the product never parses zone files: the zone
builder hands ZoneData to the signer), so its time is ZoneSigner.sign() alone, while its memory
columns cover the whole process (building the zone, signing, one incremental update). The
incremental re-sign after one user's SMIMEA changes, and with --render the time to render the
signed zone with ZoneData.to_text(), are reported on their own lines. The other tools read and
write zone files, and their time includes that.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ORIGIN = "example.com."
HEADER = """$ORIGIN example.com.
$TTL 3600
@ IN SOA ns1 hostmaster 2026120401 7200 3600 1209600 300
@ IN NS ns1
@ IN NS ns2
@ IN MX 10 mx1
ns1 IN A 192.0.2.1
ns2 IN A 192.0.2.2
mx1 IN A 192.0.2.25
mx1 IN AAAA 2001:db8::25
_25._tcp.mx1 IN TLSA 3 1 1 {tlsa}
"""
VALIDITY = 14 * 86400


def user_records(users: int) -> Iterator[tuple[str, bytes]]:
    """Yield (owner label, SMIMEA certificate association data) for each generated user."""
    for index in range(users):
        local_part = f"user{index}"
        label = hashlib.sha256(local_part.encode()).hexdigest()[:56]
        yield label, hashlib.sha256(f"certificate of {local_part}".encode()).digest()


def write_zone_file(path: Path, users: int) -> None:
    with path.open("w") as file:
        file.write(HEADER.format(tlsa="ab" * 32))
        for label, data in user_records(users):
            file.write(f"{label}._smimecert IN SMIMEA 3 1 1 {data.hex()}\n")


def build_zone_data(users: int) -> object:
    """Build the same zone as write_zone_file, as ZoneData, without parsing text per user."""
    import dns.name
    import dns.rdataclass
    import dns.rdatatype
    import dns.rdtypes.ANY.SMIMEA
    import dns.rrset

    from provisioner.zone.compact import compact
    from provisioner.zone.model import ZoneData

    zone = ZoneData.from_text(HEADER.format(tlsa="ab" * 32), ORIGIN)
    origin = dns.name.from_text(ORIGIN)
    suffix = (b"_smimecert", *origin.labels)
    smimea = dns.rdatatype.SMIMEA
    for label, data in user_records(users):
        rrset = dns.rrset.RRset(dns.name.Name((label.encode(), *suffix)), dns.rdataclass.IN, smimea)
        rrset.add(dns.rdtypes.ANY.SMIMEA.SMIMEA(dns.rdataclass.IN, smimea, 3, 1, 1, data), 3600)
        zone.replace(compact(rrset))  # as the zone builder stores them
    return zone


# ---------------------------------------------------------------------------------------
# Running a signer and measuring it


def _tree(pid: int) -> list[int]:
    pids = [pid]
    index = 0
    while index < len(pids):
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{pids[index]}/task"):
                with open(f"/proc/{pids[index]}/task/{task}/children") as file:
                    pids.extend(int(child) for child in file.read().split())
        index += 1
    return pids


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as file:
            for line in file:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(command: list[str], cwd: Path) -> dict[str, object]:
    """Run ``command``; return its wall time, peak PSS of its process tree, max RSS and output."""
    out_path = cwd / "stdout.txt"
    err_path = cwd / "stderr.txt"
    with out_path.open("w") as stdout, err_path.open("w") as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, stdout=stdout, stderr=stderr)
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, sum(_pss_kib(pid) for pid in _tree(process.pid)))
                done.wait(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _pid, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
    if process.returncode != 0:
        error = err_path.read_text().strip()[:2000]
        raise RuntimeError(f"{command[0]} failed ({process.returncode}): {error}")
    return {
        "seconds": elapsed,
        "peak_pss_mib": peak / 1024,
        "max_rss_mib": usage.ru_maxrss / 1024,
        "stdout": out_path.read_text(),
    }


# ---------------------------------------------------------------------------------------
# The signers


def run_provisioner(users: int, denial: str, render: bool) -> None:
    """Child-process entry: sign in memory, print timings as JSON (see the module docstring)."""
    from provisioner.dnssec.keys import KSK_FLAGS, ZSK_FLAGS, generate_key
    from provisioner.dnssec.policy import DnssecPolicy
    from provisioner.dnssec.signer import KeyAssignment, KeyRole, ZoneSigner
    from provisioner.zone.model import ZoneData

    zone = build_zone_data(users)
    assert isinstance(zone, ZoneData)
    keys = [
        KeyAssignment(generate_key(13, KSK_FLAGS), KeyRole.KSK),
        KeyAssignment(generate_key(13, ZSK_FLAGS), KeyRole.ZSK),
    ]
    signer = ZoneSigner(keys, DnssecPolicy(algorithm=13, denial=denial))
    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    signed = signer.sign(zone, now)
    sign_seconds = time.perf_counter() - started
    rss_after_sign = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # One user's certificate changes: the zone builder copies the zone and replaces one RRset.
    edited = zone.copy()
    label, _data = next(user_records(1))
    import dns.rdata

    changed = zone.get(f"{label}._smimecert.{ORIGIN}", "SMIMEA")
    assert changed is not None
    replacement = changed.copy()
    replacement.clear()
    replacement.add(dns.rdata.from_text("IN", "SMIMEA", "3 1 1 " + "00" * 32), 3600)
    edited.replace(replacement)
    started = time.perf_counter()
    updated = signer.update(signed, edited, now + dt.timedelta(minutes=1))
    update_seconds = time.perf_counter() - started

    write_seconds = None
    if render:
        started = time.perf_counter()
        signed.zone.to_text()
        write_seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "sign_seconds": sign_seconds,
                "update_seconds": update_seconds,
                "update_made": updated.made,
                "write_seconds": write_seconds,
                "signatures": signed.made,
                "rss_after_sign_mib": rss_after_sign,
            }
        )
    )


def provisioner_command(users: int, denial: str, render: bool) -> list[str]:
    return [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        str(users),
        denial,
        "render" if render else "sign",
    ]


def bind_command(work: Path, zone: Path, denial: str) -> list[str] | None:
    if not shutil.which("dnssec-signzone") or not shutil.which("dnssec-keygen"):
        return None
    keys = work / "bind-keys"
    keys.mkdir(exist_ok=True)
    for extra in (["-f", "KSK"], []):
        subprocess.run(
            [
                "dnssec-keygen",
                "-q",
                "-K",
                str(keys),
                "-a",
                "ECDSAP256SHA256",
                *extra,
                "example.com",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    nsec3 = ["-3", "-", "-H", "0"] if denial == "nsec3" else []
    # -S (smart signing) adds the DNSKEY RRset from the keys in -K.
    return [
        "dnssec-signzone",
        "-q",
        "-S",
        "-o",
        "example.com",
        "-K",
        str(keys),
        "-s",
        "now-3600",
        "-e",
        f"now+{VALIDITY}",
        "-j",
        "43200",
        *nsec3,
        "-f",
        str(work / "bind.signed"),
        str(zone),
    ]


def ldns_command(work: Path, zone: Path, denial: str) -> list[str] | None:
    if not shutil.which("ldns-signzone") or not shutil.which("ldns-keygen"):
        return None
    names = []
    for extra in (["-k"], []):
        result = subprocess.run(
            ["ldns-keygen", "-a", "ECDSAP256SHA256", *extra, "example.com"],
            cwd=work,
            capture_output=True,
            text=True,
            check=True,
        )
        names.append(str(work / result.stdout.strip()))
    expiration = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=VALIDITY)
    nsec3 = ["-n", "-s", "", "-t", "0"] if denial == "nsec3" else []
    return [
        "ldns-signzone",
        *nsec3,
        "-e",
        expiration.strftime("%Y%m%d%H%M%S"),
        "-f",
        str(work / "ldns.signed"),
        str(zone),
        *names,
    ]


def knot_command(work: Path, zone: Path, denial: str) -> list[str] | None:
    if not shutil.which("kzonesign"):
        return None
    storage = work / "knot"
    storage.mkdir(exist_ok=True)
    nsec3 = "on" if denial == "nsec3" else "off"
    config = storage / "knot.conf"
    config.write_text(f"""
server:
    rundir: "{storage}"
database:
    storage: "{storage}"
keystore:
  - id: bench
    config: "{storage}/keys"
policy:
  - id: bench
    keystore: bench
    algorithm: ecdsap256sha256
    rrsig-lifetime: 14d
    rrsig-refresh: 5d
    nsec3: {nsec3}
    nsec3-iterations: 0
    nsec3-salt-length: 0
    nsec3-salt-lifetime: 0
zone:
  - domain: example.com
    storage: "{storage}"
    file: "{zone}"
    dnssec-signing: on
    dnssec-policy: bench
""")
    # The first run creates the keys in the KASP database; time only the second, which signs.
    subprocess.run(
        ["kzonesign", "-c", str(config), "-o", str(storage / "warmup"), "example.com"],
        capture_output=True,
        text=True,
        check=False,
    )
    (storage / "out").mkdir(exist_ok=True)
    return ["kzonesign", "-c", str(config), "-o", str(storage / "out"), "example.com"]


# ---------------------------------------------------------------------------------------
# The table


def machine_description() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as file:
        for line in file:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as file:
        memory_kib = int(file.readline().split()[1])
    return (
        f"{os.cpu_count()} CPUs ({model}), {memory_kib // 1024} MiB RAM, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )


def versions() -> list[str]:
    found = []
    for command in (["dnssec-signzone", "-V"], ["ldns-signzone", "-v"], ["kzonesign", "-V"]):
        if shutil.which(command[0]):
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            first_line = (result.stdout or result.stderr).strip().splitlines()[0]
            found.append(f"{command[0]}: {first_line}")
    import cryptography
    import dns.version

    found.append(f"dnspython {dns.version.version}, cryptography {cryptography.__version__}")
    return found


def fastest(command: list[str], work: Path, repeat: int) -> dict[str, object]:
    """Run ``command`` ``repeat`` times and keep the fastest run (least hurt by other load)."""
    runs = [measure(command, work) for _ in range(repeat)]
    return min(runs, key=lambda run: float(run["seconds"]))


def bench(
    users: int, denial: str, work: Path, render: bool, repeat: int
) -> list[dict[str, object]]:
    zone = work / "example.com.zone"
    write_zone_file(zone, users)
    rows: list[dict[str, object]] = []

    runs = [measure(provisioner_command(users, denial, render=False), work) for _ in range(repeat)]
    runs_details = [json.loads(str(run["stdout"]).strip().splitlines()[-1]) for run in runs]
    best = min(range(repeat), key=lambda index: float(runs_details[index]["sign_seconds"]))
    result, details = runs[best], runs_details[best]
    if render:
        # A separate run, so that the rendered text does not count in the signing memory.
        rendered = measure(provisioner_command(users, denial, render=True), work)
        details["write_seconds"] = json.loads(rendered["stdout"].strip().splitlines()[-1])[
            "write_seconds"
        ]
    rows.append({"signer": "provisioner", **result, **details})
    for name, builder in (
        ("dnssec-signzone", bind_command),
        ("ldns-signzone", ldns_command),
        ("kzonesign", knot_command),
    ):
        command = builder(work, zone, denial)
        if command is None:
            continue
        rows.append({"signer": name, **fastest(command, work, repeat)})
    return rows


def print_table(users: int, denial: str, rows: list[dict[str, object]]) -> None:
    mine = rows[0]
    print(f"\n{users} users, {denial}: provisioner made {mine['signatures']} signatures")
    print(f"{'signer':<16} {'time s':>8} {'ratio':>7} {'peak PSS MiB':>13} {'max RSS MiB':>12}")
    for row in rows:
        seconds = float(row["sign_seconds"] if row is mine else row["seconds"])
        ratio = seconds / float(mine["sign_seconds"])
        print(
            f"{row['signer']:<16} {seconds:>8.2f} {ratio:>7.2f} "
            f"{float(row['peak_pss_mib']):>13.0f} {float(row['max_rss_mib']):>12.0f}"
        )
    print(
        f"provisioner process total (build zone, sign, update): {float(mine['seconds']):.2f} s, "
        f"max RSS after signing {float(mine['rss_after_sign_mib']):.0f} MiB"
    )
    if mine["write_seconds"] is not None:
        print(f"provisioner render with ZoneData.to_text(): {float(mine['write_seconds']):.2f} s")
    print(
        f"provisioner incremental update after one user changed: "
        f"{float(mine['update_seconds']) * 1000:.1f} ms, {mine['update_made']} signatures, "
        f"full/incremental = {float(mine['sign_seconds']) / float(mine['update_seconds']):.0f}x"
    )
    print("time ratio: signer time / provisioner sign time (above 1: provisioner is faster)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--users",
        default="10000,100000",
        help="comma-separated zone sizes in SMIMEA users (default 10000,100000)",
    )
    parser.add_argument("--million", action="store_true", help="also sign a 1,000,000-user zone")
    parser.add_argument("--denial", default="nsec,nsec3", help="nsec, nsec3 or both (default)")
    parser.add_argument(
        "--render",
        action="store_true",
        help="also time ZoneData.to_text() of the signed zone (a second run)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per signer; the fastest is reported (default 1)"
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        run_provisioner(int(arguments.child[0]), arguments.child[1], arguments.child[2] == "render")
        return

    sizes = [int(size) for size in arguments.users.split(",") if size]
    if arguments.million:
        sizes.append(1_000_000)
    print(machine_description())
    for line in versions():
        print(line)
    for users in sizes:
        for denial in arguments.denial.split(","):
            with tempfile.TemporaryDirectory(prefix="bench-sign-") as directory:
                rows = bench(users, denial, Path(directory), arguments.render, arguments.repeat)
                print_table(users, denial, rows)


if __name__ == "__main__":
    main()
