"""A stall probe for the end-to-end benchmarks (`bench_million.py --stalls`), never part of lagwatch.

Python imports `sitecustomize` at start-up from the path: a benchmark that puts this directory on a lagwatch
process' PYTHONPATH, with STALL_PROBE_OUT naming a file, gets one line in that file per event-loop callback
that ran over 100 ms of wall time or 50 ms of the loop thread's CPU time, naming the code it was in (a
watchdog thread samples the loop thread's stack every 20 ms while a callback runs past 80 ms), and one line
per full (generation 2) collection with its CPU time. Lines: `pid clock STALL wall_ms cpu_ms callback ::
samples` and `pid clock GC2 cpu_ms collected`.
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
                where = "; ".join(f"{n}x {stack}" for stack, n in samples.most_common(3))
                _out.write(
                    f"{os.getpid()} {time.time():.1f} STALL {wall * 1000:.0f} {cpu * 1000:.0f} "
                    f"{self._callback!r:.80} :: {where}\n"
                )

    asyncio.events.Handle._run = _timed_run  # type: ignore[method-assign]

    def _watch() -> None:
        while True:
            time.sleep(0.02)
            since = _running["since"]
            frame = sys._current_frames().get(_loop_thread or 0)
            if since is None or frame is None or time.perf_counter() - since < 0.08:
                continue
            stack = traceback.extract_stack(frame)
            own = [f for f in stack if "/exporter/" in f.filename] or stack
            where = " < ".join(f"{f.name}({os.path.basename(f.filename)}:{f.lineno})" for f in own[:-5:-1])
            _running["samples"][where] += 1

    threading.Thread(target=_watch, daemon=True, name="stall-probe").start()

    _collection: dict[str, float] = {}

    def _full_collections(phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            _collection["cpu"] = time.thread_time()
            return
        cpu = time.thread_time() - _collection.get("cpu", time.thread_time())
        _out.write(f"{os.getpid()} {time.time():.1f} GC2 {cpu * 1000:.0f} {info['collected']}\n")

    gc.callbacks.append(_full_collections)
