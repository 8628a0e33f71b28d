"""lagwatch's HTTP server: its lifecycle, the aiohttp application and the middlewares every path goes through
(TLS, basic auth and rate limit from a Prometheus web configuration file, Burrow's 404).

Every request reads memory only and never waits on Kafka. The paths are the other modules' jobs: `/metrics` is
metrics_endpoint's (lagwatch's own metrics self_metrics'), health and readiness health's, Burrow's v3 API
burrow_api's and the status page pages'.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from exporter.exposition import burrow_api, health, metrics_endpoint, pages
from exporter.exposition.guard.connections import ConnectionGuard
from exporter.exposition.guard.counters import GuardCounters
from exporter.exposition.guard.passwords import PasswordChecker, Verdict
from exporter.exposition.guard.request_errors import body_deadline, request_error_logger
from exporter.exposition.handle import ClusterHandle, ProgressHandle
from exporter.exposition.self_metrics import self_registry
from exporter.exposition.webconfig import WebConfig, load_web_config, san_allowed, server_ssl_context
from exporter.settings import Settings
from exporter.token_bucket import TokenBucket

__all__ = ["ClusterHandle", "HttpServer", "ProgressHandle", "build_app"]

log = logging.getLogger(__name__)

_SHUTDOWN_TIMEOUT_S = 5.0
_BACKLOG = 128
_MAX_LINE = 1 << 17
"""Longest request line: a group id Kafka accepts (up to 32,767 bytes) fits percent-encoded."""
_TOKEN_METHODS = frozenset({"DELETE", "POST"})
"""The methods of the requests that change lagwatch; they authenticate with the admin token."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
    limit = web_config.rate_limit
    app[_GUARD] = _Guard(
        checker=PasswordChecker(web_config.users, counters) if web_config.users else None,
        allowed_sans=() if web_config.tls is None else web_config.tls.client_allowed_sans,
        limiter=None if limit is None else TokenBucket(1 / limit.interval_s, limit.burst),
        admin_token=bool(token),
        counters=counters,
    )
    if web_config.headers:
        headers = dict(web_config.headers)

        async def add_headers(_: web.Request, response: web.StreamResponse) -> None:
            response.headers.update(headers)

        app.on_response_prepare.append(add_headers)
    app.add_routes(pages.routes(clusters))
    metrics_endpoint.install(app, clusters, settings, self_registry(clusters, counters))
    app.add_routes(health.routes(clusters))
    burrow_api.install(app, clusters, settings, tls=web_config.tls is not None)
    return app


@dataclass(slots=True)
class _Guard:
    checker: PasswordChecker | None
    """None without basic auth."""
    allowed_sans: tuple[str, ...]
    limiter: TokenBucket | None
    admin_token: bool
    """When set, DELETE and POST requests authenticate with the admin bearer token instead of basic auth."""
    counters: GuardCounters


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
        return burrow_api.unknown_path()
