"""`/metrics`: the clusters' exposition with lagwatch's own metrics after it, gzipped when asked.

The views are built on the event loop (lists of references to immutable statuses, which the loop owns) and
rendered and compressed in a worker thread, so health checks keep answering while a scrape of half a million
samples renders. A render writes again only the blocks whose groups changed (`blocks.BlockRenderer`): the
kept blocks are the one rendered copy, kept deflated only (a tenth of a scrape's text at 100,000
group-partitions is 100 MB), and streamed as they are to a scrape that accepts gzip, as Prometheus' do; a
scrape without gzip gets them inflated part by part as they are sent.

A scrape never waits for a render, except the first one and the first after a pause (below). While /metrics is
scraped, each published round is rendered as soon as it is published, and a scrape is answered at once with
the data families of the last complete render: during a render (0.3-0.6 s of CPU at 100,000 group-partitions),
those of the round before. The health families (cluster up, brokers' HEAD ages, the cap's gauges) are written
by every scrape from the clusters as they are then, and `lagwatch_evaluation_timestamp_seconds` says which
round the data families show. The rendered body is kept while the data stay the same, so the second Prometheus
of an HA pair costs no second render. Rendering stops `_PRERENDER_WHILE_S` after the last scrape; the first
scrape after that, if the data moved meanwhile, waits for their render rather than serve a body that old.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from exporter.core.model import same_objects
from exporter.exposition import gzip_parts, metrics
from exporter.exposition.blocks import BlockRenderer, Exposition
from exporter.exposition.cluster_view import ClusterView
from exporter.exposition.handle import ClusterHandle
from exporter.exposition.metrics import CONTENT_TYPE, RenderOptions
from exporter.gc_pause import gc_paused
from exporter.heap_trim import trim_heap
from exporter.let_go import SLICE_S, let_go
from exporter.settings import Settings

__all__ = ["install"]

log = logging.getLogger(__name__)

_SLICE = 1 << 20
_JOINED = 16 << 10
_PRERENDER_WHILE_S = 600.0
"""Rendering ahead of scrapes stops this long after the last scrape."""


@dataclass(slots=True)
class _Rendered:
    """The data families of one set of views, kept while their data stay the same."""

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
    """One render at a time: a scrape that must wait for a render waits for the one running, then renders
    only if the data moved since."""
    wanted: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the data may have moved: a cluster published statuses, or a scrape found the data changed."""
    rendered: _Rendered | None = None
    """The last complete render, which scrapes are answered from."""
    capped: bool = False
    last_scrape: float | None = None
    """`time.monotonic()` of the last /metrics request, which keeps the rendering ahead going."""


_STATE = web.AppKey("lagwatch_metrics", _State)


def install(
    app: web.Application,
    clusters: Mapping[str, ClusterHandle],
    settings: Settings,
    registry: CollectorRegistry,
) -> None:
    """Add the `/metrics` route to `app`, and the rendering ahead of scrapes that runs while the application
    does."""
    options = RenderOptions(
        granularity=settings.metrics.granularity,
        burrow_compatible="burrow" in settings.metrics.compatible_sets,
        kafka_exporter="kafka_exporter" in settings.metrics.compatible_sets,
        max_series=settings.metrics.max_series,
    )
    state = _State(clusters=clusters, options=options, renderer=BlockRenderer(options), registry=registry)
    app[_STATE] = state
    for cluster in clusters.values():
        cluster.on_published(state.wanted.set)
    app.cleanup_ctx.append(_prerender)
    app.router.add_get("/metrics", _metrics)


async def _metrics(request: web.Request) -> web.StreamResponse:
    state = request.app[_STATE]
    gzip = _accepts_gzip(request.headers.get("Accept-Encoding", ""))
    now = time.monotonic()
    followed = _followed(state, now)
    state.last_scrape = now
    views = [cluster.view() for cluster in state.clusters.values()]
    rendered = state.rendered
    if rendered is None or (not followed and not _unchanged(rendered.views, views)):
        # Nothing rendered yet, or the renders stopped following the data for want of scrapes: the body kept
        # may be any number of rounds old, so this scrape waits for the data's render.
        async with state.render_lock:
            rendered = await _current(state)
        views = [cluster.view() for cluster in state.clusters.values()]
    elif not _unchanged(rendered.views, views):
        # Being rendered (a published round), or moved without a round (HEAD offsets between rounds, a
        # group deleted): served as last rendered, rendered now for the next scrape.
        state.wanted.set()
    exposition = rendered.exposition
    compat = state.options.compat
    health = metrics.health(views, exposition.series, exposition.dropped, compat, shown=rendered.views)
    # The self-metrics read the sources' counters, which only the event loop writes: collect them here.
    tail = health + generate_latest(state.registry)
    headers = {"Content-Type": CONTENT_TYPE, "Vary": "Accept-Encoding"}
    if gzip:
        headers["Content-Encoding"] = "gzip"
        end = gzip_parts.finish(exposition.crc, exposition.size, tail)
        size = len(gzip_parts.HEADER) + exposition.deflated + len(end)
        deflated = itertools.chain([gzip_parts.HEADER], (p.deflated for p in exposition.parts), [end])
        return await _stream(request, headers, size, deflated)
    text = itertools.chain(gzip_parts.inflated(exposition.parts, _SLICE), [tail])
    return await _stream(request, headers, exposition.size + len(tail), text)


def _followed(state: _State, now: float) -> bool:
    """Whether the renders have followed the data until `now`: /metrics was scraped within
    `_PRERENDER_WHILE_S`, so every round published since was rendered (or is being)."""
    return state.last_scrape is not None and now - state.last_scrape <= _PRERENDER_WHILE_S


async def _current(state: _State) -> _Rendered:
    """The data families of the clusters' views as they are now: the kept ones while their data are
    unchanged, else new ones rendered in a worker thread. Call with `render_lock` held."""
    views = [cluster.view() for cluster in state.clusters.values()]
    rendered = state.rendered
    if rendered is None or not _unchanged(rendered.views, views):
        rendered = await asyncio.to_thread(_render, state.renderer, views)
        if state.rendered is not None:
            _release(state.rendered.views)
        state.rendered = rendered
        _log_cap(state, rendered.exposition)
    return rendered


def _unchanged(old: list[ClusterView], new: list[ClusterView]) -> bool:
    """Whether `new` holds the data `old` was rendered from. The parts that come from the published round by
    the hundred thousand (statuses, lag seconds, headroom) count as unchanged only when they hold the same
    objects: a new round whose statuses equal the old ones renders again, in the worker thread, whereas
    comparing a million partition statuses field by field held the event loop for seconds. The rest
    (topics, the round's time) is compared by value; what only the health families read, which every scrape
    writes itself, is not compared."""
    if len(old) != len(new):
        return False
    for before, after in zip(old, new, strict=True):
        if not (
            same_objects(before.groups, after.groups)
            and _same_values(before.lag_seconds, after.lag_seconds)
            and _same_values(before.headroom, after.headroom)
            and all(getattr(before, name) == getattr(after, name) for name in _BY_VALUE)
        ):
            return False
    return True


_BY_IDENTITY = ("groups", "lag_seconds", "headroom")
_AT_SCRAPE = ("up", "caught_up", "head_refresh_ms", "since_ms", "last_error", "evaluation_seconds", "brokers")
"""What only the health families (and the status page) read of a view."""
_BY_VALUE = tuple(f.name for f in dataclasses.fields(ClusterView) if f.name not in _BY_IDENTITY + _AT_SCRAPE)


def _same_values(was: Mapping[str, object], now: Mapping[str, object]) -> bool:
    return was is now or (len(was) == len(now) and all(now.get(key) is value for key, value in was.items()))


def _release(views: list[ClusterView]) -> asyncio.Task[None] | None:
    """Let go of replaced views a slice at a time (`let_go`): they are usually the last holders of an older
    round's statuses and figures, and dropping them at once freed a million objects in one go (0.5-0.6 s of
    the event loop at 1,000,000 group-partitions)."""
    held: list[Iterable[object]] = []
    for view in views:
        held += [view.groups, view.lag_seconds.values(), view.headroom.values()]
    return let_go(*held)


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
    turn = time.thread_time()
    for piece in _slices(parts):
        await response.write(piece)
        # The loop's turn every `SLICE_S` of this thread's CPU, whether the transport pushed back or not: a
        # client that reads as fast as it is sent never makes `write` wait, and the whole body, its parts
        # joined (or inflated) as they are sent, went out in one callback (at 1,000,000 group-partitions a
        # 6 MiB gzip scrape held the loop 101 ms). By CPU time rather than after every piece or by the wall
        # clock: every send lets a render in the worker thread take the GIL, which moves the wall clock, and
        # every turn waits up to the switch interval (5 ms) to get the GIL back (the slowest scrapes doubled).
        if time.thread_time() - turn >= SLICE_S:
            await asyncio.sleep(0)
            turn = time.thread_time()
    await response.write_eof()
    return response


def _slices(parts: Iterable[bytes]) -> Iterator[bytes | memoryview]:
    """The parts as pieces for the transport, taken from `parts` as they are asked for (never a list of the
    whole body's parts): a part of `_JOINED` bytes or more as it is (cut in `_SLICE` slices: handing the
    transport tens of megabytes at once would copy them on the event loop in one go and stall every other
    request meanwhile), runs of smaller ones joined up to `_SLICE` (thousands of tiny writes cost more than
    joining them; joining big ones costs a fresh copy of the body)."""
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
    """While /metrics is scraped, render the data as soon as they move (a round published, or a scrape found
    them changed) rather than at the next scrape, which is answered meanwhile from the last render."""
    state = app[_STATE]

    async def follow() -> None:
        while True:
            await state.wanted.wait()
            state.wanted.clear()
            if not _followed(state, time.monotonic()):
                continue
            try:
                async with state.render_lock:
                    await _current(state)
            except Exception:
                log.exception("/metrics: rendering ahead of the next scrape failed")

    task = asyncio.create_task(follow(), name="lagwatch-prerender")
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
