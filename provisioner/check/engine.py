"""Run every check on a CheckTarget and collect the findings into a Report.

Check ids (stable, listed in docs/check.md): dnssec.chain, dnssec.denial, dnssec.rrsig-expiry,
zone.serial, mx.rrset, mx.address, tlsa.dnssec, resolver.validation, tlsa.usage, smtp.starttls,
smtp.dane, cert.expiry, smimea.dnssec, smimea.match.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging

import dns.flags
import dns.name
import dns.rcode
import dns.rdatatype
import dns.serial

from provisioner.check.match import (
    describe_record,
    match_tlsa_smtp,
    record_matches,
    smimea_owner,
    tlsa_owner,
)
from provisioner.check.probe import probe_starttls
from provisioner.check.report import Finding, Report, Status
from provisioner.check.resolver import (
    IterativeSource,
    RecursiveSource,
    Source,
    query_server,
    system_resolver,
)
from provisioner.check.targets import (
    CheckTarget,
    MxTarget,
    Server,
    UserTarget,
    ZoneTarget,
    root_trust_anchor,
)
from provisioner.check.validate import Result, Security, Validator, describe_time
from provisioner.clock import Clock
from provisioner.errors import CheckError

log = logging.getLogger(__name__)

DAY = 86400.0


@dataclasses.dataclass
class CheckOptions:
    """Thresholds and timeouts of a check run."""

    warn_days: float = 7.0  # warn when an RRSIG expires within this many days
    certificate_warn_days: float = 14.0  # warn when a certificate expires within this many days
    dns_timeout: float = 3.0  # seconds per DNS query
    smtp_timeout: float = 10.0  # seconds per SMTP connection step
    helo_name: str = "provisioner-check.invalid"


def make_validator(target: CheckTarget, clock: Clock, options: CheckOptions) -> Validator:
    """Return a Validator that queries the configured resolver, else the anchor's servers
    directly, else the first resolver of /etc/resolv.conf."""
    anchor = target.trust_anchor or root_trust_anchor()
    source: Source
    if target.resolver is not None:
        source = RecursiveSource(target.resolver, timeout=options.dns_timeout)
    else:
        servers = list(anchor.servers)
        if not servers:
            servers = next(
                (list(zone.servers) for zone in target.zones if zone.name == anchor.zone), []
            )
        if servers:
            source = IterativeSource(anchor.zone, servers, target.dns_port, options.dns_timeout)
        else:
            source = RecursiveSource(system_resolver(), timeout=options.dns_timeout)
    return Validator(source, anchor, clock)


def _days(delta: dt.timedelta) -> float:
    return delta.total_seconds() / DAY


class CheckRun:
    """One pass over a CheckTarget; ``run()`` returns the Report."""

    def __init__(
        self,
        target: CheckTarget,
        clock: Clock,
        options: CheckOptions | None = None,
        validator: Validator | None = None,
    ) -> None:
        self.target = target
        self.clock = clock
        self.options = options or CheckOptions()
        self.validator = validator or make_validator(target, clock, self.options)
        self.report = Report(clock.now())

    def run(self) -> Report:
        mx_hosts = list(self.target.mx_hosts)
        for zone in self.target.zones:
            self._guard(zone.name, "dnssec.chain", zone.name.to_text(), self.check_zone, zone)
            self._guard(
                zone.name, "mx.rrset", f"{zone.name} MX", self.check_mx_rrset, zone, mx_hosts
            )
        for mx in mx_hosts:
            self._guard(mx.zone, "tlsa.dnssec", mx.host.to_text(), self.check_mx, mx)
        for user in self.target.users:
            self._guard(user.zone, "smimea.dnssec", user.address, self.check_user, user)
        self.check_rrsig_horizon()
        return self.report

    def _guard(self, zone: dns.name.Name, check: str, subject: str, function, *args) -> None:  # type: ignore[no-untyped-def]
        """Run one check; a look-up that cannot be made becomes a failed finding."""
        try:
            function(*args)
        except CheckError as error:
            self.fail(check, zone, subject, error.message, error.hint)

    def add(
        self,
        check: str,
        status: Status,
        zone: dns.name.Name | str,
        subject: str,
        message: str,
        hint: str | None = None,
        server: str | None = None,
    ) -> None:
        self.report.add(Finding(check, status, str(zone), subject, message, hint, server))

    def fail(
        self,
        check: str,
        zone: dns.name.Name | str,
        subject: str,
        message: str,
        hint: str | None = None,
        server: str | None = None,
    ) -> None:
        self.add(check, Status.FAIL, zone, subject, message, hint, server)

    # -- zones ----------------------------------------------------------------------------

    def check_zone(self, zone: ZoneTarget) -> None:
        keys = self.validator.keys(zone.name)
        subject = f"{zone.name} DNSKEY"
        if keys.security == Security.SECURE:
            self.add("dnssec.chain", Status.OK, zone.name, subject, keys.reason)
        elif keys.security == Security.INSECURE:
            self.fail(
                "dnssec.chain",
                zone.name,
                subject,
                f"the zone is insecure: {keys.reason}",
                "publish the zone's DS at the parent (provisioner ds ZONE) and sign the zone",
            )
        else:
            self.fail(
                "dnssec.chain",
                zone.name,
                subject,
                f"the chain of trust is bogus: {keys.reason}",
                _chain_hint(keys.reason),
            )
        soa = self.validator.validate(zone.name, dns.rdatatype.SOA)
        self._report_result("dnssec.chain", zone.name, soa, require_exists=True)
        self.check_denial(zone)
        self._guard(zone.name, "zone.serial", f"{zone.name} SOA", self.check_serials, zone)

    def check_denial(self, zone: ZoneTarget) -> None:
        # A label no zone should contain, fixed per zone so repeated runs ask the same question.
        label = "provisioner-check-" + hashlib.sha256(zone.name.to_text().encode()).hexdigest()[:8]
        missing = dns.name.Name((label.encode(),)).concatenate(zone.name)
        cases = [
            (missing, dns.rdatatype.A, "NXDOMAIN"),
            (zone.name, dns.rdatatype.TLSA, "NODATA"),
        ]
        for qname, rdtype, kind in cases:
            result = self.validator.validate(qname, rdtype)
            subject = result.subject
            if result.exists:
                self.add(
                    "dnssec.denial",
                    Status.WARN,
                    zone.name,
                    subject,
                    f"expected {kind} for the probe name, but {subject} exists",
                )
            elif result.security == Security.SECURE:
                self.add(
                    "dnssec.denial",
                    Status.OK,
                    zone.name,
                    subject,
                    f"{kind} is proven: {result.reason}",
                )
            else:
                self.fail(
                    "dnssec.denial",
                    zone.name,
                    subject,
                    f"{kind} answer is {result.security}: {result.reason}",
                    "sign the zone with NSEC or NSEC3 and serve the signed zone "
                    "with all its NSEC/NSEC3 records",
                )

    def name_servers(self, zone: ZoneTarget) -> list[Server]:
        """Return the addresses of every name server: those given, and those of the served
        NS RRset that the target does not list (resolved, on the target's DNS port)."""
        servers = list(zone.servers)
        listed = {dns.name.from_text(s.name) for s in servers if s.name}
        ns = self.validator.validate(zone.name, dns.rdatatype.NS)
        if ns.rrset is None or ns.security == Security.BOGUS:
            if servers:
                return servers

            raise CheckError(
                f"cannot find the NS RRset of {zone.name}: {ns.reason}",
                hint="list the zone's name servers with their addresses in the spec",
            )
        seen = {(s.address, s.port) for s in servers}
        port = self.target.dns_port
        for rdata in ns.rrset:
            if rdata.target in listed:
                continue

            for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                found = self.validator.validate(rdata.target, rdtype)
                if found.rrset is None:
                    continue

                for record in found.rrset:
                    if (record.address, port) not in seen:
                        seen.add((record.address, port))
                        servers.append(Server(record.address, port, rdata.target.to_text()))
        return servers

    def check_serials(self, zone: ZoneTarget) -> None:
        servers = self.name_servers(zone)
        serials: dict[Server, int] = {}
        subject = f"{zone.name} SOA"
        for server in servers:
            try:
                answer = query_server(
                    server, zone.name, dns.rdatatype.SOA, timeout=self.options.dns_timeout
                )
            except CheckError as error:
                self.fail("zone.serial", zone.name, subject, error.message, error.hint, str(server))
                continue

            soa = answer.find("answer", zone.name, dns.rdatatype.SOA)
            if soa is None or not answer.response.flags & 0x0400:
                self.fail(
                    "zone.serial",
                    zone.name,
                    subject,
                    f"{server} does not answer authoritatively for {zone.name}",
                    "load the zone on this server, or remove it from the NS RRset",
                    str(server),
                )
                continue

            serials[server] = soa[0].serial
        if not serials:
            return

        newest = max(serials.values(), key=dns.serial.Serial)
        for server, serial in serials.items():
            if dns.serial.Serial(serial) < dns.serial.Serial(newest):
                self.fail(
                    "zone.serial",
                    zone.name,
                    subject,
                    f"{server} serves serial {serial}, older than {newest} on the other "
                    "name servers",
                    "check zone transfers (NOTIFY, allow-transfer, TSIG) to this server, "
                    "or reload it",
                    str(server),
                )
            else:
                self.add(
                    "zone.serial",
                    Status.OK,
                    zone.name,
                    subject,
                    f"serves serial {serial}",
                    server=str(server),
                )

    # -- MX hosts -------------------------------------------------------------------------

    def check_mx_rrset(self, zone: ZoneTarget, mx_hosts: list[MxTarget]) -> None:
        """Validate the zone's MX RRset and add the MX hosts it names that no target covers.

        DANE for SMTP applies only when the MX RRset is secure (RFC 7672, section 2.2.1), and
        every MX host needs its own TLSA RRset, so a host missing from the spec is probed too,
        on the target's ``smtp_port``.
        """
        result = self.validator.validate(zone.name, dns.rdatatype.MX)
        subject = result.subject
        if result.security != Security.SECURE:
            self.fail(
                "mx.rrset",
                zone.name,
                subject,
                f"the MX RRset is {result.security}, so senders do not use DANE for "
                f"{zone.name}: {result.reason}",
                _chain_hint(result.reason),
            )
            return

        if result.rrset is None:
            return  # not a mail domain

        covered = {mx.host for mx in mx_hosts}
        exchanges = [rdata.exchange for rdata in result.rrset if rdata.exchange != dns.name.root]
        self.add(
            "mx.rrset",
            Status.OK,
            zone.name,
            subject,
            f"{result.reason} (hosts: {', '.join(str(e) for e in exchanges) or 'null MX'})",
        )
        for exchange in exchanges:
            if exchange in covered:
                continue
            covered.add(exchange)
            self.add(
                "mx.rrset",
                Status.WARN,
                zone.name,
                subject,
                f"the MX RRset names {exchange}, which the spec does not list; probing it on "
                f"port {self.target.smtp_port}",
                "add the MX host to mail_servers in the spec, or remove it from the MX RRset",
            )
            zone_of_host = self.validator.zone_of(exchange)
            mx_hosts.append(MxTarget(exchange, zone_of_host, port=self.target.smtp_port))

    def mx_addresses(self, mx: MxTarget) -> list[str]:
        """Return the addresses to probe: the served A and AAAA records and those of the target.

        Sending MTAs connect to the served addresses, so an address that the DNS serves but the
        spec does not list is probed too, with a warning. A listed address that the DNS does not
        serve is probed as well, also with a warning.
        """
        served: list[str] = []
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            result = self.validator.validate(mx.host, rdtype)
            if result.security == Security.BOGUS:
                self.fail(
                    "mx.address",
                    mx.zone,
                    result.subject,
                    f"the address RRset is bogus: {result.reason}",
                    _chain_hint(result.reason),
                )
                continue

            if result.rrset is not None:
                served.extend(rdata.address for rdata in result.rrset)

        subject = f"{mx.host} A/AAAA"
        for address in served:
            if mx.addresses and address not in mx.addresses:
                self.add(
                    "mx.address",
                    Status.WARN,
                    mx.zone,
                    subject,
                    f"the DNS serves {address} for {mx.host}, which the spec does not list",
                    "add the address to the mail server in the spec, or remove the record",
                )
        for address in mx.addresses:
            if served and address not in served:
                self.add(
                    "mx.address",
                    Status.WARN,
                    mx.zone,
                    subject,
                    f"the spec lists {address} for {mx.host}, but the DNS does not serve it",
                    "run provisioner apply, or correct the addresses in the spec",
                )

        addresses = list(dict.fromkeys([*mx.addresses, *served]))
        if not addresses:
            self.fail(
                "mx.address",
                mx.zone,
                subject,
                f"the MX host {mx.host} has no address",
                "publish A or AAAA records for the MX host",
            )
        return addresses

    def check_mx(self, mx: MxTarget) -> None:
        owner = tlsa_owner(mx.host, mx.tlsa_port or mx.port)
        result = self.validator.validate(owner, dns.rdatatype.TLSA)
        subject = f"{owner} TLSA"
        if self.target.resolver is not None:
            self._guard(
                mx.zone, "resolver.validation", subject, self.check_resolver, mx.zone, result
            )
        tlsa = None
        if result.security == Security.SECURE and result.rrset is not None:
            tlsa = result.rrset
            self.add("tlsa.dnssec", Status.OK, mx.zone, subject, result.reason)
            self.check_tlsa_usages(mx, subject, tlsa)
        elif result.security == Security.SECURE:
            self.fail(
                "tlsa.dnssec",
                mx.zone,
                subject,
                f"the MX host {mx.host} has no TLSA RRset ({result.reason})",
                f"publish a TLSA RRset at {owner} for the certificate the MTA presents, "
                "e.g. 3 1 1 (provisioner tlsa generate)",
            )
        elif result.security == Security.INSECURE:
            self.fail(
                "tlsa.dnssec",
                mx.zone,
                subject,
                f"the TLSA RRset is not DNSSEC-secure: {result.reason}",
                "sign the zone and publish its DS at the parent; DANE clients ignore "
                "insecure TLSA records",
            )
        else:
            self.fail(
                "tlsa.dnssec",
                mx.zone,
                subject,
                f"the TLSA RRset is bogus: {result.reason}",
                _chain_hint(result.reason),
            )

        for address in self.mx_addresses(mx):
            self.probe_address(mx, address, tlsa)

    def check_resolver(self, zone: dns.name.Name, result: Result) -> None:
        """Compare the resolver's own verdict (AD bit or SERVFAIL, with CD clear) with ours.

        Sending MTAs trust their resolver's AD bit, so a resolver that passes bogus data on,
        or does not set AD on secure data, breaks DANE even when the zone is right.
        """
        resolver = self.target.resolver
        assert resolver is not None
        answer = query_server(
            resolver,
            result.qname,
            result.rdtype,
            recursion=True,
            timeout=self.options.dns_timeout,
        )
        authenticated = bool(answer.response.flags & dns.flags.AD)
        servfail = answer.rcode == dns.rcode.SERVFAIL
        subject = result.subject
        server = str(resolver)
        if result.security == Security.BOGUS:
            if servfail:
                self.add(
                    "resolver.validation",
                    Status.OK,
                    zone,
                    subject,
                    "the resolver rejects the bogus RRset with SERVFAIL",
                    server=server,
                )
            else:
                self.fail(
                    "resolver.validation",
                    zone,
                    subject,
                    f"the resolver returned {dns.rcode.to_text(answer.rcode)} for the "
                    "bogus RRset instead of SERVFAIL, so it does not validate",
                    "enable DNSSEC validation on the resolver (Unbound: module-config "
                    '"validator iterator" with a trust anchor)',
                    server,
                )
        elif result.security == Security.SECURE:
            if authenticated:
                self.add(
                    "resolver.validation",
                    Status.OK,
                    zone,
                    subject,
                    "the resolver sets the AD bit",
                    server=server,
                )
            else:
                self.fail(
                    "resolver.validation",
                    zone,
                    subject,
                    "the resolver does not set the AD bit on a secure answer "
                    f"({dns.rcode.to_text(answer.rcode)}), so MTAs using it see no DANE",
                    "enable DNSSEC validation on the resolver and configure the trust "
                    "anchor that this check uses",
                    server,
                )

    def check_tlsa_usages(self, mx: MxTarget, subject: str, tlsa: object) -> None:
        unsupported = [
            describe_record(r.usage, r.selector, r.mtype)
            for r in tlsa  # type: ignore[attr-defined]
            if r.usage in (0, 1)
        ]
        if not unsupported:
            return

        usable = len(tlsa) > len(unsupported)  # type: ignore[arg-type]
        message = (
            f"TLSA {', '.join(unsupported)} use PKIX usages, which SMTP clients do not "
            "support (RFC 7672, section 3.1.3)"
        )
        status = Status.WARN if usable else Status.FAIL
        self.add(
            "tlsa.usage",
            status,
            mx.zone,
            subject,
            message,
            "publish DANE-EE(3) or DANE-TA(2) records instead",
        )

    def probe_address(self, mx: MxTarget, address: str, tlsa: object | None) -> None:
        host = mx.host.to_text().rstrip(".")
        probe = probe_starttls(
            host,
            address,
            mx.port,
            timeout=self.options.smtp_timeout,
            helo_name=self.options.helo_name,
        )
        server = probe.endpoint
        subject = f"{host} SMTP"
        if probe.error:
            self.fail(
                "smtp.starttls",
                mx.zone,
                subject,
                probe.error,
                "check that the MTA listens on this address and port",
                server,
            )
            return

        if not probe.starttls_offered:
            self.fail(
                "smtp.starttls",
                mx.zone,
                subject,
                f"STARTTLS not offered by {host} at {server}",
                "enable STARTTLS on the MTA (Postfix: smtpd_tls_security_level = may, "
                "with smtpd_tls_chain_files)",
                server,
            )
            return

        self.add(
            "smtp.starttls",
            Status.OK,
            mx.zone,
            subject,
            f"STARTTLS offered, {probe.tls_version}, {len(probe.chain)} certificate(s)",
            server=server,
        )
        if not probe.chain:
            self.fail(
                "smtp.dane",
                mx.zone,
                subject,
                "the server presented no certificate",
                "configure a certificate chain on the MTA",
                server,
            )
            return

        now = self.clock.now()
        leaf = probe.chain[0]
        self.check_certificate_expiry(mx.zone, f"{host} certificate", leaf, server)
        if tlsa is None:
            return

        references = [host, *mx.reference_names]
        verdict = match_tlsa_smtp(list(tlsa), probe.chain, references, now)  # type: ignore[call-overload]
        owner = tlsa_owner(mx.host, mx.tlsa_port or mx.port)
        tlsa_subject = f"{owner} TLSA"
        if verdict.authenticated:
            self.add("smtp.dane", Status.OK, mx.zone, tlsa_subject, verdict.reason, server=server)
        else:
            self.fail(
                "smtp.dane",
                mx.zone,
                tlsa_subject,
                f"the certificate presented by {host} at {server} does not match the "
                f"TLSA RRset: {verdict.reason}",
                "publish a TLSA record for the certificate the MTA presents (keep the old "
                "one until caches expire), or deploy the certificate the TLSA records "
                "name",
                server,
            )

    def check_certificate_expiry(
        self,
        zone: dns.name.Name | str,
        subject: str,
        certificate: object,
        server: str | None = None,
    ) -> None:
        now = self.clock.now()
        not_after = certificate.not_valid_after_utc  # type: ignore[attr-defined]
        not_before = certificate.not_valid_before_utc  # type: ignore[attr-defined]
        days = _days(not_after - now)
        labels = {"zone": str(zone), "subject": subject}
        if server:
            labels["server"] = server
        self.report.gauge("provisioner_check_certificate_expiry_days", round(days, 4), **labels)
        when = describe_time(not_after)
        if now > not_after:
            self.fail(
                "cert.expiry",
                zone,
                subject,
                f"the certificate expired at {when}",
                "issue and deploy a new certificate, and publish its TLSA/SMIMEA record first",
                server,
            )
        elif now < not_before:
            self.fail(
                "cert.expiry",
                zone,
                subject,
                f"the certificate is not valid before {describe_time(not_before)}",
                "check the issuing CA's clock, or wait",
                server,
            )
        elif days < self.options.certificate_warn_days:
            self.add(
                "cert.expiry",
                Status.WARN,
                zone,
                subject,
                f"the certificate expires in {days:.1f} days, at {when}",
                "renew the certificate (provisioner rollover start)",
                server,
            )
        else:
            self.add(
                "cert.expiry",
                Status.OK,
                zone,
                subject,
                f"the certificate is valid until {when}",
                server=server,
            )

    # -- users ------------------------------------------------------------------------------

    def check_user(self, user: UserTarget) -> None:
        owner = smimea_owner(user.address)
        subject = f"{owner} SMIMEA"
        result = self.validator.validate(owner, dns.rdatatype.SMIMEA)
        for index, certificate in enumerate(user.certificates):
            label = f"{user.address} certificate" + (f" {index}" if index else "")
            self.check_certificate_expiry(user.zone, label, certificate)
        if result.security != Security.SECURE:
            self.fail(
                "smimea.dnssec",
                user.zone,
                subject,
                f"the SMIMEA RRset of {user.address} is {result.security}: {result.reason}",
                _chain_hint(result.reason),
            )
            return

        if result.rrset is None:
            self.fail(
                "smimea.dnssec",
                user.zone,
                subject,
                f"no SMIMEA RRset for {user.address} ({result.reason})",
                f"publish the SMIMEA record at {owner} (provisioner smimea generate)",
            )
            return

        self.add("smimea.dnssec", Status.OK, user.zone, subject, result.reason)
        for certificate in user.certificates:
            serial = f"{certificate.serial_number:x}"
            matched = [r for r in result.rrset if record_matches(r, certificate)]
            if matched:
                first = matched[0]
                self.add(
                    "smimea.match",
                    Status.OK,
                    user.zone,
                    subject,
                    f"SMIMEA {describe_record(first.usage, first.selector, first.mtype)} "
                    f"matches the certificate with serial {serial}",
                )
            else:
                published = ", ".join(
                    describe_record(r.usage, r.selector, r.mtype) for r in result.rrset
                )
                self.fail(
                    "smimea.match",
                    user.zone,
                    subject,
                    f"no SMIMEA record ({published}) matches the certificate on record for "
                    f"{user.address} (serial {serial})",
                    "publish the SMIMEA record for the user's current certificate "
                    "(provisioner apply)",
                )
        if not user.certificates:
            self.add(
                "smimea.match",
                Status.WARN,
                user.zone,
                subject,
                f"no certificate on record for {user.address} to compare with",
            )

    # -- RRSIG horizon ------------------------------------------------------------------------

    def check_rrsig_horizon(self) -> None:
        now = self.clock.now()
        seen: set[tuple[dns.name.Name, int, int]] = set()
        soonest: dict[dns.name.Name, float] = {}
        for signature in self.validator.signatures:
            key = (signature.owner, signature.covered, signature.key_tag)
            if key in seen:
                continue

            seen.add(key)
            zone = signature.zone
            days = _days(signature.expiration - now)
            self.report.gauge(
                "provisioner_check_rrsig_expiry_days",
                round(days, 4),
                zone=zone.to_text(),
                owner=signature.owner.to_text(),
                type=dns.rdatatype.to_text(signature.covered),
                key_tag=str(signature.key_tag),
            )
            soonest[zone] = min(days, soonest.get(zone, days))
            subject = signature.subject
            expires = describe_time(signature.expiration)
            hint = "re-sign the zone (provisioner apply) and check that signing runs on schedule"
            if now > signature.expiration:
                self.fail(
                    "dnssec.rrsig-expiry",
                    zone,
                    subject,
                    f"RRSIG over {subject} (key tag {signature.key_tag}) expired at {expires}",
                    hint,
                )
            elif now < signature.inception:
                self.fail(
                    "dnssec.rrsig-expiry",
                    zone,
                    subject,
                    f"RRSIG over {subject} (key tag {signature.key_tag}) is not valid "
                    f"before {describe_time(signature.inception)}",
                    "check the signer's clock; sign with an inception in the past",
                )
            elif days < self.options.warn_days:
                self.add(
                    "dnssec.rrsig-expiry",
                    Status.WARN,
                    zone,
                    subject,
                    f"RRSIG over {subject} (key tag {signature.key_tag}) expires in "
                    f"{days:.1f} days, at {expires}",
                    hint,
                )
        for zone, days in soonest.items():
            if days >= self.options.warn_days:
                self.add(
                    "dnssec.rrsig-expiry",
                    Status.OK,
                    zone,
                    f"{zone} RRSIG",
                    f"every RRSIG checked is valid for {days:.1f} more days or longer",
                )

    def _report_result(
        self, check: str, zone: dns.name.Name, result: Result, require_exists: bool
    ) -> None:
        if result.security == Security.SECURE and (result.exists or not require_exists):
            self.add(check, Status.OK, zone, result.subject, result.reason)
        elif result.security == Security.SECURE:
            self.fail(
                check,
                zone,
                result.subject,
                f"{result.subject} does not exist",
                "publish the record",
            )
        else:
            self.fail(
                check,
                zone,
                result.subject,
                f"{result.subject} is {result.security}: {result.reason}",
                _chain_hint(result.reason),
            )


def _chain_hint(reason: str) -> str:
    """Return what to do for a validation failure, from the words of its reason."""
    if "expired" in reason or "not valid before" in reason:
        return "re-sign the zone (provisioner apply) and check that signing runs on schedule"

    if "DS" in reason and ("KSK" in reason or "matches" in reason):
        return (
            "publish DS records at the parent for the zone's current KSK "
            "(provisioner ds ZONE), and remove stale ones"
        )
    if "NSEC" in reason or "proof" in reason:
        return "serve the complete signed zone, including its NSEC or NSEC3 records"

    if "no trust anchor" in reason:
        return "configure a trust anchor above this zone (--trust-anchor FILE)"

    return "re-sign the zone and check the served data with dig +dnssec"


def run_checks(
    target: CheckTarget,
    clock: Clock,
    options: CheckOptions | None = None,
) -> Report:
    """Run every check on ``target`` and return the Report."""
    return CheckRun(target, clock, options).run()
