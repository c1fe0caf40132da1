"""Draw a rollover's plan as SVG: one row per key or certificate, its states over time, the waits.

Pure: it takes the rollover's persisted data (steps, history) and the time to draw as "now".
Steps that happened are placed at the times of their history; later steps are projected from
the waits of the plan, so the picture shows the earliest time of each remaining step.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

COLOURS = {
    "generated": "#d9d9d9",
    "next": "#9ecae1",
    "signing": "#c7e9c0",
    "published": "#9ecae1",
    "ds-published": "#fdd0a2",
    "active": "#31a354",
    "current": "#31a354",
    "retired": "#fdae6b",
    "previous": "#fdae6b",
    "removed": "#ffffff",
}

WIDTH = 1000
LEFT = 220
ROW = 34
TOP = 60


@dataclass
class Segment:
    row: str
    start: dt.datetime
    end: dt.datetime
    label: str


def step_times(data: dict[str, Any], now: dt.datetime) -> list[tuple[dt.datetime, bool]]:
    """Return (time, happened) of every step: from the history, else projected from the waits."""
    applied: dict[int, dt.datetime] = {}
    for event in data["history"]:
        if event["event"] == "applied":
            applied[event["step"]] = dt.datetime.fromisoformat(event["at"])
    result: list[tuple[dt.datetime, bool]] = []
    previous = None
    for index, step in enumerate(data["steps"]):
        if index in applied:
            result.append((applied[index], True))
            previous = (applied[index], step)
            continue
        if previous is None:
            moment = now
        else:
            wait = previous[1]["wait"]
            total = int(wait["propagation"]) + int(wait["settle"])
            moment = max(now, previous[0] + dt.timedelta(seconds=total))
        result.append((moment, False))
        previous = (moment, step)
    return result


def segments(data: dict[str, Any], now: dt.datetime) -> tuple[list[Segment], dt.datetime]:
    times = step_times(data, now)
    end = times[-1][0] + dt.timedelta(seconds=max(1, _last_wait(data)))
    rows: dict[str, list[tuple[dt.datetime, str]]] = {}
    initial = "current" if data["kind"] in ("mx", "smime", "emergency") else "active"
    for old in data["old"]:
        rows[f"old {old}"] = [(times[0][0], initial)]
    new_rows = data["new"] or ["(to be made)"]
    for new in new_rows:
        rows[f"new {new}"] = []
    for (moment, _), step in zip(times, data["steps"], strict=True):
        for which, flags in (("old", step["old"]), ("new", step["new"])):
            label = flags.get("state") or flags.get("status")
            if not label:
                continue
            for name in rows:
                if name.startswith(which + " "):
                    rows[name].append((moment, label))
    result = []
    for name, changes in rows.items():
        for index, (moment, label) in enumerate(changes):
            until = changes[index + 1][0] if index + 1 < len(changes) else end
            result.append(Segment(name, moment, until, label))
    return result, end


def _last_wait(data: dict[str, Any]) -> int:
    waits = [int(s["wait"]["propagation"]) + int(s["wait"]["settle"]) for s in data["steps"]]
    return max(waits) // 4 if waits else 60


def render_svg(rollover: dict[str, Any], now: dt.datetime) -> str:
    """Return the SVG document of one rollover (a record from the store's rollovers table)."""
    data = rollover["data"]
    drawn, end = segments(data, now)
    times = step_times(data, now)
    start = min([times[0][0]] + [s.start for s in drawn])
    span = max((end - start).total_seconds(), 1.0)
    rows = list(dict.fromkeys(s.row for s in drawn))
    height = TOP + ROW * (len(rows) + len(data["steps"])) + 80

    def x(moment: dt.datetime) -> float:
        return LEFT + (WIDTH - LEFT - 20) * (moment - start).total_seconds() / span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f"<title>{escape(rollover['id'])}</title>",
        f'<text x="10" y="20" font-size="16">{escape(rollover["id"])} '
        f"({escape(data['status'])})</text>",
        f'<text x="10" y="40">{escape(start.isoformat())} to {escape(end.isoformat())}</text>',
    ]
    for index, row in enumerate(rows):
        top = TOP + index * ROW
        parts.append(f'<text x="10" y="{top + 20}">{escape(_short(row))}</text>')
        for segment in (s for s in drawn if s.row == row):
            left, right = x(segment.start), x(segment.end)
            colour = COLOURS.get(segment.label, "#eeeeee")
            parts.append(
                f'<rect x="{left:.1f}" y="{top + 4}" width="{max(right - left, 1):.1f}" '
                f'height="{ROW - 10}" fill="{colour}" stroke="#555"><title>'
                f"{escape(segment.label)} from {escape(segment.start.isoformat())}</title></rect>"
            )
            parts.append(f'<text x="{left + 3:.1f}" y="{top + 20}">{escape(segment.label)}</text>')
    base = TOP + len(rows) * ROW + 10
    for index, ((moment, happened), step) in enumerate(zip(times, data["steps"], strict=True)):
        position = x(moment)
        dash = "" if happened else ' stroke-dasharray="4 3"'
        parts.append(
            f'<line x1="{position:.1f}" y1="{TOP}" x2="{position:.1f}" '
            f'y2="{base + index * ROW}" stroke="#333"{dash}/>'
        )
        wait = step["wait"]
        seconds = int(wait["propagation"]) + int(wait["settle"])
        label = f"{index + 1}. {step['name']}" + ("" if happened else " (planned)")
        if seconds:
            label += f"; then wait {_duration(seconds)}: {wait['cause']}"
        if step["observe"]:
            label += f"; observe {', '.join(step['observe'])}"
        parts.append(
            f'<text x="{position + 4:.1f}" y="{base + index * ROW + 4}">{escape(label)}</text>'
        )
    now_x = x(min(max(now, start), end))
    parts.append(
        f'<line x1="{now_x:.1f}" y1="{TOP - 5}" x2="{now_x:.1f}" y2="{height - 20}" '
        f'stroke="red"/><text x="{now_x + 3:.1f}" y="{height - 8}" fill="red">now</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _short(row: str) -> str:
    return row if len(row) <= 30 else row[:14] + "..." + row[-13:]


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
