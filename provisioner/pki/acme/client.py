"""A thin layer over the ``acme`` library's ClientV2: account, order, DNS-01, finalization.

Every failure becomes a PKIError that names the CA's directory and carries the CA's own
problem detail. Polling takes its time from the Clock it is handed, so a deadline means the
same thing here as everywhere else in provisioner.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import josepy
import requests
from acme import challenges, client, messages
from acme import errors as acme_errors
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from provisioner.clock import Clock
from provisioner.errors import PKIError
from provisioner.pki.keys import PrivateKey

log = logging.getLogger(__name__)

USER_AGENT = "provisioner (acme-python)"
# Seconds between two polls of an authorization or an order.
POLL_INTERVAL = 1.0
# Seconds one HTTP request to the CA may take.
REQUEST_TIMEOUT = 30

T = TypeVar("T")


class AcmeRejected(PKIError):
    """A request that the CA rejected with an RFC 8555 problem document of type ``code``."""

    def __init__(self, message: str, *, code: str | None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code


@dataclass(frozen=True)
class Dns01Challenge:
    """One DNS-01 challenge of an order: the TXT record to publish for one identifier."""

    identifier: str
    owner: str
    value: str
    body: messages.ChallengeBody
    authorization: messages.AuthorizationResource

    @property
    def pending(self) -> bool:
        return self.authorization.body.status == messages.STATUS_PENDING


def account_jwk(key: PrivateKey) -> tuple[josepy.JWK, josepy.JWASignature]:
    """Return the JWK and JWS algorithm of an account key (RFC 7518: ES256, ES384 or RS256)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algorithms = {"secp256r1": josepy.ES256, "secp384r1": josepy.ES384}
        if key.curve.name not in algorithms:
            raise PKIError(f"ACME account keys on curve {key.curve.name} are not supported")
        return josepy.JWKEC(key=key), algorithms[key.curve.name]
    if isinstance(key, rsa.RSAPrivateKey):
        return josepy.JWKRSA(key=key), josepy.RS256
    raise PKIError(
        f"ACME account keys of type {type(key).__name__} are not supported",
        hint="use an ECDSA P-256 or RSA account key",
    )


class AcmeConnection:
    """An account session with one ACME CA, opened by ``open``."""

    def __init__(self, directory_url: str, acme_client: client.ClientV2, jwk: josepy.JWK) -> None:
        self.directory_url = directory_url
        self.client = acme_client
        self.jwk = jwk

    # --- directory and account ----------------------------------------------------------------

    @classmethod
    def open(
        cls, directory_url: str, account_key: PrivateKey, *, ca_bundle: Path | None = None
    ) -> AcmeConnection:
        """Fetch the directory of ``directory_url``; TLS is verified against ``ca_bundle``.

        Without ``ca_bundle``, the system's trusted roots (through requests) verify the CA.
        """
        jwk, algorithm = account_jwk(account_key)
        verify: bool | str = str(ca_bundle) if ca_bundle is not None else True
        network = client.ClientNetwork(
            jwk,
            alg=algorithm,
            verify_ssl=verify,  # type: ignore[arg-type]  # requests takes a bundle path too
            user_agent=USER_AGENT,
            timeout=REQUEST_TIMEOUT,
        )
        # Proxy settings from the environment apply to a CA elsewhere. A CA on a loopback
        # address, such as a Pebble test CA, is always reached directly.
        if _is_loopback(directory_url):
            network.session.trust_env = False
        connection = cls(directory_url, client.ClientV2(messages.Directory({}), network), jwk)
        directory = connection._call(
            "fetch the directory", lambda: client.ClientV2.get_directory(directory_url, network)
        )
        connection.client.directory = directory
        return connection

    @property
    def terms_of_service(self) -> str | None:
        meta = getattr(self.client.directory, "meta", None)
        return getattr(meta, "terms_of_service", None) if meta is not None else None

    @property
    def external_account_required(self) -> bool:
        return bool(self.client.external_account_required())

    def use_account(self, account_url: str) -> None:
        """Sign further requests as the account at ``account_url`` (registered before)."""
        self.client.net.account = messages.RegistrationResource(
            body=messages.Registration(), uri=account_url
        )

    def register(
        self,
        contact: Sequence[str],
        *,
        agree_terms_of_service: bool,
        external_account: tuple[str, str] | None = None,
    ) -> str:
        """Create the account of this key (or find it, when the CA has it) and return its URL.

        ``external_account`` is (key id, base64url HMAC key) for external account binding.
        """
        binding = None
        if external_account is not None:
            key_id, hmac_key = external_account
            try:
                binding = messages.ExternalAccountBinding.from_data(
                    account_public_key=self.jwk.public_key(),
                    kid=key_id,
                    hmac_key=hmac_key,
                    directory=self.client.directory,
                )
            except (ValueError, TypeError) as error:
                raise PKIError(
                    f"the external account binding HMAC key of key id {key_id!r} is invalid",
                    hint="give the HMAC key exactly as the CA handed it out (base64url)",
                ) from error
        registration = messages.NewRegistration.from_data(
            contact=tuple(_contact_uri(entry) for entry in contact),
            terms_of_service_agreed=True if agree_terms_of_service else None,
            external_account_binding=binding,
        )
        try:
            account = self._call(
                "register the account", lambda: self.client.new_account(registration)
            )
        except _ExistingAccount as existing:
            self.use_account(existing.url)
            return existing.url
        return str(account.uri)

    # --- orders -------------------------------------------------------------------------------

    def new_order(self, csr_pem: bytes, hosts: Sequence[str]) -> messages.OrderResource:
        return self._call(
            f"create an order for {', '.join(hosts)}", lambda: self.client.new_order(csr_pem)
        )

    def dns01_challenges(self, order: messages.OrderResource) -> list[Dns01Challenge]:
        """Return the DNS-01 challenge of every authorization of ``order``."""
        found = []
        for authorization in order.authorizations:
            identifier = str(authorization.body.identifier.value).rstrip(".").lower()
            offered = [
                challenge
                for challenge in authorization.body.challenges
                if isinstance(challenge.chall, challenges.DNS01)
            ]
            if not offered:
                kinds = ", ".join(sorted({c.chall.typ for c in authorization.body.challenges}))
                raise PKIError(
                    f"the ACME CA at {self.directory_url} offers no dns-01 challenge for "
                    f"{identifier} (offered: {kinds or 'none'})",
                    hint="provisioner validates with DNS-01 only; use a CA that offers it",
                )
            body = offered[0]
            chall: challenges.DNS01 = body.chall  # type: ignore[assignment]
            found.append(
                Dns01Challenge(
                    identifier=identifier,
                    owner=chall.validation_domain_name(identifier) + ".",
                    value=chall.validation(self.jwk),
                    body=body,
                    authorization=authorization,
                )
            )
        return found

    def answer(self, challenge: Dns01Challenge) -> None:
        """Tell the CA that the TXT record of ``challenge`` is published."""
        response = challenge.body.chall.response(self.jwk)
        self._call(
            f"answer the dns-01 challenge of {challenge.identifier}",
            lambda: self.client.answer_challenge(challenge.body, response),
        )

    def wait_for_authorizations(
        self, challenges_: Sequence[Dns01Challenge], clock: Clock, deadline: dt.datetime
    ) -> None:
        """Poll every authorization until it is valid; raise PKIError when one fails."""
        for challenge in challenges_:
            authorization = challenge.authorization
            while True:
                authorization, _ = self._call(
                    f"poll the authorization of {challenge.identifier}",
                    lambda current=authorization: self.client.poll(current),  # type: ignore[misc]
                )
                status = authorization.body.status
                if status == messages.STATUS_VALID:
                    break
                if status not in (messages.STATUS_PENDING, messages.STATUS_PROCESSING):
                    raise PKIError(
                        f"the ACME CA at {self.directory_url} did not validate "
                        f"{challenge.identifier} (authorization {status.name}): "
                        f"{_challenge_problem(authorization)}",
                        hint=f"check that every name server serves the TXT record at "
                        f"{challenge.owner}, and that the CA reaches them",
                    )
                if clock.now() >= deadline:
                    raise PKIError(
                        f"the ACME CA at {self.directory_url} did not validate "
                        f"{challenge.identifier} before the order timeout",
                        hint="raise order_timeout of the authority, or check the CA",
                    )
                clock.sleep(POLL_INTERVAL)

    def finalize(self, order: messages.OrderResource, clock: Clock, deadline: dt.datetime) -> str:
        """Send the CSR of ``order``, wait until the certificate is issued, return its chain PEM."""
        try:
            order = self.client.begin_finalization(order)
        except messages.Error as error:
            # A CA still busy with the authorizations returns orderNotReady. The poll below
            # finalizes again once the order is ready.
            if error.code != "orderNotReady":
                raise self._rejected("finalize the order", error) from error
        except (requests.RequestException, acme_errors.Error) as error:
            raise self._unreachable("finalize the order", error) from error

        while True:
            response = self._call("poll the order", lambda: self._post_as_get(str(order.uri)))
            body = messages.Order.from_json(response.json())
            if body.status == messages.STATUS_VALID and body.certificate is not None:
                certificate_url = str(body.certificate)
                download = self._call(
                    "download the certificate",
                    lambda url=certificate_url: self._post_as_get(url),  # type: ignore[misc]
                )
                return str(download.text)
            if body.status == messages.STATUS_INVALID:
                detail = _problem_text(body.error) if body.error is not None else "no detail"
                raise PKIError(
                    f"the ACME CA at {self.directory_url} did not issue the certificate: {detail}",
                    hint="read the CA's detail above; the order is abandoned",
                )
            if body.status == messages.STATUS_READY:
                self._call("finalize the order", lambda: self.client.begin_finalization(order))
            if clock.now() >= deadline:
                raise PKIError(
                    f"the ACME CA at {self.directory_url} did not issue the certificate before "
                    "the order timeout",
                    hint="raise order_timeout of the authority, or check the CA",
                )
            clock.sleep(POLL_INTERVAL)

    # --- plumbing -----------------------------------------------------------------------------

    def _post_as_get(self, url: str) -> requests.Response:
        """Send a POST-as-GET request (RFC 8555 section 6.3) signed by the account."""
        return self.client.net.post(url, None, new_nonce_url=self.client.directory["newNonce"])

    def _call(self, action: str, request: Callable[[], T]) -> T:
        try:
            return request()
        except acme_errors.ConflictError as error:
            # newAccount returns 200 and the account's URL when the key is registered already.
            if action == "register the account":
                raise _ExistingAccount(str(error)) from error
            raise self._unreachable(action, error) from error
        except messages.Error as error:
            raise self._rejected(action, error) from error
        except (requests.RequestException, acme_errors.Error, ValueError) as error:
            raise self._unreachable(action, error) from error

    def _rejected(self, action: str, error: messages.Error) -> AcmeRejected:
        hint = _HINTS.get(error.code or "", "read the CA's detail; nothing was issued")
        return AcmeRejected(
            f"the ACME CA at {self.directory_url} rejected the request to {action}: "
            f"{_problem_text(error)}",
            code=error.code,
            hint=hint,
        )

    def _unreachable(self, action: str, error: Exception) -> PKIError:
        if isinstance(error, requests.exceptions.SSLError):
            hint = "set ca_bundle of the authority to the CA certificate of the directory's TLS"
        elif isinstance(error, requests.RequestException):
            hint = "check the directory URL and that the CA is running"
        else:
            hint = "check the directory URL; the CA's answer could not be read"
        return PKIError(
            f"cannot {action} at the ACME CA {self.directory_url}: {_short(error)}", hint=hint
        )


class _ExistingAccount(Exception):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


_HINTS = {
    "externalAccountRequired": "this CA requires external account binding: add "
    "external_account_binding (key_id and hmac_key_file or hmac_key_env) to the authority",
    "unauthorized": "check the external account binding key id and HMAC key, or the account",
    "rejectedIdentifier": "the CA does not issue for this name; use another CA or host name",
    "malformed": "the CA rejected the request's content; check the host names",
    "badCSR": "the CA rejected the CSR; ACME CAs accept RSA and ECDSA keys",
    "rateLimited": "wait until the CA's rate limit resets, then run apply again",
    "caa": "a CAA record forbids this CA: add an 'issue' property naming it",
    "accountDoesNotExist": "the CA lost the account; provisioner registers it again on the next "
    "run",
}


def _problem_text(error: Any) -> str:
    code = getattr(error, "code", None) or getattr(error, "typ", "")
    detail = getattr(error, "detail", None) or str(error)
    parts = [detail]
    for sub in getattr(error, "subproblems", None) or ():
        parts.append(f"{sub.identifier.value if sub.identifier else ''}: {sub.detail}")
    return f"{'; '.join(parts)} ({code})" if code else "; ".join(parts)


def _challenge_problem(authorization: messages.AuthorizationResource) -> str:
    problems = [
        _problem_text(challenge.error)
        for challenge in authorization.body.challenges
        if challenge.error is not None
    ]
    return "; ".join(problems) or "the CA gave no detail"


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _contact_uri(entry: str) -> str:
    """Return a contact as a URI: a bare mail address becomes a mailto: URI."""
    return entry if ":" in entry else f"mailto:{entry}"


def _short(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= 300 else text[:300] + "..."
