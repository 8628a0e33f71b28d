"""The status page's HTML (exporter.exposition.statuspage) and routes (exporter.exposition.pages): every name
escaped, filters, pages of groups, the group page's chart, and the same guards as /metrics. The real-browser
tests are tests/e2e/test_statuspage_browser.py."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient, TestServer

from exporter.core.model import GroupSnapshot, GroupStatus, Status
from exporter.core.retention import Headroom
from exporter.core.timelag import LagSeconds
from exporter.core.verdicts import evaluate_group
from exporter.exposition.server import build_app
from exporter.exposition.statuspage.cluster_state import ClusterState
from exporter.exposition.statuspage.group import group_page
from exporter.exposition.statuspage.overview import PAGE_SIZE, OverviewQuery, overview_page
from exporter.exposition.webconfig import load_web_config
from tests.unit.test_evaluator import EX2, EX3, EX4, T, partition
from tests.unit.test_http import PASSWORD, PASSWORD_HASH, basic, clusters, make_settings

__all__ = ["clusters"]  # the fixture, imported from test_http

NOW_MS = (T + 1200) * 1000
HOSTILE = "\"'><script>alert(1)</script>&amp; gr\u00fcppe \u2603 \u65e5\u672c"


def snapshot(name: str, *parts: Any) -> GroupSnapshot:
    return GroupSnapshot(cluster="c1", group=name, partitions=parts, last_commit_ms=0)


def evaluated(name: str, *parts: Any) -> GroupStatus:
    return evaluate_group(snapshot(name, *parts), T + 1200)


STOPPED = evaluated("stopped", partition("orders", 0, EX4, 55, (150, 155)))
STALLED = evaluated(
    "stalled",
    partition(
        "orders",
        0,
        EX2,
        20,
        (20, 30),
    ),
    partition("orders", 1, EX3, 0),
)
SLOW = evaluated("slow", partition("events", 0, EX3, 6, (100, 106)))
FINE = evaluated("fine", partition("events", 0, EX3, 0))


def cluster(*groups: GroupStatus, **kwargs: Any) -> ClusterState:
    return ClusterState(
        name="c1", groups=groups, since_ms=NOW_MS - 90_000, head_refresh_ms=NOW_MS - 2000, **kwargs
    )


def rows(page: str) -> list[tuple[str, str]]:
    """(status, group name) of each row of the groups table, in order."""
    body = page[page.index('<table class="groups">') :]
    return re.findall(r'<tr class="r-\w+"><td><span class="badge s-\w+"><span aria-hidden="true">.</span> '
                      r'(\w+)</span></td><th scope="row"><a href="[^"]*">([^<]*)</a>', body)  # fmt: skip


def test_overview_lists_groups_worst_first_with_reason_and_figures() -> None:
    page = overview_page([cluster(FINE, SLOW, STOPPED)], OverviewQuery(), NOW_MS, "9.9")
    assert rows(page) == [("ERR", "stopped"), ("WARN", "slow"), ("OK", "fine")]
    assert (
        "ERR: 1 of 1 partition STOP (orders/0); orders/0: no commit since 22:22:20 UTC, longer than the "
        "window&#x27;s span of 540 s, and the partition&#x27;s HEAD moved past the last commit (offset 100, "
        "HEAD 155)" in page
    )
    assert '<td class="num">55</td><td class="num">55 <span class="where">(orders/0)</span></td>' in page
    assert "reachable since" in page
    assert "3 groups, worst first." in page


def test_cluster_down_says_since_when_and_why() -> None:
    down = cluster(FINE, up=False, last_error="KafkaConnectionError: no broker")
    page = overview_page([down], OverviewQuery(), NOW_MS, "9.9")
    assert "unreachable since" in page
    assert "(90 s ago): KafkaConnectionError: no broker" in page
    assert '<span aria-hidden="true">\u2716</span> down</span>' in page


def test_status_is_never_told_by_colour_alone() -> None:
    page = overview_page([cluster(FINE, SLOW, STOPPED)], OverviewQuery(), NOW_MS, "9.9")
    for badge in re.findall(r'<span class="badge [^"]*">.*?</span>\s*\w*</span>', page):
        assert re.search(r"\b(OK|WARN|ERR|NOTFOUND|up|down)</span>$", badge), badge


def test_every_name_is_escaped() -> None:
    hostile = evaluate_group(
        GroupSnapshot("c1", HOSTILE, (partition(HOSTILE, 0, EX2, 20, (20, 30)),), 0), T + 1200
    )
    state = cluster(hostile)
    for page in (
        overview_page([state], OverviewQuery(text="<script>"), NOW_MS, "9.9"),
        group_page(state, hostile, None, NOW_MS, "9.9"),
    ):
        assert "<script>alert" not in page
        assert (
            "&quot;&#x27;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;amp; gr\u00fcppe \u2603 \u65e5\u672c"
            in page
        )
    overview = overview_page([state], OverviewQuery(), NOW_MS, "9.9")
    assert f'href="group/c1/{quote(HOSTILE, safe="")}"'.replace("&", "&amp;") in overview


def test_filter_by_text_and_status() -> None:
    state = cluster(FINE, SLOW, STOPPED, STALLED)
    assert rows(overview_page([state], OverviewQuery(text="ST"), NOW_MS, "9.9")) == [
        ("ERR", "stopped"),
        ("ERR", "stalled"),
    ]
    only_ok = OverviewQuery.parse([("status", "ok"), ("status", "bogus")])
    page = overview_page([state], only_ok, NOW_MS, "9.9")
    assert rows(page) == [("OK", "fine")]
    assert "1 of 4 groups match the filter, worst first." in page
    assert 'value="OK" checked>' in page
    assert 'value="ERR">' in page


def test_counts_by_status_cover_every_group_whatever_the_filter() -> None:
    page = overview_page([cluster(FINE, SLOW, STOPPED, STALLED)], OverviewQuery(text="fine"), NOW_MS, "9.9")
    counts = re.findall(r'<li class="count">.*?(\w+)</span> <strong>([\d,]+)</strong>', page)
    assert counts == [("ERR", "2"), ("WARN", "1"), ("OK", "1"), ("NOTFOUND", "0")]


def test_pages_of_groups() -> None:
    many = [evaluated(f"g{i:04}", partition("t", 0, EX3, 0)) for i in range(PAGE_SIZE * 2 + 5)]
    state = cluster(*many)
    first = overview_page([state], OverviewQuery(text="g"), NOW_MS, "9.9")
    assert len(rows(first)) == PAGE_SIZE
    assert "Page 1 of 3" in first
    assert '<a href="?q=g&amp;page=2" rel="next">' in first
    last = overview_page([state], OverviewQuery(text="g", page=3), NOW_MS, "9.9")
    assert [name for _, name in rows(last)] == [f"g{i:04}" for i in range(PAGE_SIZE * 2, PAGE_SIZE * 2 + 5)]
    assert '<a href="?q=g&amp;page=2" rel="prev">' in last
    beyond = overview_page([state], OverviewQuery(page=99), NOW_MS, "9.9")
    assert "Page 3 of 3" in beyond


def test_query_parsing_ignores_nonsense() -> None:
    assert OverviewQuery.parse({"page": "-3", "q": "  x "}) == OverviewQuery(text="x")
    assert OverviewQuery.parse({"page": "abc"}).page == 1
    assert OverviewQuery(text="a b", statuses=frozenset({Status.ERR})).url(2) == "?q=a+b&status=ERR&page=2"


def test_group_page_shows_partitions_reasons_lag_seconds_and_the_window_chart() -> None:
    snap = snapshot("stalled", partition("orders", 0, EX2, 20, (10, 30)), partition("orders", 1, EX3, 0))
    status = evaluate_group(snap, T + 1200)
    state = cluster(status, lag_seconds={"stalled": [LagSeconds(754.2, "interpolated"), None]})
    page = group_page(state, status, snap, NOW_MS, "9.9")
    assert "offset 10 committed 10 times while 20 messages wait" in page
    assert '<td class="num">754</td>' in page
    assert page.count('<svg class="chart"') == 2
    assert (
        '<title id="chart-0">10 commits from 2023-11-14 22:13:20 UTC to 2023-11-14 22:22:20 UTC: committed '
        "offset 10 to 10, lag 5 to 5 (highest 5)</title>"
    ) in page
    # A flat offset line in the middle; the lag (5 at every commit, scaled from 0) at the top.
    start = page.index('<svg class="chart"')
    chart = page[start : page.index("</svg>", start)]
    offsets = re.search(r'<polyline class="offset" points="([^"]+)"', chart)
    assert offsets is not None
    assert {point.split(",")[1] for point in offsets.group(1).split()} == {"28.0"}
    lags = re.search(r'<polyline class="lag" points="([^"]+)"', chart)
    assert lags is not None
    assert {point.split(",")[1] for point in lags.group(1).split()} == {"4.0"}
    assert chart.count('<rect class="lag"') == 10
    assert "<td>/10.0.0.0</td><td>client-0</td>" in page


def test_group_page_shows_retention_headroom_and_losses() -> None:
    snap = snapshot("stalled", partition("orders", 0, EX2, 20, (10, 30)), partition("orders", 1, EX3, 0))
    status = evaluate_group(snap, T + 1200)
    state = cluster(status, headroom={"stalled": [Headroom(0, 1_500, 90_061.0), Headroom(42, 0, 0.0)]})
    page = group_page(state, status, snap, NOW_MS, "9.9")
    assert '<td class="num">1d1h, 1,500 msgs</td>' in page
    assert '<td class="num"><span class="lost">42 lost</span></td>' in page
    assert ">Retention</th>" in page
    without = group_page(cluster(status), status, snap, NOW_MS, "9.9")
    assert "msgs" not in without
    assert 'class="lost"' not in without


def test_fragment_is_the_main_element_only() -> None:
    state = cluster(FINE)
    fragment = overview_page([state], OverviewQuery(), NOW_MS, "9.9", fragment=True)
    assert "<html" not in fragment
    assert fragment in overview_page([state], OverviewQuery(), NOW_MS, "9.9")


# ------------------------------------------------------------------------------------------------------------
# Routes


@pytest.fixture
async def client(clusters: dict[str, Any]) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(build_app(clusters, make_settings()))) as test_client:
        yield test_client


async def test_overview_route(client: TestClient[Any, Any]) -> None:
    response = await client.get("/?status=ERR")
    assert response.status == 200
    assert response.content_type == "text/html"
    assert response.headers["Cache-Control"] == "no-store"
    page = await response.text()
    assert rows(page) == [("ERR", "testgroup2")]
    fragment = await (await client.get("/?status=ERR&fragment=1")).text()
    assert fragment.startswith("<section")
    assert rows(fragment) == [("ERR", "testgroup2")]


async def test_group_route_and_unknown_group(client: TestClient[Any, Any]) -> None:
    response = await client.get("/group/c1/testgroup2")
    assert response.status == 200
    page = await response.text()
    assert "no commit since 22:12:20 UTC" in page
    assert '<svg class="chart"' in page
    missing = await client.get("/group/c1/" + quote("no/such group", safe=""))
    assert missing.status == 404
    assert "No consumer group no/such group in cluster c1" in await missing.text()
    assert (await client.get("/group/nope/testgroup2")).status == 404
    # Names with braces, quotes and nothing at all reach the page (and are not found here) like the API's.
    for name in ("{x}", "a'b\"c", ""):
        response = await client.get("/group/c1/" + quote(name, safe=""))
        assert response.status == 404, name
        assert "No consumer group" in await response.text()


async def test_assets_are_served_by_lagwatch(client: TestClient[Any, Any]) -> None:
    css = await client.get("/static/page.css")
    assert css.content_type == "text/css"
    assert "prefers-color-scheme: dark" in await css.text()
    js = await client.get("/static/page.js")
    assert js.content_type == "text/javascript"
    page = await (await client.get("/")).text()
    # Nothing is fetched from anywhere else.
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert '<script src="static/page.js" defer></script>' in page


async def test_page_is_behind_basic_auth(clusters: dict[str, Any], tmp_path: Any) -> None:
    config = tmp_path / "web.yml"
    config.write_text(f"basic_auth_users:\n  admin: {PASSWORD_HASH}\n")
    app = build_app(clusters, make_settings(), load_web_config(str(config)))
    async with TestClient(TestServer(app)) as test_client:
        for path in ("/", "/group/c1/testgroup2", "/static/page.js"):
            assert (await test_client.get(path)).status == 401
            assert (await test_client.get(path, headers=basic("admin", PASSWORD))).status == 200
