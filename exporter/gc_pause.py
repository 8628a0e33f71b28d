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
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["freeze_survivors", "gc_paused"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the collector for the block; re-enable it only if this block disabled it (nesting and other
    threads pausing it meanwhile leave it enabled at the end, never disabled for good)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def freeze_survivors() -> None:
    """Collect the young generations, then exempt everything still alive from future collections. Call it
    at the end of a bulk pass, before the collector is enabled again."""
    gc.collect(1)
    gc.freeze()
