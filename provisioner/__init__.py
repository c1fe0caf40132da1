"""provisioner: DANE and DNSSEC for mail, from one declarative spec."""

__version__ = "0.1.0"
