"""Matching of published TLSA or SMIMEA records against a presented certificate chain.

This compares association data only. It does no PKIX path validation, which usages
0 (PKIX-TA) and 1 (PKIX-EE) also require, and it does not check that the end entity
chains up to a DANE-TA certificate. A caller that needs either check validates the chain
itself (for example with provisioner.pki.checks.order_chain).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import dns.rdata
from cryptography import x509

from provisioner.dane.params import MatchingType, Selector, Usage
from provisioner.dane.records import association_data


def record_matches(
    rdata: dns.rdata.Rdata,
    end_entity: x509.Certificate,
    chain: Sequence[x509.Certificate] = (),
) -> bool:
    """Return whether one TLSA or SMIMEA rdata matches ``end_entity`` or a CA in ``chain``.

    Usages 1 and 3 match the end entity, usages 0 and 2 a certificate of ``chain``.
    Records with values outside the defined ranges (such as private-use 255) never match.
    """
    try:
        usage = Usage(rdata.usage)
        selector = Selector(rdata.selector)
        matching = MatchingType(rdata.mtype)
    except ValueError:
        return False
    if usage in (Usage.PKIX_EE, Usage.DANE_EE):
        candidates: Sequence[x509.Certificate] = (end_entity,)
    else:
        candidates = chain
    return any(association_data(cert, selector, matching) == rdata.cert for cert in candidates)


def matching_records(
    rdatas: Iterable[dns.rdata.Rdata],
    end_entity: x509.Certificate,
    chain: Sequence[x509.Certificate] = (),
) -> list[dns.rdata.Rdata]:
    """Return the records of ``rdatas`` (for example a TLSA RRset) that match the chain."""
    return [rdata for rdata in rdatas if record_matches(rdata, end_entity, chain)]
