"""Tests of the pure part of the demo workload (exporter.tools.workload.scenarios): the commit plans, exactly
and against Burrow's rules.

The property tests replay a plan under steady production in an idealised cluster (HEAD known exactly at every
commit, one commit per second, a window as long as the workload's phase) and evaluate every window with
exporter.core.evaluator: each scenario must give the status it is named for.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.core.model import Commit, Status
from exporter.core.verdicts import evaluate_partition
from exporter.tools.workload.command import add_arguments
from exporter.tools.workload.consumers import console_consumer_command
from exporter.tools.workload.scenarios import (
    CONSUMER_PROTOCOL,
    PARTITIONS,
    SCENARIOS,
    WorkloadConfig,
    planned_offset,
    replication_factor,
    slow_quota,
)

T_MS = 1_700_000_000_000
INTERVAL_MS = 1000


@dataclass(frozen=True)
class Replay:
    commits: list[Commit]
    ends: list[int]
    """The partition's end offset at each commit."""

    def status(self, tick: int, phase: int) -> Status:
        """The status right after commit `tick`, with a window of `phase` commits."""
        window = self.commits[max(0, tick + 1 - phase) : tick + 1]
        heads = self.ends[max(0, tick + 1 - phase) : tick + 1]
        current_lag = self.ends[tick] - window[-1].offset
        return evaluate_partition(window, heads, current_lag, window[-1].timestamp_ms / 1000).status


def replay(
    scenario: str, ticks: int, *, phase: int, produced: int, quota: int, start: int = 0, first_end: int = 0
) -> Replay:
    """Commit `ticks` times as planned while `produced` records arrive between two commits."""
    commits: list[Commit] = []
    ends: list[int] = []
    previous = start
    for tick in range(ticks):
        end = first_end + produced * (tick + 1)
        offset = planned_offset(scenario, tick, end=end, previous=previous, phase=phase, quota=quota)
        if offset is None:
            break
        commits.append(Commit(offset, order=tick, timestamp_ms=T_MS + tick * INTERVAL_MS, lag=end - offset))
        ends.append(end)
        previous = offset
    return Replay(commits, ends)


def offsets(scenario: str, ticks: int, **kwargs: int) -> list[int]:
    return [c.offset for c in replay(scenario, ticks, **kwargs).commits]


# ------------------------------------------------------------------------------------------------------------
# Exact plans.


def test_replication_factor_is_three_or_every_broker() -> None:
    assert [replication_factor(n) for n in (0, 1, 2, 3, 5)] == [1, 1, 2, 3, 3]


def test_healthy_commits_the_end_offset() -> None:
    assert offsets("healthy", 4, phase=3, produced=10, quota=2) == [10, 20, 30, 40]


def test_slow_takes_its_quota_and_never_passes_the_end() -> None:
    assert offsets("slow", 4, phase=3, produced=10, quota=3) == [3, 6, 9, 12]
    assert offsets("slow", 3, phase=3, produced=10, quota=3, start=8) == [10, 13, 16]


def test_stalled_consumes_once_then_repeats_that_offset() -> None:
    assert offsets("stalled", 5, phase=3, produced=10, quota=2, start=4) == [10, 10, 10, 10, 10]


def test_stopped_commits_for_one_phase_then_stops() -> None:
    assert offsets("stopped", 10, phase=3, produced=10, quota=2) == [10, 20, 30]
    assert planned_offset("stopped", 3, end=40, previous=30, phase=3, quota=2) is None


def test_rewound_cycles_catch_up_rewind_hold() -> None:
    # phase 3: three commits at the end, a rewind to half, one hold; the cycle is 2 * 3 - 1 commits long.
    assert offsets("rewound", 11, phase=3, produced=10, quota=2) == [
        10,
        20,
        30,
        15,
        15,
        60,
        70,
        80,
        40,
        40,
        110,
    ]


def test_rewound_with_the_shortest_phase_rewinds_every_third_commit() -> None:
    assert offsets("rewound", 6, phase=2, produced=10, quota=2) == [10, 20, 10, 40, 50, 25]


@pytest.mark.parametrize("scenario", [CONSUMER_PROTOCOL, "bogus"])
def test_scenarios_without_a_plan_are_refused(scenario: str) -> None:
    with pytest.raises(ValueError, match="no commit plan"):
        planned_offset(scenario, 0, end=1, previous=0, phase=2, quota=1)


@pytest.mark.parametrize(
    ("rate", "interval", "quota"), [(20.0, 1.0, 5), (10.0, 5.0, 12), (1.0, 1.0, 1), (0.1, 0.5, 1)]
)
def test_slow_quota_is_a_quarter_of_the_production_and_at_least_one(
    rate: float, interval: float, quota: int
) -> None:
    assert slow_quota(rate, interval) == quota


def test_every_scenario_has_a_topic_of_one_to_three_partitions() -> None:
    assert set(PARTITIONS) == set(SCENARIOS)
    assert all(1 <= count <= 3 for count in PARTITIONS.values())


# ------------------------------------------------------------------------------------------------------------
# The plans against Burrow's rules.

phases = st.integers(min_value=2, max_value=8)
productions = st.integers(min_value=2, max_value=500)
backlogs = st.integers(min_value=0, max_value=1000)


@given(phases, productions, backlogs)
def test_healthy_is_always_ok(phase: int, produced: int, backlog: int) -> None:
    run = replay("healthy", 3 * phase, phase=phase, produced=produced, quota=1, first_end=backlog)
    assert {run.status(tick, phase) for tick in range(3 * phase)} == {Status.OK}


@given(phases, productions, backlogs, st.data())
def test_slow_warns_once_its_window_is_past_the_first_commit(
    phase: int, produced: int, backlog: int, data: st.DataObject
) -> None:
    quota = data.draw(st.integers(min_value=1, max_value=produced - 1))
    start = data.draw(st.integers(min_value=0, max_value=backlog))
    ticks = 3 * phase
    run = replay("slow", ticks, phase=phase, produced=produced, quota=quota, start=start, first_end=backlog)
    assert [run.status(tick, phase) for tick in range(phase, ticks)] == [Status.WARN] * (ticks - phase)


@given(phases, productions, backlogs)
def test_stalled_stalls_once_its_caught_up_commit_left_the_window(
    phase: int, produced: int, backlog: int
) -> None:
    ticks = 3 * phase
    run = replay("stalled", ticks, phase=phase, produced=produced, quota=1, first_end=backlog)
    expected = [Status.OK] * phase + [Status.STALL] * (ticks - phase)
    assert [run.status(tick, phase) for tick in range(ticks)] == expected


@given(phases, productions, backlogs)
def test_rewound_is_rewind_exactly_while_it_holds_the_rewound_offset(
    phase: int, produced: int, backlog: int
) -> None:
    ticks = 3 * (2 * phase - 1)
    run = replay("rewound", ticks, phase=phase, produced=produced, quota=1, first_end=backlog)
    expected = [Status.REWIND if tick % (2 * phase - 1) >= phase else Status.OK for tick in range(ticks)]
    assert [run.status(tick, phase) for tick in range(ticks)] == expected


@given(phases, productions, st.integers(min_value=0, max_value=30))
def test_stopped_is_stop_once_the_silence_outlasts_the_window(
    phase: int, produced: int, silence: int
) -> None:
    run = replay("stopped", 2 * phase, phase=phase, produced=produced, quota=1)
    assert len(run.commits) == phase
    last = run.commits[-1]
    # The producer went on: every HEAD fetched since the last commit is past it.
    heads = [run.ends[-1] + produced * (k + 1) for k in range(phase)]
    evaluation = evaluate_partition(
        run.commits, heads, heads[-1] - last.offset, last.timestamp_ms / 1000 + silence
    )
    span_s = (phase - 1) * INTERVAL_MS // 1000
    assert evaluation.status == (Status.STOP if silence > span_s else Status.OK)


# ------------------------------------------------------------------------------------------------------------
# Configuration and arguments.


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(parser)
    return parser.parse_args(argv)


def test_arguments_default_to_every_scenario_at_a_production_pace() -> None:
    args = _parse()
    assert (args.scenarios, args.commit_interval, args.rate, args.phase) == (SCENARIOS, 5.0, 10.0, 10)
    assert (args.prefix, args.duration, args.console_consumer) == ("lagwatch-demo", None, [])


def test_arguments_are_parsed() -> None:
    args = _parse(
        *("--scenarios", "stalled, healthy,stalled", "--commit-interval", "0.5", "--phase", "4"),
        *(
            "--duration",
            "30",
            "--console-consumer",
            "kafka-console-consumer.sh --command-config c.properties",
        ),
    )
    assert args.scenarios == ("stalled", "healthy")
    assert (args.commit_interval, args.phase, args.duration) == (0.5, 4, 30.0)
    assert args.console_consumer == ["kafka-console-consumer.sh", "--command-config", "c.properties"]


@pytest.mark.parametrize(
    "argv",
    [
        ("--scenarios", "healthy,sleepy"),
        ("--scenarios", ","),
        ("--commit-interval", "0"),
        ("--rate", "inf"),
        ("--rate", "fast"),
        ("--phase", "1"),
        ("--phase", "2.5"),
    ],
)
def test_bad_arguments_are_refused(argv: tuple[str, ...]) -> None:
    with pytest.raises(argparse.ArgumentError):
        _parse(*argv)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"scenarios": ("healthy", "sleepy")}, "unknown scenario 'sleepy'"),
        ({"bootstrap_servers": ()}, "no bootstrap servers"),
        ({"rate": 0.0}, "must be positive"),
        ({"phase": 1}, "at least 2"),
    ],
)
def test_bad_configurations_are_refused(changes: dict[str, object], message: str) -> None:
    settings: dict[str, object] = {"bootstrap_servers": ("127.0.0.1:9092",), **changes}
    with pytest.raises(ValueError, match=message):
        WorkloadConfig(**settings)  # type: ignore[arg-type]


def test_without_a_console_consumer_on_path_the_checkouts_kafka_local_runs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "")
    kafka_local = Path(__file__).resolve().parents[2] / "scripts" / "kafka-local"
    assert kafka_local.is_file()
    assert console_consumer_command() == (sys.executable, str(kafka_local), "tool", "console-consumer")
