"""Drive a rollover through the simulated world, as cron would: apply, then rollover run.

``simulate`` runs everything in this process. With ``crash=True`` every tick runs in a forked
child that kills itself (SIGKILL) right after its n-th write of rollover state; after each
crash the same tick runs again with n + 1, until a child completes the tick. So every tick is
killed once after each of its persisted writes, and resumed by the next child.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.world import (
    CHILD,
    MX,
    PARENT,
    START,
    USER,
    Timings,
    World,
    first_apply,
    make_world,
    open_engine,
    write_spec,
)
from provisioner.clock import ManualClock
from provisioner.spec.loader import load_spec
from provisioner.store.local import LocalStore

MAX_TICKS = 400
CRON_INTERVAL = dt.timedelta(days=1)
NEW_ALGORITHM = 15


@dataclass
class Outcome:
    world: World
    spec_path: Path
    rollover_id: str
    finished: dt.datetime
    crashes: int = 0


def start_rollover(engine: Any, kind: str) -> str:
    if kind == "mx":
        return engine.start_mx(MX)
    if kind == "smime":
        return engine.start_user(USER)
    if kind.startswith("ksk-"):
        return engine.start_dnssec(CHILD, "ksk", method=kind[4:])
    if kind == "algorithm":
        return engine.start_dnssec(CHILD, "algorithm", algorithm=NEW_ALGORITHM)
    return engine.start_dnssec(CHILD, kind)


def _tick(spec_path: Path, world: World, kind: str | None, on_persist: Any) -> dict[str, Any]:
    """One cron run: start the rollover (first tick), apply, rollover run. Returns a summary."""
    spec = load_spec(spec_path)
    with LocalStore(spec.state_dir()) as store:
        engine = open_engine(spec_path, world, store, on_persist=on_persist)
        rollover_id = start_rollover(engine, kind) if kind else None
        world.publish(spec, store, world.clock)
        engine.run()
        statuses = engine.status()
    running = [s for s in statuses if s.state == "running"]
    next_times = [s.next_step_at for s in running if s.next_step_at is not None]
    return {
        "id": rollover_id,
        "running": bool(running),
        "next": min(next_times) if next_times else None,
    }


def _in_child(spec_path: Path, world: World, kind: str | None, crash_at: int) -> dict[str, Any]:
    """Run one tick in a forked child that SIGKILLs itself at its persist number ``crash_at``."""
    import json

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        code = 0
        try:
            persisted = 0

            def on_persist(rollover_id: str, state: str) -> None:
                nonlocal persisted
                persisted += 1
                if persisted == crash_at:
                    os.kill(os.getpid(), signal.SIGKILL)

            summary = _tick(spec_path, world, kind, on_persist)
            summary["next"] = summary["next"].isoformat() if summary["next"] else None
            os.write(write_end, json.dumps(summary).encode())
        except BaseException as error:  # noqa: BLE001 - reported to the parent through the pipe
            os.write(write_end, json.dumps({"error": repr(error)}).encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return {"killed": True}
    summary = json.loads(b"".join(chunks).decode())
    if "error" in summary:
        raise AssertionError(f"the run failed: {summary['error']}")
    summary["next"] = dt.datetime.fromisoformat(summary["next"]) if summary["next"] else None
    return summary


def simulate(
    folder: Path, timings: Timings, kind: str, *, crash: bool = False, **spec_options: Any
) -> Outcome:
    spec_path = write_spec(folder, timings, **spec_options)
    clock = ManualClock(START)
    world = make_world(folder, timings, clock)
    first_apply(spec_path, world)
    if kind == "algorithm":
        # The spec names the new algorithm; the zone is still signed with the old one.
        write_spec(folder, timings, child_algorithm=NEW_ALGORITHM, **spec_options)
    settle = max(timings.ds_ttl, timings.dnskey_ttl, timings.ttl, timings.tlsa_ttl)
    clock.advance(2 * settle + timings.parent_propagation)

    crash_at = 1
    crashes = 0
    pending_kind: str | None = kind
    rollover_id = ""
    small_step = max(1, min(timings.propagation, timings.parent_propagation))
    for _ in range(MAX_TICKS):
        if crash:
            summary = _in_child(spec_path, world, pending_kind, crash_at)
            world.reload()
            if summary.get("killed"):
                crashes += 1
                crash_at += 1
                if pending_kind is not None:
                    rollover_id = _started_id(spec_path) or ""
                    pending_kind = None if rollover_id else pending_kind
                continue
            crash_at = 1
        else:
            summary = _tick(spec_path, world, pending_kind, None)
        if pending_kind is not None:
            rollover_id = summary["id"] or _started_id(spec_path) or ""
            pending_kind = None
        if not summary["running"]:
            break
        now = clock.now()
        target = summary["next"]
        if target is None or target <= now:
            clock.advance(small_step)
        else:
            # cron runs at least daily, which keeps signatures fresh during long waits
            clock.set(min(target, now + CRON_INTERVAL))
    else:
        raise AssertionError(f"the {kind} rollover did not finish in {MAX_TICKS} runs")
    finished = clock.now()
    # Keep publishing after the end, as cron would, so the tail is part of the history.
    spec = load_spec(spec_path)
    tail_end = finished + dt.timedelta(seconds=4 * settle)
    while clock.now() < tail_end:
        clock.set(min(tail_end, clock.now() + CRON_INTERVAL))
        with LocalStore(spec.state_dir()) as store:
            world.publish(spec, store, clock)
    return Outcome(world, spec_path, rollover_id, finished, crashes)


def _started_id(spec_path: Path) -> str | None:
    spec = load_spec(spec_path)
    with LocalStore(spec.state_dir()) as store:
        found = store.rollovers()
    return found[-1]["id"] if found else None


ZONES = (PARENT, CHILD)
