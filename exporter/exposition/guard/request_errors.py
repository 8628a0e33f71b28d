"""Bad requests from aiohttp's server: malformed requests, early disconnects and bodies that do not arrive in
time are counted by kind and logged at most once per kind per interval, without a traceback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import http_exceptions, web
from aiohttp.typedefs import Middleware

from exporter.exposition.guard.counters import GuardCounters, Throttle, since

__all__ = ["body_deadline", "request_error_logger"]

# One logger for the whole guard, under the name it always had.
log = logging.getLogger(__package__)


class _RequestErrors(logging.Filter):
    """On the logger handed to aiohttp's request handler: a bad request or an early disconnect becomes a count
    and, once per kind per interval, one line without a traceback. Any other error keeps its traceback."""

    def __init__(self, counters: GuardCounters, throttle: Throttle, parent: logging.Logger) -> None:
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
        record.args = (kind.replace("_", " "), client, _short(error), since(skipped))
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
    logger = logging.getLogger(f"{__package__}.requests")
    logger.setLevel(logging.DEBUG)
    for old in logger.filters:
        logger.removeFilter(old)
    logger.addFilter(_RequestErrors(counters, Throttle(), parent))
    return logger


def body_deadline(read_timeout: float, counters: GuardCounters) -> Middleware:
    """Middleware: a request's body must arrive within `read_timeout`, else 408 and the connection closes."""

    throttle = Throttle()

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
                        since(skipped),
                    )
                response = web.Response(status=408, text="Request Timeout\n")
                response.force_close()
                return response
        return await handler(request)

    return deadline
