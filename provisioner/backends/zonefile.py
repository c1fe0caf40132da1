"""The embedded default backend: one zone file per zone, written atomically.

The file is then served by any authoritative server as a plain primary (BIND, Knot, NSD);
an optional reload command tells that server to load it.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

from provisioner.errors import BackendError
from provisioner.store.atomic import write_atomic
from provisioner.zone.model import ZoneData
from provisioner.zone.plan import ZonePlan

log = logging.getLogger(__name__)


class ZonefileBackend:
    name = "zonefile"
    owns_whole_zone = True

    def __init__(self, origin: str, path: Path, reload: list[str] | None = None) -> None:
        self.origin = origin
        self.path = path
        self.reload = reload
        # The text read() found, to compare with the text apply would write.
        self.text: str | None = None

    def read(self) -> ZoneData | None:
        try:
            # Bytes, not read_text(): universal newlines would hide CRLF line ends.
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise BackendError(f"cannot read zone file {self.path}: {error.strerror}") from error
        try:
            text = data.decode()
            self.text = text
            return ZoneData.from_text(text, self.origin)
        except Exception as error:  # dnspython raises several types for a bad zone file
            # dnspython names the text it parsed "<string>"; name the file instead.
            detail = str(error).replace("<string>", str(self.path))
            raise BackendError(
                f"the zone file {self.path} cannot be parsed: {detail}",
                hint="move the file aside; provisioner rewrites it from the spec",
            ) from error

    def differs_from(self, text: str) -> str | None:
        """Return why the zone file must be rewritten although its RRsets match, or None.

        Parsing forgives what servers may not: mixed TTLs in an RRset (the smallest is kept),
        records outside the zone (dropped), CRLF line ends. The file is compared as text.
        """
        if self.text is None or self.text == text:
            return None
        return (
            f"the zone file {self.path} differs from the text provisioner writes for the same "
            "RRsets (edited by hand?); apply rewrites it with a new serial"
        )

    def check_plan(self, plan: ZonePlan, desired: ZoneData) -> None:
        return None

    def apply(self, plan: ZonePlan, desired: ZoneData) -> None:
        try:
            write_atomic(self.path, desired.to_text())
        except OSError as error:
            raise BackendError(
                f"cannot write zone file {self.path}: {error.strerror}",
                hint="check that the folder exists and is writable",
            ) from error
        log.info("wrote zone file %s (serial %s)", self.path, plan.serial_after)
        if self.reload:
            self._run_reload()

    def _run_reload(self) -> None:
        assert self.reload is not None
        try:
            result = subprocess.run(
                self.reload, capture_output=True, text=True, timeout=120, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise BackendError(
                f"reload command {' '.join(self.reload)} failed to run: {error}",
                hint="the zone file is written; fix the command and run apply again",
            ) from error
        if result.returncode != 0:
            raise BackendError(
                f"reload command {' '.join(self.reload)} exited with status "
                f"{result.returncode}: {result.stderr.strip()[:500]}",
                hint="the zone file is written; fix the server and run apply again",
            )
