"""What both end-to-end files need to drive lagwatch: a workload started once lagwatch knows its topics, and
polling until a check passes while the workload stays healthy."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

from exporter.tools.workload.runner import Workload
from exporter.tools.workload.scenarios import WorkloadConfig

T = TypeVar("T")


class KnowsTopics(Protocol):
    async def wait_for_topics(self, topics: Sequence[str]) -> None: ...


@contextlib.asynccontextmanager
async def started_workload(lagwatch: KnowsTopics, config: WorkloadConfig) -> AsyncIterator[Workload]:
    """The workload's topics are created first and its consumers start once lagwatch polls their HEAD
    offsets, so the first commits already have a lag and the windows fill from the start."""
    running = Workload(config)
    await running.create_topics()
    await lagwatch.wait_for_topics([state.topic for state in running.states.values()])
    try:
        await running.start()
        yield running
    finally:
        await running.stop()


async def eventually(
    workload: Workload, check: Callable[[], Awaitable[T]], seconds: float, poll_s: float
) -> T:
    """Retry `check` until it stops failing an assertion; the last failure is raised at the deadline. A
    failed workload task fails at once instead of timing out."""
    deadline = time.monotonic() + seconds
    while True:
        workload.raise_for_failures()
        try:
            return await check()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        await asyncio.sleep(poll_s)
