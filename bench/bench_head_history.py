"""The HEAD histories' memory and CPU in process: 10,000 partitions (1,000 topics x 10) observed every 10 s
(6 times a minute) for an hour, as the HEAD poller feeds `TimeLag.observe`, every HEAD moving unless
`--idle` says what share stays put. Between two HEAD rounds the process makes and drops what a round would
(`--round-objects` small tuples, kept until the next round), so that the histories' buffers are allocated
among other objects as in lagwatch rather than alone.

Every 10 minutes of the hour it prints: RSS; pymalloc's arenas, the bytes of live blocks in them and the free
bytes in their part-used pools (`sys._debugmallocstats()`); the bytes the histories' arrays hold
(`sys.getsizeof`, room included); and the CPU per observation over those 10 minutes. Growth of the free bytes
while the live ones hold still is fragmentation.

Run: .venv/bin/python bench/bench_head_history.py [--partitions N] [--minutes M] [--idle SHARE]
        [--round-objects N]
For old against new, run it alternately in a worktree of each (it only uses `TimeLag` and `Policy`).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time

from exporter.core.head_history import Policy
from exporter.core.timelag import TimeLag

_REFRESH_S = 10.0
_PER_TOPIC = 10
_MIB = 2**20


def _pymalloc() -> dict[str, int]:
    """Arenas, bytes in live blocks and free bytes in part-used pools: `sys._debugmallocstats()` writes them
    to the C stderr, pointed at a file while it runs."""
    labels = {
        "# arenas allocated current": "arenas",
        "# bytes in allocated blocks": "live",
        "# bytes in available blocks": "free",
    }
    found: dict[str, int] = {}
    with tempfile.TemporaryFile("w+") as out:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        for line in out:
            label, _, value = line.partition("=")
            if label.strip() in labels:
                found[labels[label.strip()]] = int(value.replace(",", ""))
    return found


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / _MIB


def _held(timelag: TimeLag) -> int:
    """Bytes of the histories' arrays, the room they hold included."""
    return sum(sys.getsizeof(h._offsets) + sys.getsizeof(h._times) for h in timelag.histories.values())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--partitions", type=int, default=10_000)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--idle", type=float, default=0.0, help="share of partitions whose HEAD never moves")
    parser.add_argument("--round-objects", type=int, default=100_000)
    args = parser.parse_args()

    timelag = TimeLag(Policy.for_refresh(_REFRESH_S))
    partitions = [(f"orders.events.v{i // _PER_TOPIC:04d}", i % _PER_TOPIC) for i in range(args.partitions)]
    moving = [i % 1000 >= args.idle * 1000 for i in range(args.partitions)]
    now, head, cpu, observed = 1_763_000_000.0, 1_000, 0.0, 0
    kept: list[tuple[int, float]] = []
    print(f"{args.partitions} partitions, {sum(moving)} moving, observed every {_REFRESH_S:.0f} s")
    print("  min   RSS | arenas   live   free | histories | us/observation")
    for minute in range(1, args.minutes + 1):
        for _ in range(int(60 / _REFRESH_S)):
            now += _REFRESH_S
            head += 50
            started = time.process_time()
            for (topic, partition), moves in zip(partitions, moving, strict=True):
                timelag.observe(topic, partition, head if moves else 1_000, now)
            cpu += time.process_time() - started
            observed += args.partitions
            kept = [(i, now) for i in range(args.round_objects)]
        if minute % 10 == 0 or minute == 1:
            pymalloc = _pymalloc()
            arenas, live, free = pymalloc["arenas"], pymalloc["live"] / _MIB, pymalloc["free"] / _MIB
            print(
                f"{minute:5d} {_rss_mib():5.1f} | {arenas:6d} {live:6.1f} {free:6.1f} | "
                f"{_held(timelag) / _MIB:9.1f} | {cpu / observed * 1e6:14.2f}"
            )
            cpu, observed = 0.0, 0
    del kept


if __name__ == "__main__":
    main()
