"""DNSSEC as pure computation: policy, keys, signing and a self-check of signed zones.

policy.py   DnssecPolicy (the spec's ``dnssec:`` block), parse_duration, check_policy_against_soa
keys.py     SigningKey, InMemoryKey, generate_key, load_key, key_tag, DS, CDS and CDNSKEY
signer.py   ZoneSigner, KeyAssignment, KeyRole, SignedZone, sign_zone
verify.py   verify_zone, Problem
"""
