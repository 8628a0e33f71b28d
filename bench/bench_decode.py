"""Decode throughput of `exporter.core.decoder.decode`, on one core.

Builds N realistic `__consumer_offsets` records with the test encoder (offset commits spread over 500 groups,
200 topics and 64 partitions, value versions as Kafka 4.x writes them: mostly v3, some v4 with metadata, a
few v1), decodes them all and prints records per second; then the same for the rarer record kinds.

    .venv/bin/python bench/bench_decode.py [N]
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))

import offsets_encoder as enc

from exporter.core.decoder import decode
from exporter.core.model import GroupMetadata, Member, OffsetCommit, TopicPartitions

Pair = tuple[bytes, bytes | None]


def offset_commits(n: int, rng: random.Random) -> list[Pair]:
    groups = [f"service-{i:03d}-consumer" for i in range(500)]
    topics = [f"events.domain-{i:03d}.v1" for i in range(200)]
    pairs = []
    for i in range(n):
        version = rng.choices([3, 4, 1], weights=[90, 9, 1])[0]
        commit = OffsetCommit(
            group=rng.choice(groups),
            topic=rng.choice(topics),
            partition=rng.randrange(64),
            offset=rng.randrange(10**12),
            timestamp_ms=1_700_000_000_000 + i,
            leader_epoch=rng.randrange(50) if version >= 3 else -1,
            metadata="" if version != 4 else "x" * rng.randrange(200),
        )
        pairs.append(enc.encode(commit, version))
    return pairs


def group_metadata(n: int) -> list[Pair]:
    members = tuple(
        Member(
            member_id=f"consumer-{m}-5f1c2b7e-0a4d-4c1e-9d7a-{m:012d}",
            client_id=f"consumer-{m}",
            client_host=f"/10.0.{m}.1",
            rebalance_timeout_ms=300000,
            session_timeout_ms=45000,
            assignment=(TopicPartitions("events.domain-001.v1", tuple(range(m * 4, m * 4 + 4))),),
        )
        for m in range(16)
    )
    group = GroupMetadata("service-000-consumer", "consumer", 42, "range", members[0].member_id, members)
    return [enc.encode(group, 3)] * n


def measure(name: str, pairs: Sequence[Pair]) -> None:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for key, value in pairs:
            decode(key, value)
        best = min(best, time.perf_counter() - start)
    rate = len(pairs) / best
    print(f"{name:34s} {len(pairs):>8d} records {rate:>12,.0f} records/s ({best:.3f} s, best of 3)")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    rng = random.Random(848)
    commits = offset_commits(n, rng)
    kinds = {type(decode(k, v)) for k, v in commits}
    assert kinds == {OffsetCommit}, kinds
    print(f"python {sys.version.split()[0]}, decode() best of 3 runs")
    measure("offset commits (v3/v4/v1 mix)", commits)
    measure("offset tombstones", [(key, None) for key, _ in commits])
    measure("group metadata (16 members, v3)", group_metadata(max(n // 100, 1)))


if __name__ == "__main__":
    main()
