"""What every command shares: global options, spec loading, the state store, the clock."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TypeVar

import typer

from provisioner.cli import output
from provisioner.clock import Clock, SystemClock
from provisioner.errors import ProvisionerError, SpecError
from provisioner.spec.loader import load_spec
from provisioner.spec.models import Spec
from provisioner.store.local import LocalStore

T = TypeVar("T")


@dataclass
class GlobalOptions:
    state: Path | None = None
    verbosity: int = 0
    quiet: bool = False
    color: bool = True


options = GlobalOptions()


def clock() -> Clock:
    return SystemClock()


def load(spec_path: Path) -> Spec:
    return load_spec(spec_path)


def state_dir(spec: Spec) -> Path:
    return options.state if options.state is not None else spec.state_dir()


@contextlib.contextmanager
def open_store(spec: Spec) -> Iterator[LocalStore]:
    with LocalStore(state_dir(spec)) as store:
        yield store


def fail(error: ProvisionerError, *, json_output: bool = False) -> NoReturn:
    """Print ``error`` and exit 1: the single place where user-facing failures end."""
    if json_output:
        payload: dict[str, object] = {"ok": False, "error": error.message, "hint": error.hint}
        if isinstance(error, SpecError):
            payload["errors"] = [e.as_dict() for e in error.errors]
        output.print_json(payload)
    elif isinstance(error, SpecError):
        output.error(f"{len(error.errors)} error(s) in the spec")
        for item in error.errors:
            output.stderr().print(f"  {output.escape(str(item))}")
    else:
        output.error(error.message)
        if error.hint:
            output.stderr().print(f"  hint: {output.escape(error.hint)}")
    raise typer.Exit(1)


def guarded(function: Callable[[], T], *, json_output: bool = False) -> T:
    """Run ``function``; turn ProvisionerError into a message and exit status 1."""
    try:
        return function()
    except ProvisionerError as error:
        fail(error, json_output=json_output)
    except KeyboardInterrupt:
        output.error("interrupted")
        sys.exit(130)
