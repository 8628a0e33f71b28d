"""heap_trim: the RSS a freed render leaves behind goes back to the operating system."""

from __future__ import annotations

import threading

from exporter.heap_trim import trim_heap

_MIB = 1 << 20


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / _MIB


def test_freed_text_of_a_worker_thread_is_returned() -> None:
    """Like a render: many blocks made in a worker thread's arena, most of them dropped, a few kept (the
    blocks that did not change), so the free memory lies between live blocks where glibc does not return it
    by itself."""
    kept: list[bytes] = []

    def render() -> None:
        parts = [("x" * 16_000 + str(i)).encode() for i in range(8_000)]
        kept.extend(parts[::64])

    worker = threading.Thread(target=render)
    worker.start()
    worker.join()
    before = _rss_mib()
    assert trim_heap() is True
    assert before - _rss_mib() > 50
    assert len(kept) == 125
