"""`let_go` keeps what it is handed until the event loop turns, then frees it a slice at a time, all of it."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Coroutine

from exporter import let_go as let_go_module
from exporter.let_go import let_go


class _Item:
    pass


def _alive(refs: list[weakref.ref[_Item]]) -> int:
    return sum(ref() is not None for ref in refs)


async def test_items_are_freed_a_slice_per_turn_once_the_caller_let_go() -> None:
    first, second = [_Item() for _ in range(2_500)], {n: _Item() for n in range(1_000)}
    refs = [weakref.ref(item) for item in (*first, *second.values())]
    task = let_go(first, second.values(), slice_s=0)
    del first, second
    assert task is not None
    # Nothing is freed before the loop turns: the caller's own dropping freed no item...
    assert _alive(refs) == 3_500
    alive = []
    while not task.done():
        await asyncio.sleep(0)
        alive.append(_alive(refs))
    # ...then at most 1,000 items per turn (the first list in chunks of 1,000, 1,000 and 500, then the
    # second), and none is left.
    assert alive[:4] == [2_500, 1_500, 1_000, 0]
    assert alive[-1] == 0


async def test_items_held_elsewhere_stay() -> None:
    kept = [_Item() for _ in range(10)]
    task = let_go(list(kept))
    assert task is not None
    await task
    assert all(isinstance(item, _Item) for item in kept)


async def test_nothing_to_let_go_of_starts_no_task() -> None:
    assert let_go([], {}.values()) is None
    assert not let_go_module._RUNNING


def test_without_a_running_loop_nothing_is_kept() -> None:
    item = _Item()
    ref = weakref.ref(item)
    assert let_go([item]) is None
    del item
    assert ref() is None


async def test_its_lists_are_out_of_the_collector_s_lists() -> None:
    # Its own copies, referred to by nothing else: the first young collection after they were made walked
    # every reference they hold (a replaced round's million exact reads at 1,000,000 group-partitions: 35-46
    # ms of the loop).
    values = {n: (n, [n]) for n in range(10_000)}
    task = let_go(values.values(), [[1], [2]])
    assert task is not None
    coroutine = task.get_coro()
    assert isinstance(coroutine, Coroutine)
    held = coroutine.cr_frame.f_locals["held"]
    assert [len(items) for items in held] == [10_000, 2]
    assert not gc.is_tracked(held)
    assert [items for items in held if gc.is_tracked(items)] == []
    # What they hold is the caller's, as it was.
    assert gc.is_tracked(values[0][1])
    await task
    assert held == [[], []]
