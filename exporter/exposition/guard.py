"""What stands between lagwatch's HTTP port and anyone who can reach it.

* Credentials: headers that are not what they claim (non-ASCII, not base64, bytes that are not UTF-8) are
  refused, never an error. bcrypt runs one check at a time off the event loop, and one at a time per client
  address. Addresses that have sent correct credentials before go first, then unknown ones, then those that
  failed recently; an address that keeps failing is answered 429 without a check, and only so many checks may
  wait. Results are cached both ways, so a correct scraper pays bcrypt once and a repeated wrong header never
  again.
* Connections: a cap on open connections (the oldest one that has not yet sent a complete request head makes
  room for a new one), and a deadline for the first request head. aiohttp's keep-alive timeout closes idle
  connections, which covers a later request's head that never completes.
* Noise: malformed requests and early client disconnects are counted by kind and logged at most once per kind
  per interval, without a traceback.

docs/http-api.md describes the behaviour, docs/metrics.md the counters.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from aiohttp import http_exceptions, web
from aiohttp.typedefs import Middleware
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from exporter.exposition.families import registry_family
from exporter.exposition.webconfig import check_password
from exporter.token_bucket import TokenBucket

__all__ = [
    "ConnectionGuard",
    "GuardCounters",
    "PasswordChecker",
    "Verdict",
    "basic_credentials",
    "bearer_matches",
    "body_deadline",
    "request_error_logger",
]

log = logging.getLogger(__name__)

LOG_INTERVAL_S = 60.0
"""A kind of bad request or refused connection is logged at most once in this many seconds."""
_CACHE_SIZE = 1024
_CLIENTS = 10_000
"""Addresses whose failures are remembered; the least recently failed is forgotten first."""
FAILURE_BURST = 5
"""Wrong credentials an address may send before it is limited."""
FAILURE_INTERVAL_S = 10.0
"""Once limited, an address gets one more check every this many seconds."""
SUSPECT_S = 60.0
"""An address that failed within this time waits behind the others for its next check."""
MAX_WAITING = 16
"""Password checks that may wait, per priority, before more are answered 429."""
TARPIT_S = 1.0
"""A 429 is answered this late, so that a client retrying at once costs little; at most `TARPIT_HELD` are
held back at a time, the others are answered at once."""
TARPIT_HELD = 64


class Verdict(Enum):
    OK = "ok"
    DENIED = "denied"
    LIMITED = "limited"


# ------------------------------------------------------------------------------------------------------------
# Counters and their metrics


@dataclass(slots=True, eq=False)
class GuardCounters(Collector):
    """Everything refused or dropped, for /metrics; only the event loop writes them."""

    request_errors: Counter[str]
    closed: Counter[str]
    auth_refused: Counter[str]
    open_connections: int = 0

    @classmethod
    def new(cls) -> GuardCounters:
        return cls(Counter(), Counter(), Counter())

    def collect(self) -> Iterable[Metric]:
        errors = registry_family("lagwatch_http_request_errors_total")
        for kind, count in sorted(self.request_errors.items()):
            errors.add_metric([kind], count)
        closed = registry_family("lagwatch_http_connections_refused_total")
        for reason, count in sorted(self.closed.items()):
            closed.add_metric([reason], count)
        refused = registry_family("lagwatch_http_auth_refused_total")
        for reason, count in sorted(self.auth_refused.items()):
            refused.add_metric([reason], count)
        yield errors
        yield closed
        yield refused
        connections = registry_family("lagwatch_http_open_connections")
        connections.add_metric([], self.open_connections)
        yield connections


class _Throttle:
    """Whether to log an event of a kind now: once per kind per interval, with the number left out since."""

    def __init__(self, interval: float = LOG_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._skipped: Counter[str] = Counter()

    def __call__(self, kind: str) -> int | None:
        """None to stay quiet; else the number of events of this kind not logged since the last line."""
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self._interval:
            self._skipped[kind] += 1
            return None
        self._last[kind] = now
        return self._skipped.pop(kind, 0)


def _since(skipped: int) -> str:
    return f" ({skipped} more since the last report)" if skipped else ""


# ------------------------------------------------------------------------------------------------------------
# Credentials


def basic_credentials(header: str) -> tuple[str, str] | None:
    """User and password of a `Basic` Authorization header; None for anything else or anything unreadable."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip().encode("ascii"), validate=True).decode()
    except (binascii.Error, UnicodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def bearer_matches(header: str, token: str) -> bool:
    """Whether a `Bearer` Authorization header carries `token`, in constant time. aiohttp hands undecodable
    header bytes over as lone surrogates, which surrogateescape turns back into the bytes that were sent."""
    scheme, _, provided = header.partition(" ")
    sent = provided.strip().encode("utf-8", "surrogateescape")
    return scheme.lower() == "bearer" and hmac.compare_digest(sent, token.encode())


class _Turns:
    """One password check at a time. Waiters go by priority (0 first), at most `MAX_WAITING` of each."""

    PRIORITIES = 3

    def __init__(self) -> None:
        self._busy = False
        self._queues: tuple[deque[asyncio.Future[None]], ...] = tuple(deque() for _ in range(self.PRIORITIES))

    async def acquire(self, priority: int) -> bool:
        """Wait for the turn; False (at once) when too many already wait."""
        if not self._busy:
            self._busy = True
            return True
        queue = self._queues[priority]
        if len(queue) >= MAX_WAITING:
            return False
        turn = asyncio.get_running_loop().create_future()
        queue.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()
            else:
                queue.remove(turn)
            raise
        return True

    def release(self) -> None:
        for queue in self._queues:
            while queue:
                turn = queue.popleft()
                if not turn.done():
                    turn.set_result(None)
                    return
        self._busy = False


@dataclass(slots=True)
class _Failures:
    bucket: TokenBucket
    last: float


class PasswordChecker:
    """Basic auth against the web configuration's bcrypt hashes, for requests from a client address."""

    def __init__(
        self, users: Mapping[str, str], counters: GuardCounters, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._users = users
        self._counters = counters
        self._clock = clock
        self._verified: set[str] = set()
        self._refused: OrderedDict[str, None] = OrderedDict()
        self._failures: OrderedDict[str, _Failures] = OrderedDict()
        self._trusted: OrderedDict[str, None] = OrderedDict()
        """Addresses that sent correct credentials: their checks go first."""
        self._checking: set[str] = set()
        """Addresses with a check waiting or running: one at a time each."""
        self._turns = _Turns()
        self._held = 0
        """429 answers held back (`TARPIT_S`)."""

    async def check(self, header: str | None, client: str) -> Verdict:
        verdict = await self._check(header, client)
        if verdict is Verdict.LIMITED and self._held < TARPIT_HELD:
            self._held += 1
            try:
                await asyncio.sleep(TARPIT_S)
            finally:
                self._held -= 1
        return verdict

    async def _check(self, header: str | None, client: str) -> Verdict:
        if header is not None and header in self._verified:
            return Verdict.OK
        credentials = None if header is None else basic_credentials(header)
        if header is None or credentials is None or header in self._refused:
            return self._refuse("credentials")
        failures = self._failures.get(client)
        if client in self._checking or (failures is not None and failures.bucket.delay() > 0):
            return self._refuse("limited")
        if failures is not None and self._clock() - failures.last < SUSPECT_S:
            priority = 2
        else:
            priority = 0 if client in self._trusted else 1
        self._checking.add(client)
        try:
            if not await self._turns.acquire(priority):
                return self._refuse("limited")
            try:
                # Another request may have checked the same header while this one waited.
                ok = header in self._verified or (
                    header not in self._refused
                    and await asyncio.to_thread(check_password, self._users, *credentials)
                )
            finally:
                self._turns.release()
        finally:
            self._checking.discard(client)
        if ok:
            if len(self._verified) >= _CACHE_SIZE:
                self._verified.clear()
            self._verified.add(header)
            self._trusted.pop(client, None)
            self._trusted[client] = None
            if len(self._trusted) > _CLIENTS:
                self._trusted.popitem(last=False)
            return Verdict.OK
        self._refused[header] = None
        if len(self._refused) > _CACHE_SIZE:
            self._refused.popitem(last=False)
        self._failed(client)
        return self._refuse("credentials")

    def _failed(self, client: str) -> None:
        failures = self._failures.pop(client, None)
        if failures is None:
            failures = _Failures(TokenBucket(1 / FAILURE_INTERVAL_S, FAILURE_BURST, self._clock), 0.0)
            if len(self._failures) >= _CLIENTS:
                self._failures.popitem(last=False)
        failures.bucket.take()
        failures.last = self._clock()
        self._failures[client] = failures

    def _refuse(self, reason: str) -> Verdict:
        self._counters.auth_refused[reason] += 1
        return Verdict.LIMITED if reason == "limited" else Verdict.DENIED


# ------------------------------------------------------------------------------------------------------------
# Request errors from aiohttp's server


class _RequestErrors(logging.Filter):
    """On the logger handed to aiohttp's request handler: a bad request or an early disconnect becomes a count
    and, once per kind per interval, one line without a traceback. Any other error keeps its traceback."""

    def __init__(self, counters: GuardCounters, throttle: _Throttle, parent: logging.Logger) -> None:
        super().__init__()
        self._counters = counters
        self._throttle = throttle
        self._parent = parent

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        kind = None if error is None else _kind(error)
        if error is None or kind is None:
            # The logger itself lets everything through so that debug-level bad requests are counted too;
            # what is not ours obeys the level aiohttp's own logger has.
            return record.levelno >= self._parent.getEffectiveLevel()
        self._counters.request_errors[kind] += 1
        skipped = self._throttle(kind)
        if skipped is None:
            return False
        client = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        record.levelno, record.levelname = (
            (logging.INFO, "INFO") if kind == "client_disconnect" else (logging.WARNING, "WARNING")
        )
        record.msg = "HTTP: %s from %s: %s%s"
        record.args = (kind.replace("_", " "), client, _short(error), _since(skipped))
        record.exc_info = None
        record.exc_text = None
        return record.levelno >= self._parent.getEffectiveLevel()


def _kind(error: BaseException) -> str | None:
    if isinstance(error, http_exceptions.LineTooLong):
        return "too_long"
    if isinstance(error, http_exceptions.BadHttpMethod):
        # aiohttp's parser recognises a TLS ClientHello.
        return "tls_on_plain_port" if "HTTPS traffic" in str(error) else "bad_method"
    if isinstance(error, http_exceptions.HttpProcessingError):
        return "malformed"
    if isinstance(error, ConnectionError):
        return "client_disconnect"
    return None


def _short(error: BaseException) -> str:
    text = " ".join(str(getattr(error, "message", None) or error).split())
    return text if len(text) <= 120 else text[:117] + "..."


def request_error_logger(counters: GuardCounters) -> logging.Logger:
    """The logger for aiohttp's request handler (`AppRunner(logger=...)`), filtered by `_RequestErrors`."""
    parent = logging.getLogger("aiohttp.server")
    logger = logging.getLogger(f"{__name__}.requests")
    logger.setLevel(logging.DEBUG)
    for old in logger.filters:
        logger.removeFilter(old)
    logger.addFilter(_RequestErrors(counters, _Throttle(), parent))
    return logger


def body_deadline(read_timeout: float, counters: GuardCounters) -> Middleware:
    """Middleware: a request's body must arrive within `read_timeout`, else 408 and the connection closes."""

    throttle = _Throttle()

    @web.middleware
    async def deadline(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.body_exists:
            try:
                async with asyncio.timeout(read_timeout):
                    await request.read()
            except TimeoutError:
                counters.request_errors["read_timeout"] += 1
                skipped = throttle("read_timeout")
                if skipped is not None:
                    log.warning(
                        "HTTP: read timeout from %s: the body did not arrive within %g s%s",
                        request.remote,
                        read_timeout,
                        _since(skipped),
                    )
                response = web.Response(status=408, text="Request Timeout\n")
                response.force_close()
                return response
        return await handler(request)

    return deadline


# ------------------------------------------------------------------------------------------------------------
# Connections


class ConnectionGuard:
    """Wraps the server's protocol factory: counts open connections, caps them, and closes a connection
    whose first request head has not arrived within `header_timeout`."""

    def __init__(self, max_connections: int, header_timeout: float, counters: GuardCounters) -> None:
        self._max = max_connections
        self._header_timeout = header_timeout
        self._counters = counters
        self._open: set[_GuardedConnection] = set()
        self._waiting: OrderedDict[_GuardedConnection, None] = OrderedDict()
        """Open connections whose first request head is incomplete, oldest first."""
        self._throttle = _Throttle()

    def protocol_factory(self, make: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        return lambda: _GuardedConnection(self, make())

    def _admit(self, connection: _GuardedConnection) -> bool:
        if len(self._open) >= self._max:
            if not self._waiting:
                self._refused("connection_limit", "the limit of %d open connections is reached", self._max)
                return False
            oldest, _ = self._waiting.popitem(last=False)
            self._refused(
                "connection_limit",
                "%d connections are open: closed the oldest one that had not sent a request",
                self._max,
            )
            oldest.abort()
        self._open.add(connection)
        self._waiting[connection] = None
        self._counters.open_connections = len(self._open)
        return True

    def _head_complete(self, connection: _GuardedConnection) -> None:
        self._waiting.pop(connection, None)

    def _closed(self, connection: _GuardedConnection) -> None:
        self._open.discard(connection)
        self._waiting.pop(connection, None)
        self._counters.open_connections = len(self._open)

    def _refused(self, reason: str, message: str, *args: object) -> None:
        self._counters.closed[reason] += 1
        skipped = self._throttle(reason)
        if skipped is not None:
            log.warning("HTTP: " + message + "%s", *args, _since(skipped))


_HEAD_END = b"\r\n\r\n"


class _GuardedConnection(asyncio.Protocol):
    """aiohttp's protocol behind the guard: passes every event on unless the guard refused the connection."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self._transport: asyncio.Transport | None = None
        self._admitted = False
        self._deadline: asyncio.TimerHandle | None = None
        self._tail = b""
        """The last bytes received before the head was complete, to find its end across reads."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if not self._guard._admit(self):
            transport.abort()
            return
        self._admitted = True
        self._deadline = asyncio.get_running_loop().call_later(self._guard._header_timeout, self._expired)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return
        if self._deadline is not None:
            window = self._tail + data
            if _HEAD_END in window:
                self._deadline.cancel()
                self._deadline = None
                self._guard._head_complete(self)
            else:
                self._tail = window[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._admitted else None

    def pause_writing(self) -> None:
        if self._admitted:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._admitted:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._admitted:
            return
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._guard._closed(self)
        self._inner.connection_lost(exc)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def _expired(self) -> None:
        self._deadline = None
        peer = None if self._transport is None else self._transport.get_extra_info("peername")
        self._guard._refused(
            "header_timeout",
            "closed a connection from %s that sent no complete request head within %g s",
            peer[0] if isinstance(peer, tuple) else peer,
            self._guard._header_timeout,
        )
        self.abort()
