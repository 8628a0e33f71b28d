"""The document around every status page, and the words its pages share: escaped text, status badges,
counts, seconds, times, a group's reason and figures."""

from __future__ import annotations

import html
import time
from collections.abc import Sequence

from exporter.core.model import GroupStatus, PartitionStatus, Status
from exporter.core.reasons import group_text
from exporter.core.timelag import LagSeconds

__all__ = [
    "DASH",
    "SYMBOL",
    "badge",
    "clock",
    "count",
    "document",
    "escape",
    "group_reason",
    "max_lag",
    "max_seconds",
    "seconds_text",
    "when",
]

REFRESH_S = 5
"""How often the page's script fetches a fresh copy of what is shown."""

# Status is never told by colour alone: every badge has its symbol and its name.
SYMBOL = {
    Status.NOTFOUND: "?",
    Status.OK: "\u2714",  # heavy check mark
    Status.WARN: "\u25b2",  # triangle
    Status.ERR: "\u2716",  # heavy multiplication x
    Status.STOP: "\u25a0",  # square
    Status.STALL: "\u2016",  # double vertical line
    Status.REWIND: "\u21ba",  # anticlockwise arrow
}
DASH = "\u2013"


def document(
    title: str,
    *,
    root: str,
    version: str,
    now_ms: int,
    before_main: str,
    main: str,
    refresh: bool = True,
) -> str:
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="color-scheme" content="light dark">',
            f"<title>{escape(title)}</title>",
            f'<link rel="stylesheet" href="{root}static/page.css">',
            f'<script src="{root}static/page.js" defer></script>',
            "</head>",
            f'<body data-refresh="{REFRESH_S if refresh else 0}">',
            '<a class="skip" href="#content">Skip to the content</a>',
            '<header class="top"><h1><a href="' + (root or "./") + '">lagwatch</a></h1>'
            '<nav aria-label="lagwatch"><ul>'
            f'<li><a href="{root}metrics">Metrics</a></li>'
            f'<li><a href="{root}v3/kafka">Burrow API</a></li>'
            f'<li><a href="{root}runbooks">Runbooks</a></li>'
            f'<li><a href="{root}-/ready">Readiness</a></li>'
            "</ul></nav></header>",
            before_main,
            f'<main id="content" tabindex="-1">{main}</main>',
            f'<footer>lagwatch {escape(version)} · shown <time id="updated" datetime="{_iso(now_ms)}">'
            f"{clock(now_ms)}</time>"
            + (
                f' · updates every {REFRESH_S} s <span id="refresh-state" role="status"></span>'
                if refresh
                else ""
            )
            + "</footer>",
            "</body>",
            "</html>",
            "",
        ]
    )


def group_reason(g: GroupStatus) -> str:
    return DASH if g.reason is None else escape(group_text(g.reason))


def max_lag(p: PartitionStatus | None) -> str:
    if p is None or p.current_lag is None:
        return DASH
    return f'{count(p.current_lag)} <span class="where">({escape(p.topic)}/{p.partition})</span>'


def max_seconds(lags: Sequence[LagSeconds | None] | None) -> float | None:
    if not lags:
        return None
    known = [lag.seconds for lag in lags if lag is not None and lag.seconds is not None]
    return max(known) if known else None


def escape(text: str) -> str:
    return html.escape(text, quote=True)


def badge(status: Status) -> str:
    return (
        f'<span class="badge s-{status.name.lower()}"><span aria-hidden="true">{SYMBOL[status]}</span> '
        f"{status.name}</span>"
    )


def count(value: int) -> str:
    return f"{value:,}"


def seconds_text(value: float | None) -> str:
    if value is None:
        return DASH
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def clock(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms // 1000))


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def when(ms: int | None, now_ms: int) -> str:
    if ms is None:
        return "never"
    ago = max(0, (now_ms - ms) // 1000)
    return f'<time datetime="{_iso(ms)}">{clock(ms)}</time> ({_ago(ago)})'


def _ago(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"
