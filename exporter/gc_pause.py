"""Keeping CPython's cycle collector off the event loop's back: pausing it around bulk work that allocates
many long-lived containers, and freezing what that work leaves alive.

An evaluation round or a render of 100,000 partitions makes a million small tuples and dataclasses that live
until the next round. With the collector on, young collections promote them while they are built, and that
keeps triggering full collections that walk every status in memory while holding the GIL: 0.15-0.35 s stalls
of the event loop each time. Paused, the work runs uninterrupted; the caller collects the young generations
between batches, which stays cheap because they are small.

Paused is not enough at 1,000,000 group-partitions: a round leaves some eight million tracked objects in the
old generation, and the first allocation after the pause then ran a full collection over all of them, 2-10 s
with the loop frozen (bench_million). `freeze_survivors` moves what a bulk pass left alive into the permanent
generation, which full collections skip, so they walk only what was allocated since. The price: a reference
cycle alive at a freeze is not collected when it dies later (reference counting still frees everything
else frozen, the statuses a round replaces included). lagwatch's own data hold no cycles, but the libraries'
objects of the moment (a request being served, a fetch in flight) do: in the steady state at 100,000
group-partitions, 1,700 such objects a minute were found frozen and dead (`gc.unfreeze(); gc.collect()` in
the running process), a leak without end. So every `full_collection_every` seconds (setting; 600 by default) a
freeze first unfreezes everything and runs one full collection, which bounds what can leak to what dies within
that time.

That collection walks every tracked object: 0.19-0.27 s of CPU at 100,000 group-partitions, 1.4-2.5 s at
1,000,000, one stall of the event loop every ten minutes. So what lagwatch keeps by the million is also taken
out of the collector's lists for good (`untrack_young`, `untrack`), as CPython itself does with tuples of
atoms: a round's statuses, commits, reasons and figures, and the storage's groups and windows, values or
containers of numbers that can never be part of a reference cycle, and the containers that hold them by the
group or partition (the storage's, the evaluation cache's and the HEAD histories' dicts, the renderer's
buckets): a collection walks every reference a tracked container holds, tracked or not, 0.1 ms per 2,000.
Reference counting frees them as before; the full collection walks the libraries', the interpreter's and the
few other objects (in process at 1,000,000 group-partitions 20-27 ms, 43-48 when it also frees what a round
left for it: bench/bench_full_collection.py).
"""

from __future__ import annotations

import ctypes
import gc
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from itertools import compress

__all__ = [
    "FULL_COLLECTION_EVERY_S",
    "collect_fully_every",
    "freeze_survivors",
    "gc_paused",
    "untrack",
    "untrack_young",
]

FULL_COLLECTION_EVERY_S = 600.0
"""How often a freeze collects everything first, frozen objects included."""


class _Pauses:
    """The pauses in progress, over every task and thread: the collector stays off until the last one ends.
    Pauses overlap on the event loop (a replay's fetch and an evaluation round both await inside theirs)
    and across threads (a render); re-enabling at the end of any one of them let a round run on with the
    collector on."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.was_enabled = False


_PAUSES = _Pauses()


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the collector for the block. It is enabled again when the last overlapping pause ends, and
    only if it was enabled when the first began (never left disabled for good, never turned on by a pause
    when someone else had turned it off)."""
    with _PAUSES.lock:
        if _PAUSES.count == 0:
            _PAUSES.was_enabled = gc.isenabled()
            gc.disable()
        _PAUSES.count += 1
    try:
        yield
    finally:
        with _PAUSES.lock:
            _PAUSES.count -= 1
            if _PAUSES.count == 0 and _PAUSES.was_enabled:
                gc.enable()


class _Freezes:
    """When a freeze last collected everything, and how often it does."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.full_at = clock()
        self.every_s = FULL_COLLECTION_EVERY_S


_FREEZES = _Freezes(time.monotonic)


def collect_fully_every(seconds: float) -> None:
    """How often a freeze collects everything first (`full_collection_every`; `FULL_COLLECTION_EVERY_S`
    until set)."""
    _FREEZES.every_s = seconds


def freeze_survivors() -> None:
    """Collect the young generations, then exempt everything still alive from future collections; once every
    `collect_fully_every` seconds, collect everything first, what earlier freezes exempted included. Call it
    at the end of a bulk pass, before the collector is enabled again."""
    now = _FREEZES.clock()
    if now - _FREEZES.full_at >= _FREEZES.every_s:
        _FREEZES.full_at = now
        gc.unfreeze()
        gc.collect()
    else:
        gc.collect(1)
    gc.freeze()


def _untracker() -> Callable[[object], None] | None:
    try:
        function = ctypes.pythonapi.PyObject_GC_UnTrack
    except AttributeError:
        return None
    function.argtypes = [ctypes.py_object]
    function.restype = None
    return function


_UNTRACK = _untracker()
"""CPython's `PyObject_GC_UnTrack` (its C API, stable since 2.2); None where the interpreter has none."""


def untrack(objects: Iterable[object]) -> None:
    """`untrack_young` for given objects, young or old: for containers of values that CPython does not
    take out by itself (a tuple holding objects of a class, even untracked ones)."""
    if _UNTRACK is not None:
        deque(map(_UNTRACK, filter(gc.is_tracked, objects)), maxlen=0)


def untrack_young(kinds: Collection[type]) -> list[object]:
    """Take the objects of `kinds` among those allocated since the young generations were last collected out
    of the cycle collector's lists for good, as CPython itself does with tuples and dicts that hold only atoms
    (and so, at the next collection, with the tuples that hold only these): no collection walks them again,
    full ones included, while reference counting still frees them. Only for kinds whose objects can never be
    part of a reference cycle: values built of values, containers that nothing they hold refers back to.
    Where the interpreter offers no way to, nothing happens (they stay tracked, and `freeze_survivors` freezes
    them). Call it before collecting the young generations; about 0.2 us per object taken out. Returns what
    it took out."""
    if _UNTRACK is None:
        return []
    young = gc.get_objects(0) + gc.get_objects(1)
    ours = list(compress(young, map(kinds.__contains__, map(type, young))))
    deque(map(_UNTRACK, ours), maxlen=0)
    return ours
