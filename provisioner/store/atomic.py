"""Crash-safe file writes: temporary file in the same folder, fsync, rename, fsync the folder.

A reader (or a process that restarts after SIGKILL) sees either the old file or the new one,
never a partial file. Private keys are created with mode 0600 from the first byte: the
temporary file is opened with O_CREAT|O_EXCL and that mode, so no window exists in which the
key is readable by others.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from provisioner.store.faults import checkpoint


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(
    path: Path | str, data: bytes | str, *, mode: int = 0o644, durable: bool = True
) -> None:
    """Replace ``path`` with ``data`` in one rename; the file has ``mode`` from creation on.

    ``durable=False`` skips the fsync calls, for files that the next run rewrites when they
    differ (exported copies). Readers still see the old or the new file, but after a crash of
    the operating system the file may be empty.
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
    if not path.parent.is_dir():
        # A stat costs far less than a mkdir that fails on an existing folder.
        path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    checkpoint()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        # The umask may have narrowed the mode at creation; set it exactly.
        os.fchmod(fd, mode)
        view = memoryview(data)
        half = len(view) // 2
        while view:
            written = os.write(fd, view[: half or len(view)])
            view = view[written:]
            if half:
                checkpoint()
                half = 0
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    os.close(fd)
    checkpoint()
    # The data is on disk before the rename. The folder's fsync after the rename makes the new
    # name durable, so the temporary name needs no fsync of its own.
    os.replace(temporary, path)
    if durable:
        fsync_directory(path.parent)
    checkpoint()


def write_private(path: Path | str, data: bytes | str) -> None:
    """Write a private key or other secret: atomic, mode 0600, never world- or group-readable."""
    write_atomic(path, data, mode=0o600)


def remove_stale_temporaries(directory: Path) -> int:
    """Delete temporary files left by a write that was killed; return how many were removed."""
    removed = 0
    if not directory.is_dir():
        return 0
    for candidate in directory.rglob(".*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            candidate.unlink()
            removed += 1
    return removed
