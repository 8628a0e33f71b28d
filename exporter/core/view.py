"""The read side of one cluster: what exposition (metrics, Burrow API, status page) may ask of it.

Exposition depends on this protocol, not on the storage or the evaluator: it reads stored topics, HEAD offsets
and windows, and the statuses the last evaluation round published, and it cannot write. The shell's cluster
runtime provides it over the real storage and the published round."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from exporter.core.model import GroupSnapshot, GroupStatus
from exporter.core.retention import Headroom
from exporter.core.storage import StorageStats


class ClusterReader(Protocol):
    """One cluster, read-only, as of its last published evaluation round."""

    @property
    def name(self) -> str: ...

    def topics(self) -> list[str]:
        """Every topic with known partitions, sorted."""
        ...

    def head_offsets(self, topic: str) -> tuple[int | None, ...] | None:
        """The newest HEAD offset of each partition of `topic`; None for an unknown topic."""
        ...

    def groups_for_topic(self, topic: str) -> list[str]:
        """The groups that committed offsets for `topic`, sorted."""
        ...

    def group_snapshot(self, group: str) -> GroupSnapshot | None:
        """The group's stored windows; None if unknown or expired."""
        ...

    def stats(self) -> StorageStats: ...

    def statuses(self) -> Mapping[str, GroupStatus]:
        """Every published status by group name."""
        ...

    def status(self, group: str) -> GroupStatus:
        """The published status of `group`, or Burrow's NOTFOUND answer for a group it does not have."""
        ...

    def headroom(self) -> Mapping[str, Sequence[Headroom | None]]:
        """Retention headroom by group, one entry per partition of the group's published status."""
        ...
