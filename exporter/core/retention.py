"""Retention headroom: how close a group-partition is to losing records it has not read, and how many it
lost.

Pure and synchronous. Inputs: the group's newest committed offset c, the partition's log-start offset s
(polled with the HEAD offsets), the topic's retention settings (polled with the metadata) and the partition's
lag in seconds (timelag.py). Outputs, per group-partition (docs/metrics.md, "Retention headroom"):

* lost = s - c when c < s, else 0: records retention (or DeleteRecords) removed before the group read them. A
  consumer resuming there gets OFFSET_OUT_OF_RANGE and skips them or resets, silently in both cases.
* margin = c - s when c >= s, else 0: records between the log start and the group's position. Kafka deletes
  whole segments from the start, so this is the room left whatever the retention kind (time or size).
* seconds = retention.ms / 1000 minus the age of the oldest record the group has not read (its lag in
  seconds; 0 when caught up), floored at 0, and 0 once records are lost. Only for topics whose cleanup.policy
  includes `delete` with a finite retention.ms, and only when the lag in seconds is known. Kafka deletes a
  segment only once its newest record is older than retention.ms, so the real margin is at least this: the
  figure is a lower bound, never an overestimate.

A compact-only topic has no retention headroom at all (nothing is deleted by age or size), so none of the
three is produced for it. Unknown settings (DescribeConfigs denied or not answered yet) give lost and margin,
which need no settings, but no seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

__all__ = ["CONFIG_NAMES", "Headroom", "TopicRetention", "headroom", "parse_topic_config"]

CONFIG_NAMES = ("cleanup.policy", "retention.ms", "retention.bytes")
"""The topic configurations asked for with DescribeConfigs."""


class TopicRetention(NamedTuple):
    """A topic's retention settings as Kafka reports them (topic override or broker default)."""

    delete: bool
    """cleanup.policy includes `delete`: segments are removed by age and size."""
    compact: bool
    """cleanup.policy includes `compact`."""
    retention_ms: int | None
    """retention.ms; None when infinite (-1) or the policy does not delete."""
    retention_bytes: int | None
    """retention.bytes per partition; None when infinite (-1) or the policy does not delete."""


class Headroom(NamedTuple):
    """Retention headroom of one group-partition. A NamedTuple: one is built per committed partition and
    round."""

    lost: int
    """Records removed before the group read them (log start minus committed offset), else 0."""
    margin: int
    """Committed offset minus log start, else 0."""
    seconds: float | None
    """Seconds before the oldest unread record may be deleted by retention.ms; None when unknown or when no
    time-based retention applies."""


def parse_topic_config(entries: Mapping[str, str | None]) -> TopicRetention | None:
    """The retention of a topic from its DescribeConfigs entries; None when an entry is missing or malformed
    (the topic's retention is then unknown rather than guessed)."""
    policy = entries.get("cleanup.policy")
    if policy is None:
        return None
    policies = {part.strip().lower() for part in policy.split(",")}
    delete = "delete" in policies
    try:
        retention_ms = int(entries.get("retention.ms") or "")
        retention_bytes = int(entries.get("retention.bytes") or "")
    except ValueError:
        return None
    return TopicRetention(
        delete=delete,
        compact="compact" in policies,
        retention_ms=retention_ms if delete and retention_ms >= 0 else None,
        retention_bytes=retention_bytes if delete and retention_bytes >= 0 else None,
    )


_new_headroom = tuple.__new__
"""Headroom without NamedTuple's Python-level __new__ (half the cost): one is built per committed partition
and round."""


def headroom(
    committed: int | None,
    log_start: int | None,
    retention: TopicRetention | None,
    lag_seconds: float | None,
) -> Headroom | None:
    """The headroom of a group-partition; None when the group never committed, the log start is unknown, or
    the topic is compact-only."""
    if committed is None or log_start is None:
        return None
    if retention is not None and not retention.delete:
        return None
    lost = log_start - committed if committed < log_start else 0
    margin = committed - log_start if committed > log_start else 0
    seconds: float | None = None
    if retention is not None and retention.retention_ms is not None:
        if lost:
            seconds = 0.0
        elif lag_seconds is not None:
            seconds = max(0.0, retention.retention_ms / 1000 - lag_seconds)
    return _new_headroom(Headroom, (lost, margin, seconds))
