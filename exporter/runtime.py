"""One Kafka cluster at run time: its storage, sources, evaluation task, lag-in-seconds state and state file,
wired together, and the read side the HTTP server uses (`core.view.ClusterReader` and the shell's extras).

Who writes what: the HEAD poller and the committed-offsets source write the storage; the HEAD poller
observes HEAD offsets into `TimeLag`; the evaluation task (`evaluation.py`) runs the rounds, publishes them
and hands `TimeLag` the reads they want; the exact reader answers them. Everything read here of statuses and
their figures comes from the published round.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

from exporter.core.evaluator import EvaluationCache
from exporter.core.filters import NameFilter
from exporter.core.head_history import Policy
from exporter.core.model import ClusterState, GroupSnapshot, GroupStatus
from exporter.core.retention import TopicRetention
from exporter.core.round import GroupHeadroom, GroupLagSeconds, Round
from exporter.core.storage import Storage, StorageStats
from exporter.core.timelag import TimeLag
from exporter.evaluation import Evaluation, let_go_of_round
from exporter.exposition.cluster_view import BrokerView, ClusterView
from exporter.gc_pause import untrack
from exporter.let_go import let_go
from exporter.settings import ClusterSettings, Settings
from exporter.sources.admin_api import AdminApiSource
from exporter.sources.cluster import HeadPoller
from exporter.sources.exact_reads import ExactReader
from exporter.sources.offsets_topic import OffsetsTopicSource
from exporter.sources.progress import SourceProgress
from exporter.state_file import Saved, StateFile, state_path

__all__ = ["ClusterRuntime"]

_SAVE_INTERVAL_S = 300.0
"""How often the HEAD histories are written to the state file; what a crash can lose."""
_STREAM_SLACK_S = 3.0
"""How far behind the clock the committed-offsets stream may be known complete before evaluation waits for it:
a fetch that finds nothing new returns every 0.5 s, so in steady state it is at most about a second behind."""


class _TopicViews(NamedTuple):
    """The topic part of a cluster's view."""

    topics: list[tuple[str, tuple[int | None, ...]]]
    starts: dict[str, tuple[int | None, ...]]
    retention: dict[str, TopicRetention]


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
        self._restored_cluster_id = saved.cluster_id
        self._view_groups: tuple[Round, Sequence[GroupStatus]] | None = None
        self._view_topics: tuple[int, _TopicViews] | None = None
        self.head = HeadPoller(name, cluster, self.storage, observer=self.timelag, clock=clock)
        self.offsets: OffsetsTopicSource | AdminApiSource
        if cluster.offsets_source == "admin-api":
            self.offsets = AdminApiSource(name, cluster, self.storage, clock=clock)
            # Complete as of the start of its last poll, which comes every offset_refresh.
            stream_slack = 2 * cluster.offset_refresh + _STREAM_SLACK_S
        else:
            self.offsets = OffsetsTopicSource(name, cluster, self.storage, clock=clock)
            stream_slack = _STREAM_SLACK_S
            # The replay of __consumer_offsets holds old commits: their lags are taken against the HEAD
            # history, until the replay has caught up.
            self.storage.set_replay_heads(self._head_at)
        self.evaluation = Evaluation(
            name,
            self.storage,
            EvaluationCache(
                settings.evaluator.allowed_lag, settings.evaluator.minimum_complete, cluster=name
            ),
            self.head,
            self.offsets.progress,
            stream_slack=stream_slack,
            timelag=self.timelag,
            restored_cluster_id=saved.cluster_id,
            clock=clock,
        )
        if self.exact_reads is not None:
            self.evaluation.subscribe(self.exact_reads.wake)

    @property
    def published(self) -> Round:
        """The last evaluation round: everything read of statuses and their figures comes from it."""
        return self.evaluation.published

    @property
    def evaluated_at(self) -> float | None:
        """Clock time of the last evaluation; None before the first."""
        return self.published.clock

    def on_published(self, listener: Callable[[], None]) -> None:
        """Call `listener` on the event loop each time statuses are published (`Evaluation.subscribe`)."""
        self.evaluation.subscribe(listener)

    @property
    def evaluation_failures(self) -> int:
        """Evaluation rounds that raised (each retried; the sources kept running)."""
        return self.evaluation.failures

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

    async def evaluate(self) -> None:
        """One evaluation round now, as after a HEAD round (tests drive the runtime with it)."""
        await self.evaluation.evaluate()

    async def evaluate_now(self) -> None:
        """Evaluate at the clock's time whatever the sources have read: for a runtime built by `filled`, whose
        sources never run."""
        await self.evaluation.evaluate_now()

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
        """The group's windows at the instant of the last evaluation (the clock's before the first), so that
        lazy expiry agrees with the published status."""
        as_of = self.published.as_of
        return self.storage.group_snapshot(group, int(1000 * (self._clock() if as_of is None else as_of)))

    def stats(self) -> StorageStats:
        return self.storage.stats()

    def delete_group(self, group: str, topic: str | None = None) -> bool:
        """Delete the group's offsets (of one topic) as a tombstone would, and publish its status and figures
        re-evaluated at once; a round running meanwhile keeps them."""
        removed = self.storage.delete_group(group, topic)
        if removed:
            self.evaluation.reevaluate_group(group)
        return removed

    def view(self) -> ClusterView:
        published = self.published
        progress = self.offsets.progress
        refreshed = self.head.health.last_refresh_s
        since = self.head.health.since_s
        topics = self._topic_views()
        return ClusterView(
            name=self.name,
            groups=self._sorted_groups(published),
            topics=topics.topics,
            up=self.head.health.up,
            caught_up=progress.caught_up,
            head_refresh_ms=None if refreshed is None else int(refreshed * 1000),
            since_ms=None if since is None else int(since * 1000),
            last_error=self.head.health.last_error,
            evaluation_seconds=published.seconds,
            evaluated_ms=None if published.clock is None else int(published.clock * 1000),
            lag_seconds=published.lag_seconds,
            headroom=published.headroom,
            topic_starts=topics.starts,
            topic_retention=topics.retention,
            brokers=self._broker_views(),
        )

    def _sorted_groups(self, published: Round) -> Sequence[GroupStatus]:
        """The round's statuses sorted by group, sorted once per round: /metrics asks for views at every
        scrape and every render, and sorting 100,000 names each time held the event loop for 50-100 ms."""
        kept = self._view_groups
        if kept is None or kept[0] is not published:
            statuses = published.statuses
            replaced, kept = kept, (published, tuple(statuses[g] for g in sorted(statuses)))
            # Statuses only, which refer to nothing that could refer back: out of the collector's walk
            # (CPython never takes out a tuple of objects of a class by itself).
            untrack([kept[1]])
            self._view_groups = kept
            if replaced is not None:
                # Often the last holder of the round before: its statuses and figures go a slice at a time.
                let_go_of_round(replaced[0])
                let_go(replaced[1])
        return kept[1]

    def _topic_views(self) -> _TopicViews:
        """Every topic's HEAD offsets, log starts and retention, built again only when the storage's topics
        changed: /metrics asks for views at every scrape and every render, and HEAD offsets move once
        per `offset_refresh`."""
        version = self.storage.topics_version
        kept = self._view_topics
        if kept is None or kept[0] != version:
            storage = self.storage
            names = storage.topics()
            views = _TopicViews(
                [(t, storage.head_offsets(t) or ()) for t in names],
                {t: storage.start_offsets(t) or () for t in names},
                {t: r for t in names if (r := storage.topic_retention(t)) is not None},
            )
            kept = self._view_topics = (version, views)
        return kept[1]

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
            # Its own task and failure domain: a failed round is logged, counted and retried, never raised.
            tasks.create_task(self.evaluation.run(), name=f"evaluation-{self.name}")
            if self.exact_reads is not None:
                tasks.create_task(self.exact_reads.run(), name=f"exact-reads-{self.name}")
            if self.state_file is not None:
                tasks.create_task(self._save_periodically(), name=f"save-{self.name}")
