"""Fault injection for crash-safety tests: kill the process at the Nth checkpoint.

With PROVISIONER_FAULT_AFTER=N in the environment, the Nth call to ``checkpoint`` sends
SIGKILL to the process itself, as a power cut or an OOM kill would. Checkpoints sit between
the steps of every atomic write and around store commits. Without the variable, a checkpoint
costs one dictionary look-up.
"""

from __future__ import annotations

import os
import signal

_count = 0
_limit = int(os.environ.get("PROVISIONER_FAULT_AFTER", "0") or 0)


def checkpoint() -> None:
    global _count
    if not _limit:
        return
    _count += 1
    if _count >= _limit:
        os.kill(os.getpid(), signal.SIGKILL)
