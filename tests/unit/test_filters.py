"""NameFilter: Burrow's group allow/deny semantics (unanchored search; allow must match, deny must not)."""

from __future__ import annotations

import re

import pytest

from exporter.core.filters import NameFilter

# Burrow's regexFilterTests (core/internal/storage/inmemory_test.go): pattern, matching, non-matching names.
BURROW_CASES = [
    (".*", ["testgroup", "ok_group", "dash-group", "num02group"], []),
    ("test.*", ["testgroup"], ["ok_group", "dash-group", "num02group"]),
    (".*[0-9]+.*", ["num02group"], ["ok_group", "dash-group", "testgroup"]),
    ("onlygroup", ["onlygroup"], ["testgroup", "ok_group", "dash-group", "num02group"]),
]


@pytest.mark.parametrize(("pattern", "matching", "other"), BURROW_CASES)
def test_allow_list_accepts_only_matches(pattern: str, matching: list[str], other: list[str]) -> None:
    accept = NameFilter(allow=pattern)
    assert [accept(name) for name in matching] == [True] * len(matching)
    assert [accept(name) for name in other] == [False] * len(other)


@pytest.mark.parametrize(("pattern", "matching", "other"), BURROW_CASES)
def test_deny_list_rejects_matches(pattern: str, matching: list[str], other: list[str]) -> None:
    accept = NameFilter(deny=pattern)
    assert [accept(name) for name in matching] == [False] * len(matching)
    assert [accept(name) for name in other] == [True] * len(other)


def test_search_is_unanchored() -> None:
    accept = NameFilter(allow="test")
    assert accept("my-test-group") is True
    assert accept("tes") is False


def test_allow_and_deny_combine() -> None:
    accept = NameFilter(allow="^orders-", deny="-canary$")
    assert accept("orders-billing") is True
    assert accept("orders-billing-canary") is False
    assert accept("payments") is False


@pytest.mark.parametrize("unset", [None, ""])
def test_unset_or_empty_patterns_accept_everything(unset: str | None) -> None:
    accept = NameFilter(allow=unset, deny=unset)
    assert accept("") is True
    assert accept("anything") is True


def test_invalid_pattern_fails_at_construction() -> None:
    with pytest.raises(re.error):
        NameFilter(allow="[")


def test_repr_shows_patterns() -> None:
    assert repr(NameFilter(deny="^_")) == "NameFilter(allow=None, deny='^_')"
