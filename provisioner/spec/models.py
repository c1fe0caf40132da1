"""Typed models of the spec file. Unknown keys are rejected everywhere (extra="forbid").

Cross-references between sections (a mail server's zone, a certificate's authority) are
checked in provisioner.spec.semantics, after every model has parsed.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from provisioner.deploy.models import DeploySettings, MtaDeploy
from provisioner.dnssec.policy import DnssecPolicy
from provisioner.spec.durations import Duration

# RFC 2181, section 8: a TTL is an unsigned 31-bit number of seconds. SOA timers use the
# same range, so that no server reads them as negative.
TTL = Annotated[Duration, Field(le=2147483647)]
# Certificates of more than 100 years are refused: nothing needs them, and dates beyond
# the year 9999 cannot be encoded.
CertificateLifetime = Annotated[Duration, Field(gt=0, le=100 * 366 * 86400)]


def _ip_addresses(value: list[str]) -> list[str]:
    for address in value:
        try:
            if "%" in address:
                raise ValueError(address)  # a scope id has no place in an A or AAAA record
            ipaddress.ip_address(address)
        except ValueError:
            raise ValueError(
                f"invalid IP address {address!r}: give an IPv4 or IPv6 address"
            ) from None
    return value


IPAddresses = Annotated[list[str], AfterValidator(_ip_addresses)]

KeyTypeName = Literal["ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096", "ed25519"]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def absolute_name(value: str, *, field: str = "name") -> str:
    """Return ``value`` as an absolute domain name in text form, lowercased."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field} must be a domain name such as 'example.org'")
    try:
        name = dns.name.from_text(value.strip().lower())
    except dns.exception.DNSException as error:
        raise ValueError(f"invalid domain name {value!r}: {error}") from None
    return name.to_text()


# --- DANE parameters --------------------------------------------------------------------------

_USAGES = {"pkix-ta": 0, "pkix-ee": 1, "dane-ta": 2, "dane-ee": 3}
_SELECTORS = {"cert": 0, "spki": 1}
_MATCHING = {"full": 0, "sha2-256": 1, "sha-256": 1, "sha256": 1, "sha2-512": 2, "sha512": 2}


def _field_number(value: object, names: dict[str, int], highest: int, what: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number or a mnemonic")
    if isinstance(value, int) and 0 <= value <= highest:
        return value
    if isinstance(value, str):
        key = value.strip().lower()
        if key.isdigit() and 0 <= int(key) <= highest:
            return int(key)
        if key in names:
            return names[key]
    allowed = ", ".join(f"{number} ({name.upper()})" for name, number in names.items())
    raise ValueError(f"invalid {what} {value!r}; allowed: {allowed}")


# A number, or its mnemonic (RFC 7218) such as DANE-EE, SPKI or SHA2-256.
DaneField = Annotated[
    int, WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]})
]


class DaneParameters(Model):
    """Usage, selector and matching type of one TLSA or SMIMEA record."""

    usage: DaneField
    selector: DaneField
    matching: DaneField = Field(
        default=1, validation_alias=AliasChoices("matching", "matching_type")
    )

    @field_validator("usage", mode="before")
    @classmethod
    def _usage(cls, value: object) -> int:
        return _field_number(value, _USAGES, 3, "usage")

    @field_validator("selector", mode="before")
    @classmethod
    def _selector(cls, value: object) -> int:
        return _field_number(value, _SELECTORS, 1, "selector")

    @field_validator("matching", mode="before")
    @classmethod
    def _matching(cls, value: object) -> int:
        return _field_number(value, _MATCHING, 2, "matching type")

    def as_tuple(self) -> tuple[int, int, int]:
        return (self.usage, self.selector, self.matching)


def tlsa_default() -> list[DaneParameters]:
    return [DaneParameters(usage=3, selector=1, matching=1)]


def smimea_default() -> list[DaneParameters]:
    return [DaneParameters(usage=3, selector=0, matching=0)]


# --- certificates -----------------------------------------------------------------------------


class ImportSource(Model):
    """Existing certificate and key files; the password comes from a file or the environment."""

    certificate: Path
    key: Path | None = None
    chain: Path | None = None
    format: Literal["auto", "pem", "der", "pkcs12"] = "auto"
    password_file: Path | None = None
    password_env: str | None = None

    @model_validator(mode="after")
    def _one_password(self) -> ImportSource:
        if self.password_file and self.password_env:
            raise ValueError("give password_file or password_env, not both")
        return self


class CertificateSource(Model):
    """Where a certificate comes from: an authority of the spec, self-signed, or imported."""

    authority: str | None = None
    self_signed: bool = False
    import_: ImportSource | None = Field(default=None, alias="import")
    key_type: KeyTypeName = "ecdsa-p256"
    validity: CertificateLifetime = 90 * 86400
    renew_before: Duration = 30 * 86400

    @model_validator(mode="after")
    def _exactly_one(self) -> CertificateSource:
        chosen = [self.authority is not None, self.self_signed, self.import_ is not None]
        if sum(chosen) != 1:
            raise ValueError(
                "give exactly one certificate source: 'authority: NAME', "
                "'self_signed: true' or 'import: {certificate: FILE, key: FILE}'"
            )
        if self.renew_before >= self.validity:
            raise ValueError("renew_before must be shorter than validity")
        return self


# --- authorities ------------------------------------------------------------------------------


class Subject(Model):
    common_name: str
    organization: str | None = None
    organizational_unit: str | None = None
    country: str | None = Field(default=None, min_length=2, max_length=2)


class EnterpriseAuthority(Model):
    """A root CA and an issuing intermediate that provisioner creates and keeps."""

    name: str
    type: Literal["enterprise"] = "enterprise"
    subject: Subject
    key_type: KeyTypeName = "ecdsa-p384"
    root_validity: CertificateLifetime = 10 * 365 * 86400
    intermediate_validity: CertificateLifetime = 5 * 365 * 86400


class ExternalAccountBinding(Model):
    """The key id and HMAC key (base64url, as the CA hands it out) of an ACME account binding.

    The HMAC key is a secret: it comes from a file or an environment variable, never the spec.
    """

    key_id: str
    hmac_key_file: Path | None = None
    hmac_key_env: str | None = None

    @model_validator(mode="after")
    def _one_hmac_source(self) -> ExternalAccountBinding:
        if (self.hmac_key_file is None) == (self.hmac_key_env is None):
            raise ValueError("give exactly one of hmac_key_file or hmac_key_env")
        return self


class AcmeAuthority(Model):
    """An ACME CA; certificates are issued with DNS-01 through the zone's own backend.

    ``caa_identity`` is the issuer domain name the CA looks for in CAA records (RFC 8659),
    such as "letsencrypt.org". ``nameserver_port`` is the port on which each name server of
    the zone is queried while waiting for a challenge record (53 except in test setups).
    """

    name: str
    type: Literal["acme"]
    directory: str
    contact: list[str] = []
    external_account_binding: ExternalAccountBinding | None = None
    ca_bundle: Path | None = None
    propagation_timeout: Duration = 300
    caa_identity: str | None = None
    agree_terms_of_service: bool = False
    nameserver_port: int = Field(default=53, ge=1, le=65535)
    order_timeout: Duration = 300

    @field_validator("directory")
    @classmethod
    def _https_directory(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError(f"directory must be an https:// URL, got {value!r}")
        return value


Authority = Annotated[EnterpriseAuthority | AcmeAuthority, Field(discriminator="type")]


# --- zones ------------------------------------------------------------------------------------


class SOAValues(Model):
    mname: str | None = None
    rname: str = "hostmaster"
    refresh: TTL = 7200
    retry: TTL = 3600
    expire: TTL = 1209600
    minimum: TTL = 3600
    ttl: TTL | None = None


class RecordSpec(Model):
    """An RRset given literally: owner name (relative to the zone, or "@"), type and values."""

    name: str = "@"
    type: str
    ttl: TTL | None = None
    values: Annotated[
        list[str],
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "string"},
                    {"type": "integer"},
                    {"type": "array", "items": {"type": "string"}},
                ]
            }
        ),
    ] = Field(validation_alias=AliasChoices("value", "values"))

    @field_validator("values", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        if isinstance(value, str | int):
            return [str(value)]
        return value

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        try:
            rdtype = dns.rdatatype.from_text(value.upper())
        except dns.rdatatype.UnknownRdatatype:
            raise ValueError(f"unknown record type {value!r}") from None
        managed = {"SOA", "RRSIG", "NSEC", "NSEC3", "NSEC3PARAM", "DNSKEY", "CDS", "CDNSKEY"}
        if dns.rdatatype.to_text(rdtype) in managed:
            raise ValueError(
                f"{value.upper()} records are managed by provisioner and cannot be given here"
            )
        return dns.rdatatype.to_text(rdtype)

    @model_validator(mode="after")
    def _parse_values(self) -> RecordSpec:
        rdtype = dns.rdatatype.from_text(self.type)
        for value in self.values:
            try:
                dns.rdata.from_text(dns.rdataclass.IN, rdtype, value, origin=dns.name.root)
            except Exception as error:  # dnspython raises many exception types for bad rdata
                raise ValueError(f"invalid {self.type} value {value!r}: {error}") from None
        return self


class ZonefilePublish(Model):
    """Write the zone to one file, atomically, then run an optional reload command."""

    backend: Literal["zonefile"] = "zonefile"
    path: Path | None = None
    reload: list[str] | None = None


class TsigSource(Model):
    """A TSIG key, read from a BIND key file or from environment variables."""

    name: str | None = None
    algorithm: Literal["hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha1", "hmac-md5"] = (
        "hmac-sha256"
    )
    key_file: Path | None = None
    secret_env: str | None = None
    allow_weak: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> TsigSource:
        if (self.key_file is None) == (self.secret_env is None):
            raise ValueError("give exactly one of key_file (BIND key file) or secret_env")
        if self.secret_env and not self.name:
            raise ValueError("a key given by secret_env needs 'name'")
        if self.algorithm in ("hmac-sha1", "hmac-md5") and not self.allow_weak:
            raise ValueError(f"{self.algorithm} is weak; use hmac-sha256, or set allow_weak: true")
        return self


class Rfc2136Publish(Model):
    """Send RFC 2136 UPDATE messages with TSIG to a primary server."""

    backend: Literal["rfc2136"]
    server: str
    port: int = Field(default=53, ge=1, le=65535)
    server_type: Literal["bind", "knot", "other"] = "other"
    tsig: TsigSource | None = None
    transfer_tsig: TsigSource | None = None
    timeout: Duration = 10
    takeover: bool = False
    wait_timeout: Duration = 120
    nameserver_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="port on which apply --wait asks the zone's name servers (default 53)",
    )


class Route53Publish(Model):
    """Publish to an Amazon Route 53 hosted zone; credentials come from boto3's chain.

    ``endpoint_url`` points boto3 at a stand-in service such as moto, for tests.
    ``kms_key_arn`` and ``ksk_name`` are used by ``dnssec: {signer: route53}``: the KMS key
    (ECC_NIST_P256, SIGN_VERIFY, in us-east-1) that holds the key-signing key, created when
    not given, and the name of the key-signing key in the hosted zone.
    """

    backend: Literal["route53"]
    hosted_zone_id: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    takeover: bool = False
    wait_timeout: Duration = 300
    kms_key_arn: str | None = None
    ksk_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_]{3,128}$")

    @field_validator("hosted_zone_id")
    @classmethod
    def _bare_id(cls, value: str | None) -> str | None:
        return value.rsplit("/", 1)[-1] if value else value

    @field_validator("kms_key_arn")
    @classmethod
    def _kms_in_us_east_1(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = value.split(":")
        if len(parts) < 6 or parts[2] != "kms" or not parts[5].startswith("key/"):
            raise ValueError(f"kms_key_arn {value!r} is not the ARN of a KMS key")
        if parts[3] != "us-east-1":
            raise ValueError(
                f"kms_key_arn {value!r} is in {parts[3]}; Route 53 DNSSEC needs a KMS key "
                "in us-east-1"
            )
        return value


Publish = Annotated[
    ZonefilePublish | Rfc2136Publish | Route53Publish, Field(discriminator="backend")
]


class ZoneDnssec(DnssecPolicy):
    """The DNSSEC policy of a zone and who signs it."""

    signer: Literal["provisioner", "server", "route53", "none"] = "provisioner"


class NameServer(Model):
    name: str
    addresses: IPAddresses = []


ChildPublish = Annotated[ZonefilePublish | Rfc2136Publish, Field(discriminator="backend")]


class SmimeaDelegation(Model):
    """Serve the zone's SMIMEA RRsets from child zones ``_smimecert.<domain>``.

    Route 53 does not accept SMIMEA records. With ``delegate: true`` provisioner builds one
    child zone per mail domain of the zone's users, signs it, publishes it with ``publish``
    (zone files or RFC 2136) on ``nameservers``, and puts the child's NS and DS RRsets into
    this zone.
    """

    delegate: bool = True
    nameservers: list[NameServer | str] = Field(min_length=1)
    publish: ChildPublish = ZonefilePublish()
    dnssec: ZoneDnssec = ZoneDnssec()
    ttl: TTL | None = None


class ZoneSpec(Model):
    name: str
    ttl: TTL = 3600
    soa: SOAValues = SOAValues()
    nameservers: list[NameServer | str] = Field(min_length=1)
    records: list[RecordSpec] = []
    dnssec: ZoneDnssec = ZoneDnssec()
    publish: Publish = ZonefilePublish()
    smimea: SmimeaDelegation | None = None

    _smimea_parent: str | None = PrivateAttr(default=None)

    @property
    def smimea_parent(self) -> str | None:
        """The zone whose ``smimea`` option created this child zone, else None."""
        return self._smimea_parent

    @field_validator("name")
    @classmethod
    def _absolute(cls, value: str) -> str:
        return absolute_name(value)

    def nameserver_names(self) -> list[str]:
        return [absolute_name(ns if isinstance(ns, str) else ns.name) for ns in self.nameservers]


# --- mail servers and users -------------------------------------------------------------------


class MailServerSpec(Model):
    """An MX host: the TLS certificate it presents and the TLSA records that pin it."""

    host: str
    zone: str | None = None
    mx_for: list[str] = []
    preference: int = Field(default=10, ge=0, le=65535)
    addresses: IPAddresses = []
    ports: list[int] = [25]
    certificate: CertificateSource
    tlsa: list[DaneParameters] = Field(default_factory=tlsa_default)
    tlsa_ttl: TTL | None = None
    deploy: MtaDeploy | None = None

    @field_validator("host")
    @classmethod
    def _absolute(cls, value: str) -> str:
        return absolute_name(value, field="host")

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: list[int]) -> list[int]:
        for port in value:
            if not 1 <= port <= 65535:
                raise ValueError(f"port {port} is outside 1-65535")
        if len(set(value)) != len(value):
            raise ValueError("ports must not repeat")
        return value


class UserSpec(Model):
    """A mail user: the S/MIME certificate published as SMIMEA at the RFC 8162 owner name."""

    address: str
    certificate: CertificateSource
    smimea: list[DaneParameters] = Field(default_factory=smimea_default)
    smimea_ttl: TTL | None = None

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        local, at, domain = value.rpartition("@")
        if not at or not local or not domain:
            raise ValueError(f"invalid mail address {value!r}: expected local-part@domain")
        if "@" in local or any(c.isspace() or ord(c) < 32 for c in local):
            raise ValueError(
                f"invalid mail address {value!r}: the local part contains '@', a space or a "
                "control character"
            )
        if len(local.encode()) > 64:
            raise ValueError(
                f"invalid mail address {value!r}: the local part is longer than 64 octets "
                "(RFC 5321, section 4.5.3.1.1)"
            )
        return f"{local}@{absolute_name(domain, field='domain').rstrip('.')}"

    @model_validator(mode="after")
    def _issuable(self) -> UserSpec:
        local = self.address.rpartition("@")[0]
        if not local.isascii() and self.certificate.import_ is None:
            raise ValueError(
                f"the local part of {self.address} is not ASCII: its certificate would need an "
                "SmtpUTF8Mailbox name (RFC 8398), which provisioner does not issue; import the "
                "certificate instead"
            )
        return self

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


# --- the spec ---------------------------------------------------------------------------------


class Spec(Model):
    version: Literal[1] = 1
    state: Path | None = None
    output: Path | None = None
    authorities: list[Authority] = []
    zones: list[ZoneSpec] = Field(min_length=1)
    mail_servers: list[MailServerSpec] = []
    users: list[UserSpec] = []
    deploy: DeploySettings | None = None

    _source: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _expand_smimea_delegations(self) -> Spec:
        expand_smimea_delegations(self)
        return self

    @property
    def source(self) -> Path | None:
        return self._source

    @source.setter
    def source(self, value: Path) -> None:
        self._source = value

    def base_dir(self) -> Path:
        return self._source.parent if self._source else Path.cwd()

    def state_dir(self) -> Path:
        if self.state is not None:
            return self.resolve(self.state)
        return self.base_dir() / ".provisioner"

    def output_dir(self) -> Path:
        if self.output is not None:
            return self.resolve(self.output)
        return self.base_dir() / "out"

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else self.base_dir() / path

    def zone(self, name: str) -> ZoneSpec:
        wanted = absolute_name(name)
        for zone in self.zones:
            if zone.name == wanted:
                return zone
        raise KeyError(name)

    def zone_for(self, name: str) -> ZoneSpec | None:
        """Return the zone of the spec with the longest name that contains ``name``."""
        target = dns.name.from_text(absolute_name(name))
        best: ZoneSpec | None = None
        for zone in self.zones:
            origin = dns.name.from_text(zone.name)
            if target.is_subdomain(origin) and (
                best is None or len(origin) > len(dns.name.from_text(best.name))
            ):
                best = zone
        return best

    def authority(self, name: str) -> EnterpriseAuthority | AcmeAuthority:
        for authority in self.authorities:
            if authority.name == name:
                return authority
        raise KeyError(name)


# --- SMIMEA delegation ------------------------------------------------------------------------


def smimea_child_domains(spec: Spec, zone: ZoneSpec) -> list[str]:
    """Return the mail domains of the users whose SMIMEA RRsets would fall into ``zone``."""
    domains = set()
    for user in spec.users:
        domain = absolute_name(user.domain)
        if spec.zone_for(domain) is zone:
            domains.add(domain)
    return sorted(domains, key=dns.name.from_text)


def expand_smimea_delegations(spec: Spec) -> None:
    """Add a child zone ``_smimecert.<domain>`` for each zone with ``smimea.delegate``.

    Each child zone gets the option's name servers, publish section and DNSSEC policy, and
    the parent gets the delegation: an NS RRset at the child's name, plus glue addresses for
    name servers inside the child. The child's DS RRset reaches the parent the way every
    signed child's does. A zone that the spec declares itself under that name is kept as
    declared. Running this twice adds nothing.
    """
    declared = {zone.name for zone in spec.zones}
    added: list[ZoneSpec] = []
    for zone in list(spec.zones):
        option = zone.smimea
        if option is None or not option.delegate or zone.smimea_parent is not None:
            continue
        origin = dns.name.from_text(zone.name)
        for domain in smimea_child_domains(spec, zone):
            child_name = absolute_name("_smimecert." + domain)
            child_origin = dns.name.from_text(child_name)
            ttl = option.ttl or zone.ttl
            nameservers = [
                absolute_name(ns if isinstance(ns, str) else ns.name) for ns in option.nameservers
            ]
            relative = child_origin.relativize(origin).to_text()
            _add_record(zone, RecordSpec(name=relative, type="NS", ttl=ttl, value=nameservers))
            for nameserver in option.nameservers:
                if isinstance(nameserver, str):
                    continue
                host = dns.name.from_text(absolute_name(nameserver.name))
                if not host.is_subdomain(child_origin):
                    continue
                for address in nameserver.addresses:
                    rdtype = "AAAA" if ":" in address else "A"
                    glue = RecordSpec(
                        name=host.relativize(origin).to_text(),
                        type=rdtype,
                        ttl=ttl,
                        value=[address],
                    )
                    _add_record(zone, glue)
            if child_name in declared:
                continue
            child = ZoneSpec(
                name=child_name,
                ttl=ttl,
                nameservers=list(option.nameservers),
                dnssec=option.dnssec,
                publish=option.publish,
            )
            child._smimea_parent = zone.name
            declared.add(child_name)
            added.append(child)
    spec.zones.extend(added)


def _add_record(zone: ZoneSpec, record: RecordSpec) -> None:
    if record not in zone.records:
        zone.records.append(record)
