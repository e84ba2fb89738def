"""bench.svg, drawn by hand: phase times and peak RSS against tenant size, in two panels.

No plotting library: axes, ticks, polylines and a legend written as SVG elements. An axis is
logarithmic when its values span a factor of 10 or more (sizes 10,000 to 200,000 do), linear
otherwise. Cycles are plotted by their own time (the engine's report), other phases by their
wall time. Each point carries a <title> with its value, which browsers show on hover.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

Result = dict[str, Any]

WIDTH = 1000
PANEL_W = 500
PLOT_LEFT, PLOT_RIGHT = 72, 475  # within a panel
PLOT_TOP, PLOT_BOTTOM = 48, 318
LEGEND_TOP = 382
LEGEND_ROW = 18
COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
)

# (label, phase, figure): the time panel's series.
TIME_SERIES: tuple[tuple[str, str, str], ...] = (
    ("tenant generation", "generate", "wall_s"),
    ("server start-up", "serve", "wall_s"),
    ("initial cycle", "initial_cycle", "cycle_s"),
    ("cloud edits", "cloud_edits", "wall_s"),
    ("full cycle", "full_cycle", "cycle_s"),
    ("1% delta cycle", "delta_cycle", "cycle_s"),
    ("no-change delta", "no_change_cycle", "cycle_s"),
    ("exwb verify", "verify", "wall_s"),
    ("floor (ldap3 loop)", "floor", "wall_s"),
    ("full cycle, slapd", "slapd_full_cycle", "cycle_s"),
    ("floor, slapd", "slapd_floor", "wall_s"),
)
MEMORY_SERIES: tuple[tuple[str, str], ...] = (
    ("exwb serve", "serve_peak_rss_mib"),
    ("engine (largest cycle)", "engine_peak_rss_mib"),
    ("serve + engine", "servers_plus_engine_mib"),
    ("tenant generation", "generate_peak_rss_mib"),
    ("slapd", "slapd_peak_rss_mib"),
)


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    points: list[tuple[float, float]]


@dataclass(frozen=True, slots=True)
class Axis:
    low: float
    high: float
    log: bool

    @classmethod
    def fit(cls, values: Sequence[float], *, zero: bool = False) -> Axis:
        positive = [v for v in values if v > 0]
        if not positive:
            return cls(0.0, 1.0, False)
        lo, hi = min(positive), max(positive)
        if hi / lo >= 10:
            return cls(_step_below(lo), _step_above(hi), True)
        if zero:
            lo = 0.0
        if hi == lo:
            lo, hi = lo * 0.9, hi * 1.1 or 1.0
        pad = (hi - lo) * 0.05
        return cls(max(0.0, lo - pad) if not zero else 0.0, hi + pad, False)

    def position(self, value: float) -> float:
        """0..1 along the axis."""
        if self.log:
            value = max(value, self.low)
            return (math.log10(value) - math.log10(self.low)) / (
                math.log10(self.high) - math.log10(self.low)
            )
        return (value - self.low) / (self.high - self.low)

    def ticks(self) -> list[float]:
        if self.log:
            first, last = math.floor(math.log10(self.low)), math.ceil(math.log10(self.high))
            decades = last - first
            steps = (1, 2, 5) if decades <= 3 else (1,)
            return [
                m * 10.0**k
                for k in range(first, last + 1)
                for m in steps
                if self.low * 0.999 <= m * 10.0**k <= self.high * 1.001
            ]
        step = _nice_step((self.high - self.low) / 5)
        start = math.ceil(self.low / step) * step
        out, v = [], start
        while v <= self.high + step * 1e-9:
            out.append(round(v, 10))
            v += step
        return out


def _step_below(value: float) -> float:
    """The largest 1, 2 or 5 times a power of ten at or below `value`."""
    k = math.floor(math.log10(value))
    return max(m * 10.0**k for m in (1, 2, 5) if m * 10.0**k <= value * 1.000001)


def _step_above(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above `value`."""
    k = math.floor(math.log10(value))
    return min(m * 10.0**k for m in (1, 2, 5, 10) if m * 10.0**k >= value * 0.999999)


def _nice_step(raw: float) -> float:
    if raw <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * magnitude:
            return m * magnitude
    return 10 * magnitude


def _label(value: float) -> str:
    if value >= 1_000_000 and value % 1_000_000 == 0:
        return f"{value / 1_000_000:g}M"
    if value >= 1000 and value % 1000 == 0:
        return f"{value / 1000:g}k"
    if value >= 1:
        return f"{value:,.4g}"
    return f"{value:g}"


def time_series(results: list[Result]) -> list[Series]:
    out = []
    for label, phase, figure in TIME_SERIES:
        points = [
            (float(r["mailboxes"]), float(r["phases"][phase][figure]))
            for r in results
            if isinstance(r["phases"].get(phase, {}).get(figure), int | float)
        ]
        if points:
            out.append(Series(label, points))
    return out


def memory_series(results: list[Result]) -> list[Series]:
    out = []
    for label, key in MEMORY_SERIES:
        points = [
            (float(r["mailboxes"]), float(r["memory"][key]))
            for r in results
            if isinstance(r["memory"].get(key), int | float)
        ]
        if points:
            out.append(Series(label, points))
    return out


def _panel(
    panel_id: str, x0: int, title: str, y_title: str, series: list[Series], n_legend: int
) -> list[str]:
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points]
    xa, ya = Axis.fit(xs), Axis.fit(ys, zero=True)
    width, height = PLOT_RIGHT - PLOT_LEFT, PLOT_BOTTOM - PLOT_TOP

    def px(x: float) -> float:
        return x0 + PLOT_LEFT + xa.position(x) * width

    def py(y: float) -> float:
        return PLOT_BOTTOM - ya.position(y) * height

    scale = f"{'log' if xa.log else 'linear'} x, {'log' if ya.log else 'linear'} y"
    parts = [
        f'<g class="panel" id="{panel_id}">',
        f'<text class="title" x="{x0 + PLOT_LEFT + width / 2:.1f}" y="24" '
        f'text-anchor="middle">{escape(title)}</text>',
        f'<rect x="{x0 + PLOT_LEFT}" y="{PLOT_TOP}" width="{width}" height="{height}" '
        'fill="none" stroke="#444"/>',
    ]
    for t in xa.ticks():
        if not xa.low <= t <= xa.high:
            continue
        x = px(t)
        parts.append(
            f'<line x1="{x:.1f}" y1="{PLOT_TOP}" x2="{x:.1f}" y2="{PLOT_BOTTOM}" class="grid"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{PLOT_BOTTOM + 16}" text-anchor="middle">{_label(t)}</text>'
        )
    for t in ya.ticks():
        if not ya.low <= t <= ya.high:
            continue
        y = py(t)
        parts.append(
            f'<line x1="{x0 + PLOT_LEFT}" y1="{y:.1f}" x2="{x0 + PLOT_RIGHT}" y2="{y:.1f}" '
            'class="grid"/>'
        )
        parts.append(
            f'<text x="{x0 + PLOT_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_label(t)}</text>'
        )
    parts.append(
        f'<text x="{x0 + PLOT_LEFT + width / 2:.1f}" y="{PLOT_BOTTOM + 38}" '
        f'text-anchor="middle">mailboxes ({scale})</text>'
    )
    cy = (PLOT_TOP + PLOT_BOTTOM) / 2
    parts.append(
        f'<text x="{x0 + 16}" y="{cy:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 {x0 + 16} {cy:.1f})">{escape(y_title)}</text>'
    )
    for i, s in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        pts = [(px(x), py(y)) for x, y in s.points if not ya.log or y > 0]
        if len(pts) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            parts.append(
                f'<polyline class="series" points="{path}" fill="none" stroke="{colour}" '
                'stroke-width="2"/>'
            )
        for (x, y), (sx, sy) in zip(pts, s.points, strict=False):
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}">'
                f"<title>{escape(s.label)}: {sy:,.3g} at {sx:,.0f} mailboxes</title></circle>"
            )
        col, row = divmod(i, max(1, (n_legend + 1) // 2))
        lx = x0 + PLOT_LEFT + col * 205
        ly = LEGEND_TOP + row * LEGEND_ROW
        parts.append(
            f'<g class="legend-item"><line x1="{lx}" y1="{ly - 4}" x2="{lx + 22}" y2="{ly - 4}" '
            f'stroke="{colour}" stroke-width="3"/>'
            f'<text x="{lx + 28}" y="{ly}">{escape(s.label)}</text></g>'
        )
    parts.append("</g>")
    return parts


def chart_svg(results: list[Result], subtitle: str = "") -> str:
    """The whole chart as an SVG document."""
    times, memory = time_series(results), memory_series(results)
    rows = max((len(times) + 1) // 2, (len(memory) + 1) // 2, 1)
    height = LEGEND_TOP + rows * LEGEND_ROW + 28
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">',
        "<style>.grid{stroke:#ddd;stroke-width:1}.title{font-size:15px;font-weight:bold}</style>",
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        *_panel(
            "time-panel",
            0,
            "Time of each phase",
            "seconds (cycles: the cycle's own time)",
            times,
            len(times),
        ),
        *_panel("memory-panel", PANEL_W, "Peak RSS", "MiB", memory, len(memory)),
    ]
    if subtitle:
        parts.append(
            f'<text x="{WIDTH / 2:.0f}" y="{height - 8}" text-anchor="middle" fill="#555">'
            f"{escape(subtitle)}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
