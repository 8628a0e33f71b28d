"""The HTTP server against hostile clients (issue #16, item 5): undecodable credentials, deeply nested JSON,
malformed requests, early disconnects, slow-loris connections and a flood of wrong passwords.

The server is a real HttpServer on loopback; the requests are raw bytes on sockets where a client library
would refuse to send them.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.exposition.guard import passwords
from exporter.exposition.guard.counters import GuardCounters, Throttle
from exporter.exposition.guard.passwords import PasswordChecker, Verdict
from exporter.exposition.server import HttpServer
from tests.unit.test_http import PASSWORD, PASSWORD_HASH, TOKEN, make_c1, make_c2, make_settings

ENDPOINTS = ("/metrics", "/-/healthy", "/v3/kafka", "/v3/kafka/c1/consumer/testgroup/status", "/nowhere")


async def start(tmp_path: Path, web_config: str = "", **http: Any) -> HttpServer:
    if web_config:
        (tmp_path / "web.yml").write_text(web_config)
        http["web_config_file"] = str(tmp_path / "web.yml")
    server = HttpServer({"c1": await make_c1(), "c2": await make_c2()}, make_settings(**http))
    await server.start()
    return server


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    servers: list[HttpServer] = []

    async def serve(web_config: str = "", **http: Any) -> HttpServer:
        server = await start(tmp_path, web_config, **http)
        servers.append(server)
        return server

    yield serve
    for server in servers:
        await server.stop()


async def exchange(port: int, data: bytes, wait: float = 5.0) -> bytes:
    """Send raw bytes, return everything the server answers until it closes or goes quiet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(1 << 16), wait)
    finally:
        writer.close()


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def get(path: str, *headers: bytes) -> bytes:
    lines = [f"GET {path} HTTP/1.1".encode(), b"Host: x", *headers, b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def own_metrics(server: HttpServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = await exchange(server.port, get("/metrics"))
    body = answer.split(b"\r\n\r\n", 1)[1].decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        if family.name.startswith("lagwatch_http_")
        for sample in family.samples
    }


# ------------------------------------------------------------------------------------------------------------
# Undecodable credentials and bodies: 401 and 400, never 500


async def test_undecodable_bearer_token_is_401_not_500(served: Callable[..., Any]) -> None:
    server = await served(admin_token=TOKEN)
    request = (
        b"DELETE /v3/kafka/c1/consumer/testgroup HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\r\n"
        b"Connection: close\r\n\r\n"
    )
    assert status_of(await exchange(server.port, request)) == 401
    token = f"Authorization: Bearer {TOKEN}".encode()
    delete = get("/v3/kafka/c1/consumer/testgroup", token).replace(b"GET", b"DELETE", 1)
    assert status_of(await exchange(server.port, delete)) == 200


@pytest.mark.parametrize(
    "credentials",
    [b"Basic \xc3\xa9", b"Basic \xff\xfe", b"Basic %%%%", b"Basic " + base64.b64encode(b"\xff:\xfe")],
    ids=["e-acute", "not-utf8", "not-base64", "decodes-to-non-utf8"],
)
async def test_unreadable_basic_credentials_are_401_on_every_endpoint(
    served: Callable[..., Any], credentials: bytes
) -> None:
    server = await served(f"basic_auth_users:\n  alice: '{PASSWORD_HASH}'\n")
    for path in ENDPOINTS:
        answer = await exchange(server.port, get(path, b"Authorization: " + credentials))
        assert status_of(answer) == 401, (path, answer[:200])
    good = b"Authorization: Basic " + base64.b64encode(f"alice:{PASSWORD}".encode())
    assert status_of(await exchange(server.port, get("/metrics", good))) == 200


async def test_deeply_nested_json_body_is_400(served: Callable[..., Any]) -> None:
    server = await served(admin_token=TOKEN)
    body = b"[" * 100_000 + b"]" * 100_000
    request = (
        b"POST /v3/admin/loglevel HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
        b"Connection: close\r\n\r\n" + body
    )
    answer = await exchange(server.port, request)
    assert status_of(answer) == 400
    assert b'"error":true' in answer


# ------------------------------------------------------------------------------------------------------------
# Malformed requests and early disconnects: counted, logged once per kind, no traceback

MALFORMED = {
    "too_long": get("/", b"X-Long: " + b"a" * 20_000),
    "bad_method": b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n",
    "tls_on_plain_port": bytes.fromhex("16030100a5010000a10303") + bytes(160),
    "malformed": b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
}


async def test_malformed_requests_are_counted_and_logged_once_per_kind_without_traceback(
    served: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    server = await served()
    caplog.set_level(logging.INFO)
    for _ in range(5):
        for request in MALFORMED.values():
            assert status_of(await exchange(server.port, request)) == 400
    # A client that asks for /metrics and hangs up before reading the answer.
    for _ in range(5):
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(get("/metrics"))
        await writer.drain()
        writer.transport.abort()
    await asyncio.sleep(0.5)
    records = [r for r in caplog.records if r.name.startswith(("aiohttp", "exporter.exposition"))]
    assert all(r.exc_info is None and r.exc_text is None for r in records), [r.getMessage() for r in records]
    assert all(r.levelno <= logging.WARNING for r in records)
    lines = [r.getMessage() for r in records if r.getMessage().startswith("HTTP: ")]
    for kind in MALFORMED:
        assert sum(line.startswith(f"HTTP: {kind.replace('_', ' ')} from 127.0.0.1") for line in lines) == 1
    assert sum(line.startswith("HTTP: client disconnect") for line in lines) <= 1
    counted = await own_metrics(server)
    for kind in MALFORMED:
        assert counted[("lagwatch_http_request_errors_total", (("kind", kind),))] == 5
    assert 1 <= counted.get(("lagwatch_http_request_errors_total", (("kind", "client_disconnect"),)), 0) <= 5


def test_the_throttle_reports_what_it_left_out() -> None:
    now = [0.0]
    throttle = Throttle(60.0, lambda: now[0])
    assert [throttle("a"), throttle("a"), throttle("b"), throttle("a")] == [0, None, 0, None]
    now[0] = 61.0
    assert [throttle("a"), throttle("a"), throttle("b")] == [2, None, 0]


# ------------------------------------------------------------------------------------------------------------
# Slow clients and the connection cap


async def test_metrics_answers_under_a_slow_loris_load_and_the_slow_connections_are_closed(
    served: Callable[..., Any],
) -> None:
    """300 connections each sending one byte a second, never finishing their head: the cap (100) makes room
    for every scrape by closing the oldest of them, and the header timeout (2 s) closes the rest."""
    server = await served(max_connections=100, header_timeout=2.0)
    closed_after: list[float] = []
    stop = asyncio.Event()

    async def loris() -> None:
        started = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            for byte in b"GET /metrics HTTP/1.1\r\nX-Slow: " + b"a" * 100:
                writer.write(bytes([byte]))
                await writer.drain()
                with_data = asyncio.ensure_future(reader.read(1))
                done, _ = await asyncio.wait([with_data], timeout=1.0)
                if done or stop.is_set():
                    with_data.cancel()
                    break
                with_data.cancel()
        except ConnectionError:
            pass
        closed_after.append(time.monotonic() - started)
        writer.close()

    lorises = [asyncio.create_task(loris()) for _ in range(300)]
    await asyncio.sleep(1.0)
    latencies = []
    for _ in range(10):
        started = time.monotonic()
        answer = await exchange(server.port, get("/metrics"), wait=10)
        latencies.append(time.monotonic() - started)
        assert status_of(answer) == 200
        assert answer.rstrip().endswith(b"# EOF") or b"lagwatch_http_open_connections" in answer
        await asyncio.sleep(0.2)
    await asyncio.wait_for(asyncio.gather(*lorises), 15)
    stop.set()
    # Every slow connection was closed by the server: by the cap or at the header timeout, not by the test.
    assert len(closed_after) == 300
    assert max(closed_after) < 5.0
    counted = await own_metrics(server)
    timeouts = counted.get(("lagwatch_http_connections_refused_total", (("reason", "header_timeout"),)), 0)
    evicted = counted.get(("lagwatch_http_connections_refused_total", (("reason", "connection_limit"),)), 0)
    assert timeouts + evicted >= 300
    assert evicted >= 200
    assert counted[("lagwatch_http_open_connections", ())] == 1
    assert max(latencies) < 5.0, latencies


async def test_idle_keep_alive_connection_is_closed_after_idle_timeout(served: Callable[..., Any]) -> None:
    server = await served(idle_timeout=1.0, header_timeout=30.0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\nGET /-/hea")
    await writer.drain()
    started = time.monotonic()
    answer = await asyncio.wait_for(reader.read(), 10)
    assert b"200 OK" in answer
    assert 0.9 < time.monotonic() - started < 5
    writer.close()


async def test_slow_body_gets_408(served: Callable[..., Any]) -> None:
    server = await served(admin_token=TOKEN, read_timeout=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"POST /v3/admin/loglevel HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n"
        b"Content-Length: 20\r\n\r\n{"
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(4096), 5)
    assert status_of(answer) == 408
    writer.close()


# ------------------------------------------------------------------------------------------------------------
# Password checks under a flood


class SlowCheck:
    """In place of bcrypt: records who was checked, in order, and takes 50 ms."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, users: Any, user: str, password: str) -> bool:
        with self.lock:
            self.order.append(user)
        time.sleep(0.05)
        return password == "right"


@pytest.fixture(autouse=True)
def no_tarpit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "TARPIT_S", 0.0)


def header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_checks_go_trusted_first_then_unknown_then_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    check = SlowCheck()
    monkeypatch.setattr(passwords, "check_password", check)
    checker = PasswordChecker({"u": "hash", "known": "hash", "new": "hash"}, GuardCounters.new())
    assert await checker.check(header("known", "right"), "10.0.0.100") is Verdict.OK
    # Ten addresses fail once each, and so become suspect.
    for index in range(10):
        assert await checker.check(header("u", f"wrong{index}"), f"10.0.0.{index}") is Verdict.DENIED
    check.order.clear()
    flood = [asyncio.create_task(checker.check(header("u", f"again{i}"), f"10.0.0.{i}")) for i in range(10)]
    await asyncio.sleep(0.01)
    # While its first check waits, the same address gets no second one.
    assert await checker.check(header("u", "again0-bis"), "10.0.0.0") is Verdict.LIMITED
    newcomer = asyncio.create_task(checker.check(header("new", "right"), "10.0.0.200"))
    await asyncio.sleep(0)
    trusted = asyncio.create_task(checker.check(header("known", "right-again"), "10.0.0.100"))
    assert await trusted is Verdict.DENIED
    assert await newcomer is Verdict.OK
    # One wrong check was already running; the trusted address came right after it, then the newcomer.
    assert check.order[1:3] == ["known", "new"]
    await asyncio.gather(*flood)
    assert len(check.order) == 12


async def test_an_address_that_keeps_failing_is_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    check = SlowCheck()
    monkeypatch.setattr(passwords, "check_password", check)
    now = [1000.0]
    counters = GuardCounters.new()
    checker = PasswordChecker({"u": "hash"}, counters, clock=lambda: now[0])
    verdicts = [await checker.check(header("u", f"wrong{i}"), "10.0.0.1") for i in range(8)]
    assert verdicts == [Verdict.DENIED] * passwords.FAILURE_BURST + [Verdict.LIMITED] * 3
    assert len(check.order) == passwords.FAILURE_BURST
    # Another address is not affected; a repeated wrong header is refused from the cache without a check.
    assert await checker.check(header("u", "right"), "10.0.0.2") is Verdict.OK
    assert await checker.check(header("u", "wrong0"), "10.0.0.3") is Verdict.DENIED
    assert len(check.order) == passwords.FAILURE_BURST + 1
    now[0] += passwords.FAILURE_INTERVAL_S
    assert await checker.check(header("u", "right"), "10.0.0.1") is Verdict.OK
    assert counters.auth_refused == {"credentials": 6, "limited": 3}


async def test_too_many_waiting_checks_are_answered_429(monkeypatch: pytest.MonkeyPatch) -> None:
    check = SlowCheck()
    monkeypatch.setattr(passwords, "check_password", check)
    checker = PasswordChecker({"u": "hash"}, GuardCounters.new())
    verdicts = await asyncio.gather(
        *(checker.check(header("u", f"w{i}"), f"10.0.1.{i}") for i in range(passwords.MAX_WAITING + 5))
    )
    assert verdicts.count(Verdict.LIMITED) == 4
    assert verdicts[-4:] == [Verdict.LIMITED] * 4
    assert verdicts.count(Verdict.DENIED) == passwords.MAX_WAITING + 1


async def test_429_on_the_wire_while_an_address_is_limited(served: Callable[..., Any]) -> None:
    server = await served(f"basic_auth_users:\n  alice: '{PASSWORD_HASH}'\n")
    statuses = []
    for index in range(passwords.FAILURE_BURST + 2):
        wrong = b"Authorization: " + header("alice", f"wrong{index}").encode()
        statuses.append(status_of(await exchange(server.port, get("/metrics", wrong))))
    assert statuses == [401] * passwords.FAILURE_BURST + [429, 429]


async def test_429_answers_are_held_back_up_to_a_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "check_password", SlowCheck())
    monkeypatch.setattr(passwords, "TARPIT_S", 0.5)
    monkeypatch.setattr(passwords, "TARPIT_HELD", 1)
    checker = PasswordChecker({"u": "hash"}, GuardCounters.new())

    async def timed() -> tuple[Verdict, float]:
        started = time.monotonic()
        verdict = await checker.check(header("u", "x"), "10.0.0.1")
        return verdict, time.monotonic() - started

    first = asyncio.create_task(timed())
    await asyncio.sleep(0.01)
    # The address has a check running: the next two are limited, one held back, one answered at once.
    (held, held_for), (quick, quick_for) = await asyncio.gather(timed(), timed())
    assert (held, quick) == (Verdict.LIMITED, Verdict.LIMITED)
    assert held_for >= 0.5
    assert quick_for < 0.2
    assert (await first)[0] is Verdict.DENIED
