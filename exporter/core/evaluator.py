"""When evaluation runs: `EvaluationCache`, Burrow's caching evaluator, keeps every group's status between
refreshes and re-evaluates a group (`verdicts.evaluate_group`, by the predicates of `rules`) only when its
status could have changed. Pure: `now` is an argument in seconds since the epoch.

A deliberate difference from Burrow, with its test: Burrow evaluates on request and caches for `expire-cache`
seconds; `EvaluationCache` re-evaluates a group when its data changed or when the clock reaches the instant at
which the STOP rule could flip.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Mapping
from types import MappingProxyType
from typing import NamedTuple, Protocol

from exporter.core.model import COMMIT_FIELDS, GroupSnapshot, GroupStatus, PartitionSnapshot, not_found
from exporter.core.rules import recent_lag_zero
from exporter.core.verdicts import completeness, evaluate_group

__all__ = ["CacheEntry", "EvaluationCache", "GroupSource"]


class GroupSource(Protocol):
    """What `EvaluationCache` reads; the storage provides it. `group_version` must change whenever anything in
    the group's snapshot changes (commits, owners, HEAD offsets of its partitions)."""

    def groups(self) -> list[str]: ...

    def group_version(self, group: str) -> int: ...

    def windows_version(self, group: str) -> int:
        """A number that changes whenever a commit window of the group changes (its `group_version` then
        changes too); unlike `group_version`, not when only HEAD offsets move. While it stays, a status
        evaluated before shares its window ends with the next."""
        ...

    def group_snapshot(self, group: str, now_ms: int) -> GroupSnapshot | None:
        """The group as stored; None if unknown or past its expiry at `now_ms`."""
        ...


def _stop_deadline(partition: PartitionSnapshot, minimum_complete: float) -> float:
    """First whole second at which Rule 3 makes this partition STOP without new data; inf if time cannot.

    Rule 3 holds from the first second s with s * 1000 - last_ts > last_ts - first_ts and stays true after it;
    every other input of the rules is data, which bumps the group version when it changes. Asked of lagging
    partitions only (`current_lag` above `allowed_lag`): `EvaluationCache._deadline` skips the others."""
    commits = partition.commits
    if (
        not commits
        or completeness(partition.slots, len(commits) // COMMIT_FIELDS) < minimum_complete
        or recent_lag_zero(commits[-COMMIT_FIELDS], partition.broker_offsets)
    ):
        return math.inf
    # The first and the newest commit's timestamps, without the column of them all.
    first_ts, last_ts = commits[2], commits[-COMMIT_FIELDS + 2]
    return (2 * last_ts - first_ts) // 1000 + 1


class CacheEntry(NamedTuple):
    """What the cache keeps of a group besides its status. A NamedTuple: a round may build one per group.
    Numbers only, but CPython never takes a tuple of a subclass out of the cycle collector's lists by itself
    (only exact tuples): the shell does (`evaluation._VALUES`)."""

    version: int
    windows: int
    """The source's `windows_version` of the group when it was evaluated."""
    evaluated_s: int
    deadline_s: float
    """The earliest whole second at which the cached status may be wrong without a version change."""


class EvaluationCache:
    """Group statuses kept between refreshes, re-evaluated only when they could have changed.

    `refresh` is meant to run after each HEAD refresh round; scrapes and API calls read `status`/`statuses`.
    A group is re-evaluated when its version changed, when `now` reaches its STOP deadline, or when the clock
    went backwards; a group the source no longer lists is dropped.
    """

    def __init__(self, allowed_lag: int = 0, minimum_complete: float = 0.0, *, cluster: str = "") -> None:
        self._allowed_lag = allowed_lag
        self._minimum_complete = minimum_complete
        self._cluster = cluster
        self._entries: dict[str, CacheEntry] = {}
        self._statuses: dict[str, GroupStatus] = {}
        self._overrides: dict[str, tuple[CacheEntry, GroupStatus] | None] | None = None
        """While a round runs: the groups `refresh_group` handled meanwhile, and their results."""

    @property
    def cluster(self) -> str:
        """The cluster whose groups are cached (it names NOTFOUND answers)."""
        return self._cluster

    def containers(self) -> list[object]:
        """Its dicts of entries and statuses by group, made anew by every refresh: they hold names and
        values, nothing that could refer back to them (for the shell's `gc_pause.untrack`)."""
        return [self._entries, self._statuses]

    def refresh(self, source: GroupSource, now: float) -> int:
        """Bring every group of `source` up to date at `now`; returns how many groups were evaluated."""
        steps = self.refresh_in_steps(source, now)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                evaluated: int = done.value
                return evaluated

    def refresh_in_steps(
        self, source: GroupSource, now: float, batch: int = 1000
    ) -> Generator[int, None, int]:
        """`refresh`, yielding after every `batch` groups checked, so that the caller can let other work
        run in between. The new statuses replace the old ones in the step that ends the generator, never
        before a yield; it returns how many groups were evaluated."""
        now_s = math.floor(now)
        entries: dict[str, CacheEntry] = {}
        statuses: dict[str, GroupStatus] = {}
        evaluated = 0
        overrides: dict[str, tuple[CacheEntry, GroupStatus] | None] = {}
        self._overrides = overrides
        try:
            for checked, group in enumerate(source.groups(), 1):
                version = source.group_version(group)
                entry = self._entries.get(group)
                if (
                    entry is not None
                    and entry.version == version
                    and entry.evaluated_s <= now_s < entry.deadline_s
                ):
                    entries[group] = entry
                    statuses[group] = self._statuses[group]
                else:
                    entries[group], statuses[group] = self._evaluate(source, group, version, now, entry)
                    evaluated += 1
                if checked % batch == 0:
                    yield checked
        finally:
            # A round that fails or is abandoned leaves the cache as it was, and no override window open.
            self._overrides = None
        # What happened between the yields wins over what this round saw before: groups deleted meanwhile
        # must not come back, and a group `refresh_group` re-evaluated keeps that newer result.
        alive = set(source.groups())
        for gone in [g for g in statuses if g not in alive]:
            del statuses[gone], entries[gone]
        for group, result in overrides.items():
            if result is None:
                statuses.pop(group, None)
                entries.pop(group, None)
            else:
                entries[group], statuses[group] = result
        # New dicts, not in-place updates: a mapping handed out by `statuses` stays one consistent round.
        self._entries = entries
        self._statuses = statuses
        return evaluated

    def refresh_group(self, source: GroupSource, group: str, now: float) -> GroupStatus | None:
        """Re-evaluate one group at once (after an admin deletion) and return its status; a group the source
        lost is dropped (None). A round in progress keeps this result."""
        result = (
            self._evaluate(source, group, source.group_version(group), now, self._entries.get(group))
            if group in source.groups()
            else None
        )
        if self._overrides is not None:
            self._overrides[group] = result
        entries = dict(self._entries)
        statuses = dict(self._statuses)
        if result is None:
            entries.pop(group, None)
            statuses.pop(group, None)
        else:
            entries[group], statuses[group] = result
        self._entries = entries
        self._statuses = statuses
        return None if result is None else result[1]

    def _evaluate(
        self, source: GroupSource, group: str, version: int, now: float, entry: CacheEntry | None
    ) -> tuple[CacheEntry, GroupStatus]:
        """A new evaluation of the group; `entry` is the group's entry before (its status is `_statuses`')."""
        snapshot = source.group_snapshot(group, int(now * 1000))
        windows = source.windows_version(group)
        status = evaluate_group(
            snapshot,
            now,
            allowed_lag=self._allowed_lag,
            minimum_complete=self._minimum_complete,
            cluster=self._cluster,
            group=group,
            previous=self._statuses.get(group),
            same_windows=entry is not None and entry.windows == windows,
        )
        now_s = math.floor(now)
        return CacheEntry(version, windows, now_s, self._deadline(snapshot, now_s)), status

    def _deadline(self, snapshot: GroupSnapshot | None, now_s: int) -> float:
        if snapshot is None:
            return math.inf
        allowed_lag, minimum_complete = self._allowed_lag, self._minimum_complete
        earliest = math.inf
        for part in snapshot.partitions:
            # Within the allowed lag, time cannot make it STOP; a round asks this of every partition, and
            # most are.
            lag = part.current_lag
            if lag is None or lag <= allowed_lag:
                continue
            deadline = _stop_deadline(part, minimum_complete)
            if now_s < deadline < earliest:
                earliest = deadline
        return earliest

    def status(self, group: str) -> GroupStatus:
        """The cached status of `group`, NOTFOUND if the last refresh did not see it."""
        found = self._statuses.get(group)
        return found if found is not None else not_found(self._cluster, group)

    def statuses(self) -> Mapping[str, GroupStatus]:
        """Every cached status by group name, as of the last refresh (a read-only view)."""
        return MappingProxyType(self._statuses)
