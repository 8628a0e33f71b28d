"""`/metrics`: the clusters' exposition with lagwatch's own metrics after it, gzipped when asked.

The views are built on the event loop (lists of references to immutable statuses, which the loop owns) and
rendered and compressed in a worker thread, so health checks keep answering while a scrape of half a million
samples renders. The rendered body is kept while the views stay equal (a second Prometheus of an HA pair costs
no second render), and while /metrics is being scraped new data are rendered as soon as they appear, so that a
scrape normally finds its body ready. A render writes again only the blocks whose groups changed
(`blocks.BlockRenderer`): the kept blocks are the one rendered copy, kept deflated only (a tenth of a
scrape's text at 100,000 group-partitions is 100 MB), and streamed as they are to a scrape that accepts gzip,
as Prometheus' do; a scrape without gzip gets them inflated part by part as they are sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import operator
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from exporter.exposition import gzip_parts
from exporter.exposition.blocks import BlockRenderer, Exposition
from exporter.exposition.cluster_view import ClusterView
from exporter.exposition.handle import ClusterHandle
from exporter.exposition.metrics import CONTENT_TYPE, RenderOptions
from exporter.gc_pause import gc_paused
from exporter.heap_trim import trim_heap
from exporter.let_go import let_go
from exporter.settings import Settings

__all__ = ["install"]

log = logging.getLogger(__name__)

_SLICE = 1 << 20
_JOINED = 16 << 10
_PRERENDER_POLL_S = 0.5
_PRERENDER_WHILE_S = 600.0
"""Pre-rendering stops this long after the last scrape."""


@dataclass(slots=True)
class _Rendered:
    """The exposition of one set of views, kept while the views stay equal."""

    views: list[ClusterView]
    exposition: Exposition


@dataclass(slots=True)
class _State:
    clusters: Mapping[str, ClusterHandle]
    options: RenderOptions
    renderer: BlockRenderer
    registry: CollectorRegistry
    """lagwatch's own metrics (self_metrics), appended to every answer."""
    render_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """One render at a time: a second scrape waits for the first and finds its result."""
    rendered: _Rendered | None = None
    capped: bool = False
    last_scrape: float | None = None
    """`time.monotonic()` of the last /metrics request, which keeps the pre-rendering going."""
    releases: set[asyncio.Task[None]] = field(default_factory=set)
    """Replaced views being let go of in slices (`_release`)."""


_STATE = web.AppKey("lagwatch_metrics", _State)


def install(
    app: web.Application,
    clusters: Mapping[str, ClusterHandle],
    settings: Settings,
    registry: CollectorRegistry,
) -> None:
    """Add the `/metrics` route to `app`, and the pre-rendering that runs while the application does."""
    options = RenderOptions(
        granularity=settings.metrics.granularity,
        burrow_compatible="burrow" in settings.metrics.compatible_sets,
        kafka_exporter="kafka_exporter" in settings.metrics.compatible_sets,
        max_series=settings.metrics.max_series,
    )
    app[_STATE] = _State(
        clusters=clusters, options=options, renderer=BlockRenderer(options), registry=registry
    )
    app.cleanup_ctx.append(_prerender)
    app.router.add_get("/metrics", _metrics)


async def _metrics(request: web.Request) -> web.StreamResponse:
    state = request.app[_STATE]
    gzip = _accepts_gzip(request.headers.get("Accept-Encoding", ""))
    state.last_scrape = time.monotonic()
    async with state.render_lock:
        rendered = await _current(state)
    # The self-metrics read the sources' counters, which only the event loop writes: collect them here.
    own = generate_latest(state.registry)
    headers = {"Content-Type": CONTENT_TYPE, "Vary": "Accept-Encoding"}
    exposition = rendered.exposition
    if gzip:
        headers["Content-Encoding"] = "gzip"
        tail = gzip_parts.finish(exposition.crc, exposition.size, own)
        parts = [gzip_parts.HEADER, *(p.deflated for p in exposition.parts), tail]
        return await _stream(request, headers, sum(len(p) for p in parts), parts)
    text = itertools.chain(gzip_parts.inflated(exposition.parts, _SLICE), [own])
    return await _stream(request, headers, exposition.size + len(own), text)


async def _current(state: _State, *, ahead: bool = False) -> _Rendered:
    """The exposition of the clusters' views as they are now: the kept one while they are unchanged, else a
    new one rendered in a worker thread. Rendering `ahead` of a scrape, the clock alone (the brokers' HEAD
    ages) is no reason to render: the scrape renders those figures itself, which costs little when no group
    changed, and rendering for them at every poll cost a render every half second. Call with `render_lock`
    held."""
    views = [cluster.view() for cluster in state.clusters.values()]
    rendered = state.rendered
    if rendered is not None and ahead and _unchanged(_timeless(rendered.views), _timeless(views)):
        return rendered
    if rendered is None or not _unchanged(rendered.views, views):
        rendered = await asyncio.to_thread(_render, state.renderer, views)
        if state.rendered is not None:
            _release(state, state.rendered.views)
        state.rendered = rendered
        _log_cap(state, rendered.exposition)
    return rendered


def _timeless(views: list[ClusterView]) -> list[ClusterView]:
    """The views without what changes with the clock alone."""
    return [
        dataclasses.replace(
            view, brokers=[dataclasses.replace(b, head_age_seconds=None) for b in view.brokers]
        )
        for view in views
    ]


def _unchanged(old: list[ClusterView], new: list[ClusterView]) -> bool:
    """Whether `new` shows what `old` showed. The parts that come from the published round by the hundred
    thousand (statuses, lag seconds, headroom) count as unchanged only when they hold the same objects: a new
    round whose statuses equal the old ones renders again, in the worker thread, whereas comparing a million
    partition statuses field by field held the event loop for seconds. The rest (topics, health, brokers) is
    compared by value."""
    if len(old) != len(new):
        return False
    for before, after in zip(old, new, strict=True):
        if not (
            _same_items(before.groups, after.groups)
            and _same_values(before.lag_seconds, after.lag_seconds)
            and _same_values(before.headroom, after.headroom)
            and all(getattr(before, name) == getattr(after, name) for name in _BY_VALUE)
        ):
            return False
    return True


_BY_VALUE = tuple(
    f.name for f in dataclasses.fields(ClusterView) if f.name not in ("groups", "lag_seconds", "headroom")
)


def _same_items(was: Sequence[object], now: Sequence[object]) -> bool:
    return was is now or (len(was) == len(now) and all(map(operator.is_, was, now)))


def _same_values(was: Mapping[str, object], now: Mapping[str, object]) -> bool:
    return was is now or (len(was) == len(now) and all(now.get(key) is value for key, value in was.items()))


def _release(state: _State, views: list[ClusterView]) -> None:
    """Let go of replaced views a slice at a time (`let_go`): they are usually the last holders of an older
    round's statuses and figures, and dropping them at once freed a million objects in one go (0.5-0.6 s of
    the event loop at 1,000,000 group-partitions)."""
    held: list[Iterable[object]] = []
    for view in views:
        held += [view.groups, view.lag_seconds.values(), view.headroom.values()]
    task = let_go(*held)
    if task is not None:
        state.releases.add(task)
        task.add_done_callback(state.releases.discard)


def _render(renderer: BlockRenderer, views: list[ClusterView]) -> _Rendered:
    with gc_paused():
        rendered = _Rendered(views, renderer.render(views))
    # The blocks this render replaced were freed in this thread's malloc arena: give them back.
    trim_heap()
    return rendered


async def _stream(
    request: web.Request, headers: Mapping[str, str], size: int, parts: Iterable[bytes]
) -> web.StreamResponse:
    response = web.StreamResponse(headers=headers)
    response.content_length = size
    await response.prepare(request)
    for piece in _slices(parts):
        await response.write(piece)
    await response.write_eof()
    return response


def _slices(parts: Iterable[bytes]) -> Iterator[bytes | memoryview]:
    """The parts as pieces for the transport: a part of `_JOINED` bytes or more as it is (cut in `_SLICE`
    slices: handing the transport tens of megabytes at once would copy them on the event loop in one go and
    stall every other request meanwhile), runs of smaller ones joined (thousands of tiny writes cost more
    than joining them; joining big ones costs a fresh copy of the body)."""
    pending: list[bytes] = []
    size = 0
    for part in parts:
        if len(part) < _JOINED:
            pending.append(part)
            size += len(part)
            if size < _SLICE:
                continue
        if pending:
            yield b"".join(pending)
            pending, size = [], 0
        if len(part) >= _JOINED:
            view = memoryview(part)
            yield from (view[start : start + _SLICE] for start in range(0, len(view), _SLICE))
    if pending:
        yield b"".join(pending)


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
                    await _current(state, ahead=True)
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


def _log_cap(state: _State, result: Exposition) -> None:
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
