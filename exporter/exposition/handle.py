"""What the HTTP server reads of one Kafka cluster: the protocols `app.ClusterRuntime` provides."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from exporter.core.model import ClusterState, GroupStatus
from exporter.core.retention import Headroom
from exporter.core.storage import Storage
from exporter.exposition.metrics import ClusterView
from exporter.settings import ClusterSettings

__all__ = ["ClusterHandle", "ProgressHandle"]


class ProgressHandle(Protocol):
    """What the committed-offsets source of a cluster has read (the app's `SourceProgress`)."""

    @property
    def records(self) -> Mapping[str, int]: ...

    @property
    def decode_errors(self) -> Mapping[str, int]: ...

    @property
    def skipped_types(self) -> Mapping[int, int]: ...


class ClusterHandle(Protocol):
    """One Kafka cluster as the server reads it, on the event loop; `app.ClusterRuntime` provides it."""

    @property
    def name(self) -> str: ...

    @property
    def settings(self) -> ClusterSettings: ...

    @property
    def storage(self) -> Storage: ...

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

    def statuses(self) -> Mapping[str, GroupStatus]:
        """The cached evaluation of every group, by name."""
        ...

    def view(self) -> ClusterView: ...

    def headroom(self) -> Mapping[str, Sequence[Headroom | None]]:
        """Retention headroom by group, one entry per partition of the group's current status; a group whose
        status changed since the figures were computed is missing."""
        ...

    def delete_group(self, group: str, topic: str | None = None) -> bool: ...
