"""`lagwatch status` against a real server on 127.0.0.1: tables, JSON, colour and exit codes."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from exporter import cli
from exporter.core.retention import TopicRetention
from exporter.exposition import burrow_json
from exporter.exposition.server import HttpServer
from exporter.runtime import ClusterRuntime
from exporter.tools import status
from tests.unit.test_http import (
    PASSWORD,
    PASSWORD_HASH,
    fill_c2,
    make_c1,
    make_c2,
    make_settings,
    openssl_cert,
    starting,
    unreachable,
)

# slowgroup is 50% complete: othertopic has two partitions and it commits to one (Burrow's placeholders).
TABLE = (
    "CLUSTER  GROUP       STATUS  WORST-PARTITION    TOTAL-LAG  MAX-LAG-PARTITION    COMPLETE\n"
    "c1       testgroup2  ERR     STOP testtopic/0       2,921  testtopic/0 (2,921)        0%\n"
    "c1       slowgroup   WARN    WARN othertopic/1        990  othertopic/1 (990)        50%\n"
    "c1       testgroup   OK      -                      2,421  testtopic/0 (2,421)      100%\n"
    "c2       quiet       OK      -                          0  events/0 (0)             100%\n"
)


@pytest.fixture
async def clusters() -> dict[str, ClusterRuntime]:
    return {"c1": await make_c1(), "c2": await make_c2()}


async def started(clusters: dict[str, ClusterRuntime], **http: str) -> HttpServer:
    server = HttpServer(clusters, make_settings(**http))
    await server.start()
    return server


@pytest.fixture
async def server(clusters: dict[str, ClusterRuntime]) -> AsyncIterator[HttpServer]:
    running = await started(clusters)
    yield running
    await running.stop()


async def lagwatch_status(*argv: str) -> int:
    # The client blocks: it runs in a thread while the server answers on this event loop.
    return await asyncio.to_thread(cli.main, ["status", *argv])


async def test_table_of_every_group_worst_first_exits_1_on_err(
    server: HttpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await lagwatch_status("--url", server.url) == status.EXIT_ERR
    out, err = capsys.readouterr()
    assert err == ""
    assert out == TABLE


async def test_one_cluster_without_err_exits_0(
    server: HttpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await lagwatch_status("--url", server.url + "/", "--cluster", "c2") == status.EXIT_OK
    assert capsys.readouterr().out == (
        "CLUSTER  GROUP  STATUS  WORST-PARTITION  TOTAL-LAG  MAX-LAG-PARTITION  COMPLETE\n"
        "c2       quiet  OK      -                        0  events/0 (0)           100%\n"
    )


STOP = (
    "no commit since 22:12:20 UTC, longer than the window's span of 40 s, and the partition's HEAD moved "
    "past the last commit (offset 1,400, HEAD 4,321)"
)


async def test_partitions_of_one_group(server: HttpServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert await lagwatch_status("--url", server.url, "--group", "testgroup2") == status.EXIT_ERR
    assert capsys.readouterr().out == (
        "c1/testgroup2: ERR, total lag 2,921, 1 partition, 0% complete\n"
        f"ERR: 1 of 1 partition STOP (testtopic/0); testtopic/0: {STOP}\n"
        "TOPIC      PARTITION  STATUS    LAG  COMMITTED-OFFSET  OWNER      CLIENT-ID   REASON\n"
        f"testtopic          0  STOP    2,921              1400  /10.0.0.5  consumer-1  {STOP}\n"
    )


async def test_partitions_of_one_group_with_retention_headroom(
    clusters: dict[str, ClusterRuntime], capsys: pytest.CaptureFixture[str]
) -> None:
    # The HEAD poller learns that the log starts 120 records past testgroup2's commit.
    clusters["c1"].storage.set_start_offset("testtopic", 0, 1520)
    clusters["c1"].storage.set_topic_retention({"testtopic": TopicRetention(True, False, 86_400_000, None)})
    await clusters["c1"].evaluate_now()
    running = await started(clusters)
    try:
        assert await lagwatch_status("--url", running.url, "--group", "testgroup2") == status.EXIT_ERR
    finally:
        await running.stop()
    assert capsys.readouterr().out == (
        "c1/testgroup2: ERR, total lag 2,921, 1 partition, 0% complete\n"
        f"ERR: 1 of 1 partition STOP (testtopic/0); testtopic/0: {STOP}\n"
        "TOPIC      PARTITION  STATUS    LAG  COMMITTED-OFFSET  LOST  MARGIN  HEADROOM  "
        "OWNER      CLIENT-ID   REASON\n"
        "testtopic          0  STOP    2,921              1400   120       0        0s  "
        f"/10.0.0.5  consumer-1  {STOP}\n"
    )


async def test_unknown_group_exits_1(server: HttpServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert await lagwatch_status("--url", server.url, "--group", "ghost") == status.EXIT_ERR
    out, err = capsys.readouterr()
    assert (out, err) == ("", "lagwatch status: consumer group 'ghost' not found\n")


async def test_json_lists_burrow_status_objects_worst_first(
    server: HttpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await lagwatch_status("--url", server.url, "--json") == status.EXIT_ERR
    groups = json.loads(capsys.readouterr().out)["groups"]
    assert [(g["cluster"], g["group"], g["status"]) for g in groups] == [
        ("c1", "testgroup2", "ERR"),
        ("c1", "slowgroup", "WARN"),
        ("c1", "testgroup", "OK"),
        ("c2", "quiet", "OK"),
    ]
    assert groups[0]["partitions"][0]["status"] == "STOP"
    assert groups[0]["totallag"] == 2921


async def test_an_unreachable_cluster_gets_a_line_and_exit_3(
    clusters: dict[str, ClusterRuntime], server: HttpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # The statuses are frozen as last evaluated: the table still shows them, under a line that says so.
    unreachable(clusters["c2"])
    assert await lagwatch_status("--url", server.url) == status.EXIT_KAFKA_UNREACHABLE
    out, err = capsys.readouterr()
    assert err == ""
    assert out == (
        "cluster c2: UNREACHABLE since 2023-11-14 22:12:50 UTC (KafkaConnectionError: Unable to bootstrap "
        "from [('k', 9092)]); statuses as of 2023-11-14 22:13:20 UTC\n" + TABLE
    )
    assert await lagwatch_status("--url", server.url, "--json") == status.EXIT_KAFKA_UNREACHABLE
    clusters_json = json.loads(capsys.readouterr().out)["clusters"]
    assert clusters_json == [
        {
            "cluster": "c1",
            "ready": True,
            "waiting_for": "",
            "reachable": True,
            "unreachable_since": None,
            "cause": "",
            "statuses_as_of": 1_700_000_000_000,
        },
        {
            "cluster": "c2",
            "ready": True,
            "waiting_for": "",
            "reachable": False,
            "unreachable_since": 1_699_999_970_000,
            "cause": "KafkaConnectionError: Unable to bootstrap from [('k', 9092)]",
            "statuses_as_of": 1_700_000_000_000,
        },
    ]


async def test_a_cluster_not_ready_yet_gets_a_line_and_exit_3(
    clusters: dict[str, ClusterRuntime], server: HttpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    clusters["c2"] = await starting("c2", fill_c2)
    assert await lagwatch_status("--url", server.url, "--cluster", "c2") == status.EXIT_KAFKA_UNREACHABLE
    out, _ = capsys.readouterr()
    assert out.splitlines()[0] == (
        "cluster c2: NOT READY: still reading the committed offsets (12 records so far); no statuses yet"
    )


async def test_unreachable_server_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert await lagwatch_status("--url", f"http://127.0.0.1:{port}") == status.EXIT_UNREACHABLE
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"lagwatch status: cannot reach http://127.0.0.1:{port}: Connection refused\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cluster", "nope"], "lagwatch status: /v3/kafka/nope/consumer: cluster not found\n"),
        (["--url", "ftp://x"], "lagwatch status: --url 'ftp://x' is not an http:// or https:// URL\n"),
    ],
)
async def test_bad_targets_exit_2(
    server: HttpServer, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert await lagwatch_status("--url", server.url, *argv) == status.EXIT_UNREACHABLE
    assert capsys.readouterr().err == message


async def test_basic_auth_from_the_url(
    clusters: dict[str, ClusterRuntime], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "web.yml"
    config.write_text(f"basic_auth_users:\n  al ice: '{PASSWORD_HASH}'\n")
    server = await started(clusters, web_config_file=str(config))
    try:
        assert await lagwatch_status("--url", server.url) == status.EXIT_UNREACHABLE
        assert capsys.readouterr().err == (
            f"lagwatch status: {server.url} answered 401 Unauthorized; put user:password@ in --url\n"
        )
        authenticated = server.url.replace("://", f"://al%20ice:{PASSWORD}@")
        assert await lagwatch_status("--url", authenticated, "--cluster", "c2") == status.EXIT_OK
        assert "quiet" in capsys.readouterr().out
    finally:
        await server.stop()


async def test_https_with_a_ca_file(
    clusters: dict[str, ClusterRuntime], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = openssl_cert(tmp_path, "server", "IP:127.0.0.1")
    config = tmp_path / "web.yml"
    config.write_text(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n")
    server = await started(clusters, web_config_file=str(config))
    try:
        assert await lagwatch_status("--url", server.url, "--cluster", "c2") == status.EXIT_UNREACHABLE
        assert "certificate not trusted" in capsys.readouterr().err
        code = await lagwatch_status("--url", server.url, "--cluster", "c2", "--ca-file", str(cert))
        assert code == status.EXIT_OK
        code = await lagwatch_status("--url", server.url, "--cluster", "c2", "--insecure")
        assert code == status.EXIT_OK
    finally:
        await server.stop()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("flags", "no_color", "coloured"),
    [([], None, True), (["--no-color"], None, False), ([], "1", False), ([], "", True)],
)
async def test_colour_only_on_a_terminal_without_no_color(
    server: HttpServer,
    monkeypatch: pytest.MonkeyPatch,
    flags: list[str],
    no_color: str | None,
    coloured: bool,
) -> None:
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    parser = argparse.ArgumentParser()
    status.add_arguments(parser)
    out = _Terminal()
    args = parser.parse_args(["--url", server.url, "--cluster", "c2", *flags])
    assert await asyncio.to_thread(status.run, args, out) == status.EXIT_OK
    assert ("\033[32mOK    \033[0m" in out.getvalue()) is coloured


async def test_burrow_json_reads_back_as_the_same_status() -> None:
    for original in (await make_c1()).statuses().values():
        body = burrow_json.consumer_lag(original, url="/", host="h")
        parsed = status.group_status(body["status"])
        assert parsed.status == original.status
        assert (parsed.cluster, parsed.group, parsed.totallag) == (
            original.cluster,
            original.group,
            original.totallag,
        )
        assert parsed.complete == pytest.approx(original.complete, rel=1e-6)
        assert [(p.topic, p.partition, p.status, p.current_lag, p.owner) for p in parsed.partitions] == [
            (p.topic, p.partition, p.status, p.current_lag or 0, p.owner) for p in original.partitions
        ]
        ends = [
            None if p.end is None else (p.end.offset, p.end.timestamp_ms, p.end.lag)
            for p in parsed.partitions
        ]
        assert ends == [
            None if p.end is None else (p.end.offset, p.end.timestamp_ms, p.end.lag)
            for p in original.partitions
        ]
