"""Workflows: one function per command, joining the pure modules to the adapters."""
