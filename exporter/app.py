"""Composition root: builds one `runtime.ClusterRuntime` per cluster (storage, sources, evaluation task,
lag-in-seconds state), serves HTTP, and stops everything in reverse order on SIGTERM or SIGINT.

Start order: the runtimes (lag-in-seconds state restored from its file), then the HTTP server (health answers
while Kafka is still being reached), then each cluster's tasks. Stop order: the cluster tasks first, then the
HEAD histories of lag in seconds are saved, then the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal

from exporter.exposition.server import HttpServer
from exporter.gc_pause import collect_fully_every
from exporter.runtime import ClusterRuntime
from exporter.settings import Settings, StartupError
from exporter.state_file import check_state_dir, describe

log = logging.getLogger(__name__)

_STOP_TIMEOUT_S = 5.0


def _cause(exc: OSError) -> str:
    """The cause of an OSError of the HTTP listener in words."""
    if exc.errno == errno.EADDRINUSE:
        return "address already in use (another lagwatch or another program listens there)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "address not available on this host"
    return describe(exc)


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # aiokafka logs every failed reconnection at ERROR; lagwatch reports the state change once itself.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


async def run(settings: Settings) -> int:
    """Serve until SIGTERM or SIGINT; returns the process exit code."""
    _configure_logging(settings.log_level)
    collect_fully_every(settings.full_collection_every)
    if settings.metrics.burrow_compatible:
        log.warning('metrics.burrow_compatible is deprecated: use metrics.compatible = ["burrow"]')
    if settings.lag_seconds.enabled:
        check_state_dir(settings.lag_seconds.state_dir, list(settings.clusters))
    clusters = {name: ClusterRuntime(name, settings, cluster) for name, cluster in settings.clusters.items()}
    server = HttpServer(clusters, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
    except OSError as exc:
        cause = _cause(exc)
        if exc.errno == errno.EACCES and settings.http.port < 1024:
            cause += f" (ports below 1024 need privileges; user id {os.getuid()})"
        raise StartupError(f"http.listen {settings.http.listen!r}: {cause}") from None
    log.info("lagwatch listening on %s for clusters %s", settings.http.listen, ", ".join(clusters))
    sources = [asyncio.create_task(c.run(), name=f"cluster-{c.name}") for c in clusters.values()]
    stopper = asyncio.create_task(stop.wait())
    failed: list[asyncio.Task[None]] = []
    try:
        await asyncio.wait([stopper, *sources], return_when=asyncio.FIRST_COMPLETED)
        failed = [t for t in sources if t.done() and not t.cancelled() and t.exception() is not None]
        for task in failed:
            log.error("lagwatch: %s failed", task.get_name(), exc_info=task.exception())
    finally:
        stopper.cancel()
        for task in sources:
            task.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_STOP_TIMEOUT_S):
                await asyncio.gather(*sources, return_exceptions=True)
        # After the sources: nothing changes the histories any more.
        await asyncio.gather(*(c.save_state() for c in clusters.values()))
        await server.stop()
        log.info("lagwatch stopped")
    return 1 if failed else 0
