"""The demo scenarios: their names and partitions, the workload's configuration, what a scenario has done, and
the pure part, which offset a scenario commits at each tick (`planned_offset`, docs/workload.md)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "CONSUMER_PROTOCOL",
    "DEFAULT_PREFIX",
    "PARTITIONS",
    "SCENARIOS",
    "ScenarioState",
    "WorkloadConfig",
    "planned_offset",
    "replication_factor",
    "slow_quota",
]

CONSUMER_PROTOCOL = "consumer-protocol"
SCENARIOS = ("healthy", "slow", "stalled", "stopped", "rewound", CONSUMER_PROTOCOL)
PARTITIONS: Mapping[str, int] = {
    "healthy": 3,
    "slow": 2,
    "stalled": 1,
    "stopped": 1,
    "rewound": 1,
    CONSUMER_PROTOCOL: 2,
}
"""Partitions of each scenario's topic when the workload creates it."""

SLOW_SHARE = 4
"""The slow consumer takes 1/SLOW_SHARE of what is produced. Its lag must grow at every commit even when
lagwatch's HEAD offset is one refresh old; a quarter leaves a wide margin where a half would leave none."""

DEFAULT_PREFIX = "lagwatch-demo"
"""Topics and groups are named `<prefix>-<scenario>`."""


def replication_factor(brokers: int) -> int:
    """Replicas of the workload's topics: three, as in production, where the cluster has that many brokers."""
    return max(1, min(3, brokers))


def slow_quota(rate: float, commit_interval: float) -> int:
    """Records the slow consumer takes per partition and commit interval: at least one."""
    return max(1, math.floor(rate * commit_interval / SLOW_SHARE))


def planned_offset(
    scenario: str, tick: int, *, end: int, previous: int, phase: int, quota: int
) -> int | None:
    """The offset `scenario` commits for one partition at its `tick`-th commit (from 0); None to stop.

    Args:
        scenario: a name from SCENARIOS other than consumer-protocol (an external consumer commits for it).
        tick: how many commits this consumer made before.
        end: the partition's end offset now.
        previous: the offset committed at the previous tick (the consumer's start position at tick 0).
        phase: commits per phase of the stopped and rewound scenarios; matches lagwatch's window when it is
            set to `storage.intervals`.
        quota: records the slow consumer takes per tick (`slow_quota`).
    """
    if scenario == "healthy":
        return end
    if scenario == "slow":
        return min(end, previous + quota)
    if scenario == "stalled":
        return end if tick == 0 else previous
    if scenario == "stopped":
        return end if tick < phase else None
    if scenario == "rewound":
        # Burrow looks only at the first rewind in the window and forgets it once an offset at or above the
        # one before it comes back, so the rewound offset is held until the pre-rewind commit leaves a window
        # of `phase` commits; then the consumer catches up again and the cycle restarts.
        step = tick % (2 * phase - 1)
        if step < phase:
            return end
        return previous // 2 if step == phase else previous
    raise ValueError(f"no commit plan for scenario {scenario!r}")


@dataclass(frozen=True, slots=True)
class WorkloadConfig:
    """What to run and how fast; invalid values raise ValueError."""

    bootstrap_servers: tuple[str, ...]
    scenarios: tuple[str, ...] = SCENARIOS
    prefix: str = DEFAULT_PREFIX
    commit_interval: float = 5.0
    """Seconds between two commits of a group (also the console consumer's auto-commit interval)."""
    rate: float = 10.0
    """Records produced per second to each partition."""
    phase: int = 10
    """Commits per phase of the stopped and rewound scenarios; set it to lagwatch's `storage.intervals`."""
    console_consumer: tuple[str, ...] = ()
    """Command that runs Kafka's console consumer, for consumer-protocol; empty to look for one."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.scenarios) - set(SCENARIOS))
        if unknown:
            raise ValueError(f"unknown scenario {unknown[0]!r}; choose from {', '.join(SCENARIOS)}")
        if not self.bootstrap_servers:
            raise ValueError("no bootstrap servers")
        if self.commit_interval <= 0 or self.rate <= 0:
            raise ValueError("commit interval and rate must be positive")
        if self.phase < 2:
            raise ValueError("phase must be at least 2 commits")


@dataclass
class ScenarioState:
    """What one scenario has done so far; read it, do not write it."""

    name: str
    topic: str
    group: str
    partitions: int
    running: bool = False
    """Whether its consumer is up (joined or joining the group)."""
    commits: int = 0
    """Commits made by the current consumer."""
    committed: dict[int, int] = field(default_factory=dict)
    """Last committed offset per partition (not known for consumer-protocol, which commits by itself)."""
    rewound_to: dict[int, int] = field(default_factory=dict)
    """rewound: the offset of the latest rewind per partition."""
    unavailable: str = ""
    """Why the scenario could not run (consumer-protocol without a KIP-848 broker or console consumer)."""
