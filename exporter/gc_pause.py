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
the running process), a leak without end. So every `FULL_COLLECTION_EVERY_S` a freeze
first unfreezes everything and runs one full collection (0.35-0.45 s at 100,000 group-partitions), which
bounds what can leak to what dies within that time; at 1,000,000 group-partitions that collection is one stall
of seconds every ten minutes.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["FULL_COLLECTION_EVERY_S", "freeze_survivors", "gc_paused"]

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
    """When a freeze last collected everything."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.full_at = clock()


_FREEZES = _Freezes(time.monotonic)


def freeze_survivors() -> None:
    """Collect the young generations, then exempt everything still alive from future collections; once every
    `FULL_COLLECTION_EVERY_S`, collect everything first, what earlier freezes exempted included. Call it at
    the end of a bulk pass, before the collector is enabled again."""
    now = _FREEZES.clock()
    if now - _FREEZES.full_at >= FULL_COLLECTION_EVERY_S:
        _FREEZES.full_at = now
        gc.unfreeze()
        gc.collect()
    else:
        gc.collect(1)
    gc.freeze()
