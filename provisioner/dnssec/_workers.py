"""Worker processes of the signer: they sign batches of compact jobs and return signatures.

This module imports only what signing needs (no pydantic, no zone model), so that each worker
started by the fork server stays small.
"""

from __future__ import annotations

from collections.abc import Sequence

from provisioner.dnssec import _wire
from provisioner.dnssec.keys import SigningKey, load_key

# A job: owner name wire form, type, TTL, labels, expiration, sorted canonical rdata, indexes
# of the keys to sign with. Only bytes and integers, so that it pickles cheaply.
JobTuple = tuple[bytes, int, int, int, int, tuple[bytes, ...], tuple[int, ...]]

_WORKER_KEYS: list[SigningKey] = []
_WORKER_SIGNER_WIRE = b""
_WORKER_INCEPTION = 0


def sign_job_tuples(
    jobs: list[JobTuple], keys: Sequence[SigningKey], signer_wire: bytes, inception: int
) -> list[list[bytes]]:
    results = []
    for owner_wire, rdtype, ttl, labels, expiration, rdata_wires, key_indexes in jobs:
        signatures = []
        for index in key_indexes:
            key = keys[index]
            data = _wire.signing_input(
                owner_wire,
                rdtype,
                ttl,
                list(rdata_wires),
                key.algorithm,
                labels,
                expiration,
                inception,
                key.key_tag,
                signer_wire,
            )
            signatures.append(key.sign(data))
        results.append(signatures)
    return results


def init_worker(
    pems: list[bytes], algorithms: list[int], flags: list[int], signer_wire: bytes, inception: int
) -> None:
    global _WORKER_KEYS, _WORKER_SIGNER_WIRE, _WORKER_INCEPTION
    _WORKER_KEYS = [load_key(pem, a, f) for pem, a, f in zip(pems, algorithms, flags, strict=True)]
    _WORKER_SIGNER_WIRE = signer_wire
    _WORKER_INCEPTION = inception


def sign_in_worker(jobs: list[JobTuple]) -> list[list[bytes]]:
    return sign_job_tuples(jobs, _WORKER_KEYS, _WORKER_SIGNER_WIRE, _WORKER_INCEPTION)
