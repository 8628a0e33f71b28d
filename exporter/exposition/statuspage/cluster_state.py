"""One Kafka cluster as the status page shows it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from exporter.core.model import GroupStatus
from exporter.core.retention import Headroom
from exporter.core.timelag import LagSeconds

__all__ = ["ClusterState"]


@dataclass(frozen=True, slots=True)
class ClusterState:
    """One Kafka cluster as the page shows it."""

    name: str
    groups: Sequence[GroupStatus]
    up: bool = True
    since_ms: int | None = None
    """When `up` last changed; None before the first HEAD round ended."""
    last_error: str = ""
    head_refresh_ms: int | None = None
    caught_up: bool = True
    lag_seconds: Mapping[str, Sequence[LagSeconds | None]] = field(default_factory=dict)
    """Per group, aligned with its status's partitions; a group missing here has no lag in seconds."""
    headroom: Mapping[str, Sequence[Headroom | None]] = field(default_factory=dict)
    """Retention headroom per group, aligned like `lag_seconds`."""
