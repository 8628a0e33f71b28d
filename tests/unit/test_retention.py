"""Retention headroom: the arithmetic, the settings parser, and what the storage keeps for it."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from exporter.core.retention import Headroom, TopicRetention, headroom, parse_topic_config
from exporter.core.storage import Storage

WEEK = TopicRetention(delete=True, compact=False, retention_ms=604_800_000, retention_bytes=None)
INFINITE = TopicRetention(delete=True, compact=False, retention_ms=None, retention_bytes=None)
COMPACTED = TopicRetention(delete=False, compact=True, retention_ms=None, retention_bytes=None)
BOTH = TopicRetention(delete=True, compact=True, retention_ms=3_600_000, retention_bytes=None)


def test_behind_the_log_start_everything_in_between_is_lost() -> None:
    assert headroom(committed=1_000, log_start=1_250, retention=WEEK, lag_seconds=None) == Headroom(
        250, 0, 0.0
    )


def test_ahead_of_the_log_start_the_margin_is_the_distance() -> None:
    assert headroom(1_250, 1_000, WEEK, 86_400.0) == Headroom(0, 250, 518_400.0)


def test_at_the_log_start_nothing_is_lost_and_no_margin_is_left() -> None:
    assert headroom(1_000, 1_000, WEEK, 10.5) == Headroom(0, 0, 604_789.5)


def test_caught_up_has_the_whole_retention() -> None:
    assert headroom(5, 0, WEEK, 0.0) == Headroom(0, 5, 604_800.0)


def test_older_than_retention_is_zero_never_negative() -> None:
    assert headroom(5, 0, WEEK, 700_000.0) == Headroom(0, 5, 0.0)


def test_seconds_unknown_without_lag_in_seconds() -> None:
    assert headroom(5, 0, WEEK, None) == Headroom(0, 5, None)


def test_infinite_retention_has_no_seconds_but_a_margin() -> None:
    # retention.bytes may still delete segments: the margin and a loss remain meaningful.
    assert headroom(5, 0, INFINITE, 10.0) == Headroom(0, 5, None)
    assert headroom(5, 8, INFINITE, None) == Headroom(3, 0, None)


def test_compact_only_has_no_headroom_at_all() -> None:
    assert headroom(5, 0, COMPACTED, 10.0) is None


def test_compact_and_delete_is_time_based() -> None:
    assert headroom(5, 0, BOTH, 600.0) == Headroom(0, 5, 3_000.0)


def test_unknown_settings_give_offsets_only() -> None:
    assert headroom(5, 7, None, 10.0) == Headroom(2, 0, None)


def test_nothing_without_a_commit_or_a_log_start() -> None:
    assert headroom(None, 0, WEEK, 0.0) is None
    assert headroom(5, None, WEEK, 0.0) is None


@given(
    st.integers(0, 10**15),
    st.integers(0, 10**15),
    st.sampled_from([WEEK, INFINITE, BOTH, None]),
    st.none() | st.floats(0, 10**10),
)
def test_never_negative_never_infinite(
    committed: int, start: int, retention: TopicRetention | None, lag: float | None
) -> None:
    result = headroom(committed, start, retention, lag)
    assert result is not None
    assert result.lost >= 0
    assert result.margin >= 0
    assert result.lost - result.margin == start - committed
    if result.seconds is not None:
        assert 0 <= result.seconds < math.inf


def test_parse_topic_config() -> None:
    assert (
        parse_topic_config({"cleanup.policy": "delete", "retention.ms": "604800000", "retention.bytes": "-1"})
        == WEEK
    )
    assert parse_topic_config(
        {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "1073741824"}
    ) == TopicRetention(True, False, None, 1_073_741_824)
    assert (
        parse_topic_config(
            {"cleanup.policy": "compact", "retention.ms": "604800000", "retention.bytes": "-1"}
        )
        == COMPACTED
    )
    assert (
        parse_topic_config(
            {"cleanup.policy": "compact, delete", "retention.ms": "3600000", "retention.bytes": "-1"}
        )
        == BOTH
    )


def test_parse_topic_config_unknown_rather_than_guessed() -> None:
    assert parse_topic_config({"retention.ms": "1", "retention.bytes": "-1"}) is None
    assert (
        parse_topic_config({"cleanup.policy": "delete", "retention.ms": "x", "retention.bytes": "-1"}) is None
    )
    assert (
        parse_topic_config({"cleanup.policy": "delete", "retention.ms": None, "retention.bytes": "-1"})
        is None
    )


def test_storage_keeps_log_starts_and_settings_per_topic() -> None:
    storage = Storage("test")
    storage.set_topics({"orders": 2}, 1_000)
    assert storage.start_offsets("orders") == (None, None)
    assert storage.topic_retention("orders") is None
    storage.set_start_offset("orders", 1, 42)
    storage.set_start_offset("orders", 5, 1)  # beyond the partition count: ignored
    storage.set_start_offset("unknown", 0, 1)
    storage.set_topic_retention({"orders": WEEK, "unknown": WEEK})
    assert storage.start_offsets("orders") == (None, 42)
    assert storage.topic_retention("orders") == WEEK
    assert storage.start_offsets("unknown") is None
    storage.set_topics({"orders": 3}, 2_000)
    assert storage.start_offsets("orders") == (None, 42, None)
    storage.set_topics({}, 3_000)
    assert storage.start_offsets("orders") is None


def test_log_start_changes_do_not_re_evaluate() -> None:
    # Statuses do not depend on the log start (Burrow fidelity): a moving log start must not bump versions.
    storage = Storage("test")
    storage.set_topics({"orders": 1}, 1_000)
    before = storage.group_version("g")
    storage.set_start_offset("orders", 0, 10)
    storage.set_topic_retention({"orders": WEEK})
    assert storage.group_version("g") == before
