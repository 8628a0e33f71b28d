"""Any group id Kafka accepts has its URL in every endpoint, and `lagwatch status` shows every group it can
(issue #16, item 6). The requests go out as raw bytes, percent-encoded the way `lagwatch status` and any
careful client encodes a path segment, so that no client library normalises them on the way.

The same names are committed through a real broker in tests/e2e/test_hostile_group_names.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from exporter import cli
from exporter.core.model import OffsetCommit
from exporter.core.storage import Storage
from exporter.exposition.server import HttpServer
from exporter.runtime import ClusterRuntime
from exporter.tools import status
from tests.unit.test_http import NOW, NOW_MS, T0, TOKEN, make_settings, read_side_settings

HOSTILE = (
    'a}b{c="d"',
    "g" * 10_000,
    "grüße-组-🚀",
    "team/a/../b",
    "..",
    ".",
    "50%off %2F ?#&=+;",
    "tab\tnew\nline\\",
    "",
)


async def make_cluster() -> ClusterRuntime:
    def fill(storage: Storage) -> None:
        storage.set_topics({"events": 1}, NOW_MS)
        storage.add_head_offset("events", 0, 500, NOW_MS)
        for index, group in enumerate(HOSTILE):
            for i in range(10):
                commit = OffsetCommit(group, "events", 0, 400 + i, T0 + 10_000 * i)
                storage.apply(commit, 100 * index + i, NOW_MS)

    runtime = ClusterRuntime.filled("c1", read_side_settings(), fill, clock=lambda: NOW)
    await runtime.evaluate_now()
    return runtime


@pytest.fixture
async def server() -> AsyncIterator[HttpServer]:
    running = HttpServer({"c1": await make_cluster()}, make_settings(admin_token=TOKEN))
    await running.start()
    yield running
    await running.stop()


async def call(server: HttpServer, method: str, path: str, token: bool = False) -> tuple[int, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    auth = f"Authorization: Bearer {TOKEN}\r\n" if token else ""
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n".encode())
    await writer.drain()
    answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body) if body.startswith(b"{") else body


def segment(name: str) -> str:
    return quote(name, safe="")


@pytest.mark.parametrize("group", HOSTILE, ids=lambda g: repr(g[:20]))
async def test_every_endpoint_answers_for_the_group(server: HttpServer, group: str) -> None:
    base = f"/v3/kafka/c1/consumer/{segment(group)}"
    code, detail = await call(server, "GET", base)
    assert code == 200, detail
    assert set(detail["topics"]) == {"events"}
    for suffix in ("/status", "/lag"):
        code, body = await call(server, "GET", base + suffix)
        assert code == 200, body
        assert body["status"]["group"] == group
        assert body["status"]["status"] == "OK"
        assert body["status"]["totallag"] == 91
    code, body = await call(server, "GET", "/v3/kafka/c1/consumer")
    assert group in body["consumers"]
    code, body = await call(server, "GET", "/v3/kafka/c1/topic/events/consumers")
    assert group in body["consumers"]
    code, _ = await call(server, "DELETE", f"{base}/topic/events", token=True)
    assert code == 200
    code, body = await call(server, "GET", base + "/status")
    assert (code, body["status"]["status"]) == (404, "NOTFOUND")
    code, body = await call(server, "GET", "/v3/kafka/c1/consumer")
    assert group not in body["consumers"]
    assert len(body["consumers"]) == len(HOSTILE) - 1


async def test_whole_group_delete_and_metrics_labels(server: HttpServer) -> None:
    code, body = await call(server, "GET", "/metrics")
    assert code == 200
    labelled = {
        sample.labels["group"]
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if family.name == "lagwatch_group_status"
    }
    assert labelled == set(HOSTILE)
    for group in HOSTILE:
        code, _ = await call(server, "DELETE", f"/v3/kafka/c1/consumer/{segment(group)}", token=True)
        assert code == 200
    code, body = await call(server, "GET", "/v3/kafka/c1/consumer")
    assert body["consumers"] == []


async def test_status_shows_every_hostile_group(
    server: HttpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await asyncio.to_thread(cli.main, ["status", "--url", server.url, "--json"])
    out, err = capsys.readouterr()
    assert (code, err) == (status.EXIT_OK, "")
    assert sorted(g["group"] for g in json.loads(out)["groups"]) == sorted(HOSTILE)
    for group in HOSTILE:
        code = await asyncio.to_thread(cli.main, ["status", "--url", server.url, "--group", group, "--json"])
        out, err = capsys.readouterr()
        assert (code, err) == (status.EXIT_OK, "")
        assert [g["group"] for g in json.loads(out)["groups"]] == [group]


async def test_status_reports_a_group_it_cannot_read_and_shows_the_others(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A server (Burrow, or a lagwatch of another version) whose answer for one group is broken."""
    real = HttpServer({"c1": await make_cluster()}, make_settings())
    await real.start()
    broken = {'a}b{c="d"': 500, "grüße-组-🚀": 200}

    async def proxy(request: web.Request) -> web.Response:
        group = request.match_info.get("group")
        if group in broken:
            body = "oops" if broken[group] == 500 else json.dumps({"status": {"status": "NOPE"}})
            return web.Response(status=broken[group], text=body)
        reader, writer = await asyncio.open_connection("127.0.0.1", real.port)
        writer.write(f"GET {request.raw_path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        answer = await reader.read()
        writer.close()
        head, _, body_bytes = answer.partition(b"\r\n\r\n")
        code = int(head.split(b" ", 2)[1])
        return web.Response(status=code, body=body_bytes, content_type="application/json")

    app = web.Application()
    app.router.add_get("/v3/kafka/c1/consumer/{group:[^/]*}/lag", proxy)
    app.router.add_get("/{tail:.*}", proxy)
    # aiohttp's default limit of 8,190 bytes per request line: too short for the 10,000-character group.
    fake = TestServer(app, host="127.0.0.1")
    await fake.start_server()
    url = str(fake.make_url("")).rstrip("/")
    try:
        code = await asyncio.to_thread(cli.main, ["status", "--url", url, "--json"])
    finally:
        await fake.close()
        await real.stop()
    out, err = capsys.readouterr()
    assert code == status.EXIT_ERR
    shown = sorted(g["group"] for g in json.loads(out)["groups"])
    assert shown == sorted(set(HOSTILE) - {*broken, "g" * 10_000})
    assert err.splitlines() == [
        f"lagwatch status: cannot show group 'a}}b{{c=\"d\"' of cluster c1: {url} answered 500 "
        "Internal Server Error",
        f"lagwatch status: cannot show group '{'g' * 10_000}' of cluster c1: {url} answered 400 Bad Request",
        "lagwatch status: cannot show group 'grüße-组-🚀' of cluster c1: unknown status 'NOPE' in the answer",
    ]
