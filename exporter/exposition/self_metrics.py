"""lagwatch's own metrics on /metrics: build info, the sources' record counters, exact reads, the storage's
commit counters, failed evaluation rounds, the HTTP guard's counters and the process, platform and GC
collectors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.core.model import (
    ConsumerGroupAssignment,
    ConsumerGroupMember,
    ConsumerGroupMemberLeft,
    ConsumerGroupTopics,
    DecodeError,
    GroupMetadata,
    GroupTombstone,
    OffsetCommit,
    OffsetTombstone,
    SkippedRecord,
)
from exporter.exposition.families import registry_family
from exporter.exposition.guard.counters import GuardCounters
from exporter.exposition.handle import ClusterHandle

__all__ = ["self_registry"]


class _SelfCollector(Collector):
    """lagwatch's own counters, built fresh from the sources' progress on every scrape."""

    def __init__(self, clusters: Mapping[str, ClusterHandle]) -> None:
        self._clusters = clusters

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        families = self._families()
        build, records, errors, skipped, reads, read_failures, reads_pending, stored, dropped, failures = (
            families
        )
        build.add_metric([__version__], 1)
        for name, cluster in self._clusters.items():
            failures.add_metric([name], cluster.evaluation_failures)
            stats = cluster.stats()
            stored.add_metric([name], stats.commits_stored)
            # Every reason is there, zero until a commit is refused for it.
            for reason, count in stats.commits_dropped.items():
                dropped.add_metric([name, reason], count)
            counts = cluster.exact_read_counts
            if counts is not None:
                reads.add_metric([name], counts[0])
                read_failures.add_metric([name], counts[1])
                reads_pending.add_metric([name], counts[2])
            progress = cluster.progress
            for kind, kind_type in RECORD_KINDS:
                records.add_metric([name, kind], progress.records.get(kind_type, 0))
            for key_type, count in sorted(progress.decode_errors.items()):
                errors.add_metric([name, key_type], count)
            for record_type, count in sorted(progress.skipped_types.items()):
                skipped.add_metric([name, str(record_type)], count)
        return families

    @staticmethod
    def _families() -> list[CounterMetricFamily | GaugeMetricFamily]:
        return [registry_family(name) for name in _FAMILIES]


RECORD_KINDS: tuple[tuple[str, type], ...] = tuple(
    sorted(
        {
            "offset_commit": OffsetCommit,
            "offset_tombstone": OffsetTombstone,
            "group_metadata": GroupMetadata,
            "group_tombstone": GroupTombstone,
            "consumer_group_member": ConsumerGroupMember,
            "consumer_group_member_left": ConsumerGroupMemberLeft,
            "consumer_group_assignment": ConsumerGroupAssignment,
            "consumer_group_topics": ConsumerGroupTopics,
            "skipped": SkippedRecord,
            "decode_error": DecodeError,
        }.items()
    )
)
"""The `kind` label of `lagwatch_offsets_records_total` for each record type, every kind emitted from the
start."""
_FAMILIES = (
    "lagwatch_build_info",
    "lagwatch_offsets_records_total",
    "lagwatch_offsets_decode_errors_total",
    "lagwatch_offsets_skipped_records_total",
    "lagwatch_exact_reads_total",
    "lagwatch_exact_read_failures_total",
    "lagwatch_exact_reads_pending",
    "lagwatch_commits_stored_total",
    "lagwatch_commits_dropped_total",
    "lagwatch_evaluation_failures_total",
)


def self_registry(clusters: Mapping[str, ClusterHandle], guard: GuardCounters) -> CollectorRegistry:
    """The registry of lagwatch's own metrics, collected afresh on every scrape."""
    registry = CollectorRegistry()
    registry.register(_SelfCollector(clusters))
    registry.register(guard)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry
