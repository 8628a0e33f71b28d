"""A group-partition's window as an inline SVG chart, with its title in words."""

from __future__ import annotations

from collections.abc import Sequence

from exporter.core.model import Commit
from exporter.exposition.statuspage.markup import clock, count, escape

__all__ = ["window_chart"]

_CHART_W = 240
_CHART_H = 56
_PAD = 4


def window_chart(window: Sequence[Commit], index: int) -> str:
    """The window as two lines over commit time: the committed offset (solid, circles; scaled between its
    lowest and highest) and the lag at each commit (dashed, squares; scaled from 0), so that a STALL is a flat
    offset under a lag and a WARN a rising lag; the title says the same in words."""
    if not window:
        return '<span class="note">no commits</span>'
    first_ts = window[0].timestamp_ms
    span = max(c.timestamp_ms for c in window) - min(c.timestamp_ms for c in window)

    def x(i: int, commit: Commit) -> float:
        if span <= 0 or len(window) == 1:
            return _PAD + (_CHART_W - 2 * _PAD) * (i / max(1, len(window) - 1))
        return _PAD + (_CHART_W - 2 * _PAD) * (commit.timestamp_ms - first_ts) / span

    def scaled(values: Sequence[int], low: int | None = None) -> list[float]:
        low = min(values) if low is None else low
        high = max(values)
        if high == low:
            return [_CHART_H / 2 for _ in values]
        return [_PAD + (_CHART_H - 2 * _PAD) * (1 - (v - low) / (high - low)) for v in values]

    offsets = scaled([c.offset for c in window])
    xs = [x(i, c) for i, c in enumerate(window)]
    known = [(xs[i], c.lag) for i, c in enumerate(window) if c.lag is not None]
    # Lag from 0, so that its height means something; offsets between their own extremes.
    lag_ys = scaled([lag for _, lag in known], low=0) if known else []
    offset_line = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs, offsets, strict=True))
    lag_line = " ".join(f"{a:.1f},{b:.1f}" for (a, _), b in zip(known, lag_ys, strict=True))
    marks = "".join(
        f'<circle class="offset" cx="{a:.1f}" cy="{b:.1f}" r="2"/>' for a, b in zip(xs, offsets, strict=True)
    )
    marks += "".join(
        f'<rect class="lag" x="{a - 2:.1f}" y="{b - 2:.1f}" width="4" height="4"/>'
        for (a, _), b in zip(known, lag_ys, strict=True)
    )
    title = _chart_title(window)
    label_id = f"chart-{index}"
    return (
        f'<svg class="chart" width="{_CHART_W}" height="{_CHART_H}" viewBox="0 0 {_CHART_W} {_CHART_H}" '
        f'role="img" aria-labelledby="{label_id}"><title id="{label_id}">{escape(title)}</title>'
        f'<polyline class="offset" points="{offset_line}"/>'
        + (f'<polyline class="lag" points="{lag_line}"/>' if lag_line else "")
        + marks
        + "</svg>"
    )


def _chart_title(window: Sequence[Commit]) -> str:
    first, last = window[0], window[-1]
    lags = [c.lag for c in window if c.lag is not None]
    lag_words = (
        f"lag {count(lags[0])} to {count(lags[-1])} (highest {count(max(lags))})" if lags else "lag unknown"
    )
    return (
        f"{len(window)} commits from {clock(first.timestamp_ms)} to {clock(last.timestamp_ms)}: committed "
        f"offset {count(first.offset)} to {count(last.offset)}, {lag_words}"
    )
