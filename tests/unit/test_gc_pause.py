"""The collector pause never leaves the collector off, however pauses overlap; freezing exempts the survivors
of a bulk pass from full collections and collects its young garbage first."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from exporter import gc_pause
from exporter.gc_pause import freeze_survivors, gc_paused, untrack, untrack_young


@pytest.fixture(autouse=True)
def _collector_on() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()
    gc.unfreeze()


def test_the_collector_is_off_inside_and_on_after() -> None:
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_nested_pauses_re_enable_once_at_the_outermost() -> None:
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_overlapping_pauses_end_with_the_collector_on() -> None:
    first = gc_paused()
    second = gc_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_the_collector_stays_off_until_the_last_overlapping_pause_ends() -> None:
    # A replay's fetch pauses, an evaluation round starts meanwhile, the fetch ends: the round goes on paused.
    fetch, round_ = gc_paused(), gc_paused()
    fetch.__enter__()
    round_.__enter__()
    fetch.__exit__(None, None, None)
    assert not gc.isenabled()
    round_.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_collector_turned_off_elsewhere_stays_off() -> None:
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()


def test_an_exception_inside_still_re_enables() -> None:
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_freezing_exempts_the_survivors_from_collections() -> None:
    frozen_before = gc.get_freeze_count()
    with gc_paused():
        kept = [_Node() for _ in range(1000)]
        freeze_survivors()
        assert gc.get_count() == (0, 0, 0)
    assert gc.get_freeze_count() - frozen_before >= len(kept) + 1


def test_freezing_collects_the_young_garbage_cycles_first() -> None:
    with gc_paused():
        first, second = _Node(), _Node()
        first.other, second.other = second, first
        gone = weakref.ref(first)
        del first, second
        freeze_survivors()
        assert gone() is None


def _frozen_dead_cycle() -> weakref.ref[_Node]:
    """A cycle alive at a freeze, dead right after it: what a request in flight at the end of a round is."""
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    gone = weakref.ref(first)
    with gc_paused():
        freeze_survivors()
    del first, second
    return gone


def test_a_cycle_frozen_alive_is_collected_at_the_next_full_collection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(gc_pause, "_FREEZES", gc_pause._Freezes(lambda: now[0]))
    gone = _frozen_dead_cycle()
    now[0] += gc_pause.FULL_COLLECTION_EVERY_S - 1
    with gc_paused():
        freeze_survivors()
    gc.collect()
    # Frozen, the dead cycle escapes collections until the interval has passed...
    assert gone() is not None
    now[0] += 1
    with gc_paused():
        freeze_survivors()
    # ...and then the freeze collects it before freezing what is alive.
    assert gone() is None
    assert gc.get_freeze_count() > 0


class _Value:
    __slots__ = ("__weakref__", "number")

    def __init__(self, number: int) -> None:
        self.number = number


def test_untracking_takes_out_the_young_objects_of_the_kinds_given() -> None:
    with gc_paused():
        old = _Value(0)
        gc.collect(1)
        young, other = [_Value(n) for n in range(1000)], _Node()
        untrack_young({_Value})
        # Out of the collector's lists: the young values, not the older one (collected into the old
        # generation before), nor what is of another kind, nor the list holding them.
        assert not any(map(gc.is_tracked, young))
        assert gc.is_tracked(old)
        assert gc.is_tracked(other)
        assert gc.is_tracked(young)
        assert [o for o in gc.get_objects() if type(o) is _Value] == [old]
        untrack([old, other.other])
        assert not gc.is_tracked(old)
    # Reference counting still frees them.
    gone = weakref.ref(young[0])
    del young
    assert gone() is None


def test_the_full_collection_comes_at_the_interval_set(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(gc_pause, "_FREEZES", gc_pause._Freezes(lambda: now[0]))
    gc_pause.collect_fully_every(30.0)
    gone = _frozen_dead_cycle()
    now[0] += 29.0
    with gc_paused():
        freeze_survivors()
    assert gone() is not None
    now[0] += 1.0
    with gc_paused():
        freeze_survivors()
    assert gone() is None
