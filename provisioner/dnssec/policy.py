"""DNSSEC signing policy: algorithm, key layout, lifetimes, signature timing, denial of existence.

``DnssecPolicy`` is a pydantic v2 model that the spec embeds under each zone's ``dnssec:`` key.
Unknown keys are rejected, and each validator raises ValueError saying what is allowed, so that
the spec loader can turn it into a positioned error. Durations are integers of seconds or strings
such as "14d", "1h30m" (see ``parse_duration``).

Public API:
    DnssecPolicy, Nsec3Parameters   the models
    parse_duration(value) -> int     "14d" -> 1209600
    parse_algorithm(value) -> int    13, "13", "ECDSAP256SHA256" -> 13
    check_policy_against_soa(policy, soa_expire, soa_ttl, soa_minimum) -> list[str]
    ALGORITHM_NAMES, DIGEST_NAMES    number -> mnemonic
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

# Algorithms this signer can sign with (RFC 8624, section 3.1: MUST or RECOMMENDED for signing).
ALGORITHM_NAMES: dict[int, str] = {
    8: "RSASHA256",
    13: "ECDSAP256SHA256",
    14: "ECDSAP384SHA384",
    15: "ED25519",
}

# Algorithms that RFC 8624 (section 3.1) forbids for signing, with the reason.
_FORBIDDEN_ALGORITHMS: dict[int, str] = {
    1: "RSAMD5 is MUST NOT for signing (RFC 8624): MD5 is broken",
    3: "DSA is MUST NOT for signing (RFC 8624): DSA with SHA-1 is too weak",
    5: "RSASHA1 is NOT RECOMMENDED for signing (RFC 8624) and SHA-1 is broken",
    6: "DSA-NSEC3-SHA1 is MUST NOT for signing (RFC 8624): DSA with SHA-1 is too weak",
    7: "RSASHA1-NSEC3-SHA1 is NOT RECOMMENDED for signing (RFC 8624) and SHA-1 is broken",
    12: "ECC-GOST is MUST NOT for signing (RFC 8624): GOST R 34.10-2001 is deprecated",
}

_OTHER_ALGORITHM_NAMES: dict[str, int] = {
    "RSAMD5": 1,
    "DSA": 3,
    "RSASHA1": 5,
    "DSA-NSEC3-SHA1": 6,
    "DSANSEC3SHA1": 6,
    "RSASHA1-NSEC3-SHA1": 7,
    "NSEC3RSASHA1": 7,
    "RSASHA512": 10,
    "ECC-GOST": 12,
    "ECCGOST": 12,
    "ED448": 16,
}

# DS digest types (RFC 4509, RFC 6605 for SHA-384).
DIGEST_NAMES: dict[int, str] = {1: "SHA-1", 2: "SHA-256", 4: "SHA-384"}

_ALLOWED_ALGORITHMS = ", ".join(f"{number} ({name})" for number, name in ALGORITHM_NAMES.items())

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_PART = re.compile(r"(\d+)([smhdw])")

# RFC 9276, section 3.2: validators may treat NSEC3 with more than 100 iterations as insecure.
MAX_NSEC3_ITERATIONS = 100


def parse_duration(value: object) -> int:
    """Convert a duration to seconds: 3600, "3600", "1h", "14d" and "2d12h" are accepted."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string such as '14d' or '1h'")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a duration must not be negative, got {value}")
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text.isdigit():
            return int(text)
        if text and _DURATION_PART.sub("", text) == "":
            return sum(int(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(text))
    raise ValueError(
        f"invalid duration {value!r}: use seconds (3600) or a number with a unit "
        "s, m, h, d or w (such as '1h', '14d', '2d12h')"
    )


Duration = Annotated[
    int,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": r"^\s*(\d+|(\d+[smhdwSMHDW])+)\s*$"},
            ],
            "description": "seconds, or a number with unit s, m, h, d or w such as '14d'",
        }
    ),
]


def parse_algorithm(value: object) -> int:
    """Convert an algorithm number or mnemonic to a number this signer supports.

    Raises ValueError naming the allowed algorithms, and the RFC 8624 reason for a
    forbidden one.
    """
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip().upper().replace("_", "-")
        if text.isdigit():
            number = int(text)
        else:
            by_name = {name: num for num, name in ALGORITHM_NAMES.items()}
            number = by_name.get(text, _OTHER_ALGORITHM_NAMES.get(text))
    if number is None:
        raise ValueError(f"unknown DNSSEC algorithm {value!r}: allowed are {_ALLOWED_ALGORITHMS}")
    if number in _FORBIDDEN_ALGORITHMS:
        raise ValueError(
            f"algorithm {number} is not allowed: {_FORBIDDEN_ALGORITHMS[number]}; "
            f"use one of {_ALLOWED_ALGORITHMS}"
        )
    if number not in ALGORITHM_NAMES:
        raise ValueError(
            f"algorithm {number} is not supported for signing: allowed are {_ALLOWED_ALGORITHMS}"
        )
    return number


def _parse_digest(value: object) -> int:
    if isinstance(value, str):
        text = value.strip().upper().replace("_", "-")
        by_name = {"SHA-1": 1, "SHA1": 1, "SHA-256": 2, "SHA256": 2, "SHA-384": 4, "SHA384": 4}
        if text.isdigit():
            value = int(text)
        elif text in by_name:
            value = by_name[text]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"unknown DS digest type {value!r}: allowed are 2 (SHA-256), 4 (SHA-384)")
    if value == 1:
        raise ValueError(
            "DS digest type 1 (SHA-1) must not be used for new DS records (RFC 8624): "
            "use 2 (SHA-256) or 4 (SHA-384)"
        )
    if value not in (2, 4):
        raise ValueError(
            f"unsupported DS digest type {value}: allowed are 2 (SHA-256), 4 (SHA-384)"
        )
    return value


DigestType = Annotated[int, BeforeValidator(_parse_digest)]


class Nsec3Parameters(BaseModel):
    """NSEC3 parameters; the defaults follow RFC 9276 (no extra iterations, empty salt)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    iterations: int = Field(default=0, ge=0)
    salt: str = Field(default="", description="hexadecimal; empty (RFC 9276 default) is '' or '-'")
    opt_out: bool = False

    @field_validator("iterations")
    @classmethod
    def _check_iterations(cls, value: int) -> int:
        if value > MAX_NSEC3_ITERATIONS:
            raise ValueError(
                f"{value} NSEC3 iterations is too many: validators treat more than "
                f"{MAX_NSEC3_ITERATIONS} as insecure (RFC 9276); use 0"
            )
        return value

    @field_validator("salt")
    @classmethod
    def _check_salt(cls, value: str) -> str:
        text = value.strip().lower()
        if text == "-":
            return ""
        if len(text) % 2 or re.fullmatch(r"[0-9a-f]*", text) is None:
            raise ValueError(
                f"invalid NSEC3 salt {value!r}: use an even number of hexadecimal digits, "
                "or '' for no salt (recommended by RFC 9276)"
            )
        if len(text) > 510:
            raise ValueError("NSEC3 salt is longer than 255 octets")
        return text

    @property
    def salt_bytes(self) -> bytes:
        return bytes.fromhex(self.salt)


class DnssecPolicy(BaseModel):
    """How a zone is signed and how its keys are timed during rollovers (RFC 7583 terms)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    algorithm: int = Field(
        default=13,
        description="8 RSASHA256, 13 ECDSAP256SHA256 (default), 14 ECDSAP384SHA384, 15 ED25519",
    )
    rsa_bits: int | None = Field(default=None, description="RSA modulus size, 2048..4096")
    key_layout: Literal["ksk-zsk", "csk"] = "ksk-zsk"
    ksk_lifetime: Duration = Field(default=0, description="0 = unlimited")
    zsk_lifetime: Duration = Field(default=90 * 86400, description="0 = unlimited")
    signature_validity: Duration = 14 * 86400
    refresh: Duration = Field(
        default=5 * 86400, description="renew a signature when less than this validity remains"
    )
    jitter: Duration = Field(
        default=12 * 3600, description="spread of signature expirations, deterministic per RRset"
    )
    inception_offset: Duration = Field(
        default=3600, description="signatures start this far in the past (clock skew)"
    )
    denial: Literal["nsec", "nsec3"] = "nsec"
    nsec3: Nsec3Parameters = Nsec3Parameters()
    dnskey_ttl: Duration = 3600
    ds_ttl: Duration = Field(default=86400, description="TTL of the DS RRset at the parent")
    ds_digests: list[DigestType] = Field(default_factory=lambda: [2])
    publish_cds: bool = True
    cds_ttl: Duration | None = Field(default=None, description="defaults to dnskey_ttl")
    propagation_delay: Duration = Field(
        default=3600, description="time for a change to reach every authoritative server"
    )
    parent_propagation_delay: Duration = Field(
        default=3600, description="time for a DS change to reach every parent server"
    )
    publish_safety: Duration = Field(
        default=3600, description="margin added before a new key is used (RFC 7583)"
    )
    retire_safety: Duration = Field(
        default=3600, description="margin added before a retired key is removed (RFC 7583)"
    )

    @field_validator("algorithm", mode="before")
    @classmethod
    def _check_algorithm(cls, value: object) -> int:
        return parse_algorithm(value)

    @field_validator("ds_digests")
    @classmethod
    def _check_digests(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("ds_digests must list at least one digest type: 2 (SHA-256)")
        return sorted(set(value))

    @model_validator(mode="after")
    def _check_consistency(self) -> DnssecPolicy:
        if self.algorithm == 8:
            bits = self.rsa_bits if self.rsa_bits is not None else 2048
            if not 2048 <= bits <= 4096:
                raise ValueError(f"rsa_bits {bits} is out of range: use 2048 to 4096")
            object.__setattr__(self, "rsa_bits", bits)
        elif self.rsa_bits is not None:
            raise ValueError(
                f"rsa_bits applies only to algorithm 8 (RSASHA256), not {self.algorithm}"
            )
        if self.signature_validity < 3600:
            raise ValueError(
                f"signature_validity {self.signature_validity} s is too short: use at least 1h"
            )
        if self.refresh > self.signature_validity * 9 // 10:
            raise ValueError(
                f"refresh ({self.refresh} s) must be at most 90% of signature_validity "
                f"({self.signature_validity} s), so that a signature is renewed well before "
                "it expires"
            )
        if self.jitter >= self.signature_validity - self.refresh:
            raise ValueError(
                f"jitter ({self.jitter} s) must be less than signature_validity - refresh "
                f"({self.signature_validity - self.refresh} s), or new signatures would "
                "already be due for renewal"
            )
        if self.inception_offset > self.signature_validity // 2:
            raise ValueError(
                f"inception_offset ({self.inception_offset} s) must be at most half of "
                f"signature_validity ({self.signature_validity} s)"
            )
        return self

    @property
    def warnings(self) -> list[str]:
        """Advice about settings that are allowed but not recommended."""
        advice = []
        if self.denial == "nsec3" and self.nsec3.iterations > 0:
            advice.append(
                f"NSEC3 iterations {self.nsec3.iterations} > 0 add cost but no protection "
                "(RFC 9276 recommends 0); some validators treat such zones as insecure"
            )
        if self.denial == "nsec3" and self.nsec3.salt:
            advice.append("an NSEC3 salt adds no protection; RFC 9276 recommends none")
        if 4 in self.ds_digests and 2 not in self.ds_digests:
            advice.append("some parents accept only DS digest type 2 (SHA-256); consider adding it")
        return advice

    @property
    def nsec3_enabled(self) -> bool:
        return self.denial == "nsec3"

    @property
    def cds_ttl_effective(self) -> int:
        return self.dnskey_ttl if self.cds_ttl is None else self.cds_ttl


def check_policy_against_soa(
    policy: DnssecPolicy, soa_expire: int, soa_ttl: int, soa_minimum: int
) -> list[str]:
    """Return the problems of ``policy`` combined with the zone's SOA values (empty if none).

    A secondary keeps serving the zone for SOA expire seconds after losing its primary; if that is
    longer than the remaining validity of signatures, it serves expired signatures.
    """
    problems = []
    minimum_lifetime = policy.signature_validity - policy.jitter - policy.refresh
    if soa_expire > policy.signature_validity:
        problems.append(
            f"SOA expire ({soa_expire} s) is longer than signature_validity "
            f"({policy.signature_validity} s): a secondary cut off from the primary would serve "
            "expired signatures; lower SOA expire or raise signature_validity"
        )
    elif soa_expire > minimum_lifetime:
        problems.append(
            f"SOA expire ({soa_expire} s) is longer than the shortest remaining signature "
            f"validity before renewal ({minimum_lifetime} s = signature_validity - jitter - "
            "refresh): lower SOA expire or raise refresh"
        )
    negative_ttl = min(soa_ttl, soa_minimum)
    if negative_ttl > policy.signature_validity - policy.refresh:
        problems.append(
            f"the negative TTL min(SOA TTL, SOA minimum) = {negative_ttl} s exceeds the "
            "remaining validity of a renewed NSEC signature: lower the SOA minimum"
        )
    if policy.dnskey_ttl > policy.signature_validity - policy.refresh:
        problems.append(
            f"dnskey_ttl ({policy.dnskey_ttl} s) exceeds signature_validity - refresh: "
            "a cached DNSKEY RRset could outlive its signature"
        )
    return problems
