"""Composition root: builds one storage, evaluation cache and pair of sources per cluster, serves HTTP, and stops
everything in reverse order on SIGTERM or SIGINT.

Start order: storages and caches, then the HTTP server (health answers while Kafka is still being reached), then
the sources. Stop order: sources first, then the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Mapping

from exporter.evaluator import EvaluationCache
from exporter.exposition.http import HttpServer
from exporter.exposition.metrics import ClusterView
from exporter.filters import NameFilter
from exporter.model import GroupStatus
from exporter.settings import ClusterSettings, Settings
from exporter.sources.admin_api import AdminApiSource
from exporter.sources.cluster import HeadPoller
from exporter.sources.offsets_topic import OffsetsTopicSource
from exporter.sources.progress import SourceProgress
from exporter.storage import Storage

log = logging.getLogger(__name__)

_STOP_TIMEOUT_S = 5.0


class ClusterRuntime:
    """One Kafka cluster: its storage, sources and cached evaluation, and the read API the HTTP server uses."""

    def __init__(
        self, name: str, settings: Settings, cluster: ClusterSettings, clock: Callable[[], float] = time.time
    ) -> None:
        self.name = name
        self.settings = cluster
        self._clock = clock
        filters = settings.filters
        self.storage = Storage(
            name,
            intervals=settings.storage.intervals,
            min_distance_ms=int(settings.storage.min_distance * 1000),
            expire_group_ms=int(settings.storage.expire_group * 1000),
            group_filter=NameFilter(filters.group_allow or None, filters.group_deny or None),
            topic_filter=NameFilter(filters.topic_allow or None, filters.topic_deny or None),
        )
        self.cache = EvaluationCache(
            settings.evaluator.allowed_lag, settings.evaluator.minimum_complete, cluster=name
        )
        self.evaluation_seconds: float | None = None
        self.head = HeadPoller(name, cluster, self.storage, on_round=self.evaluate, clock=clock)
        self.offsets: OffsetsTopicSource | AdminApiSource = (
            AdminApiSource(name, cluster, self.storage, clock=clock)
            if cluster.offsets_source == "admin-api"
            else OffsetsTopicSource(name, cluster, self.storage, clock=clock)
        )

    def evaluate(self) -> None:
        """Expire stale groups and re-evaluate what changed; runs after every HEAD refresh round."""
        now = self._clock()
        for group in self.storage.expire(int(now * 1000)):
            log.info("cluster %s: group %s expired (no commit within expire_group)", self.name, group)
        started = time.perf_counter()
        self.cache.refresh(self.storage, now)
        self.evaluation_seconds = time.perf_counter() - started

    @property
    def progress(self) -> SourceProgress:
        return self.offsets.progress

    @property
    def ready(self) -> bool:
        """True once the committed offsets source has read everything that existed when it started."""
        return self.offsets.progress.caught_up

    def statuses(self) -> Mapping[str, GroupStatus]:
        return self.cache.statuses()

    def delete_group(self, group: str, topic: str | None = None) -> bool:
        removed = self.storage.delete_group(group, topic)
        if removed:
            self.evaluate()
        return removed

    def view(self) -> ClusterView:
        statuses = self.cache.statuses()
        progress = self.offsets.progress
        refreshed = self.head.health.last_refresh_s
        return ClusterView(
            name=self.name,
            groups=[statuses[g] for g in sorted(statuses)],
            topics=[(t, self.storage.head_offsets(t) or ()) for t in self.storage.topics()],
            up=self.head.health.up,
            caught_up=progress.caught_up,
            head_refresh_ms=None if refreshed is None else int(refreshed * 1000),
            evaluation_seconds=self.evaluation_seconds,
        )

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.head.run(), name=f"head-{self.name}")
            tasks.create_task(self.offsets.run(), name=f"offsets-{self.name}")


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
    clusters = {name: ClusterRuntime(name, settings, cluster) for name, cluster in settings.clusters.items()}
    server = HttpServer(clusters, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
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
        await server.stop()
        log.info("lagwatch stopped")
    return 1 if failed else 0
