"""Time the status page at 10,000 groups x 10 partitions: the overview (`/`) and one group's page.

Run: `.venv/bin/python bench/bench_statuspage.py`. The groups are bench_evaluator's realistic mix (40% caught
up, 30% lagging with a zero lag in the window, 20% WARN, 10% STOP per partition), evaluated once up front.
Timed, best and median of ROUNDS:
- the pure renders (`statuspage.overview.overview_page`, first page, a text filter, a status filter, the last
  page; `statuspage.group.group_page` of one group with its window charts);
- GET of the same pages from the real aiohttp routes (`pages.routes`, in-process server over loopback), which
  adds reading the cluster's view, parsing the query and HTTP.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Callable

import aiohttp
from aiohttp import web
from bench_evaluator import GROUPS, NOW_S, PARTITIONS, REALISTIC, build

from exporter.core.model import GroupMetadata, GroupSnapshot, Member, OffsetCommit, TopicPartitions
from exporter.core.storage import Storage
from exporter.exposition import pages
from exporter.exposition.statuspage.cluster_state import ClusterState
from exporter.exposition.statuspage.group import group_page
from exporter.exposition.statuspage.overview import OverviewQuery, overview_page
from exporter.runtime import ClusterRuntime
from exporter.settings import ClusterSettings, LagSecondsSettings, Settings

ROUNDS = 7
NOW_MS = NOW_S * 1000


def _runtime(snapshots: list[GroupSnapshot]) -> ClusterRuntime:
    """The app's cluster runtime over a storage that holds bench_evaluator's groups; its sources never run."""
    settings = Settings(
        clusters={"bench": ClusterSettings(bootstrap_servers=("127.0.0.1:9092",))},
        lag_seconds=LagSecondsSettings(enabled=False),
    )
    return ClusterRuntime.filled(
        "bench", settings, lambda storage: _fill(storage, snapshots), clock=lambda: NOW_S
    )


def _fill(storage: Storage, snapshots: list[GroupSnapshot]) -> None:
    """Each group on its own topic (a partition has one HEAD, and each group's windows were drawn with their
    own): every commit is stored after its HEAD of the moment, so that its lag is the drawn one, and the drawn
    HEAD offsets follow."""
    storage.set_topics({_topic(s.group): PARTITIONS for s in snapshots}, NOW_MS)
    order = 0
    for snapshot in snapshots:
        group, topic = snapshot.group, _topic(snapshot.group)
        for part in snapshot.partitions:
            for commit in part.window:
                assert commit.lag is not None
                at = commit.timestamp_ms
                storage.add_head_offset(topic, part.partition, commit.offset + commit.lag, at)
                order += 1
                storage.apply(OffsetCommit(group, topic, part.partition, commit.offset, at), order, at)
            for head in part.broker_offsets:
                storage.add_head_offset(topic, part.partition, head, NOW_MS)
        owned = (TopicPartitions(topic, tuple(range(PARTITIONS))),)
        member = Member("member", "client", "/10.0.0.1", assignment=owned)
        order += 1
        storage.apply(GroupMetadata(group, "consumer", 1, "range", "member", (member,)), order, NOW_MS)


def _topic(group: str) -> str:
    return f"topic-{group}"


def _time(name: str, call: Callable[[], object]) -> None:
    timings = []
    size = 0
    for _ in range(ROUNDS):
        start = time.perf_counter()
        result = call()
        timings.append(time.perf_counter() - start)
        size = len(result) if isinstance(result, str | bytes) else 0
    print(
        f"  {name}: best {min(timings) * 1000:.1f} ms, median {statistics.median(timings) * 1000:.1f} ms"
        f" ({size / 1024:.0f} KiB)"
    )


async def _time_http(name: str, session: aiohttp.ClientSession, url: str) -> None:
    timings = []
    size = 0
    for _ in range(ROUNDS):
        start = time.perf_counter()
        async with session.get(url) as response:
            body = await response.read()
            assert response.status == 200, response.status
        timings.append(time.perf_counter() - start)
        size = len(body)
    print(
        f"  {name}: best {min(timings) * 1000:.1f} ms, median {statistics.median(timings) * 1000:.1f} ms"
        f" ({size / 1024:.0f} KiB)"
    )


async def _http(cluster: ClusterRuntime, one: str) -> None:
    app = web.Application()
    app.add_routes(pages.routes({"bench": cluster}))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            print("GET from the aiohttp routes:")
            await _time_http("GET / (first page)", session, base + "/")
            await _time_http("GET /?fragment=1 (the self-refresh)", session, base + "/?fragment=1")
            await _time_http("GET /?q=group-99 (text filter)", session, base + "/?q=group-99")
            await _time_http(f"GET /group/bench/{one}", session, f"{base}/group/bench/{one}")
    finally:
        await runner.cleanup()


def main() -> None:
    runtime = _runtime(build(REALISTIC))
    asyncio.run(runtime.evaluate_now())
    statuses = runtime.statuses()
    state = ClusterState(
        name="bench",
        groups=[statuses[g] for g in sorted(statuses)],
        since_ms=NOW_MS - 3_600_000,
        head_refresh_ms=NOW_MS - 2000,
    )
    print(f"{GROUPS:,} groups x {PARTITIONS} partitions ({GROUPS * PARTITIONS:,} group-partitions)")
    print("statuses:", dict(sorted(Counter(s.status.name for s in statuses.values()).items())))
    one = next(g for g, s in statuses.items() if s.status.name == "ERR")
    print("pure renders:")
    _time("overview, first page", lambda: overview_page([state], OverviewQuery(), NOW_MS, "bench"))
    _time(
        "overview, text filter 'group-99'",
        lambda: overview_page([state], OverviewQuery(text="group-99"), NOW_MS, "bench"),
    )
    _time(
        "overview, status filter WARN",
        lambda: overview_page([state], OverviewQuery.parse({"status": "WARN"}), NOW_MS, "bench"),
    )
    _time("overview, last page", lambda: overview_page([state], OverviewQuery(page=100), NOW_MS, "bench"))
    _time(
        f"group page ({one}, {PARTITIONS} partitions and charts)",
        lambda: group_page(state, statuses[one], runtime.group_snapshot(one), NOW_MS, "bench"),
    )
    asyncio.run(_http(runtime, one))


if __name__ == "__main__":
    main()
