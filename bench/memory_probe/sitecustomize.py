"""A memory probe for the end-to-end benchmarks, never part of lagwatch: where a lagwatch process' RSS is.

Python imports `sitecustomize` at start-up from the path: a benchmark run with this directory on PYTHONPATH
and MEMORY_PROBE_DIR naming a directory (`bench_steady.py` passes its environment to lagwatch) gets, every
10 s, one JSON line in `samples.jsonl` there: VmRSS; glibc's `mallinfo2()` (bytes mapped by malloc's arenas,
in use, free); the resident size of the main C heap, of the 64 MiB-aligned mappings (other threads' malloc
arenas) and of the other anonymous mappings (pymalloc's 1 MiB arenas, large blocks); and the threads. Every
60 s it adds pymalloc's own account from `sys._debugmallocstats()` (arenas, bytes in objects, free bytes in
part-used pools, empty pools), also kept whole as `pymalloc-N.txt` beside `malloc_info-N.xml` (per malloc
arena). `bench/memory_breakdown.py DIR` prints them as a table. Tracemalloc is left out on purpose: at
100,000 group-partitions it slowed the replay more than tenfold, which changes the run it would measure.
"""

from __future__ import annotations

import os
import sys

_DIR = os.environ.get("MEMORY_PROBE_DIR")

if _DIR and os.path.basename(sys.argv[0]) == "lagwatch":
    import ctypes
    import json
    import threading
    import time

    _OUT: str = _DIR
    _FIELDS = [
        "arena",
        "ordblks",
        "smblks",
        "hblks",
        "hblkhd",
        "usmblks",
        "fsmblks",
        "uordblks",
        "fordblks",
        "keepcost",
    ]
    _THREAD_HEAP = 64 << 20
    _PYMALLOC = {
        "arenas": "# arenas allocated current",
        "in_objects": "# bytes in allocated blocks",
        "free_in_pools": "# bytes in available blocks",
    }

    class _Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in _FIELDS]

    _libc = ctypes.CDLL("libc.so.6")
    _libc.mallinfo2.restype = _Mallinfo2
    _libc.fopen.restype = ctypes.c_void_p
    _libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    _libc.fclose.argtypes = [ctypes.c_void_p]
    _libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    _started = time.monotonic()

    def _mappings() -> dict[str, int]:
        """Resident bytes by kind of mapping."""
        resident: dict[str, int] = {}
        kind = ""
        with open("/proc/self/smaps") as smaps:
            for line in smaps:
                fields = line.split()
                if fields[0] == "Rss:":
                    resident[kind] = resident.get(kind, 0) + int(fields[1]) * 1024
                elif not fields[0].endswith(":"):
                    start, end = (int(address, 16) for address in fields[0].split("-"))
                    name = fields[5] if len(fields) > 5 else ""
                    if name:
                        kind = "files" if name.startswith("/") else name
                    elif start % _THREAD_HEAP == 0 and end - start <= _THREAD_HEAP:
                        kind = "thread_arenas"
                    else:
                        kind = "anonymous"
        return resident

    def _pymalloc(path: str) -> dict[str, int]:
        """`sys._debugmallocstats()` writes to the C stderr: point fd 2 at `path` while it runs."""
        sys.stderr.flush()
        saved = os.dup(2)
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            os.dup2(target, 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(target)
        account: dict[str, int] = {}
        with open(path) as text:
            for line in text:
                value = line.rpartition("=")[2].replace(",", "").strip()
                for key, label in _PYMALLOC.items():
                    if line.startswith(label):
                        account[key] = int(value)
                if "unused pools *" in line:
                    account["empty_pools"] = int(value)
        return account

    def _sample(number: int, full: bool) -> None:
        info = _libc.mallinfo2()
        record: dict[str, object] = {
            "seconds": round(time.monotonic() - _started, 1),
            "malloc": {name: getattr(info, name) for name in _FIELDS},
            "resident": _mappings(),
            "threads": [thread.name for thread in threading.enumerate()],
        }
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    record["rss"] = int(line.split()[1]) * 1024
        if full:
            record["pymalloc"] = _pymalloc(os.path.join(_OUT, f"pymalloc-{number:03d}.txt"))
            stream = _libc.fopen(os.path.join(_OUT, f"malloc_info-{number:03d}.xml").encode(), b"w")
            _libc.malloc_info(0, stream)
            _libc.fclose(stream)
        with open(os.path.join(_OUT, "samples.jsonl"), "a") as out:
            out.write(json.dumps(record) + "\n")

    def _watch() -> None:
        number = 0
        while True:
            time.sleep(10)
            number += 1
            _sample(number, number % 6 == 1)

    threading.Thread(target=_watch, daemon=True, name="memory-probe").start()
