"""ACME (RFC 8555) issuance with DNS-01: the protocol client, the CSR and the CAA evaluation.

The protocol itself is the ``acme`` library's (the one certbot is built on), used in
provisioner.pki.acme.client. This __init__ imports nothing, so that the spec's checks can use
the CAA evaluation without loading the HTTP client. The workflow that publishes
challenges through a zone's backend is provisioner.workflows.acme.
"""
