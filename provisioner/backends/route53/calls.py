"""AWS clients for the Route 53 backend, and calls retried when AWS throttles them.

Credentials come from boto3's usual chain (environment, shared files, SSO, instance or
container role), never from the spec. botocore's own retries are turned off so that every
wait goes through the Clock, which tests replace.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import botocore.exceptions  # noqa: F401  (fails early, with the registry's hint, without boto3)

from provisioner.clock import Clock
from provisioner.errors import BackendError
from provisioner.spec.models import Route53Publish

log = logging.getLogger(__name__)

# Route 53 returns Throttling or PriorRequestNotComplete (HTTP 400) when requests come too
# fast or a change to the same hosted zone is still being applied. KMS returns
# ThrottlingException. The 5xx codes are transient service errors.
RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "PriorRequestNotComplete",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalError",
    }
)

# KMS keys for Route 53 DNSSEC must be in US East (N. Virginia); Route 53 itself is global
# and signs its requests for us-east-1.
DNSSEC_KMS_REGION = "us-east-1"

ClientFactory = Callable[[str, Route53Publish], Any]


def make_client(service: str, publish: Route53Publish) -> Any:
    """Return a boto3 client of ``service`` ("route53", "kms" or "sts") for ``publish``."""
    import boto3
    import botocore.config

    config = botocore.config.Config(
        retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=60
    )
    region = DNSSEC_KMS_REGION if service == "kms" else publish.region or DNSSEC_KMS_REGION
    return boto3.session.Session().client(
        service, region_name=region, endpoint_url=publish.endpoint_url, config=config
    )


# The factory that make_route53_backend uses; tests that need botocore's Stubber replace it.
client_factory: ClientFactory = make_client


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt n waits up to base * 2**(n-1) seconds."""

    attempts: int = 8
    base: float = 0.5
    cap: float = 30.0


def error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def error_message(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Message", "")) or str(error)


class Caller:
    """Call AWS operations, retrying throttled ones after a jittered, growing wait."""

    def __init__(
        self,
        clock: Clock,
        policy: RetryPolicy = RetryPolicy(),
        rng: random.Random | None = None,
    ) -> None:
        self.clock = clock
        self.policy = policy
        self.rng = rng or random.Random()
        self.retries = 0

    def call(self, client: Any, operation: str, **parameters: Any) -> dict[str, Any]:
        """Run ``client.operation(**parameters)``; raise ClientError for non-transient errors.

        Errors that are not AWS error responses (no credentials, endpoint unreachable) become a
        BackendError.
        """
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        for attempt in range(1, self.policy.attempts + 1):
            try:
                result: dict[str, Any] = getattr(client, operation)(**parameters)
                return result
            except ClientError as error:
                code = error_code(error)
                if code not in RETRYABLE_CODES or attempt == self.policy.attempts:
                    raise
                ceiling = min(self.policy.cap, self.policy.base * 2 ** (attempt - 1))
                delay = self.rng.uniform(0, ceiling)
                self.retries += 1
                log.warning(
                    "%s returned %s (attempt %d of %d); retrying in %.1f s",
                    operation,
                    code,
                    attempt,
                    self.policy.attempts,
                    delay,
                )
                self.clock.sleep(delay)
            except NoCredentialsError as error:
                raise BackendError(
                    f"no AWS credentials found for {operation}",
                    hint="set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                    "or run where an IAM role is available",
                ) from error
            except BotoCoreError as error:
                raise BackendError(f"{operation} failed: {error}") from error
        raise AssertionError("unreachable: the last attempt returns or raises")
