"""Evaluation of one cluster as its own task and its own failure domain.

The task waits for the HEAD poller's rounds (`HeadPoller.next_round`; the poller knows nothing of it), runs
one evaluation round (`core.round.evaluation_round`) in batches that let the event loop serve in between, and
publishes the result with one assignment. The first round runs as soon as the committed offsets were replayed
and a HEAD round came in, rather than at the next HEAD round up to `offset_refresh` later.

An exception in a round ends neither this task nor the sources: it is counted (`failures`, exported as
`lagwatch_evaluation_failures_total`), logged once when evaluation starts failing and once when it succeeds
again, and the round is retried at the next HEAD round or after a short backoff, whichever comes first. The
last published round stays published meanwhile; its time is the `statuses_as_of` of the Burrow API's
`lagwatch` block and of `lagwatch status`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import time
from array import array
from collections.abc import Callable, Iterator
from itertools import chain
from typing import Protocol

from exporter.core.evaluator import CacheEntry, EvaluationCache
from exporter.core.exact_answers import PartitionOffset
from exporter.core.figures import GroupHeadroom, GroupLagSeconds
from exporter.core.model import Commit, GroupReason, GroupStatus, Partitions, PartitionStatus, Reason
from exporter.core.retention import Headroom
from exporter.core.round import GroupFigures, Round, evaluation_round, group_figures
from exporter.core.storage import Storage
from exporter.core.timelag import LagSeconds, TimeLag
from exporter.gc_pause import freeze_survivors, gc_paused, untrack, untrack_young
from exporter.let_go import SLICE_S, let_go
from exporter.sources.cluster import ClusterHealth
from exporter.sources.progress import SourceProgress
from exporter.sources.retry import cause

__all__ = ["Evaluation", "HeadRounds", "let_go_of_round"]

log = logging.getLogger(__name__)

_BATCH = 50
"""Groups evaluated between two looks at the time (about 5 ms of work at 10 partitions a group)."""
_UNTRACK_BATCH = 2000
"""Objects taken out of the collector's lists between two looks at the time (about 0.1 ms)."""
_FIRST_EVALUATION_POLL_S = 0.01
_FIRST_BACKOFF_S = 0.5
"""After a failed round, the retry waits for the next HEAD round, at most this long (doubling to the cap)."""
_MAX_BACKOFF_S = 30.0


def let_go_of_round(replaced: Round) -> None:
    """Free a replaced round's statuses and figures a slice at a time (`let_go`) rather than in one go when
    its last reference is dropped: at 1,000,000 group-partitions that one go held the event loop for 0.5-0.7
    s."""
    parts = replaced.statuses.values(), replaced.lag_seconds.values(), replaced.headroom.values()
    let_go(*parts, replaced.reads)


_VALUES = frozenset(
    {
        GroupStatus,
        GroupReason,
        Partitions,
        PartitionStatus,
        Commit,
        Reason,
        LagSeconds,
        Headroom,
        GroupLagSeconds,
        GroupHeadroom,
        PartitionOffset,
        CacheEntry,
        array,
    }
)
"""What a round makes by the million, taken out of the cycle collector's lists (`untrack_young`): immutable
values built of values, never part of a reference cycle (tests/unit/test_loop_stalls.py checks what they
hold). Arrays among them (a group's window ends and lags, its seconds of lag and headroom): CPython tracks
every array, though one holds only numbers, and takes none out by itself. The evaluation cache's entries
among them: 100,000 at 1,000,000 group-partitions, which the full collection every
`full_collection_every` walked."""


def _tuples_of(result: Round) -> Iterator[list[object]]:
    """Each group's tuples of partition reasons, lag in seconds and headroom, and its reason's tuple of
    worst partitions, `_BATCH` groups at a time, and the round's reads: CPython never takes out a tuple that
    holds objects of a class, even untracked ones, and takes out a tuple of tuples only at the collection
    after the one that took out the tuples it holds (a group's worst partitions, 100,000 tuples at 1,000,000
    group-partitions, stayed tracked until the full collection every `full_collection_every`)."""
    lags, rooms = result.lag_seconds, result.headroom
    held: list[object] = []
    for count, (group, status) in enumerate(result.statuses.items(), 1):
        held += (status.partitions.reasons, lags.get(group), rooms.get(group))
        if status.reason is not None:
            held.append(status.reason.worst)
        if count % _BATCH == 0:
            yield held
            held = []
    yield [*held, result.reads]


def _in_batches(objects: list[object]) -> Iterator[list[object]]:
    for start in range(0, len(objects), _UNTRACK_BATCH):
        yield objects[start : start + _UNTRACK_BATCH]


class HeadRounds(Protocol):
    """What evaluation reads of the HEAD poller (`sources.cluster.HeadPoller` provides it)."""

    @property
    def health(self) -> ClusterHealth: ...

    async def next_round(self, seen: int) -> int:
        """Wait until more than `seen` rounds reached the cluster; returns how many have."""
        ...


class Evaluation:
    """The evaluation rounds of one cluster, and the round published last."""

    def __init__(
        self,
        name: str,
        storage: Storage,
        cache: EvaluationCache,
        head: HeadRounds,
        progress: SourceProgress,
        *,
        stream_slack: float,
        timelag: TimeLag | None = None,
        restored_cluster_id: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.published = Round(name)
        """The last evaluation round: everything the exposition reads of statuses and their figures."""
        self.failures = 0
        """Rounds that raised; each is retried."""
        self._storage = storage
        self.cache = cache
        """Statuses kept between rounds, re-evaluated only when they could have changed."""
        self._head = head
        self._progress = progress
        self._stream_slack = stream_slack
        self._timelag = timelag
        self._restored_cluster_id = restored_cluster_id
        self._restored_pruned = False
        self._listeners: list[Callable[[], None]] = []
        self._clock = clock
        self._lock = asyncio.Lock()
        self._failing = False
        self._meanwhile: dict[str, tuple[GroupStatus | None, GroupFigures | None]] | None = None
        """While a round runs: the groups an admin deletion re-evaluated meanwhile, which the round keeps."""
        self._containers_out: tuple[int, int] | None = None
        """The storage's and the HEAD histories' `containers_version` when a round last took their containers
        out of the collector's lists."""

    async def run(self) -> None:
        """Evaluate after every HEAD round until cancelled; a failed round is retried, never raised."""
        # Polled, not awaited on an event: the two sources know nothing of each other or of this task, and
        # the wait lasts only the start-up.
        while not (self._progress.caught_up and self._head.health.rounds):  # noqa: ASYNC110
            await asyncio.sleep(_FIRST_EVALUATION_POLL_S)
        self._storage.set_replay_heads(None)
        backoff = _FIRST_BACKOFF_S
        while True:
            seen = self._head.health.rounds
            if await self._attempt():
                backoff = _FIRST_BACKOFF_S
                await self._head.next_round(seen)
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):
                    await self._head.next_round(seen)
            backoff = min(backoff * 2, _MAX_BACKOFF_S)

    async def _attempt(self) -> bool:
        try:
            await self.evaluate()
        except Exception as exc:
            self.failures += 1
            if not self._failing:
                log.error(
                    "cluster %s: evaluation failed (%s); the last statuses stay published and the round is "
                    "retried (lagwatch_evaluation_failures_total)",
                    self.name,
                    cause(exc),
                    exc_info=exc,
                )
            self._failing = True
            return False
        if self._failing:
            log.info("cluster %s: evaluation succeeds again", self.name)
        self._failing = False
        return True

    def _instant(self, now: float) -> float | None:
        """The instant to evaluate at; None while evaluation would be premature.

        Before the committed offsets were first read to their end and a HEAD round came in, statuses of a
        partial replay would be false (a group whose newer commits are not read yet looks stopped): none are
        published. Afterwards, while the stream of committed offsets is interrupted or behind, evaluation
        is made at the instant up to which it is known complete, so that the clock alone cannot turn a
        partition STOP because lagwatch could not read its commits."""
        progress = self._progress
        if not progress.caught_up or not self._head.health.rounds:
            return None
        as_of = progress.complete_as_of
        if as_of is None or now - as_of <= self._stream_slack:
            return now
        evaluated_now = -math.inf if self.published.as_of is None else self.published.as_of
        return max(as_of, min(evaluated_now, now))

    async def evaluate(self) -> None:
        """One round, if it is not premature: expire stale groups, re-evaluate what changed, bring lag in
        seconds and retention headroom up to date, publish. Raises what the round raises."""
        async with self._lock:
            clock = self._clock()
            now = self._instant(clock)
            if now is not None:
                await self._evaluate_at(now, clock)

    async def evaluate_now(self) -> None:
        """A round at the clock's time whatever the sources have read (a runtime whose sources never run)."""
        async with self._lock:
            clock = self._clock()
            await self._evaluate_at(clock, clock)

    async def _evaluate_at(self, now: float, clock: float) -> None:
        for group in self._storage.expire(int(now * 1000)):
            log.info("cluster %s: group %s expired (no commit within expire_group)", self.name, group)
        if self._timelag is not None and not self._restored_pruned and self._head.health.rounds:
            self._prune_restored(self._timelag)
        # 100,000 group-partitions take about a second to evaluate: health checks and scrapes get their turn
        # every `SLICE_S` instead of waiting for the whole round (by the clock: a fixed number of groups per
        # turn took 50-100 ms at 1,000,000 group-partitions, and longer with groups of many partitions).
        steps = evaluation_round(
            self.cache,
            self._storage,
            self._timelag,
            now,
            clock,
            timer=time.perf_counter,
            batch=_BATCH,
            previous=self.published,
        )
        self._meanwhile = {}
        try:
            with gc_paused():
                turn = time.perf_counter()
                while True:
                    try:
                        next(steps)
                    except StopIteration as done:
                        result: Round = done.value
                        break
                    if time.perf_counter() - turn >= SLICE_S:
                        # Out of the collector's lists for good, the statuses and figures are walked by no
                        # collection, not even the full one that frees what freezing kept (at 1,000,000
                        # group-partitions, seconds of the loop every 10 minutes).
                        untrack_young(_VALUES)
                        gc.collect(1)
                        await asyncio.sleep(0)
                        turn = time.perf_counter()
                # Before the collector is back: it would walk the rest of the round's objects at once.
                untrack_young(_VALUES)
                containers, version = self._containers()
                for held in chain(_tuples_of(result), _in_batches(containers)):
                    untrack(held)
                    if time.perf_counter() - turn >= SLICE_S:
                        await asyncio.sleep(0)
                        turn = time.perf_counter()
                self._containers_out = version
                # A turn of the loop of its own for the freeze, which runs the full collection every
                # `full_collection_every`: after the round's last step and the taking out above, that
                # collection made one callback of 187 ms of CPU at 1,000,000 group-partitions (bench_million
                # --stalls: 158 ms in the freeze, 55 ms taking out the last step's values); with publishing
                # after it, 134-141 ms (the collection 70-74 ms, then a young one of 36-40 ms and 25 ms of
                # handing the round before to let_go).
                await asyncio.sleep(0)
                freeze_survivors()
                await asyncio.sleep(0)
            for group, (status, figures) in self._meanwhile.items():
                result = result.with_group(group, status, figures)
        finally:
            self._meanwhile = None
        replaced, self.published = self.published, result
        let_go_of_round(replaced)
        self._want(result)
        self._tell()

    def _containers(self) -> tuple[list[object], tuple[int, int]]:
        """What grows with the groups and partitions besides a round's values: the storage's and the cache's
        dicts, sets and lists (a dict takes itself back into the collector's lists when something it may walk
        goes in, a new group), the HEAD histories the poller or a restored state file made and their dict. At
        1,000,000 group-partitions 10,000 histories and some 600,000 references that every full collection
        walked; taken out a slice at a time, 0.5 ms per 10,000. The cache's dicts are new at every round; the
        storage's containers and the histories only when their `containers_version` moved since they were
        last taken out (a group, a topic or a HEAD history arrived), which in the steady state they seldom do.
        Returns them and the versions they are of."""
        timelag = self._timelag
        version = (self._storage.containers_version, -1 if timelag is None else timelag.containers_version)
        kept = self.cache.containers()
        if version != self._containers_out:
            kept += self._storage.containers()
            if timelag is not None:
                kept += timelag.containers()
        return kept, version

    def reevaluate_group(self, group: str) -> None:
        """Re-evaluate one group at once (after an admin deletion) and publish its status with its figures; a
        round running meanwhile keeps them."""
        clock = self._clock()
        status = self.cache.refresh_group(self._storage, group, clock)
        figures = None if status is None else group_figures(status, self._storage, self._timelag, clock)
        if self._meanwhile is not None:
            self._meanwhile[group] = (status, figures)
        self.published = self.published.with_group(group, status, figures)
        if figures is not None:
            self._want(figures)
        self._tell()

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call `listener` (on the event loop) each time a round, or a group re-evaluated at once, is
        published, in the order they subscribed."""
        self._listeners.append(listener)

    def _tell(self) -> None:
        for listener in self._listeners:
            listener()

    def _want(self, wanting: Round | GroupFigures) -> None:
        """Queue the exact reads that published figures asked for."""
        if self._timelag is not None and wanting.reads:
            self._timelag.want(wanting.reads)

    def _prune_restored(self, timelag: TimeLag) -> None:
        """Histories restored for topics deleted (or re-created) while lagwatch was down would never be told
        apart from live ones: the first metadata decides. A file written for another Kafka cluster that was
        given the same name would mislead on every topic the two share: all of it goes."""
        self._restored_pruned = True
        live = set(self._storage.topics())
        saved_for, running_on = self._restored_cluster_id, self._head.health.cluster_id
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
