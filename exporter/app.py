"""Composition root: builds one storage, evaluation cache, lag-in-seconds state and set of sources per
cluster, serves HTTP, and stops everything in reverse order on SIGTERM or SIGINT.

Start order: storages, caches and lag-in-seconds state (restored from its file), then the HTTP server (health
answers while Kafka is still being reached), then the sources. Stop order: sources first, then the HEAD
histories of lag in seconds are saved, then the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import math
import os
import signal
import time
from collections.abc import Callable, Mapping

from exporter.core.evaluator import EvaluationCache
from exporter.core.filters import NameFilter
from exporter.core.model import ClusterState, GroupSnapshot, GroupStatus
from exporter.core.round import (
    GroupFigures,
    GroupHeadroom,
    GroupLagSeconds,
    Round,
    evaluation_round,
    group_figures,
)
from exporter.core.storage import Storage, StorageStats
from exporter.core.timelag import Policy, TimeLag
from exporter.exposition.metrics import BrokerView, ClusterView
from exporter.exposition.server import HttpServer
from exporter.gc_pause import gc_paused
from exporter.settings import ClusterSettings, Settings, StartupError
from exporter.sources.admin_api import AdminApiSource
from exporter.sources.cluster import HeadPoller
from exporter.sources.exact_reads import ExactReader
from exporter.sources.offsets_topic import OffsetsTopicSource
from exporter.sources.progress import SourceProgress
from exporter.state_file import Saved, StateFile, check_state_dir, describe, state_path

log = logging.getLogger(__name__)

_STOP_TIMEOUT_S = 5.0
_EVALUATION_BATCH = 500
"""Groups evaluated between two yields to the event loop (about 50 ms of work at 10 partitions a group)."""
_SAVE_INTERVAL_S = 300.0
"""How often the HEAD histories are written to the state file; what a crash can lose."""
_STREAM_SLACK_S = 3.0
"""How far behind the clock the committed-offsets stream may be known complete before evaluation waits for it:
a fetch that finds nothing new returns every 0.5 s, so in steady state it is at most about a second behind."""
_FIRST_EVALUATION_POLL_S = 0.01


def _cause(exc: OSError) -> str:
    """The cause of an OSError of the HTTP listener in words."""
    if exc.errno == errno.EADDRINUSE:
        return "address already in use (another lagwatch or another program listens there)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "address not available on this host"
    return describe(exc)


class ClusterRuntime:
    """One Kafka cluster: its storage, sources, cached evaluation and lag in seconds, and the read API the
    HTTP server uses."""

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
        lag = settings.lag_seconds
        self.state_file: StateFile | None = None
        """Where the HEAD histories of lag in seconds are kept across restarts; None when they are not."""
        self.timelag: TimeLag | None = None
        self.exact_reads: ExactReader | None = None
        saved = Saved()
        if lag.enabled:
            policy = Policy.for_refresh(cluster.offset_refresh, lag.span)
            if lag.state_dir:
                self.state_file = StateFile(state_path(lag.state_dir, name), name)
                saved = self.state_file.restore(policy)
            self.timelag = TimeLag(policy, histories=saved.histories, exact_reads=lag.exact_reads)
            if lag.exact_reads:
                self.exact_reads = ExactReader(
                    name,
                    cluster,
                    self.timelag,
                    concurrency=lag.exact_read_concurrency,
                    rate=lag.exact_reads_per_second,
                )
        self.published = Round(name)
        """The last evaluation round: everything the exposition reads of statuses and their figures."""
        self._meanwhile: dict[str, tuple[GroupStatus | None, GroupFigures | None]] | None = None
        """While a round runs: the groups an admin deletion re-evaluated meanwhile, which the round keeps."""
        self._restored_pruned = False
        self._restored_cluster_id = saved.cluster_id
        self.head = HeadPoller(
            name, cluster, self.storage, on_round=self.evaluate, observer=self.timelag, clock=clock
        )
        self.offsets: OffsetsTopicSource | AdminApiSource
        if cluster.offsets_source == "admin-api":
            self.offsets = AdminApiSource(name, cluster, self.storage, clock=clock)
            # Complete as of the start of its last poll, which comes every offset_refresh.
            self._stream_slack = 2 * cluster.offset_refresh + _STREAM_SLACK_S
        else:
            self.offsets = OffsetsTopicSource(name, cluster, self.storage, clock=clock)
            self._stream_slack = _STREAM_SLACK_S
            # The replay of __consumer_offsets holds old commits: their lags are taken against the HEAD
            # history, until the replay has caught up.
            self.storage.set_replay_heads(self._head_at)
        self._evaluating = asyncio.Lock()

    @property
    def evaluated_at(self) -> float | None:
        """Clock time of the last evaluation; None before the first."""
        return self.published.clock

    @property
    def evaluation_seconds(self) -> float | None:
        return self.published.seconds

    @classmethod
    def filled(
        cls,
        name: str,
        settings: Settings,
        fill: Callable[[Storage], object],
        clock: Callable[[], float] = time.time,
    ) -> ClusterRuntime:
        """The runtime of cluster `name` of `settings` over a storage that `fill` writes in place of the
        sources, which are built but never run: for tests and benchmarks of the read side. What `fill` writes
        is current, not a replay of old commits. Nothing is evaluated until `evaluate_now`."""
        runtime = cls(name, settings, settings.clusters[name], clock)
        runtime.storage.set_replay_heads(None)
        fill(runtime.storage)
        return runtime

    def _head_at(self, topic: str, partition: int, timestamp_ms: int) -> int | None:
        """The partition's HEAD as lagwatch saw it when a replayed commit was made; None when it did not
        (no history then, or lag in seconds is off)."""
        if self.timelag is None:
            return None
        history = self.timelag.histories.get((topic, partition))
        return None if history is None else history.head_at(timestamp_ms / 1000)

    def _evaluation_instant(self, now: float) -> float | None:
        """The instant to evaluate at; None while evaluation would be premature.

        Before the committed offsets were first read to their end and a HEAD round came in, statuses of a
        partial replay would be false (a group whose newer commits are not read yet looks stopped): none are
        published. Afterwards, while the stream of committed offsets is interrupted or behind, evaluation
        is made at the instant up to which it is known complete, so that the clock alone cannot turn a
        partition STOP because lagwatch could not read its commits."""
        progress = self.offsets.progress
        if not progress.caught_up or not self.head.health.rounds:
            return None
        as_of = progress.complete_as_of
        if as_of is None or now - as_of <= self._stream_slack:
            return now
        evaluated_now = -math.inf if self.published.as_of is None else self.published.as_of
        return max(as_of, min(evaluated_now, now))

    async def evaluate(self) -> None:
        """Expire stale groups, re-evaluate what changed and bring lag in seconds up to date; runs after every
        HEAD refresh round, and once as soon as the first replay and the first HEAD round are both in."""
        async with self._evaluating:
            clock = self._clock()
            now = self._evaluation_instant(clock)
            if now is not None:
                await self._evaluate_at(now, clock)

    async def evaluate_now(self) -> None:
        """Evaluate at the clock's time whatever the sources have read: for a runtime built by `filled`, whose
        sources never run."""
        async with self._evaluating:
            clock = self._clock()
            await self._evaluate_at(clock, clock)

    async def _evaluate_at(self, now: float, clock: float) -> None:
        for group in self.storage.expire(int(now * 1000)):
            log.info("cluster %s: group %s expired (no commit within expire_group)", self.name, group)
        if self.timelag is not None and not self._restored_pruned and self.head.health.rounds:
            self._prune_restored(self.timelag)
        # 100,000 group-partitions take about a second to evaluate: health checks and scrapes get their turn
        # between batches instead of waiting for the whole round.
        steps = evaluation_round(
            self.cache,
            self.storage,
            self.timelag,
            now,
            clock,
            timer=time.perf_counter,
            batch=_EVALUATION_BATCH,
        )
        self._meanwhile = {}
        try:
            with gc_paused():
                while True:
                    try:
                        next(steps)
                    except StopIteration as done:
                        result: Round = done.value
                        break
                    gc.collect(1)
                    await asyncio.sleep(0)
            for group, (status, figures) in self._meanwhile.items():
                result = result.with_group(group, status, figures)
        finally:
            self._meanwhile = None
        self.published = result
        if self.timelag is not None and result.reads:
            self.timelag.want(result.reads)
        if self.exact_reads is not None:
            self.exact_reads.wake()

    async def _evaluate_when_replayed(self) -> None:
        """The first evaluation, as soon as the committed offsets were read to their end and the HEAD
        offsets fetched, rather than at the next HEAD round up to `offset_refresh` later."""
        # Polled, not awaited on an event: the two sources know nothing of each other or of this task, and
        # the wait lasts only the start-up.
        while not (self.offsets.progress.caught_up and self.head.health.rounds):  # noqa: ASYNC110
            await asyncio.sleep(_FIRST_EVALUATION_POLL_S)
        self.storage.set_replay_heads(None)
        if self.evaluated_at is None:
            await self.evaluate()

    def _prune_restored(self, timelag: TimeLag) -> None:
        """Histories restored for topics deleted (or re-created) while lagwatch was down would never be told
        apart from live ones: the first metadata decides. A file written for another Kafka cluster that was
        given the same name would mislead on every topic the two share: all of it goes."""
        self._restored_pruned = True
        live = set(self.storage.topics())
        saved_for, running_on = self._restored_cluster_id, self.head.health.cluster_id
        if saved_for and running_on and saved_for != running_on:
            log.warning(
                "cluster %s: the saved HEAD history belongs to Kafka cluster %s, not %s: discarded",
                self.name,
                saved_for,
                running_on,
            )
            live = set()
        for topic in {topic for topic, _ in timelag.histories} - live:
            timelag.forget_topic(topic)

    def headroom(self) -> Mapping[str, GroupHeadroom]:
        """Retention headroom by group, as of the last evaluation."""
        return self.published.headroom

    @property
    def exact_read_counts(self) -> tuple[int, int, int] | None:
        """Exact reads done, failed and waiting; None when exact reads are off."""
        if self.exact_reads is None or self.timelag is None:
            return None
        return self.exact_reads.reads, self.exact_reads.failures, self.timelag.pending_reads

    @property
    def progress(self) -> SourceProgress:
        return self.offsets.progress

    @property
    def ready(self) -> bool:
        """True once the committed offsets were replayed, HEAD offsets fetched and every group evaluated."""
        return self.evaluated_at is not None

    def state(self) -> ClusterState:
        health = self.head.health
        progress = self.offsets.progress
        cause = health.last_error or progress.problem
        return ClusterState(
            ready=self.ready,
            waiting_for="" if self.ready else self._waiting_for(),
            reachable=health.up or health.since_s is None,
            unreachable_since=None if health.up else health.since_s,
            cause=cause,
            statuses_as_of=self.evaluated_at,
        )

    def _waiting_for(self) -> str:
        health = self.head.health
        progress = self.offsets.progress
        if not health.up and health.last_error:
            return f"cannot reach the cluster ({health.last_error})"
        if progress.problem:
            return f"cannot read the committed offsets ({progress.problem})"
        if not progress.caught_up:
            records = sum(progress.records.values())
            return f"still reading the committed offsets ({records} records so far)"
        if not health.rounds:
            return "fetching the HEAD offsets"
        return "evaluating the groups"

    def statuses(self) -> Mapping[str, GroupStatus]:
        return self.published.statuses

    def status(self, group: str) -> GroupStatus:
        return self.published.status(group)

    def topics(self) -> list[str]:
        return self.storage.topics()

    def head_offsets(self, topic: str) -> tuple[int | None, ...] | None:
        return self.storage.head_offsets(topic)

    def groups_for_topic(self, topic: str) -> list[str]:
        return self.storage.groups_for_topic(topic)

    def group_snapshot(self, group: str) -> GroupSnapshot | None:
        return self.storage.group_snapshot(group)

    def stats(self) -> StorageStats:
        return self.storage.stats()

    def delete_group(self, group: str, topic: str | None = None) -> bool:
        """Delete the group's offsets (of one topic) as a tombstone would, and publish its status and figures
        re-evaluated at once; a round running meanwhile keeps them."""
        removed = self.storage.delete_group(group, topic)
        if removed:
            clock = self._clock()
            status = self.cache.refresh_group(self.storage, group, clock)
            figures = None if status is None else group_figures(status, self.storage, self.timelag, clock)
            self.published = self.published.with_group(group, status, figures)
            if self._meanwhile is not None:
                self._meanwhile[group] = (status, figures)
            if self.timelag is not None and figures is not None and figures.reads:
                self.timelag.want(figures.reads)
        return removed

    def view(self) -> ClusterView:
        published = self.published
        statuses = published.statuses
        progress = self.offsets.progress
        refreshed = self.head.health.last_refresh_s
        since = self.head.health.since_s
        return ClusterView(
            name=self.name,
            groups=[statuses[g] for g in sorted(statuses)],
            topics=[(t, self.storage.head_offsets(t) or ()) for t in self.storage.topics()],
            up=self.head.health.up,
            caught_up=progress.caught_up,
            head_refresh_ms=None if refreshed is None else int(refreshed * 1000),
            since_ms=None if since is None else int(since * 1000),
            last_error=self.head.health.last_error,
            evaluation_seconds=published.seconds,
            lag_seconds=published.lag_seconds,
            headroom=published.headroom,
            topic_starts={t: self.storage.start_offsets(t) or () for t in self.storage.topics()},
            topic_retention={
                t: r for t in self.storage.topics() if (r := self.storage.topic_retention(t)) is not None
            },
            brokers=self._broker_views(),
        )

    def _broker_views(self) -> list[BrokerView]:
        now = self._clock()
        return [
            BrokerView(
                node=node,
                stale_partitions=broker.stale_partitions,
                head_age_seconds=None
                if broker.last_answer_s is None
                else max(0.0, now - broker.last_answer_s),
                answers=broker.answers,
                answer_seconds=broker.answer_seconds,
                errors=dict(broker.errors),
            )
            for node, broker in sorted(self.head.health.brokers.items())
        ]

    def lag_seconds(self) -> Mapping[str, GroupLagSeconds]:
        """Lag in seconds by group, as of the last evaluation; empty when it is disabled."""
        return self.published.lag_seconds

    async def save_state(self) -> None:
        """Write the HEAD histories to the state file, with the id of the Kafka cluster they were observed on
        (the restored one while the cluster was not reached yet)."""
        if self.timelag is None or self.state_file is None:
            return
        await self.state_file.save(
            self.timelag.histories, self.head.health.cluster_id or self._restored_cluster_id
        )

    async def _save_periodically(self) -> None:
        while True:
            await asyncio.sleep(_SAVE_INTERVAL_S)
            await self.save_state()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.head.run(), name=f"head-{self.name}")
            tasks.create_task(self.offsets.run(), name=f"offsets-{self.name}")
            tasks.create_task(self._evaluate_when_replayed(), name=f"first-evaluation-{self.name}")
            if self.exact_reads is not None:
                tasks.create_task(self.exact_reads.run(), name=f"exact-reads-{self.name}")
            if self.state_file is not None:
                tasks.create_task(self._save_periodically(), name=f"save-{self.name}")


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
