"""Letting go of an evaluation round's worth of objects a little at a time.

The statuses and figures of one round at 1,000,000 group-partitions are some five million objects. When the
last reference to a replaced round (or to a view of one) goes, reference counting frees all of them in one
go, and at that scale one go held the event loop for 0.5-0.6 s (bench_million --stalls). So whoever replaces
a reference to round-sized data hands the old contents to `let_go` instead: it keeps references to them and
drops them a slice at a time, letting the loop run every `SLICE_S`. Whichever holder lets go last, the objects
are then freed a slice at a time: a holder that dropped its references at once would free them in one go if
it was the last.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from exporter.gc_pause import untrack

__all__ = ["SLICE_S", "let_go"]

SLICE_S = 0.005
"""How long lagwatch's work done a slice at a time (an evaluation round, applying a fetch of
`__consumer_offsets`, letting go) holds the event loop between two turns. A scrape takes 5-7 turns of the
loop, each waiting for the slice in progress: 20 ms slices of a round made a scrape during it 85-101 ms, 5 ms
ones 37-63 ms (`bench/bench_scrape_gil.py --round --slice S`, docs/http-api.md); a replay is as fast with 5 ms
as with 20 (bench/bench_replay.py, docs/benchmarks.md)."""
_CHUNK = 1000
"""Items dropped between two looks at the clock (up to 50 objects each: a group's status)."""


def let_go(*collections: Iterable[object], slice_s: float = SLICE_S) -> asyncio.Task[None] | None:
    """Take references to the items of `collections`, which the caller then drops, and drop them in a task of
    the running loop (returned), letting the loop run every `slice_s` (0: after every 1,000 items). Without a
    running loop there is no one to stall: nothing is kept (None)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    held = [items for items in (list(c) for c in collections) if items]
    if not held:
        return None
    # Out of the cycle collector's lists: nothing but this task refers to these lists, so they can never be
    # part of a cycle, and the first young collection after they were made walked every reference they hold
    # (a replaced round's million exact reads: 35-46 ms of the loop at 1,000,000 group-partitions).
    untrack([held, *held])
    task = loop.create_task(_drop(held, slice_s), name="lagwatch-let-go")
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
    return task


_RUNNING: set[asyncio.Task[None]] = set()
"""The tasks still dropping: the loop keeps only weak references to tasks."""


async def _drop(held: list[list[object]], slice_s: float) -> None:
    turn = time.perf_counter()
    for items in held:
        while items:
            del items[-_CHUNK:]
            if time.perf_counter() - turn >= slice_s:
                await asyncio.sleep(0)
                turn = time.perf_counter()
