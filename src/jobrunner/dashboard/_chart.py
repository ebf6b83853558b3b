"""The overview's chart: jobs completed and failed per minute over the last hour, as SVG
shapes worked out here and drawn by the template (no script, no chart library)."""

from __future__ import annotations

import datetime as dt

import attrs

from .._status import JobStatus

WIDTH = 720
HEIGHT = 140
AXIS = 18  # room under the bars for the time labels


@attrs.frozen(kw_only=True)
class Bar:
    x: float
    width: float
    completed: tuple[float, float]  # (y, height)
    failed: tuple[float, float]
    title: str  # "14:05 UTC: 120 completed, 3 failed"


@attrs.frozen(kw_only=True)
class Chart:
    width: int
    height: int
    peak: int
    bars: tuple[Bar, ...]
    labels: tuple[tuple[float, str, str], ...]  # (x, text, text-anchor) under the bars


def chart(
    minutes: list[tuple[float, dict[JobStatus, int]]],
    words: tuple[str, str] = ("completed", "failed"),
) -> Chart:
    """Stacked bars, completed below failed, scaled to the busiest minute; `words` name the
    two in the bars' titles (in the page's language)."""
    plot = HEIGHT - AXIS
    peak = max(
        (c.get(JobStatus.COMPLETED, 0) + c.get(JobStatus.FAILED, 0) for _, c in minutes),
        default=0,
    )
    scale = plot / peak if peak else 0.0
    step = WIDTH / max(len(minutes), 1)
    bars = []
    labels = []
    for n, (minute, counts) in enumerate(minutes):
        done, failed = counts.get(JobStatus.COMPLETED, 0), counts.get(JobStatus.FAILED, 0)
        done_h, failed_h = done * scale, failed * scale
        at = dt.datetime.fromtimestamp(minute, dt.UTC).strftime("%H:%M")
        bars.append(
            Bar(
                x=round(n * step + 1, 2),
                width=round(max(step - 2, 1), 2),
                completed=(round(plot - done_h, 2), round(done_h, 2)),
                failed=(round(plot - done_h - failed_h, 2), round(failed_h, 2)),
                title=f"{at} UTC: {done} {words[0]}, {failed} {words[1]}",
            )
        )
        if n % 15 == 0 or n == len(minutes) - 1:
            anchor = "start" if n == 0 else "end" if n == len(minutes) - 1 else "middle"
            x = 0.0 if n == 0 else WIDTH if anchor == "end" else n * step + step / 2
            labels.append((round(x, 2), at, anchor))
    return Chart(width=WIDTH, height=HEIGHT, peak=peak, bars=tuple(bars), labels=tuple(labels))
