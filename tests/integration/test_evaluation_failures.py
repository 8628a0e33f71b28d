"""Evaluation is its own failure domain, against a real Kafka: a round that raises is logged once, counted and
retried, the HEAD poller and the committed-offsets source keep running, and the first round that succeeds
publishes the statuses."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from exporter import evaluation
from tests.integration.test_trust import _settings, committer, eventually, running, topic_of
from tests.kafka_cluster import Produce, unique_name


async def test_a_failing_evaluation_is_retried_while_the_sources_keep_running(
    kafka_bootstrap: str,
    kafka_admin: AIOKafkaAdminClient,
    produce: Produce,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real_round = evaluation.evaluation_round
    failing = True
    attempts = 0

    def injected(*args: Any, **kwargs: Any) -> Any:
        nonlocal attempts
        attempts += 1
        if failing:
            raise RuntimeError("injected evaluation failure")
        return real_round(*args, **kwargs)

    monkeypatch.setattr(evaluation, "evaluation_round", injected)
    caplog.set_level(logging.INFO, logger="exporter.evaluation")
    prefix = unique_name("it-evalfail")
    group = f"{prefix}-g"
    async with (
        topic_of(kafka_admin, f"{prefix}-t") as topic,
        running(_settings(kafka_bootstrap, prefix)) as runtime,
    ):
        await produce(topic, [100])
        async with committer(kafka_bootstrap, group, topic) as commit:
            await commit(40)
            await eventually(lambda: runtime.evaluation_failures >= 3, "three failed evaluation rounds")
            # The sources kept running: HEAD rounds go on, and a commit made now is still read.
            rounds, records = runtime.head.health.rounds, sum(runtime.progress.records.values())
            await commit(50)
            await eventually(
                lambda: (
                    runtime.head.health.rounds > rounds + 1
                    and sum(runtime.progress.records.values()) > records
                ),
                "more HEAD rounds and the new commit read while evaluation fails",
            )
            assert runtime.head.health.up
            assert (runtime.ready, dict(runtime.statuses())) == (False, {})
            assert runtime.state().waiting_for == "evaluating the groups"

            failing = False
            failed = runtime.evaluation_failures
            await eventually(lambda: runtime.ready, "the retried round published")
            await eventually(lambda: group in runtime.statuses(), "the group's status")
            # The commit read while evaluation failed is in the published status (OK or, once the group has
            # not committed for longer than its window spans, STOP: Burrow's rules, whatever the failures).
            (partition,) = runtime.statuses()[group].partitions
            assert partition.end is not None
            assert (partition.end.offset, partition.current_lag) == (50, 50)
            assert runtime.evaluation_failures == failed
            published = runtime.evaluated_at
            await eventually(lambda: runtime.evaluated_at != published, "the next round")
            # The cluster's task group is still whole: nothing ended with the failures.
            alive = {task.get_name() for task in asyncio.all_tasks() if not task.done()}
            assert {"head-it", "offsets-it", "evaluation-it"} <= alive
    assert attempts >= failed + 2
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "exporter.evaluation"]
    assert lines == [
        (
            logging.ERROR,
            "cluster it: evaluation failed (RuntimeError: injected evaluation failure); the last statuses "
            "stay published and the round is retried (lagwatch_evaluation_failures_total)",
        ),
        (logging.INFO, "cluster it: evaluation succeeds again"),
    ]
