"""The demo workload stops promptly on SIGTERM even while Kafka is down (issue #16, item 8)."""

from __future__ import annotations

import asyncio
import signal
import sys
import time

import pytest

from tests.kafka_cluster import REPO, KafkaNode, unique_name

STARTED_TIMEOUT_S = 60.0
STOP_BUDGET_S = 8.0


async def test_sigterm_while_kafka_is_down_stops_the_workload_within_seconds(
    kafka_bootstrap: str, kafka_node: KafkaNode
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "exporter.tools.workload", "--bootstrap-servers", kafka_bootstrap),
        *("--scenarios", "healthy,slow", "--commit-interval", "0.5", "--prefix", unique_name("shutdown")),
        cwd=REPO,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        lines: list[str] = []
        async with asyncio.timeout(STARTED_TIMEOUT_S):
            while not any("workload running" in line for line in lines):
                line = await process.stderr.readline()
                assert line, f"the workload exited early: {''.join(lines)}"
                lines.append(line.decode(errors="replace"))
        drain = asyncio.create_task(process.stderr.read())
        await asyncio.sleep(2.0)
        await kafka_node.stop()
        await asyncio.sleep(3.0)
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(process.wait(), 60)
        except TimeoutError:
            pytest.fail("the workload was still running 60 s after SIGTERM")
        took = time.monotonic() - sent
        output = (await drain).decode(errors="replace")
        assert took < STOP_BUDGET_S, f"stopped {took:.1f} s after SIGTERM:\n{output[-2000:]}"
        assert code == 0, output[-2000:]
        assert "Kafka did not answer" in output
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await kafka_node.start()
