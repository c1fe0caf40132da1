"""Draw a rollover's plan as SVG: one row per key or certificate, its states over time, the waits.

Pure: it takes the rollover's persisted data (steps, history) and the time to draw as "now".
Steps that happened are placed at the times of their history; later steps are projected from
the waits of the plan, so the picture shows the earliest time of each remaining step.
"""

from __future__ import annotations

import datetime as dt
import textwrap
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
LEGEND_WIDTH = 150  # characters per line of the step list


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
    """Return the SVG document of one rollover (a record from the store's rollovers table).

    The rows are the keys or certificates with their states, then a row of the waits after
    each step; below, a numbered list says what each step does and why it waits.
    """
    data = rollover["data"]
    drawn, end = segments(data, now)
    times = step_times(data, now)
    start = min([times[0][0]] + [s.start for s in drawn])
    end = max(end, now)
    span = max((end - start).total_seconds(), 1.0)
    rows = list(dict.fromkeys(s.row for s in drawn))
    waits_top = TOP + len(rows) * ROW
    legend_top = waits_top + ROW + 30
    legend = [
        textwrap.wrap(_step_text(step, when), LEGEND_WIDTH)
        for step, when in zip(data["steps"], times, strict=True)
    ]
    height = legend_top + 16 * sum(len(lines) for lines in legend) + 30

    def x(moment: dt.datetime) -> float:
        return LEFT + (WIDTH - LEFT - 20) * (moment - start).total_seconds() / span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
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

    parts.append(f'<text x="10" y="{waits_top + 20}">waits</text>')
    for index, ((moment, happened), step) in enumerate(zip(times, data["steps"], strict=True)):
        position = x(moment)
        dash = "" if happened else ' stroke-dasharray="4 3"'
        parts.append(
            f'<line x1="{position:.1f}" y1="{TOP}" x2="{position:.1f}" '
            f'y2="{waits_top + ROW}" stroke="#333"{dash}/>'
            f'<text x="{position + 2:.1f}" y="{TOP - 4}">{index + 1}</text>'
        )
        wait = step["wait"]
        seconds = int(wait["propagation"]) + int(wait["settle"])
        if seconds:
            right = x(moment + dt.timedelta(seconds=seconds))
            parts.append(
                f'<rect x="{position:.1f}" y="{waits_top + 4}" '
                f'width="{max(right - position, 1):.1f}" height="{ROW - 10}" fill="#fff7bc" '
                f'stroke="#999"><title>{escape(wait["cause"])}</title></rect>'
                f'<text x="{position + 3:.1f}" y="{waits_top + 20}">{_duration(seconds)}</text>'
            )
    line_number = 0
    for index, lines in enumerate(legend):
        for position, line in enumerate(lines):
            text = f"{index + 1}. {line}" if position == 0 else f"    {line}"
            parts.append(
                f'<text x="10" y="{legend_top + line_number * 16}" font-size="11" '
                f'xml:space="preserve">{escape(text)}</text>'
            )
            line_number += 1
    now_x = x(now)
    parts.append(
        f'<line x1="{now_x:.1f}" y1="{TOP - 5}" x2="{now_x:.1f}" y2="{waits_top + ROW}" '
        f'stroke="red"/><text x="{now_x + 3:.1f}" y="{waits_top + ROW + 14}" fill="red">now</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _step_text(step: dict[str, Any], when: tuple[dt.datetime, bool]) -> str:
    moment, happened = when
    wait = step["wait"]
    seconds = int(wait["propagation"]) + int(wait["settle"])
    text = f"{step['name']}: {step['description']}"
    if happened:
        text += f" (done {moment.isoformat(timespec='seconds')})"
    else:
        text += f" (planned, earliest {moment.isoformat(timespec='seconds')})"
    if seconds:
        text += f"; then wait {_duration(seconds)}: {wait['cause']}"
    if step["observe"]:
        text += f"; observe {', '.join(step['observe'])}"
    return text


def _short(row: str) -> str:
    return row if len(row) <= 30 else row[:14] + "..." + row[-13:]


def _duration(seconds: int) -> str:
    """Format seconds as "2d3h", "2h10m" or "45s"."""
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"
