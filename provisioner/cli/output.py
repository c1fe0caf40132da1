"""Console output: rich on a terminal, plain text in pipelines, logs on standard error."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

__all__ = ["escape"]

_state: dict[str, Any] = {"color": True, "quiet": False}


def configure(*, verbosity: int, quiet: bool, color: bool) -> None:
    _state["color"] = color
    _state["quiet"] = quiet
    level = logging.WARNING
    if verbosity == 1:
        level = logging.INFO
    elif verbosity >= 2:
        level = logging.DEBUG
    if quiet:
        level = logging.ERROR
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s", force=True
    )


def stdout() -> Console:
    # emoji=False: rich would turn text such as ":100:" in a message into an emoji.
    return Console(no_color=not _state["color"], highlight=False, soft_wrap=True, emoji=False)


def stderr() -> Console:
    return Console(
        stderr=True, no_color=not _state["color"], highlight=False, soft_wrap=True, emoji=False
    )


def progress(message: str) -> None:
    """Show a progress line on a terminal; say nothing in pipelines or with --quiet."""
    if _state["quiet"] or not sys.stderr.isatty():
        return
    stderr().print(f"[dim]… {escape(message)}[/dim]")


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    sys.stdout.flush()


def warn(message: str) -> None:
    stderr().print(f"[yellow]warning:[/yellow] {escape(message)}")


def error(message: str) -> None:
    stderr().print(f"[red]error:[/red] {escape(message)}")
