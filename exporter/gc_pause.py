"""Pausing CPython's cycle collector around bulk work that allocates many long-lived containers.

An evaluation round or a render of 100,000 partitions makes a million small tuples and dataclasses that live
until the next round. With the collector on, young collections promote them while they are built, and that
keeps triggering full collections that walk every status in memory while holding the GIL: 0.15-0.35 s stalls
of the event loop each time. Paused, the work runs uninterrupted; the caller collects the young generations
between batches, which stays cheap because they are small.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


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
