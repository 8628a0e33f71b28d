"""End to end in a real browser: headless Chromium (Debian's) against lagwatch on a real Kafka with the
scenario workload, driven over the DevTools protocol (tests/e2e/browser.py).

The page must list every scenario's group with the right status and reason, filter as the user types, refresh
itself without reloading, draw the window of a group, work from the keyboard, and show a hostile group name
(quotes, `<script>`, unicode) as text. Screenshots of the overview and of group pages are saved in the test's
output directory (and copied to $LAGWATCH_SCREENSHOTS when set); the paths are printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from exporter.tools.workload.runner import Workload
from exporter.tools.workload.scenarios import CONSUMER_PROTOCOL
from tests.e2e.browser import Browser, Page, chromium_path, launched
from tests.e2e.driving import eventually
from tests.kafka_cluster import unique_name

if TYPE_CHECKING:
    from tests.e2e.conftest import Lagwatch

pytestmark = pytest.mark.e2e

T = TypeVar("T")
TIMEOUT_S = 60.0
POLL_S = 0.5
HOSTILE_SUFFIX = "\"'><script>window.__xss=1</script><b>bold</b> gr\u00fc\u00dfe \u2603 \u65e5\u672c"

ROWS = """[...document.querySelectorAll('table.groups tbody tr')].map(tr => ({
    status: tr.querySelector('td .badge').textContent.replace(/^\\S+\\s+/, ''),
    group: tr.querySelector('th a').textContent,
    href: tr.querySelector('th a').href,
    reason: tr.querySelector('td.reason').textContent,
}))"""


async def _eventually(workload: Workload, check: Callable[[], Awaitable[T]]) -> T:
    return await eventually(workload, check, TIMEOUT_S, POLL_S)


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("statuspage")


def _keep(path: Path) -> None:
    print(f"screenshot: {path}")
    wanted = os.environ.get("LAGWATCH_SCREENSHOTS")
    if wanted:
        Path(wanted).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(wanted) / path.name)


@pytest.fixture(scope="module")
async def browser(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Browser]:
    executable = chromium_path()
    if executable is None:
        reason = "Chromium is not installed (apt-get install chromium; .ci/run installs it)"
        # CI installs it: there a missing browser is a broken setup, never a skip.
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    async with launched(executable, tmp_path_factory.mktemp("chromium-profile")) as running:
        yield running


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    opened = await browser.new_page()
    try:
        yield opened
    finally:
        with contextlib.suppress(Exception):
            await opened.send("Page.close")


@pytest.fixture(scope="module")
async def hostile_group(kafka_bootstrap: str, workload: Workload) -> AsyncIterator[str]:
    """A group whose name is an attack on the page, committing to the healthy topic's partition 0 once a
    second: OK (its lag is 0 at some commit of every window)."""
    name = f"{unique_name('lagwatch-e2e')}-{HOSTILE_SUFFIX}"
    topic = workload.state("healthy").topic
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=name, enable_auto_commit=False, client_id="hostile"
    )
    await consumer.start()
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])

    async def commit_forever() -> None:
        while True:
            end = (await consumer.end_offsets([partition]))[partition]
            await consumer.commit({partition: end})
            await asyncio.sleep(1.0)

    task = asyncio.create_task(commit_forever())
    try:
        yield name
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await consumer.stop()


def _expected(workload: Workload) -> dict[str, tuple[str, str]]:
    """Group name -> (status, pattern of its reason) for every scenario the workload runs."""
    number = r"\d[\d,]*"
    clock = r"\d\d:\d\d:\d\d UTC"
    stalled = workload.state("stalled")
    phase = workload.config.phase
    expected = {}
    for name, state in workload.states.items():
        t0 = re.escape(f"{state.topic}/0")
        if name in ("healthy", CONSUMER_PROTOCOL):
            s = "" if state.partitions == 1 else "s"
            expected[state.group] = ("OK", rf"OK: all {state.partitions} partition{s} OK")
        elif name == "slow":
            t1 = re.escape(f"{state.topic}/1")
            expected[state.group] = (
                "WARN",
                rf"WARN: 2 of 2 partitions WARN \({t0}, {t1}\); {t0}: lag never fell over the last {phase} "
                rf"commits \({number} -> {number}\)",
            )
        elif name == "stalled":
            stuck = f"{stalled.committed[0]:,}" if stalled.committed else number
            expected[state.group] = (
                "ERR",
                rf"ERR: 1 of 1 partition STALL \({t0}\); {t0}: offset {stuck} committed {phase} times while "
                rf"{number} messages wait",
            )
        elif name == "stopped":
            expected[state.group] = (
                "ERR",
                rf"ERR: 1 of 1 partition STOP \({t0}\); {t0}: no commit since {clock}, longer than the "
                rf"window's span of \d+ s, and the partition's HEAD moved past the last commit \(offset "
                rf"{number}, HEAD {number}\)",
            )
        elif name == "rewound":
            expected[state.group] = (
                "ERR",
                rf"ERR: 1 of 1 partition REWIND \({t0}\); {t0}: committed offset went back from ({number}) "
                rf"to {number} at {clock} and has not returned to \1 since",
            )
    return expected


async def _rows(page: Page) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = await page.evaluate(ROWS)
    return rows


async def test_overview_lists_every_demo_group_with_its_status_and_reason(
    lagwatch: Lagwatch, workload: Workload, page: Page, output_dir: Path
) -> None:
    unavailable = workload.state(CONSUMER_PROTOCOL).unavailable
    if unavailable and os.environ.get("CI"):
        pytest.fail(unavailable)

    async def shows_every_group() -> None:
        expected = _expected(workload)
        if unavailable:
            expected.pop(workload.state(CONSUMER_PROTOCOL).group)
        await page.goto(lagwatch.url + "/")
        rows = {row["group"]: row for row in await _rows(page)}
        for group, (status, reason) in expected.items():
            assert group in rows, f"{group} not listed"
            assert rows[group]["status"] == status, rows[group]
            assert re.fullmatch(reason, rows[group]["reason"]), (rows[group]["reason"], reason)
        # Worst first: every ERR row before every WARN row before every OK row.
        order = [row["status"] for row in rows.values()]
        ranks = [{"ERR": 0, "WARN": 1, "OK": 2, "NOTFOUND": 3}[s] for s in order]
        assert ranks == sorted(ranks)

    await _eventually(workload, shows_every_group)
    assert await page.evaluate(
        "document.querySelector('table.clusters').textContent.includes('reachable since')"
    )
    _keep(await page.screenshot(output_dir / "overview.png"))


async def test_the_filter_box_and_status_filters_filter_as_the_user_types(
    lagwatch: Lagwatch, workload: Workload, page: Page
) -> None:
    slow = workload.state("slow").group
    await _eventually(workload, lambda: _listed(page, lagwatch, slow, "WARN"))
    # The keyboard reaches the skip link first, then the navigation, then the filter box.
    focused = []
    for _ in range(7):
        await page.press("Tab")
        focused.append(await page.evaluate("document.activeElement.id || document.activeElement.textContent"))
    assert focused == [
        "Skip to the content",
        "lagwatch",
        "Metrics",
        "Burrow API",
        "Runbooks",
        "Readiness",
        "q",
    ]
    await page.type_text(slow)
    await page.wait_for(
        "location.search.includes('q=') && document.querySelectorAll('table.groups tbody tr').length === 1"
    )
    assert [row["group"] for row in await _rows(page)] == [slow]
    assert await page.evaluate("new URLSearchParams(location.search).get('q')") == slow
    # Clear the box, then leave only ERR checked, from the keyboard: Tab to each box and press space.
    await page.evaluate("document.getElementById('q').select()")
    await page.press("Backspace")
    await page.wait_for("new URLSearchParams(location.search).get('q') === ''")
    for box in ("WARN", "OK", "NOTFOUND"):
        await page.evaluate(f"document.querySelector('input[value={box}]').focus()")
        await page.press(" ")
    await page.wait_for(
        "[...document.querySelectorAll('table.groups tbody tr td .badge')].length > 0 && "
        "[...document.querySelectorAll('table.groups tbody tr td .badge')]"
        ".every(b => b.textContent.endsWith('ERR'))"
    )
    groups = {row["group"] for row in await _rows(page)}
    assert {workload.state(s).group for s in ("stalled", "stopped")} <= groups
    assert slow not in groups
    assert await page.evaluate("new URLSearchParams(location.search).getAll('status')") == ["ERR"]


async def _listed(page: Page, lagwatch: Lagwatch, group: str, status: str) -> dict[str, str]:
    await page.goto(lagwatch.url + "/")
    rows = {row["group"]: row for row in await _rows(page)}
    assert group in rows
    assert rows[group]["status"] == status
    return rows[group]


async def test_the_page_refreshes_itself_without_reloading(lagwatch: Lagwatch, page: Page) -> None:
    await page.goto(lagwatch.url + "/")
    first = await page.evaluate("document.getElementById('updated').dateTime")
    await page.evaluate("window.__notReloaded = true")
    await page.wait_for(f"document.getElementById('updated').dateTime !== {json.dumps(first)}", timeout_s=15)
    assert await page.evaluate("window.__notReloaded") is True
    assert await page.evaluate("document.querySelectorAll('table.groups tbody tr').length") > 0


async def test_light_and_dark_follow_the_browser(lagwatch: Lagwatch, page: Page, output_dir: Path) -> None:
    await page.goto(lagwatch.url + "/")
    background = "getComputedStyle(document.body).backgroundColor"
    for scheme, colour in (("light", "rgb(255, 255, 255)"), ("dark", "rgb(13, 17, 23)")):
        await page.send(
            "Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": scheme}]
        )
        assert await page.evaluate(background) == colour, scheme
    _keep(await page.screenshot(output_dir / "overview-dark.png"))


async def test_group_page_shows_each_partition_and_the_window_chart(
    lagwatch: Lagwatch, workload: Workload, page: Page, output_dir: Path
) -> None:
    phase = workload.config.phase
    for scenario, status in (("stalled", "STALL"), ("slow", "WARN")):
        state = workload.state(scenario)

        async def shows_group(state: Any = state, status: str = status, scenario: str = scenario) -> None:
            row = await _listed(page, lagwatch, state.group, "ERR" if status == "STALL" else status)
            await page.goto(row["href"])
            assert await page.evaluate("document.querySelector('h2 .name').textContent") == state.group
            partitions = await page.evaluate(
                """[...document.querySelectorAll('table.partitions tbody tr')].map(tr => ({
                    status: tr.querySelector('.badge').textContent.replace(/^\\S+\\s+/, ''),
                    reason: tr.querySelector('td.reason').textContent,
                    offset: tr.children[6].textContent,
                    points: tr.querySelector('svg.chart polyline.offset').getAttribute('points').split(' '),
                    lags: tr.querySelectorAll('svg.chart rect.lag').length,
                    title: tr.querySelector('svg.chart title').textContent,
                }))"""
            )
            assert len(partitions) == state.partitions
            for partition in partitions:
                assert partition["status"] == status
                assert len(partition["points"]) == phase
                assert partition["lags"] == phase
                assert partition["title"].startswith(f"{phase} commits from ")
            if scenario == "stalled":
                (only,) = partitions
                stuck = f"{state.committed[0]:,}"
                assert only["offset"] == stuck
                assert only["reason"].startswith(f"offset {stuck} committed {phase} times while ")
                # A STALL is a flat offset line.
                assert len({point.split(",")[1] for point in only["points"]}) == 1

        await _eventually(workload, shows_group)
        _keep(await page.screenshot(output_dir / f"group-{scenario}.png"))


async def test_a_hostile_group_name_is_shown_as_text(
    lagwatch: Lagwatch, workload: Workload, hostile_group: str, page: Page, output_dir: Path
) -> None:
    row = await _eventually(workload, lambda: _listed(page, lagwatch, hostile_group, "OK"))
    assert row["group"] == hostile_group
    assert row["href"].endswith("/group/local/" + quote(hostile_group, safe=""))
    assert await page.evaluate("window.__xss") is None
    assert await page.evaluate("document.scripts.length") == 1
    assert await page.evaluate("document.querySelectorAll('table.groups b').length") == 0
    await page.goto(row["href"])
    assert await page.evaluate("document.querySelector('h2 .name').textContent") == hostile_group
    assert await page.evaluate("document.title") == f"lagwatch: {hostile_group}"
    assert await page.evaluate("window.__xss") is None
    assert await page.evaluate("document.scripts.length") == 1
    _keep(await page.screenshot(output_dir / "group-hostile.png"))
