"""The lab's daemons: authoritative servers, the Unbound resolver and Postfix instances.

Configuration comes from the templates under templates/ (the ones the Ansible roles install),
rendered with absolute paths inside the lab's work folder, so the lab runs the same
configuration that `provisioner deploy` puts on real hosts.
"""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import pwd
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from provisioner.deploy.templates import render_template
from provisioner.lab.netns import LabError, Namespace
from provisioner.store.atomic import write_private

log = logging.getLogger(__name__)

# Mailboxes are written by Postfix's virtual(8) agent, which never delivers as root.
MAILBOX_USER = "nobody"

# Queue subdirectories owned by the postfix user with mode 0700.
QUEUE_SUBDIRECTORIES = (
    "active",
    "bounce",
    "corrupt",
    "defer",
    "deferred",
    "flush",
    "hold",
    "incoming",
    "private",
    "saved",
    "trace",
)


def wait_until(condition, timeout: float, what: str, interval: float = 0.2):  # type: ignore[no-untyped-def]
    """Poll ``condition`` until it returns a true value, or raise LabError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise LabError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stop_pid(pid_file: Path, what: str, timeout: float = 10) -> None:
    pid = _read_pid(pid_file)
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            log.info("stopped %s (pid %d)", what, pid)
            return
        time.sleep(0.1)
    log.warning("%s (pid %d) did not stop on SIGTERM; sending SIGKILL", what, pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _dns_answers(namespace: Namespace, server: str, name: str, rdtype: str) -> bool:
    result = namespace.run(
        ["dig", "+norecurse", "+time=1", "+tries=1", f"@{server}", name, rdtype],
        check=False,
        timeout=10,
    )
    return result.returncode == 0 and "status: NOERROR" in result.stdout


# Authoritative servers the lab can run; each serves provisioner's signed zone files as they are.
SERVER_KINDS = ("nsd", "knot", "bind")


@dataclass
class AuthoritativeServer:
    """One NSD, Knot or BIND process serving signed zone files on the given addresses.

    Each kind rereads changed zone files on SIGHUP (NSD compares modification times, Knot and
    BIND reload their configuration and modified zones), which is the lab's reload command.
    """

    namespace: Namespace
    root: Path
    name: str
    addresses: list[str]
    zones: dict[str, Path]
    kind: str = "nsd"
    port: int = 53

    def __post_init__(self) -> None:
        if self.kind not in SERVER_KINDS:
            raise LabError(
                f"unknown authoritative server {self.kind!r}",
                hint=f"choose one of: {', '.join(SERVER_KINDS)}",
            )

    @property
    def label(self) -> str:
        return f"{self.kind.upper() if self.kind != 'knot' else 'Knot'} {self.name}"

    @property
    def config_file(self) -> Path:
        return self.root / {"nsd": "nsd.conf", "knot": "knot.conf", "bind": "named.conf"}[self.kind]

    @property
    def pid_file(self) -> Path:
        return self.root / f"{self.kind}.pid"

    @property
    def log_file(self) -> Path:
        return self.root / f"{self.kind}.log"

    def reload_command(self) -> list[str]:
        """Return the command that makes the server reread changed zone files (SIGHUP)."""
        return ["sh", "-c", f'kill -HUP "$(cat {self.pid_file})"']

    def write_config(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        variables: dict[str, object] = {
            "provisioner_root": "",
            "dns_listen_addresses": self.addresses,
            "dns_port": self.port,
            "dns_working_dir": str(self.root),
            "dns_key_dir": str(self.root / "keys"),
            "dns_pid_file": str(self.pid_file),
            "dns_zones": [{"name": n, "file": str(p)} for n, p in self.zones.items()],
            "dns_tsig_key_files": [],
        }
        if self.kind == "nsd":
            variables["nsd_extra_config"] = ""
            text = render_template("nsd/nsd.conf.j2", variables)
            text = text.replace(
                "    hide-version: yes\n",
                f'    hide-version: yes\n    logfile: "{self.log_file}"\n',
            )
        elif self.kind == "knot":
            (self.root / "keys").mkdir(exist_ok=True)
            variables.update(
                knot_user="",
                knot_control_socket=str(self.root / "knot.sock"),
                knot_log_target=str(self.log_file),
                knot_extra_config="",
            )
            text = render_template("knot/knot.conf.j2", variables)
        else:
            (self.root / "keys").mkdir(exist_ok=True)
            variables.update(
                bind_rndc_key_file="",
                bind_control_address="",
                bind_extra_config=(
                    "logging {\n"
                    f'    channel lab {{ file "{self.log_file}"; severity info; }};\n'
                    "    category default { lab; };\n};"
                ),
            )
            text = render_template("bind/named.conf.j2", variables)
        self.config_file.write_text(text)

    def _commands(self) -> tuple[list[str], list[str]]:
        """Return the configuration check and the start command of this kind."""
        config = str(self.config_file)
        if self.kind == "nsd":
            return ["nsd-checkconf", config], ["nsd", "-c", config]
        if self.kind == "knot":
            return ["knotc", "-c", config, "conf-check"], ["knotd", "-c", config, "-d"]
        return ["named-checkconf", config], ["named", "-c", config]

    def start(self, timeout: float = 20) -> None:
        self.write_config()
        # BIND listens only on addresses that an interface carries.
        for address in self.addresses:
            self.namespace.add_address(address)
        check, start = self._commands()
        self.namespace.run(check)
        self.namespace.run(start)
        zone = next(iter(self.zones))
        for address in self.addresses:
            wait_until(
                lambda address=address: _dns_answers(self.namespace, address, zone, "SOA"),
                timeout,
                f"{self.label} to answer for {zone} on {address}",
            )
        log.info("started %s on %s", self.label, ", ".join(self.addresses))

    def stop(self, timeout: float = 15) -> None:
        _stop_pid(self.pid_file, self.label)
        # Worker processes can outlive the main one briefly; a successor needs the port.
        zone = next(iter(self.zones))
        for address in self.addresses:
            wait_until(
                lambda address=address: not _dns_answers(self.namespace, address, zone, "SOA"),
                timeout,
                f"{self.label} to stop answering on {address}",
            )

    def reload(self) -> None:
        self.namespace.run(self.reload_command())


@dataclass
class UnboundResolver:
    """The validating resolver: the lab root as its only root server, its DS as trust anchor."""

    namespace: Namespace
    root: Path
    address: str
    root_servers: list[str]
    trust_anchor: str
    control_port: int = 8953

    @property
    def config_file(self) -> Path:
        return self.root / "unbound.conf"

    @property
    def pid_file(self) -> Path:
        return self.root / "unbound.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "unbound.log"

    def write_config(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        anchor_file = self.root / "root.anchor"
        anchor_file.write_text(self.trust_anchor.strip() + "\n")
        extra = "\n".join(
            [
                "server:",
                # Bogus answers and unreachable servers are remembered only briefly, so that
                # each scenario starts from what the servers serve now.
                "    val-bogus-ttl: 5",
                "    infra-host-ttl: 10",
                "    cache-max-negative-ttl: 5",
                "    serve-expired: no",
                "    qname-minimisation: no",
            ]
        )
        text = render_template(
            "unbound/unbound.conf.j2",
            {
                "provisioner_root": "",
                "unbound_interfaces": [self.address],
                "unbound_port": 53,
                "unbound_username": "",
                "unbound_working_dir": str(self.root),
                "unbound_pid_file": str(self.pid_file),
                "unbound_daemonize": True,
                "unbound_use_syslog": False,
                "unbound_logfile": str(self.log_file),
                "unbound_access_control": ["127.0.0.0/8"],
                "unbound_allow_query_localhost": True,
                "unbound_auto_trust_anchor_file": "",
                "unbound_trust_anchor_file": str(anchor_file),
                "unbound_trust_anchors": [],
                "unbound_stub_zones": [{"name": ".", "addresses": self.root_servers}],
                "unbound_control_interface": "127.0.0.1",
                "unbound_control_port": self.control_port,
                "unbound_extra_config": extra,
            },
        )
        self.config_file.write_text(text)

    def start(self, timeout: float = 20) -> None:
        self.write_config()
        self.namespace.run(["unbound-checkconf", str(self.config_file)])
        self.namespace.run(["unbound", "-c", str(self.config_file)])
        wait_until(
            lambda: self.control("status", check=False).returncode == 0,
            timeout,
            "Unbound to start",
        )
        log.info("started Unbound on %s", self.address)

    def control(self, *arguments: str, check: bool = True):  # type: ignore[no-untyped-def]
        return self.namespace.run(
            ["unbound-control", "-c", str(self.config_file), *arguments], check=check
        )

    def flush(self) -> None:
        """Forget every cached answer, bogus result and server state."""
        self.control("flush_zone", ".")
        self.control("flush_bogus")
        self.control("flush_negative")
        self.control("flush_infra", "all")

    def stop(self) -> None:
        _stop_pid(self.pid_file, "Unbound")


@dataclass
class PostfixInstance:
    """A Postfix instance with its own config, queue and data directories, and mailboxes.

    It receives mail for ``domain`` on ``address``:25 into Maildir mailboxes under
    ``root/mail`` and sends mail out with DANE (``smtp_tls_security_level = dane``).
    """

    namespace: Namespace
    root: Path
    hostname: str
    domain: str
    address: str
    key_file: Path
    chain_file: Path
    mailboxes: list[str] = field(default_factory=list)

    @property
    def config_dir(self) -> Path:
        return self.root / "etc"

    @property
    def queue_dir(self) -> Path:
        return self.root / "spool"

    @property
    def log_file(self) -> Path:
        return self.root / "postfix.log"

    @property
    def mail_dir(self) -> Path:
        return self.root / "mail"

    def write_config(self) -> None:
        for folder in (self.config_dir, self.queue_dir, self.root / "data", self.mail_dir):
            folder.mkdir(parents=True, exist_ok=True)
        user = pwd.getpwnam(MAILBOX_USER)
        os.chown(self.mail_dir, user.pw_uid, user.pw_gid)
        self._make_queue()

        mailbox_map = self.config_dir / "vmailbox"
        mailbox_map.write_text(
            "".join(
                f"{address} {self.domain}/{address.partition('@')[0]}/\n"
                for address in self.mailboxes
            )
        )
        extra = {
            "smtp_bind_address": self.address,
            "smtp_address_preference": "ipv4",
            "virtual_mailbox_domains": self.domain,
            "virtual_mailbox_base": str(self.mail_dir),
            "virtual_mailbox_maps": f"texthash:{mailbox_map}",
            "virtual_uid_maps": f"static:{user.pw_uid}",
            "virtual_gid_maps": f"static:{user.pw_gid}",
            "virtual_minimum_uid": str(min(user.pw_uid, 100)),
            "maillog_file_prefixes": str(self.root),
            "mynetworks": "127.0.0.0/8",
            "smtpd_tls_received_header": "yes",
            "biff": "no",
            "append_dot_mydomain": "no",
            "smtputf8_enable": "no",
            "delay_warning_time": "0",
            # Short retry times keep the scenarios within minutes; a flush forces a retry now.
            "queue_run_delay": "5s",
            "minimal_backoff_time": "5s",
            "maximal_backoff_time": "10s",
            "maximal_queue_lifetime": "1h",
            "bounce_queue_lifetime": "1h",
            "smtp_connect_timeout": "5s",
            "smtp_helo_timeout": "10s",
            "smtp_starttls_timeout": "10s",
            "smtp_tls_session_cache_database": "",
        }
        variables = {
            "provisioner_root": "",
            "postfix_myhostname": self.hostname.rstrip("."),
            "postfix_mydomain": self.domain,
            "postfix_mydestination": "localhost",
            "postfix_inet_interfaces": self.address,
            "postfix_inet_protocols": "ipv4",
            "postfix_queue_directory": str(self.queue_dir),
            "postfix_data_directory": str(self.root / "data"),
            "postfix_mail_owner": "postfix",
            "postfix_setgid_group": "postdrop",
            "postfix_maillog_file": str(self.log_file),
            "postfix_tls_chain_files": [str(self.key_file), str(self.chain_file)],
            "postfix_smtpd_tls_security_level": "may",
            "postfix_smtp_tls_security_level": "dane",
            "postfix_smtp_dns_support_level": "dnssec",
            "postfix_tls_loglevel": 1,
            "postfix_extra_parameters": extra,
            "postfix_smtpd_listeners": ["smtp"],
        }
        (self.config_dir / "main.cf").write_text(render_template("postfix/main.cf.j2", variables))
        (self.config_dir / "master.cf").write_text(
            render_template("postfix/master.cf.j2", variables)
        )

    def _make_queue(self) -> None:
        """Create the queue directory tree with the owners and modes of Postfix's postfix-files.

        `postfix start` does not create it for a non-default config directory.
        """
        postfix = pwd.getpwnam("postfix")
        postdrop = grp.getgrnam("postdrop").gr_gid
        os.chown(self.root / "data", postfix.pw_uid, postfix.pw_gid)
        for name in QUEUE_SUBDIRECTORIES:
            folder = self.queue_dir / name
            folder.mkdir(exist_ok=True)
            os.chown(folder, postfix.pw_uid, postfix.pw_gid)
            folder.chmod(0o700)
        for name, mode in (("maildrop", 0o730), ("public", 0o710)):
            folder = self.queue_dir / name
            folder.mkdir(exist_ok=True)
            os.chown(folder, postfix.pw_uid, postdrop)
            folder.chmod(mode)
        (self.queue_dir / "pid").mkdir(exist_ok=True)

    def install_certificate(self, key: Path, chain: Path) -> None:
        """Copy the key and certificate chain to the files that main.cf names."""
        self.key_file.parent.mkdir(parents=True, exist_ok=True)
        write_private(self.key_file, key.read_bytes())
        self.chain_file.write_bytes(chain.read_bytes())

    def postfix(self, *arguments: str, check: bool = True):  # type: ignore[no-untyped-def]
        return self.namespace.run(["postfix", "-c", str(self.config_dir), *arguments], check=check)

    def start(self, timeout: float = 30) -> None:
        self.write_config()
        self.namespace.add_address(self.address)
        self.postfix("start")
        wait_until(
            self.listening,
            timeout,
            f"Postfix {self.hostname} to listen on {self.address}:25",
        )
        log.info("started Postfix %s on %s", self.hostname, self.address)

    def listening(self) -> bool:
        probe = ["bash", "-c", f"exec 3<>/dev/tcp/{self.address}/25"]
        return self.namespace.run(probe, check=False).returncode == 0

    def stop(self, timeout: float = 15) -> None:
        if (self.queue_dir / "pid" / "master.pid").exists():
            self.postfix("stop", check=False)
            _stop_pid(self.queue_dir / "pid" / "master.pid", f"Postfix {self.hostname}")
        # smtpd processes share the listening socket; a successor on this address needs it.
        wait_until(
            lambda: not self.listening(), timeout, f"port 25 of {self.address} to be released"
        )

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        """Submit ``message`` through this instance's sendmail(1)."""
        self.namespace.run(
            ["sendmail", "-C", str(self.config_dir), "-f", sender, "--", recipient],
            input_text=message.decode(),
        )

    def flush(self) -> None:
        self.namespace.run(["postqueue", "-c", str(self.config_dir), "-f"], check=False)

    def log_text(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def mailbox(self, address: str) -> list[Path]:
        """Return the delivered message files of ``address``, oldest first."""
        folder = self.mail_dir / self.domain / address.partition("@")[0] / "new"
        if not folder.is_dir():
            return []
        return sorted(folder.iterdir(), key=lambda path: path.name)
