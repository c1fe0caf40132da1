"""The exception hierarchy: every failure a user must act on derives from ProvisionerError.

The CLI's single top-level handler maps ProvisionerError to exit status 1 and prints
``message`` and, when present, ``hint`` (what to do next). Messages never contain secrets.
"""

from __future__ import annotations


class ProvisionerError(Exception):
    """A failure the user must act on: what failed, on which value, and what to do."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class SpecError(ProvisionerError):
    """The spec is invalid; ``errors`` holds every positioned problem found in one run."""

    def __init__(self, errors: list[PositionedError]) -> None:
        self.errors = errors
        lines = "\n".join(str(error) for error in errors)
        super().__init__(f"{len(errors)} error(s) in the spec:\n{lines}")


class PositionedError:
    """One problem in a YAML file, located by file, line, column and field path."""

    def __init__(
        self, file: str, line: int | None, column: int | None, field: str, message: str
    ) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        self.message = message

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.field}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "field": self.field,
            "message": self.message,
        }


class PKIError(ProvisionerError):
    """A certificate or key could not be created, read or matched."""


class DaneError(ProvisionerError):
    """A TLSA or SMIMEA record could not be derived or is invalid."""


class DnssecError(ProvisionerError):
    """DNSSEC keys, policy, signing or validation failed."""


class StoreError(ProvisionerError):
    """The state store could not be read, written or locked."""


class BackendError(ProvisionerError):
    """A publication backend rejected or failed a read or a change."""


class CheckError(ProvisionerError):
    """A look-up or probe of the served data could not be made."""


class RolloverError(ProvisionerError):
    """A rollover cannot start, advance or be aborted safely."""


class DeployError(ProvisionerError):
    """A deployment through Ansible could not run."""
