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

Between two callbacks the loop should never wait long: `bench_million.py` asks `/-/healthy` every 20 ms. A gap
of over 100 ms of wall time between the end of one callback and the start of the next gets a line `pid clock
GAP wall_ms loop_cpu_ms others_cpu_ms`: the CPU time the loop thread and the process' other threads (the
render's worker thread) spent meanwhile. Others' CPU close to the gap: the loop waited for the GIL; neither:
it had no CPU (or nothing to do). Collection lines end with the thread that ran it (`loop` or `other`) and
`gc.get_count()` as it started (the first figure: objects allocated less freed since the last collection,
about the size of generation 0), and for a young one with at most 5,000 of those, the three young containers
of over 10,000 references with the most (`type[len]:type of the first item`): a collection walks every
reference a young container holds.
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
    _running: dict[str, Any] = {"since": None, "samples": collections.Counter(), "ended": None}
    _loop_thread = threading.main_thread().ident
    _run = asyncio.events.Handle._run

    def _timed_run(self: asyncio.events.Handle) -> None:
        _running["samples"] = collections.Counter()
        _running["since"] = time.perf_counter()
        cpu = time.thread_time()
        ended = _running["ended"]
        if ended is not None and _running["since"] - ended[0] > 0.1:
            loop_cpu, others_cpu = cpu - ended[1], time.process_time() - ended[2] - (cpu - ended[1])
            _out.write(
                f"{os.getpid()} {time.time():.1f} GAP {(_running['since'] - ended[0]) * 1000:.0f} "
                f"{loop_cpu * 1000:.0f} {others_cpu * 1000:.0f}\n"
            )
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
            _running["ended"] = (time.perf_counter(), time.thread_time(), time.process_time())

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

    _counts: dict[str, tuple[int, int, int]] = {}

    _biggest: dict[str, str] = {}

    def _biggest_young() -> str:
        """The three young containers holding the most references, when the young generations are small
        (a collection walks every reference a young container holds, tracked or not)."""
        if gc.get_count()[0] > 5_000:
            return ""
        sized = []
        for o in gc.get_objects(0) + gc.get_objects(1):
            if type(o) in (list, dict, tuple, set):
                size = len(o)
                if size > 10_000:
                    first = next(iter(o.values() if type(o) is dict else o), None)
                    sized.append((size, f"{type(o).__name__}[{size}]:{type(first).__name__}"))
        return ";".join(name for _, name in sorted(sized, reverse=True)[:3])

    def _collections(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            _counts["start"] = gc.get_count()
            _biggest["young"] = _biggest_young() if info["generation"] < 2 else ""
            _collection["cpu"] = time.thread_time()
            return
        cpu = time.thread_time() - _collection.get("cpu", time.thread_time())
        if info["generation"] == 2 or cpu > 0.01:
            generation, collected = info["generation"], info["collected"]
            thread = "loop" if threading.get_ident() == _loop_thread else "other"
            _out.write(
                f"{os.getpid()} {time.time():.1f} GC{generation} {cpu * 1000:.0f} {collected} {thread} "
                f"{','.join(map(str, _counts.get('start', ())))} {_biggest.get('young', '')}\n"
            )

    gc.callbacks.append(_collections)
