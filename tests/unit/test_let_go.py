"""`let_go` keeps what it is handed until the event loop turns, then frees it a slice at a time, all of it."""

from __future__ import annotations

import asyncio
import weakref

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
