"""`/metrics`: the clusters' exposition with lagwatch's own metrics after it, gzipped when asked.

The views are built on the event loop (lists of references to immutable statuses, which the loop owns) and
rendered and compressed in a worker thread, so health checks keep answering while a scrape of half a million
samples renders. The rendered body is kept while the views stay equal (a second Prometheus of an HA pair costs
no second render), and while /metrics is being scraped new data are rendered as soon as they appear, so that a
scrape normally finds its body ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from exporter.exposition.handle import ClusterHandle
from exporter.exposition.metrics import CONTENT_TYPE, ClusterView, RenderOptions, RenderResult, render
from exporter.gc_pause import gc_paused
from exporter.settings import Settings

__all__ = ["install"]

log = logging.getLogger(__name__)

_SLICE = 1 << 20
_PRERENDER_POLL_S = 0.5
_PRERENDER_WHILE_S = 600.0
"""Pre-rendering stops this long after the last scrape."""
# Level 1 compresses a text exposition to about 5% at several times the speed of the default level 6.
_GZIP_LEVEL = 1
_GZIP_WBITS = 31


@dataclass(slots=True)
class _Rendered:
    """The exposition of one set of views, kept while the views stay equal."""

    views: list[ClusterView]
    result: RenderResult
    gzip_prefix: bytes = b""
    """The body compressed without a final flush; with `gzip_state`, the start of every gzipped answer."""
    gzip_state: zlib._Compress | None = None


@dataclass(slots=True)
class _State:
    clusters: Mapping[str, ClusterHandle]
    options: RenderOptions
    registry: CollectorRegistry
    """lagwatch's own metrics (self_metrics), appended to every answer."""
    render_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """One render at a time: a second scrape waits for the first and finds its result."""
    rendered: _Rendered | None = None
    capped: bool = False
    last_scrape: float | None = None
    """`time.monotonic()` of the last /metrics request, which keeps the pre-rendering going."""
    gzip_wanted: bool = False
    """Whether the last scrape asked for gzip, so that pre-rendering compresses too."""


_STATE = web.AppKey("lagwatch_metrics", _State)


def install(
    app: web.Application,
    clusters: Mapping[str, ClusterHandle],
    settings: Settings,
    registry: CollectorRegistry,
) -> None:
    """Add the `/metrics` route to `app`, and the pre-rendering that runs while the application does."""
    app[_STATE] = _State(
        clusters=clusters,
        options=RenderOptions(
            granularity=settings.metrics.granularity,
            burrow_compatible="burrow" in settings.metrics.compatible_sets,
            kafka_exporter="kafka_exporter" in settings.metrics.compatible_sets,
            max_series=settings.metrics.max_series,
        ),
        registry=registry,
    )
    app.cleanup_ctx.append(_prerender)
    app.router.add_get("/metrics", _metrics)


async def _metrics(request: web.Request) -> web.StreamResponse:
    state = request.app[_STATE]
    gzip = _accepts_gzip(request.headers.get("Accept-Encoding", ""))
    state.last_scrape = time.monotonic()
    state.gzip_wanted = gzip
    async with state.render_lock:
        rendered = await _current(state, gzip)
    # The self-metrics read the sources' counters, which only the event loop writes: collect them here.
    own = generate_latest(state.registry)
    headers = {"Content-Type": CONTENT_TYPE, "Vary": "Accept-Encoding"}
    if gzip:
        headers["Content-Encoding"] = "gzip"
        return await _stream(request, headers, rendered.gzip_prefix, _gzip_tail(rendered, own))
    return await _stream(request, headers, rendered.result.body, own)


async def _current(state: _State, gzip: bool) -> _Rendered:
    """The exposition of the clusters' views as they are now: the kept one while they are unchanged, else a
    new one rendered (and compressed if asked) in a worker thread. Call with `render_lock` held."""
    views = [cluster.view() for cluster in state.clusters.values()]
    rendered = state.rendered
    if rendered is None or rendered.views != views:
        rendered = await asyncio.to_thread(_render, views, state.options, gzip)
        state.rendered = rendered
        _log_cap(state, rendered.result)
    elif gzip and rendered.gzip_state is None:
        await asyncio.to_thread(_compress, rendered)
    return rendered


def _render(views: list[ClusterView], options: RenderOptions, gzip: bool) -> _Rendered:
    with gc_paused():
        result = render(views, options)
    rendered = _Rendered(views, result)
    if gzip:
        _compress(rendered)
    return rendered


def _compress(rendered: _Rendered) -> None:
    compressor = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
    rendered.gzip_prefix = compressor.compress(rendered.result.body)
    rendered.gzip_state = compressor


def _gzip_tail(rendered: _Rendered, own: bytes) -> bytes:
    """The end of a gzip stream that starts with the kept prefix and holds this scrape's self-metrics: a
    copy of the compressor state finishes it, so the bulk is compressed once per render, not per scrape."""
    assert rendered.gzip_state is not None
    tail = rendered.gzip_state.copy()
    return tail.compress(own) + tail.flush()


async def _stream(request: web.Request, headers: Mapping[str, str], *parts: bytes) -> web.StreamResponse:
    """Send `parts` in slices: handing the transport tens of megabytes at once would copy them on the event
    loop in one go and stall every other request meanwhile."""
    response = web.StreamResponse(headers=headers)
    response.content_length = sum(len(part) for part in parts)
    await response.prepare(request)
    for part in parts:
        view = memoryview(part)
        for start in range(0, len(view), _SLICE):
            await response.write(view[start : start + _SLICE])
    await response.write_eof()
    return response


async def _prerender(app: web.Application) -> AsyncIterator[None]:
    """While /metrics is scraped, render new data as soon as they appear rather than at the next scrape: data
    change once per HEAD round, so a scrape then finds its body ready. A scrape still compares the views
    itself and renders when the data moved since, so it never serves stale data."""
    state = app[_STATE]

    async def poll() -> None:
        while True:
            await asyncio.sleep(_PRERENDER_POLL_S)
            scraped = state.last_scrape
            if (
                scraped is None
                or time.monotonic() - scraped > _PRERENDER_WHILE_S
                or state.render_lock.locked()
            ):
                continue
            try:
                async with state.render_lock:
                    await _current(state, state.gzip_wanted)
            except Exception:
                log.exception("/metrics: rendering ahead of the next scrape failed")

    task = asyncio.create_task(poll(), name="lagwatch-prerender")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _accepts_gzip(header: str) -> bool:
    for coding in header.split(","):
        name, _, parameters = coding.partition(";")
        if name.strip().lower() in ("gzip", "*"):
            quality = parameters.strip().lower()
            return not (quality.startswith("q=") and _quality(quality[2:]) == 0)
    return False


def _quality(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 1.0


def _log_cap(state: _State, result: RenderResult) -> None:
    if result.capped != state.capped:
        state.capped = result.capped
        if result.capped:
            log.warning(
                "/metrics: the max_series cap (%d) left %d series out; see lagwatch_series_dropped",
                state.options.max_series,
                result.dropped,
            )
        else:
            log.info("/metrics: every series fits under the max_series cap again")
