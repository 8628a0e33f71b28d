"""exporter/sources/retry.py: one clean line per cause."""

from __future__ import annotations

import socket

from aiokafka.errors import KafkaConnectionError

from exporter.sources.retry import cause


def test_cause_names_the_class_once_and_writes_addresses_as_host_port() -> None:
    hosts = [("127.0.0.1", 36689, socket.AF_INET), ("kafka-2.example", 9093, socket.AF_INET6)]
    error = KafkaConnectionError(f"Unable to bootstrap from {hosts}")
    assert cause(error) == (
        "KafkaConnectionError: Unable to bootstrap from [127.0.0.1:36689, kafka-2.example:9093]"
    )


def test_cause_of_a_plain_exception_is_its_class_and_one_line_message() -> None:
    assert cause(TimeoutError("waited\n  too long")) == "TimeoutError: waited too long"
    assert cause(TimeoutError()) == "TimeoutError"
