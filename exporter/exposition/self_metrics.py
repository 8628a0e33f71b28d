"""lagwatch's own metrics on /metrics: build info, the sources' record counters, exact reads, the storage's
commit counters, the HTTP guard's counters and the process, platform and GC collectors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.core.decoder import RECORD_KINDS
from exporter.exposition.guard import GuardCounters
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
        build, records, errors, skipped, reads, read_failures, reads_pending, stored, dropped = families
        build.add_metric([__version__], 1)
        for name, cluster in self._clusters.items():
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
            for kind in sorted(set(RECORD_KINDS).union(progress.records)):
                records.add_metric([name, kind], progress.records.get(kind, 0))
            for key_type, count in sorted(progress.decode_errors.items()):
                errors.add_metric([name, key_type], count)
            for record_type, count in sorted(progress.skipped_types.items()):
                skipped.add_metric([name, str(record_type)], count)
        return build, records, errors, skipped, reads, read_failures, reads_pending, stored, dropped

    @staticmethod
    def _families() -> tuple[
        GaugeMetricFamily,
        CounterMetricFamily,
        CounterMetricFamily,
        CounterMetricFamily,
        CounterMetricFamily,
        CounterMetricFamily,
        GaugeMetricFamily,
        CounterMetricFamily,
        CounterMetricFamily,
    ]:
        return (
            GaugeMetricFamily("lagwatch_build_info", "lagwatch's version; always 1.", labels=["version"]),
            CounterMetricFamily(
                "lagwatch_offsets_records",
                "Records read from the committed offsets (__consumer_offsets or the admin API), by kind.",
                labels=["kafka_cluster", "kind"],
            ),
            CounterMetricFamily(
                "lagwatch_offsets_decode_errors",
                "Malformed records of __consumer_offsets, by key type; counted, logged and skipped.",
                labels=["kafka_cluster", "key_type"],
            ),
            CounterMetricFamily(
                "lagwatch_offsets_skipped_records",
                "Records of __consumer_offsets key types lagwatch does not interpret, by key type.",
                labels=["kafka_cluster", "key_type"],
            ),
            CounterMetricFamily(
                "lagwatch_exact_reads",
                "Records read from Kafka to time a committed offset exactly (lag in seconds).",
                labels=["kafka_cluster"],
            ),
            CounterMetricFamily(
                "lagwatch_exact_read_failures",
                "Exact reads that failed and will be retried.",
                labels=["kafka_cluster"],
            ),
            GaugeMetricFamily(
                "lagwatch_exact_reads_pending",
                "Exact reads waiting for their turn under the concurrency and rate limits.",
                labels=["kafka_cluster"],
            ),
            CounterMetricFamily(
                "lagwatch_commits_stored",
                "Committed offsets placed in a group-partition's window.",
                labels=["kafka_cluster"],
            ),
            CounterMetricFamily(
                "lagwatch_commits_dropped",
                "Committed offsets the storage refused, by reason (expired, group_filtered, topic_filtered, "
                "unknown_partition, backfill, duplicate).",
                labels=["kafka_cluster", "reason"],
            ),
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
