"""The guard on connections: a cap on open connections (the oldest one that has not yet sent a complete
request head makes room for a new one), and a deadline for the first request head."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable

from exporter.exposition.guard.counters import GuardCounters, Throttle, since

__all__ = ["ConnectionGuard"]

# One logger for the whole guard, under the name it always had.
log = logging.getLogger(__package__)


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
        self._throttle = Throttle()

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
            log.warning("HTTP: " + message + "%s", *args, since(skipped))


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
