"""A stall probe for the end-to-end benchmarks (`bench_million.py --stalls`), never part of lagwatch.

Python imports `sitecustomize` at start-up from the path: a benchmark that puts this directory on a lagwatch
process' PYTHONPATH, with STALL_PROBE_OUT naming a file, gets one line in that file per event-loop callback
that ran over 100 ms of wall time or 50 ms of the loop thread's CPU time, naming the code it was in, and one
line per full (generation 2) collection, and per young one over 10 ms, with its CPU time. Lines: `pid clock
STALL wall_ms cpu_ms callback :: samples` and `pid clock GCn cpu_ms collected` (n the generation).

A watchdog thread looks at the loop thread's stack every 10 ms while a callback runs past 80 ms. It needs the
GIL to look, so during a long call into C (freeing a million objects, a collection) it looks only when the
call has returned: each sample is weighed by the milliseconds since the one before, which puts a long C
call's time on the line that made it (or the line right after it), and `samples` are the three heaviest code
paths of that callback with their milliseconds.
"""

from __future__ import annotations

import os
import sys

_OUT = os.environ.get("STALL_PROBE_OUT")

if _OUT and os.path.basename(sys.argv[0]) == "lagwatch":
    import asyncio.events
    import collections
    import gc
    import threading
    import time
    import traceback
    from typing import Any

    _out = open(_OUT, "a", buffering=1)  # noqa: SIM115 - open for the process' lifetime
    _running: dict[str, Any] = {"since": None, "samples": collections.Counter()}
    _loop_thread = threading.main_thread().ident
    _run = asyncio.events.Handle._run

    def _timed_run(self: asyncio.events.Handle) -> None:
        _running["samples"] = collections.Counter()
        _running["since"] = time.perf_counter()
        cpu = time.thread_time()
        try:
            _run(self)
        finally:
            wall = time.perf_counter() - _running["since"]
            cpu = time.thread_time() - cpu
            _running["since"] = None
            if wall > 0.1 or cpu > 0.05:
                samples, _running["samples"] = _running["samples"], collections.Counter()
                where = "; ".join(f"{ms:.0f}ms {stack}" for stack, ms in samples.most_common(3))
                _out.write(
                    f"{os.getpid()} {time.time():.1f} STALL {wall * 1000:.0f} {cpu * 1000:.0f} "
                    f"{self._callback!r:.80} :: {where}\n"
                )

    asyncio.events.Handle._run = _timed_run  # type: ignore[method-assign]

    def _watch() -> None:
        looked = time.perf_counter()
        while True:
            time.sleep(0.01)
            since = _running["since"]
            now = time.perf_counter()
            frame = sys._current_frames().get(_loop_thread or 0)
            waited, looked = now - max(looked, since or now), now
            if since is None or frame is None or now - since < 0.08:
                continue
            stack = traceback.extract_stack(frame)
            own = [f for f in stack if "/exporter/" in f.filename] or stack
            where = " < ".join(f"{f.name}({os.path.basename(f.filename)}:{f.lineno})" for f in own[:-5:-1])
            _running["samples"][where] += waited * 1000

    threading.Thread(target=_watch, daemon=True, name="stall-probe").start()

    _collection: dict[str, float] = {}

    def _collections(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            _collection["cpu"] = time.thread_time()
            return
        cpu = time.thread_time() - _collection.get("cpu", time.thread_time())
        if info["generation"] == 2 or cpu > 0.01:
            generation, collected = info["generation"], info["collected"]
            _out.write(f"{os.getpid()} {time.time():.1f} GC{generation} {cpu * 1000:.0f} {collected}\n")

    gc.callbacks.append(_collections)
