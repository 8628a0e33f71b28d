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
cycle alive at a freeze is never collected if it dies later (reference counting still frees everything else
frozen, the statuses a round replaces included). lagwatch's own data hold no cycles; what the libraries'
objects of the moment (a request, a fetch) might leak that way is measured in bench/README.md.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["freeze_survivors", "gc_paused"]


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


def freeze_survivors() -> None:
    """Collect the young generations, then exempt everything still alive from future collections. Call it
    at the end of a bulk pass, before the collector is enabled again."""
    gc.collect(1)
    gc.freeze()
