"""Print what `bench/memory_probe/` recorded of a lagwatch process: where its RSS is, sample by sample.

    MEMORY_PROBE_DIR=/tmp/probe PYTHONPATH=$PWD/bench/memory_probe \\
        .venv/bin/python bench/bench_steady.py --nice -10 --minutes 5
    .venv/bin/python bench/memory_breakdown.py /tmp/probe

The path must be absolute: lagwatch runs in the benchmark's temporary directory.

Columns (MiB): seconds since the process started; VmRSS; resident in pymalloc's arenas and other anonymous
mappings, in the main C heap, in other threads' malloc arenas; malloc's bytes in use and free; and, every
sixth sample, pymalloc's arenas with the bytes of live objects in them, the free bytes in part-used pools and
in empty pools. Live objects flat while the free bytes grow is fragmentation, not a leak.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

MIB = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("directory", type=Path)
    args = parser.parse_args()
    print("   s    rss   anon   heap thread | malloc used   free | pymalloc arenas objects free empty")
    for line in (args.directory / "samples.jsonl").read_text().splitlines():
        sample = json.loads(line)
        resident, malloc = sample["resident"], sample["malloc"]
        row = (
            f"{sample['seconds']:4.0f} {sample['rss'] / MIB:6.1f} {resident.get('anonymous', 0) / MIB:6.1f} "
            f"{resident.get('[heap]', 0) / MIB:6.1f} {resident.get('thread_arenas', 0) / MIB:6.1f} | "
            f"{malloc['uordblks'] / MIB:13.1f} {malloc['fordblks'] / MIB:6.1f} |"
        )
        if pymalloc := sample.get("pymalloc"):
            row += (
                f" {pymalloc['arenas']:15d} {pymalloc['in_objects'] / MIB:7.1f} "
                f"{pymalloc['free_in_pools'] / MIB:4.1f} {pymalloc['empty_pools'] / MIB:5.1f}"
            )
        print(row)


if __name__ == "__main__":
    main()
