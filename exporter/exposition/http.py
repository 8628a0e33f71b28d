"""lagwatch's HTTP server: /metrics, Burrow's v3 API and health endpoints, with TLS and basic auth from a
Prometheus web configuration file.

Every request reads memory only and never waits on Kafka. /metrics builds its views on the event loop (lists
of references to immutable statuses, which the loop owns) and renders and compresses them in a worker thread,
so health checks keep answering while a scrape of half a million samples renders. The rendered body is kept
while the views stay equal (a second Prometheus of an HA pair costs no second render), and while /metrics is
being scraped new data are rendered as soon as they appear, so that a scrape normally finds its body ready.

Burrow's paths, status codes and bodies (built by burrow_json) are copied exactly; docs/http-api.md lists the
deliberate differences.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.core.decoder import RECORD_KINDS
from exporter.core.evaluator import evaluate_group
from exporter.core.model import ClusterState, GroupStatus, Status
from exporter.core.retention import Headroom
from exporter.core.storage import DROP_REASONS, Storage
from exporter.exposition import burrow_json, pages, runbooks
from exporter.exposition.guard import (
    ConnectionGuard,
    GuardCounters,
    PasswordChecker,
    Verdict,
    bearer_matches,
    body_deadline,
    request_error_logger,
)
from exporter.exposition.metrics import CONTENT_TYPE, ClusterView, RenderOptions, RenderResult, render
from exporter.exposition.webconfig import WebConfig, load_web_config, san_allowed, server_ssl_context
from exporter.gc_pause import gc_paused
from exporter.settings import ClusterSettings, Settings
from exporter.token_bucket import TokenBucket

__all__ = ["ClusterHandle", "HttpServer", "ProgressHandle", "build_app"]

log = logging.getLogger(__name__)

_SHUTDOWN_TIMEOUT_S = 5.0
_BACKLOG = 128
_MAX_LINE = 1 << 17
"""Longest request line: a group id Kafka accepts (up to 32,767 bytes) fits percent-encoded."""
_SLICE = 1 << 20
_PRERENDER_POLL_S = 0.5
_PRERENDER_WHILE_S = 600.0
"""Pre-rendering stops this long after the last scrape."""
# Level 1 compresses a text exposition to about 5% at several times the speed of the default level 6.
_GZIP_LEVEL = 1
_GZIP_WBITS = 31
_JSON = "application/json"
_TEXT = "text/plain"
_TOKEN_METHODS = frozenset({"DELETE", "POST"})
"""The methods of the requests that change lagwatch; they authenticate with the admin token."""
_DEFAULT_MODULE = "default"
"""The name of lagwatch's one storage and evaluator module in `/v3/config`, Burrow's usual name."""
# Module names of `/v3/config/(coordinator)` that are not the clusters': lagwatch has no notifier (it alerts
# through Prometheus and Alertmanager).
_FIXED_MODULES: Mapping[str, tuple[str, ...]] = {
    "storage": (_DEFAULT_MODULE,),
    "evaluator": (_DEFAULT_MODULE,),
    "notifier": (),
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ProgressHandle(Protocol):
    """What the committed-offsets source of a cluster has read (the app's `SourceProgress`)."""

    @property
    def records(self) -> Mapping[str, int]: ...

    @property
    def decode_errors(self) -> Mapping[str, int]: ...

    @property
    def skipped_types(self) -> Mapping[int, int]: ...


class ClusterHandle(Protocol):
    """One Kafka cluster as the server reads it, on the event loop; `app.ClusterRuntime` provides it."""

    @property
    def name(self) -> str: ...

    @property
    def settings(self) -> ClusterSettings: ...

    @property
    def storage(self) -> Storage: ...

    @property
    def ready(self) -> bool:
        """True once the committed offsets were replayed, HEAD offsets fetched and every group evaluated."""
        ...

    def state(self) -> ClusterState:
        """Readiness, reachability and the age of the statuses."""
        ...

    @property
    def progress(self) -> ProgressHandle: ...

    @property
    def exact_read_counts(self) -> tuple[int, int, int] | None:
        """Exact reads for lag in seconds: done, failed, waiting; None when they are off."""
        ...

    def statuses(self) -> Mapping[str, GroupStatus]:
        """The cached evaluation of every group, by name."""
        ...

    def view(self) -> ClusterView: ...

    def headroom(self) -> Mapping[str, Sequence[Headroom | None]]:
        """Retention headroom by group, one entry per partition of the group's current status; a group whose
        status changed since the figures were computed is missing."""
        ...

    def delete_group(self, group: str, topic: str | None = None) -> bool: ...


class HttpServer:
    """The aiohttp server on `settings.http.listen`; `start()` returns once it listens."""

    def __init__(self, clusters: Mapping[str, ClusterHandle], settings: Settings) -> None:
        self._clusters = clusters
        self._settings = settings
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self._tls = False

    @property
    def port(self) -> int:
        """The bound port: the configured one, or the one the system chose for port 0."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the HTTP server is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        """Base URL of the server on the loopback interface (tests, benchmarks, `lagwatch status`)."""
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Read the web configuration (raising WebConfigError, a ConfigError, when invalid) and listen."""
        http = self._settings.http
        web_config = load_web_config(http.web_config_file)
        ssl_context = None if web_config.tls is None else server_ssl_context(web_config.tls)
        self._tls = ssl_context is not None
        app = build_app(self._clusters, self._settings, web_config)
        counters = app[_GUARD].counters
        runner = web.AppRunner(
            app,
            access_log=None,
            shutdown_timeout=_SHUTDOWN_TIMEOUT_S,
            keepalive_timeout=http.idle_timeout,
            logger=request_error_logger(counters),
            max_line_size=_MAX_LINE,
        )
        await runner.setup()
        assert runner.server is not None
        guard = ConnectionGuard(http.max_connections, http.header_timeout, counters)
        try:
            # Not aiohttp's TCPSite: the guard wraps the protocol factory to cap and time the connections.
            self._server = await asyncio.get_running_loop().create_server(
                guard.protocol_factory(runner.server),
                http.host or None,
                http.port,
                ssl=ssl_context,
                ssl_handshake_timeout=http.header_timeout if ssl_context else None,
                backlog=_BACKLOG,
            )
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        log.info(
            "HTTP server on %s (%s%s)",
            http.listen,
            "TLS" if ssl_context else "plain HTTP",
            ", basic auth" if web_config.users else "",
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def build_app(
    clusters: Mapping[str, ClusterHandle], settings: Settings, web_config: WebConfig | None = None
) -> web.Application:
    """The aiohttp application: routes, the Burrow 404, and the guards of the web configuration."""
    web_config = web_config or WebConfig()
    counters = GuardCounters.new()
    app = web.Application(
        middlewares=[_guard, body_deadline(settings.http.read_timeout, counters), _burrow_not_found]
    )
    token = settings.http.admin_token.get_secret_value()
    app[_STATE] = _State(
        clusters=clusters,
        options=RenderOptions(
            granularity=settings.metrics.granularity,
            burrow_compatible="burrow" in settings.metrics.compatible_sets,
            kafka_exporter="kafka_exporter" in settings.metrics.compatible_sets,
            max_series=settings.metrics.max_series,
        ),
        hostname=socket.gethostname(),
        admin_token=token,
        registry=_self_registry(clusters, counters),
        settings=settings,
        tls=web_config.tls is not None,
    )
    limit = web_config.rate_limit
    app[_GUARD] = _Guard(
        checker=PasswordChecker(web_config.users, counters) if web_config.users else None,
        allowed_sans=() if web_config.tls is None else web_config.tls.client_allowed_sans,
        limiter=None if limit is None else TokenBucket(1 / limit.interval_s, limit.burst),
        admin_token=bool(token),
        counters=counters,
    )
    app.cleanup_ctx.append(_prerender)
    if web_config.headers:
        headers = dict(web_config.headers)

        async def add_headers(_: web.Request, response: web.StreamResponse) -> None:
            response.headers.update(headers)

        app.on_response_prepare.append(add_headers)
    # Segments match anything but a slash (aiohttp decodes them after matching, so %2F is part of a name):
    # every group id Kafka accepts, braces, quotes, unicode and the empty one included, has its URL.
    app.add_routes(
        [
            *pages.routes(clusters),
            web.get("/metrics", _metrics),
            web.get("/-/healthy", _healthy),
            web.get("/-/ready", _ready),
            web.get("/runbooks", _runbooks),
            web.get("/burrow/admin", _burrow_admin),
            web.get("/burrow/admin/ready", _burrow_ready),
            web.get("/v3/kafka", _cluster_list),
            web.get("/v3/kafka/{cluster:[^/]+}", _cluster_detail),
            web.get("/v3/config/cluster/{cluster:[^/]+}", _cluster_detail),
            web.get("/v3/kafka/{cluster:[^/]+}/topic", _topic_list),
            web.get("/v3/kafka/{cluster:[^/]+}/topic/{topic:[^/]+}", _topic_offsets),
            web.get("/v3/kafka/{cluster:[^/]+}/topic/{topic:[^/]+}/consumers", _topic_consumers),
            web.get("/v3/kafka/{cluster:[^/]+}/consumer", _consumer_list),
            web.get("/v3/kafka/{cluster:[^/]+}/consumer/{group:[^/]*}", _consumer_detail),
            web.get("/v3/kafka/{cluster:[^/]+}/consumer/{group:[^/]*}/status", _consumer_status),
            web.get("/v3/kafka/{cluster:[^/]+}/consumer/{group:[^/]*}/lag", _consumer_lag),
            web.delete("/v3/kafka/{cluster:[^/]+}/consumer/{group:[^/]*}", _with_admin_token(_delete_group)),
            web.delete(
                "/v3/kafka/{cluster:[^/]+}/consumer/{group:[^/]*}/topic/{topic:[^/]+}",
                _with_admin_token(_delete_group),
            ),
            web.get("/v3/admin/loglevel", _log_level),
            web.post("/v3/admin/loglevel", _with_admin_token(_set_log_level)),
            web.get("/v3/config", _config_main),
            web.get("/v3/config/{coordinator:storage|evaluator|cluster|consumer|notifier}", _module_list),
            web.get("/v3/config/storage/{name}", _storage_module),
            web.get("/v3/config/evaluator/{name}", _evaluator_module),
            web.get("/v3/config/consumer/{name}", _consumer_module),
            web.get("/v3/config/notifier/{name}", _notifier_module),
        ]
    )
    return app


# ------------------------------------------------------------------------------------------------------------
# Application state


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
    hostname: str
    admin_token: str
    registry: CollectorRegistry
    settings: Settings
    tls: bool
    """Whether the web configuration serves TLS."""
    render_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """One render at a time: a second scrape waits for the first and finds its result."""
    rendered: _Rendered | None = None
    capped: bool = False
    last_scrape: float | None = None
    """`time.monotonic()` of the last /metrics request, which keeps the pre-rendering going."""
    gzip_wanted: bool = False
    """Whether the last scrape asked for gzip, so that pre-rendering compresses too."""


@dataclass(slots=True)
class _Guard:
    checker: PasswordChecker | None
    """None without basic auth."""
    allowed_sans: tuple[str, ...]
    limiter: TokenBucket | None
    admin_token: bool
    """When set, DELETE and POST requests authenticate with the admin bearer token instead of basic auth."""
    counters: GuardCounters


_STATE = web.AppKey("lagwatch_state", _State)
_GUARD = web.AppKey("lagwatch_guard", _Guard)


# ------------------------------------------------------------------------------------------------------------
# Middlewares


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The web configuration's rate limit, client certificate SANs and basic auth, in the toolkit's order."""
    guard = request.app[_GUARD]
    if guard.limiter is not None and not guard.limiter.allow():
        return web.Response(status=429, text="Too Many Requests\n")
    if guard.allowed_sans:
        peercert = None if request.transport is None else request.transport.get_extra_info("peercert")
        if not san_allowed(peercert, guard.allowed_sans):
            return web.Response(status=403, text="Forbidden: client certificate SAN not allowed\n")
    by_token = request.method in _TOKEN_METHODS and guard.admin_token
    if guard.checker is not None and not by_token:
        verdict = await guard.checker.check(request.headers.get("Authorization"), request.remote or "")
        if verdict is Verdict.LIMITED:
            return web.Response(status=429, text="Too Many Requests\n", headers={"Retry-After": "10"})
        if verdict is Verdict.DENIED:
            return web.Response(status=401, text="Unauthorized\n", headers={"WWW-Authenticate": "Basic"})
    return await handler(request)


@web.middleware
async def _burrow_not_found(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Burrow's answer to a path it does not know (method mismatches keep aiohttp's 405)."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return _unknown_path()


def _unknown_path() -> web.Response:
    return _json(burrow_json.not_found(), status=404)


# ------------------------------------------------------------------------------------------------------------
# /metrics


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


class _SelfCollector(Collector):
    """lagwatch's own counters, built fresh from the sources' progress on every scrape."""

    def __init__(self, clusters: Mapping[str, ClusterHandle]) -> None:
        self._clusters = clusters

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        families = self._families()
        build, records, errors, skipped, reads, read_failures, reads_pending, stored, dropped = families
        build.add_metric([__version__], 1)
        for name, cluster in self._clusters.items():
            stats = cluster.storage.stats()
            stored.add_metric([name], stats.commits_stored)
            for reason in DROP_REASONS:
                dropped.add_metric([name, reason], stats.commits_dropped.get(reason, 0))
            counts = cluster.exact_read_counts
            if counts is not None:
                reads.add_metric([name], counts[0])
                read_failures.add_metric([name], counts[1])
                reads_pending.add_metric([name], counts[2])
            progress = cluster.progress
            for kind in sorted(set(RECORD_KINDS).union(progress.records)):
                records.add_metric([name, kind], progress.records.get(kind, 0))
            for key_type, count in sorted(progress.decode_errors.items()):
                errors.add_metric([name, key_type], count)
            for record_type, count in sorted(progress.skipped_types.items()):
                skipped.add_metric([name, str(record_type)], count)
        return build, records, errors, skipped, reads, read_failures, reads_pending, stored, dropped

    @staticmethod
    def _families() -> tuple[
        GaugeMetricFamily,
        CounterMetricFamily,
        CounterMetricFamily,
        CounterMetricFamily,
        CounterMetricFamily,
        CounterMetricFamily,
        GaugeMetricFamily,
        CounterMetricFamily,
        CounterMetricFamily,
    ]:
        return (
            GaugeMetricFamily("lagwatch_build_info", "lagwatch's version; always 1.", labels=["version"]),
            CounterMetricFamily(
                "lagwatch_offsets_records",
                "Records read from the committed offsets (__consumer_offsets or the admin API), by kind.",
                labels=["kafka_cluster", "kind"],
            ),
            CounterMetricFamily(
                "lagwatch_offsets_decode_errors",
                "Malformed records of __consumer_offsets, by key type; counted, logged and skipped.",
                labels=["kafka_cluster", "key_type"],
            ),
            CounterMetricFamily(
                "lagwatch_offsets_skipped_records",
                "Records of __consumer_offsets key types lagwatch does not interpret, by key type.",
                labels=["kafka_cluster", "key_type"],
            ),
            CounterMetricFamily(
                "lagwatch_exact_reads",
                "Records read from Kafka to time a committed offset exactly (lag in seconds).",
                labels=["kafka_cluster"],
            ),
            CounterMetricFamily(
                "lagwatch_exact_read_failures",
                "Exact reads that failed and will be retried.",
                labels=["kafka_cluster"],
            ),
            GaugeMetricFamily(
                "lagwatch_exact_reads_pending",
                "Exact reads waiting for their turn under the concurrency and rate limits.",
                labels=["kafka_cluster"],
            ),
            CounterMetricFamily(
                "lagwatch_commits_stored",
                "Committed offsets placed in a group-partition's window.",
                labels=["kafka_cluster"],
            ),
            CounterMetricFamily(
                "lagwatch_commits_dropped",
                "Committed offsets the storage refused, by reason (expired, group_filtered, topic_filtered, "
                "unknown_partition, backfill, duplicate).",
                labels=["kafka_cluster", "reason"],
            ),
        )


def _self_registry(clusters: Mapping[str, ClusterHandle], guard: GuardCounters) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(_SelfCollector(clusters))
    registry.register(guard)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


# ------------------------------------------------------------------------------------------------------------
# Health and the runbooks (the status page at / is pages.py's)


async def _runbooks(_: web.Request) -> web.Response:
    return web.Response(text=runbooks.page(runbooks.runbooks(), __version__), content_type="text/html")


async def _healthy(_: web.Request) -> web.Response:
    return web.Response(text="lagwatch is Healthy.\n", content_type=_TEXT)


async def _ready(request: web.Request) -> web.Response:
    """503 until every cluster was replayed, has HEAD offsets and was evaluated, naming each cluster that is
    not and why; a cluster that was ready and became unreachable keeps lagwatch ready (its statuses are
    served, frozen) and is named too."""
    states = {name: cluster.state() for name, cluster in request.app[_STATE].clusters.items()}
    lines = [
        f"cluster {name}: {state.waiting_for if not state.ready else _unreachable(state)}"
        for name, state in states.items()
        if not state.ready or not state.reachable
    ]
    details = "".join(f"{line}\n" for line in lines)
    if any(not state.ready for state in states.values()):
        return web.Response(status=503, text=f"lagwatch is not ready.\n{details}", content_type=_TEXT)
    return web.Response(text=f"lagwatch is Ready.\n{details}", content_type=_TEXT)


def _unreachable(state: ClusterState) -> str:
    since = "" if state.unreachable_since is None else f" since {_utc(state.unreachable_since)}"
    cause = f" ({state.cause})" if state.cause else ""
    as_of = "never" if state.statuses_as_of is None else _utc(state.statuses_as_of)
    return f"unreachable{since}{cause}; statuses as of {as_of}"


def _utc(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


async def _burrow_admin(_: web.Request) -> web.Response:
    return web.Response(text="GOOD", content_type=_TEXT)


async def _burrow_ready(request: web.Request) -> web.Response:
    if _not_ready(request):
        return web.Response(status=503, text="STARTING", content_type=_TEXT)
    return web.Response(text="READY", content_type=_TEXT)


def _not_ready(request: web.Request) -> list[str]:
    return [name for name, cluster in request.app[_STATE].clusters.items() if not cluster.ready]


# ------------------------------------------------------------------------------------------------------------
# Burrow's v3 API


async def _cluster_list(request: web.Request) -> web.Response:
    state = request.app[_STATE]
    return _json(burrow_json.cluster_list(state.clusters, **_where(request)))


async def _cluster_detail(request: web.Request) -> web.Response:
    cluster = _cluster(request)
    if cluster is None:
        return _error(request, burrow_json.CLUSTER_MODULE_NOT_FOUND)
    body = burrow_json.cluster_detail(_module(cluster.settings), **_where(request))
    # lagwatch's own field, which Burrow clients ignore: whether the statuses are current.
    body["lagwatch"] = _cluster_state(cluster.state())
    return _json(body)


def _cluster_state(state: ClusterState) -> dict[str, object]:
    def millis(seconds: float | None) -> int | None:
        return None if seconds is None else int(seconds * 1000)

    return {
        "ready": state.ready,
        "waiting_for": state.waiting_for,
        "reachable": state.reachable,
        "unreachable_since": millis(state.unreachable_since),
        "cause": state.cause,
        "statuses_as_of": millis(state.statuses_as_of),
    }


async def _topic_list(request: web.Request) -> web.Response:
    cluster = _cluster(request)
    if cluster is None:
        return _error(request, burrow_json.CLUSTER_NOT_FOUND)
    return _json(burrow_json.topic_list(cluster.storage.topics(), **_where(request)))


async def _topic_offsets(request: web.Request) -> web.Response:
    cluster = _cluster(request)
    offsets = None if cluster is None else cluster.storage.head_offsets(request.match_info["topic"])
    if offsets is None:
        return _error(request, burrow_json.CLUSTER_OR_TOPIC_NOT_FOUND)
    return _json(burrow_json.topic_offsets(offsets, **_where(request)))


async def _topic_consumers(request: web.Request) -> web.Response:
    cluster = _cluster(request)
    if cluster is None:
        return _error(request, burrow_json.CLUSTER_NOT_FOUND)
    # Only evaluated groups: a group any endpoint lists has a status at the same instant.
    statuses = cluster.statuses()
    groups = [g for g in cluster.storage.groups_for_topic(request.match_info["topic"]) if g in statuses]
    return _json(burrow_json.topic_consumers(groups, **_where(request)))


async def _consumer_list(request: web.Request) -> web.Response:
    cluster = _cluster(request)
    if cluster is None:
        return _error(request, burrow_json.CLUSTER_NOT_FOUND)
    # Only evaluated groups: a group any endpoint lists has a status at the same instant.
    return _json(burrow_json.consumer_list(sorted(cluster.statuses()), **_where(request)))


async def _consumer_detail(request: web.Request) -> web.Response:
    cluster = _cluster(request)
    group = request.match_info["group"]
    snapshot = None
    if cluster is not None and group in cluster.statuses():
        snapshot = cluster.storage.group_snapshot(group)
    if snapshot is None:
        return _error(request, burrow_json.CLUSTER_OR_CONSUMER_NOT_FOUND)
    return _json(burrow_json.consumer_detail(snapshot, **_where(request)))


async def _consumer_status(request: web.Request) -> web.Response:
    status = _group_status(request)
    body = burrow_json.consumer_status(status, headroom=_headroom(request, status), **_where(request))
    return _json(body, status=_status_code(status))


async def _consumer_lag(request: web.Request) -> web.Response:
    status = _group_status(request)
    body = burrow_json.consumer_lag(status, headroom=_headroom(request, status), **_where(request))
    return _json(body, status=_status_code(status))


def _headroom(request: web.Request, status: GroupStatus) -> burrow_json.HeadroomByPartition:
    """The retention headroom computed from exactly this status, by partition; empty when there is none."""
    cluster = request.app[_STATE].clusters.get(request.match_info["cluster"])
    figures = None if cluster is None else cluster.headroom().get(status.group)
    if figures is None:
        return {}
    return {
        (p.topic, p.partition): h for p, h in zip(status.partitions, figures, strict=True) if h is not None
    }


def _with_admin_token(handler: Handler) -> Handler:
    """The handler of a request that changes lagwatch: off (an unknown path) while no admin token is set, and
    401 unless the request carries it. Burrow's are open to anyone."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        state = request.app[_STATE]
        if not state.admin_token:
            return _unknown_path()
        if not bearer_matches(request.headers.get("Authorization", ""), state.admin_token):
            return _json(
                burrow_json.error("missing or invalid admin token", **_where(request)),
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return await handler(request)

    return guarded


async def _delete_group(request: web.Request) -> web.Response:
    """Burrow's DELETE, which answers 200 whether or not anything was removed."""
    cluster = _cluster(request)
    group = request.match_info["group"]
    topic = request.match_info.get("topic")
    if cluster is not None and cluster.delete_group(group, topic):
        log.info(
            "cluster %s: group %r%s removed through the HTTP API",
            cluster.name,
            group,
            "" if topic is None else f" topic {topic!r}",
        )
    return _json(burrow_json.group_removed(**_where(request)))


async def _log_level(request: web.Request) -> web.Response:
    return _json(burrow_json.log_level(logging.getLogger().level, **_where(request)))


async def _set_log_level(request: web.Request) -> web.Response:
    """Burrow's POST: sets the root logger's level; aiokafka's own stays where app.py put it."""
    try:
        name = _level_field(await request.json())
    except (ValueError, RecursionError):
        name = None
    if name is None:
        return _json(burrow_json.error(burrow_json.UNDECODABLE_BODY, **_where(request)), status=400)
    level = burrow_json.parse_log_level(name)
    if level is None:
        return _error(request, burrow_json.UNKNOWN_LOG_LEVEL)
    logging.getLogger().setLevel(level)
    # At INFO or above the new level, so that the change itself is always on record.
    log.log(
        max(level, logging.INFO),
        "log level set to %s through the HTTP API",
        burrow_json.log_level_name(level),
    )
    return _json(burrow_json.log_level_set(**_where(request)))


def _level_field(body: object) -> str | None:
    """The `level` of a decoded body as Go's encoding/json reads it into Burrow's struct: the last key that
    matches in any case, a missing key or a null read as ""; None when the body does not fit the struct."""
    if body is None:
        return ""
    if not isinstance(body, dict):
        return None
    values = [value for key, value in body.items() if key.lower() == "level"]
    value = values[-1] if values else None
    if value is None:
        return ""
    return value if isinstance(value, str) else None


async def _config_main(request: web.Request) -> web.Response:
    state = request.app[_STATE]
    settings = state.settings
    config = burrow_json.MainConfig(
        log_level=logging.getLevelNamesMapping()[settings.log_level.upper()],
        listen=settings.http.listen,
        tls=state.tls,
    )
    return _json(burrow_json.config_main(config, **_where(request)))


async def _module_list(request: web.Request) -> web.Response:
    coordinator = request.match_info["coordinator"]
    modules = _FIXED_MODULES.get(coordinator, request.app[_STATE].clusters.keys())
    return _json(burrow_json.module_list(coordinator, modules, **_where(request)))


async def _storage_module(request: web.Request) -> web.Response:
    if request.match_info["name"] != _DEFAULT_MODULE:
        return _error(request, burrow_json.STORAGE_MODULE_NOT_FOUND)
    settings = request.app[_STATE].settings
    module = burrow_json.StorageModule(
        intervals=settings.storage.intervals,
        min_distance=settings.storage.min_distance,
        expire_group=settings.storage.expire_group,
        group_allowlist=settings.filters.group_allow,
        group_denylist=settings.filters.group_deny,
    )
    return _json(burrow_json.storage_module(module, **_where(request)))


async def _evaluator_module(request: web.Request) -> web.Response:
    if request.match_info["name"] != _DEFAULT_MODULE:
        return _error(request, burrow_json.EVALUATOR_MODULE_NOT_FOUND)
    state = request.app[_STATE]
    evaluator = state.settings.evaluator
    module = burrow_json.EvaluatorModule(
        # lagwatch re-evaluates after every HEAD round rather than expiring a cache, so a status is at most
        # one round old: the longest offset_refresh is the counterpart of Burrow's expire-cache.
        expire_cache=max((c.settings.offset_refresh for c in state.clusters.values()), default=0.0),
        minimum_complete=evaluator.minimum_complete,
        allowed_lag=evaluator.allowed_lag,
    )
    return _json(burrow_json.evaluator_module(module, **_where(request)))


async def _consumer_module(request: web.Request) -> web.Response:
    """One consumer module per cluster, named after it: what reads the cluster's committed offsets."""
    state = request.app[_STATE]
    name = request.match_info["name"]
    cluster = state.clusters.get(name)
    if cluster is None:
        return _error(request, burrow_json.CONSUMER_MODULE_NOT_FOUND)
    settings = cluster.settings
    filters = state.settings.filters
    from_topic = settings.offsets_source == "offsets-topic"
    module = burrow_json.ConsumerModule(
        cluster=name,
        client=_module(settings),
        class_name="kafka" if from_topic else "kafka_admin_api",
        offsets_topic=settings.offsets_topic if from_topic else "",
        start_latest=settings.start_latest and from_topic,
        group_allowlist=filters.group_allow,
        group_denylist=filters.group_deny,
    )
    return _json(burrow_json.consumer_module(module, **_where(request)))


async def _notifier_module(request: web.Request) -> web.Response:
    return _error(request, burrow_json.NOTIFIER_MODULE_NOT_FOUND)


def _cluster(request: web.Request) -> ClusterHandle | None:
    return request.app[_STATE].clusters.get(request.match_info["cluster"])


def _group_status(request: web.Request) -> GroupStatus:
    name = request.match_info["cluster"]
    group = request.match_info["group"]
    cluster = request.app[_STATE].clusters.get(name)
    status = None if cluster is None else cluster.statuses().get(group)
    # Burrow's evaluator answer for an unknown cluster or group: the evaluator's own NOTFOUND shape.
    return evaluate_group(None, 0, cluster=name, group=group) if status is None else status


def _status_code(status: GroupStatus) -> int:
    return 404 if status.status == Status.NOTFOUND else 200


def _module(settings: ClusterSettings) -> burrow_json.ClusterModule:
    security = settings.security
    tls = None
    if security.protocol in ("SSL", "SASL_SSL"):
        tls = burrow_json.TLSProfile(
            "default", cert_file=security.cert_file, key_file=security.key_file, ca_file=security.ca_file
        )
    sasl = None
    if security.protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        sasl = burrow_json.SASLProfile("default", username=security.sasl_username)
    return burrow_json.ClusterModule(
        servers=settings.bootstrap_servers,
        client_id=settings.client_id,
        topic_refresh=settings.topic_refresh,
        offset_refresh=settings.offset_refresh,
        tls=tls,
        sasl=sasl,
    )


def _where(request: web.Request) -> dict[str, str]:
    """The `url` and `host` of Burrow's `request` object: the decoded path and this machine's name."""
    return {"url": request.path, "host": request.app[_STATE].hostname}


def _error(request: web.Request, message: str) -> web.Response:
    return _json(burrow_json.error(message, **_where(request)), status=404)


def _json(body: object, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return web.Response(text=text, status=status, content_type=_JSON, headers=headers)
