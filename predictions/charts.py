"""Charts of a patient's results over time, as geometry for an inline SVG template.

Drawn on the server (no script, no library, nothing from a CDN) and styled only by
classes from our stylesheet, so the pages keep their Content-Security-Policy (no
inline style). Colour is never the only signal: each risk level has its own marker
shape (circle, square, triangle) named in the legend, each point carries its value as
text when there are few enough to read, and the page lists the same values in a table.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

# Drawn for a phone (the SVG scales to its box; text stays readable at 360 px).
WIDTH = 360
HEIGHT = 220
LEFT, RIGHT, TOP, BOTTOM = 38, 20, 20, 30
# Values are written beside the points up to this many; past it they would overlap
# (the table below the chart still lists every value).
MAX_VALUE_LABELS = 12
MARKER_SIZE = 6.0

# The same shapes as the pages' risk badges (static/css/site.css: .risk-icon).
SHAPES = {"low": "circle", "medium": "diamond", "high": "triangle"}


@dataclass(frozen=True)
class Sample:
    when: dt.datetime
    value: float
    level: str = ""
    level_label: str = ""


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    value_text: str
    when: dt.datetime
    level: str
    level_label: str
    shape: str
    marker: str  # the SVG path of its marker
    text_y: float  # where its value is written, above the marker
    text_x: float
    text_anchor: str  # "middle", or "start"/"end" near an edge (clear of the axis labels)


@dataclass(frozen=True)
class Tick:
    position: float
    text: str


@dataclass(frozen=True)
class XTick:
    position: float
    when: dt.datetime


@dataclass(frozen=True)
class Chart:
    points: list[Point]
    axis_x: int  # where the value axis' labels end (right-aligned)
    axis_y: int  # the baseline of the time axis' labels
    line: str  # polyline "x,y x,y ..."
    y_ticks: list[Tick]
    x_ticks: list[XTick]
    show_values: bool
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_edge: int = WIDTH - RIGHT
    top: int = TOP
    bottom_edge: int = HEIGHT - BOTTOM


def marker_path(shape: str, x: float, y: float, size: float = MARKER_SIZE) -> str:
    """An SVG path for a marker centred on (x, y)."""
    if shape == "diamond":
        s = size * 1.15
        return f"M{x:.1f},{y - s:.1f}L{x + s:.1f},{y:.1f}L{x:.1f},{y + s:.1f}L{x - s:.1f},{y:.1f}z"
    if shape == "triangle":
        s = size * 1.2
        h = s * math.sqrt(3) / 2
        return f"M{x:.1f},{y - s:.1f}L{x + h:.1f},{y + s / 2:.1f}L{x - h:.1f},{y + s / 2:.1f}z"
    r = size
    arc = f"a{r:.1f},{r:.1f} 0 1,0"
    return f"M{x - r:.1f},{y:.1f}{arc} {2 * r:.1f},0{arc} {-2 * r:.1f},0z"


def _value_text_x(x: float) -> tuple[float, str]:
    """Where a point's value is written: centred, or pushed inwards near an edge so it
    clears the value axis' labels and the right border."""
    if x < LEFT + 16:
        return round(x + 4, 1), "start"
    if x > WIDTH - RIGHT - 16:
        return round(x - 4, 1), "end"
    return round(x, 1), "middle"


def chart_build(
    *,
    samples: Sequence[Sample],
    low: float,
    high: float,
    ticks: Sequence[float],
    decimals: int,
) -> Chart | None:
    """Lay out `samples` (any order) on a time axis and a value axis from low to high.

    None when there is nothing to draw.
    """
    samples = sorted(samples, key=lambda s: s.when)
    if not samples:
        return None
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    t0, t1 = samples[0].when, samples[-1].when
    span = (t1 - t0).total_seconds()

    def x_of(when: dt.datetime) -> float:
        if span <= 0:
            return LEFT + plot_w / 2
        return LEFT + plot_w * (when - t0).total_seconds() / span

    def y_of(value: float) -> float:
        clamped = min(max(value, low), high)
        return TOP + plot_h * (1 - (clamped - low) / (high - low))

    points = []
    for s in samples:
        x, y = x_of(s.when), y_of(s.value)
        shape = SHAPES.get(s.level, "circle")
        text_x, anchor = _value_text_x(x)
        points.append(
            Point(
                x=round(x, 1),
                y=round(y, 1),
                value_text=f"{s.value:.{decimals}f}",
                when=s.when,
                level=s.level,
                level_label=s.level_label,
                shape=shape,
                marker=marker_path(shape, x, y),
                text_x=text_x,
                text_anchor=anchor,
                # Above the marker, or below it when the marker is at the top.
                text_y=round(y - 1.8 * MARKER_SIZE, 1)
                if y > TOP + 2 * MARKER_SIZE
                else round(y + 3.2 * MARKER_SIZE, 1),
            )
        )
    x_ticks = [XTick(points[0].x, t0)]
    if span > 0:
        x_ticks.append(XTick(points[-1].x, t1))
    return Chart(
        points=points,
        axis_x=LEFT - 5,
        axis_y=HEIGHT - 9,
        line=" ".join(f"{p.x},{p.y}" for p in points),
        y_ticks=[Tick(round(y_of(v), 1), f"{v:.{decimals}f}") for v in ticks],
        x_ticks=x_ticks,
        show_values=len(points) <= MAX_VALUE_LABELS,
    )


def score_chart(samples: Sequence[Sample]) -> Chart | None:
    return chart_build(
        samples=samples, low=0.0, high=1.0, ticks=(0.0, 0.25, 0.5, 0.75, 1.0), decimals=2
    )


def hb_chart(samples: Sequence[Sample]) -> Chart | None:
    """Haemoglobin estimates in g/dL; the axis covers what children's values span."""
    if not samples:
        return None
    low = min(4.0, math.floor(min(s.value for s in samples)))
    high = max(16.0, math.ceil(max(s.value for s in samples)))
    step = 4.0
    ticks = [low + step * i for i in range(int((high - low) // step) + 1)]
    return chart_build(samples=samples, low=low, high=high, ticks=ticks, decimals=1)
