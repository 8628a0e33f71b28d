"""What the HTTP server reads of one Kafka cluster: the core's read side (`core.view.ClusterReader`) and what
only the shell knows, protocols that `runtime.ClusterRuntime` provides."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from exporter.core.model import ClusterState
from exporter.core.view import ClusterReader
from exporter.exposition.cluster_view import ClusterView
from exporter.settings import ClusterSettings

__all__ = ["ClusterHandle", "ProgressHandle"]


class ProgressHandle(Protocol):
    """What the committed-offsets source of a cluster has read (the app's `SourceProgress`)."""

    @property
    def records(self) -> Mapping[type, int]:
        """Records read, by record type (`model.Record`)."""
        ...

    @property
    def decode_errors(self) -> Mapping[str, int]: ...

    @property
    def skipped_types(self) -> Mapping[int, int]: ...


class ClusterHandle(ClusterReader, Protocol):
    """One Kafka cluster as the server reads it, on the event loop: the published read side, plus the
    cluster's settings, readiness, sources' progress and metrics view, and the admin API's one command."""

    @property
    def settings(self) -> ClusterSettings: ...

    @property
    def ready(self) -> bool:
        """True once the committed offsets were replayed, HEAD offsets fetched and every group evaluated."""
        ...

    def state(self) -> ClusterState:
        """Readiness, reachability and the age of the statuses."""
        ...

    @property
    def progress(self) -> ProgressHandle: ...

    @property
    def exact_read_counts(self) -> tuple[int, int, int] | None:
        """Exact reads for lag in seconds: done, failed, waiting; None when they are off."""
        ...

    @property
    def evaluation_failures(self) -> int:
        """Evaluation rounds that raised (each logged and retried)."""
        ...

    def view(self) -> ClusterView: ...

    def on_published(self, listener: Callable[[], None]) -> None:
        """Call `listener` on the event loop each time new statuses are published."""
        ...

    def delete_group(self, group: str, topic: str | None = None) -> bool:
        """The admin DELETE: forget the group (or one topic of it); True if anything was removed."""
        ...
