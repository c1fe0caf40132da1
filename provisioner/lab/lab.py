"""Bring the lab up and down: zones applied by provisioner, served and resolved by real servers.

The lab spec (examples/nccoe/lab.yaml) is copied into a work folder with every zone's publish
path and reload command pointing at the lab's own authoritative servers. `provisioner apply`
then issues the certificates, signs the zones and writes them. The lab root's DS from the state
store becomes Unbound's trust anchor, and two Postfix instances (organisation A and B) send and
receive mail with DANE through that resolver. Everything runs inside one network namespace, which
`down` deletes with every process in it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import dns.name
from ruamel.yaml import YAML

from provisioner.lab.netns import LabError, Namespace, run
from provisioner.lab.servers import (
    AuthoritativeServer,
    PostfixInstance,
    UnboundResolver,
    wait_until,
)
from provisioner.spec.loader import load_spec
from provisioner.spec.models import NameServer, Spec

log = logging.getLogger(__name__)

RESOLVER_ADDRESS = "127.0.0.53"
STATE_FILE = "lab.json"
DEFAULT_SPEC = Path(__file__).resolve().parents[2] / "examples" / "nccoe" / "lab.yaml"
# Which authoritative server serves which zone; zones not named here get NSD. Three kinds show
# that provisioner's signed zone files need no server-specific treatment.
DEFAULT_DNS_SERVERS = {".": "bind", "example.com.": "knot", "example.net.": "nsd"}


def namespace_name(workdir: Path) -> str:
    """Return the namespace name of a work folder: stable, so `down` finds what `up` made."""
    digest = hashlib.sha256(str(workdir.resolve()).encode()).hexdigest()[:8]
    return f"provlab-{digest}"


def provisioner_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "provisioner", *arguments]


def _check_traversable(folder: Path) -> None:
    """Raise LabError unless unprivileged daemons can reach ``folder``.

    Postfix's daemons run as the postfix user, so a parent folder of mode 0700
    (such as pytest's /tmp/pytest-of-root) makes Postfix fail to start without a message.
    """
    for parent in [folder, *folder.parents]:
        if not parent.stat().st_mode & stat.S_IXOTH:
            raise LabError(
                f"the lab folder {folder} is inside {parent}, which other users cannot enter "
                f"(mode {stat.S_IMODE(parent.stat().st_mode):o}); Postfix could not start",
                hint="choose a --workdir whose parent folders have the x bit for others",
            )


@dataclass
class Organisation:
    """One organisation of the lab: its mail domain, MX host and Postfix instance."""

    domain: str
    mx_host: str
    address: str
    postfix: PostfixInstance


class Lab:
    """The running lab in ``workdir``; ``up`` starts it, ``down`` removes all of it."""

    def __init__(
        self,
        workdir: Path,
        spec_source: Path | None = None,
        dns_servers: dict[str, str] | None = None,
    ) -> None:
        self.workdir = workdir.resolve()
        self.spec_source = (spec_source or DEFAULT_SPEC).resolve()
        self.spec_path = self.workdir / "lab.yaml"
        self.namespace = Namespace(namespace_name(self.workdir))
        self.dns_servers = {
            dns.name.from_text(zone).to_text(): kind
            for zone, kind in (dns_servers or DEFAULT_DNS_SERVERS).items()
        }
        self.authoritative: dict[str, AuthoritativeServer] = {}
        self.resolver: UnboundResolver | None = None
        self.organisations: list[Organisation] = []
        self._spec: Spec | None = None
        self._down = False

    # --- the spec ---------------------------------------------------------------------------

    @property
    def spec(self) -> Spec:
        if self._spec is None:
            self._spec = load_spec(self.spec_path)
        return self._spec

    def zone_file(self, zone: str) -> Path:
        label = zone.rstrip(".") or "root"
        return self.workdir / "zones" / f"{label}.zone"

    def _server_root(self, zone: str) -> Path:
        return self.workdir / "dns" / (zone.rstrip(".") or "root")

    def server_kind(self, zone: str) -> str:
        return self.dns_servers.get(zone, "nsd")

    def write_spec(self) -> None:
        """Copy the lab spec into the work folder, publishing each zone to the lab's servers."""
        yaml = YAML()
        yaml.preserve_quotes = True
        document = yaml.load(self.spec_source.read_text())
        document["state"] = str(self.workdir / "state")
        document["output"] = str(self.workdir / "out")
        for zone in document["zones"]:
            name = dns.name.from_text(str(zone["name"])).to_text()
            pid_file = self._server_root(name) / f"{self.server_kind(name)}.pid"
            zone["publish"] = {
                "backend": "zonefile",
                "path": str(self.zone_file(name)),
                # A running server rereads changed zone files on SIGHUP; before it runs, nothing.
                "reload": ["sh", "-c", f'[ ! -s {pid_file} ] || kill -HUP "$(cat {pid_file})"'],
            }
        (self.workdir / "zones").mkdir(parents=True, exist_ok=True)
        with self.spec_path.open("w") as handle:
            yaml.dump(document, handle)
        self._spec = None

    def apply(self) -> str:
        """Run `provisioner apply` on the lab spec and return its output."""
        result = run(provisioner_command("apply", str(self.spec_path)), timeout=300)
        return result.stdout

    def root_trust_anchor(self) -> str:
        result = run(provisioner_command("ds", str(self.spec_path), "."))
        return result.stdout

    # --- components -------------------------------------------------------------------------

    def _build(self) -> None:
        spec = self.spec
        for zone in spec.zones:
            addresses = [
                address
                for nameserver in zone.nameservers
                if isinstance(nameserver, NameServer)
                for address in nameserver.addresses
            ]
            if not addresses:
                raise LabError(
                    f"zone {zone.name} has no name server address in the lab spec",
                    hint="give nameservers as {name, addresses: [127.x.y.z]}",
                )
            self.authoritative[zone.name] = AuthoritativeServer(
                self.namespace,
                self._server_root(zone.name),
                zone.name,
                addresses,
                {zone.name: self.zone_file(zone.name)},
                kind=self.server_kind(zone.name),
            )
        root_zone = self.authoritative.get(".")
        if root_zone is None:
            raise LabError("the lab spec has no root zone '.'", hint="see examples/nccoe/lab.yaml")

        self.organisations = []
        for server in spec.mail_servers:
            zone = spec.zone(server.zone) if server.zone else spec.zone_for(server.host)
            assert zone is not None
            domain = zone.name.rstrip(".")
            root = self.workdir / "postfix" / domain
            postfix = PostfixInstance(
                self.namespace,
                root,
                server.host,
                domain,
                server.addresses[0],
                key_file=root / "tls" / "key.pem",
                chain_file=root / "tls" / "fullchain.pem",
                mailboxes=[user.address for user in spec.users if user.domain == domain],
            )
            self.organisations.append(
                Organisation(domain, server.host, server.addresses[0], postfix)
            )

    def organisation(self, domain: str) -> Organisation:
        for organisation in self.organisations:
            if organisation.domain == domain.rstrip("."):
                return organisation
        raise LabError(f"no organisation with the mail domain {domain} in the lab")

    # --- lifecycle --------------------------------------------------------------------------

    def up(self) -> None:
        """Apply the spec, then start the name servers, the resolver and both MTAs."""
        self._down = False
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o755)
        _check_traversable(self.workdir)
        self.write_spec()
        log.info("applying %s", self.spec_path)
        self.apply()
        self._build()
        anchor = self.root_trust_anchor()
        root_servers = "".join(
            f"{self.spec.zone('.').nameserver_names()[0]} 60 IN A {address}\n"
            for address in self.authoritative["."].addresses
        )
        self.anchor_file.write_text(anchor + root_servers)

        self.namespace.create(RESOLVER_ADDRESS)
        self._save_state()
        for server in self.authoritative.values():
            server.start()
        self.resolver = UnboundResolver(
            self.namespace,
            self.workdir / "unbound",
            RESOLVER_ADDRESS,
            self.authoritative["."].addresses,
            anchor,
        )
        self.resolver.start()
        for organisation in self.organisations:
            wait_until(
                lambda organisation=organisation: self.validated(organisation.mx_host, "A"),
                30,
                f"the resolver to validate {organisation.mx_host}",
            )
            certificates = self.spec.output_dir() / "certs" / organisation.mx_host.rstrip(".")
            organisation.postfix.install_certificate(
                Path((certificates / "key.path").read_text().strip()),
                certificates / "fullchain.pem",
            )
            organisation.postfix.start()
        log.info("lab is up in %s (network namespace %s)", self.workdir, self.namespace.name)

    def validated(self, name: str, rdtype: str) -> bool:
        """Return whether the resolver returns ``name``/``rdtype`` with the AD bit set."""
        result = self.dig(name, rdtype)
        return "status: NOERROR" in result and " ad" in result.split("flags:", 1)[-1].split(";")[0]

    def dig(self, name: str, rdtype: str, *options: str) -> str:
        result = self.namespace.run(
            [
                "dig",
                "+dnssec",
                "+time=3",
                "+tries=1",
                f"@{RESOLVER_ADDRESS}",
                name,
                rdtype,
                *options,
            ],
            check=False,
            timeout=20,
        )
        return result.stdout

    @property
    def anchor_file(self) -> Path:
        """The root's DS and its server addresses, for `provisioner check --trust-anchor`."""
        return self.workdir / "trust-anchor.txt"

    def run_in_namespace(self, *arguments: str, timeout: float = 120):  # type: ignore[no-untyped-def]
        """Run a provisioner command inside the namespace and return the completed process."""
        return self.namespace.run(
            provisioner_command(*arguments), check=False, timeout=timeout, cwd=self.workdir
        )

    def check(self) -> dict[str, object]:
        """Run `provisioner check` on the lab spec from inside the namespace; return its JSON."""
        result = self.run_in_namespace(
            "check", str(self.spec_path), "--json", "--trust-anchor", str(self.anchor_file)
        )
        try:
            report: dict[str, object] = json.loads(result.stdout)
        except json.JSONDecodeError as error:
            raise LabError(
                f"provisioner check printed no JSON report (status {result.returncode}): "
                f"{result.stderr.strip()[-1000:]}"
            ) from error
        return report

    def _save_state(self) -> None:
        state = {
            "namespace": self.namespace.name,
            "spec": str(self.spec_path),
            "dns_servers": self.dns_servers,
        }
        (self.workdir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")

    def down(self) -> None:
        """Stop everything in the namespace and delete it; safe to call more than once."""
        if self._down:
            return
        for organisation in self.organisations:
            try:
                organisation.postfix.stop()
            except (LabError, subprocess.SubprocessError, OSError) as error:
                log.warning("stopping Postfix %s failed: %s", organisation.mx_host, error)
        self.namespace.delete()
        self._down = True
        log.info("lab in %s is down", self.workdir)

    @classmethod
    def from_workdir(cls, workdir: Path) -> Lab:
        """Return the lab that `up` left in ``workdir``, for `down`."""
        lab = cls(workdir)
        state_file = lab.workdir / STATE_FILE
        if state_file.exists():
            state = json.loads(state_file.read_text())
            lab.namespace = Namespace(state["namespace"])
            lab.dns_servers = state.get("dns_servers", lab.dns_servers)
        if lab.spec_path.exists():
            try:
                lab._build()
            except (LabError, OSError) as error:
                log.warning("cannot rebuild the lab from %s: %s", lab.spec_path, error)
        return lab
