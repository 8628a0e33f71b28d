"""Time the status page at 10,000 groups x 10 partitions: the overview (`/`) and one group's page.

Run: `.venv/bin/python bench/bench_statuspage.py`. The groups are bench_evaluator's realistic mix (40% caught
up, 30% lagging with a zero lag in the window, 20% WARN, 10% STOP per partition), evaluated once up front.
Timed, best and median of ROUNDS:
- the pure renders (`statuspage.overview_page`, first page, a text filter, a status filter, the last page;
  `statuspage.group_page` of one group with its window charts);
- GET of the same pages from the real aiohttp routes (`pages.routes`, in-process server over loopback), which
  adds reading the cluster's view, parsing the query and HTTP.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Mapping

import aiohttp
from aiohttp import web
from bench_evaluator import GROUPS, NOW_S, PARTITIONS, REALISTIC, build

from exporter.core.evaluator import evaluate_group
from exporter.core.model import GroupSnapshot, GroupStatus
from exporter.exposition import pages
from exporter.exposition.metrics import ClusterView
from exporter.exposition.statuspage import ClusterState, OverviewQuery, group_page, overview_page

ROUNDS = 7
NOW_MS = NOW_S * 1000


class _Snapshots:
    def __init__(self, snapshots: Mapping[str, GroupSnapshot]) -> None:
        self._snapshots = snapshots

    def group_snapshot(self, group: str) -> GroupSnapshot | None:
        return self._snapshots.get(group)


class _Cluster:
    """What pages.routes reads of a cluster, over the evaluated statuses and their snapshots."""

    def __init__(self, statuses: dict[str, GroupStatus], snapshots: dict[str, GroupSnapshot]) -> None:
        self._statuses = statuses
        self.storage = _Snapshots(snapshots)

    def statuses(self) -> Mapping[str, GroupStatus]:
        return self._statuses

    def view(self) -> ClusterView:
        return ClusterView(
            name="bench",
            groups=[self._statuses[g] for g in sorted(self._statuses)],
            topics=[],
            since_ms=NOW_MS - 3_600_000,
            head_refresh_ms=NOW_MS - 2000,
        )


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


async def _http(cluster: _Cluster, one: str) -> None:
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
    snapshots = build(REALISTIC)
    statuses = {s.group: evaluate_group(s, NOW_S) for s in snapshots}
    by_name = {s.group: s for s in snapshots}
    state = ClusterState(
        name="bench",
        groups=[statuses[g] for g in sorted(statuses)],
        since_ms=NOW_MS - 3_600_000,
        head_refresh_ms=NOW_MS - 2000,
    )
    print(f"{GROUPS:,} groups x {PARTITIONS} partitions ({GROUPS * PARTITIONS:,} group-partitions)")
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
        lambda: group_page(state, statuses[one], by_name[one], NOW_MS, "bench"),
    )
    asyncio.run(_http(_Cluster(statuses, by_name), one))


if __name__ == "__main__":
    main()
