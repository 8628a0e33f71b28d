"""`lagwatch demo workload`: producers and consumer groups that behave in named ways, for demos and tests.

The command line: `lagwatch demo workload` (its options and the run until a signal) and
`python -m exporter.tools.workload`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import shlex
import signal
import sys
from collections.abc import Sequence

from exporter.tools.workload.runner import run_scenarios
from exporter.tools.workload.scenarios import DEFAULT_PREFIX, SCENARIOS, WorkloadConfig

__all__ = ["add_arguments", "main", "run_workload"]

_PROG = "lagwatch demo workload"


def _scenarios(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown scenario {unknown[0]!r}" if unknown else "no scenario given"
        )
    return names


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _phase(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be at least 2: {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The workload's options (the bootstrap servers come from the caller)."""
    parser.add_argument(
        "--scenarios",
        type=_scenarios,
        default=SCENARIOS,
        metavar="NAME,...",
        help=f"scenarios to run (default: all): {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--commit-interval",
        type=_positive_number,
        default=5.0,
        metavar="SECONDS",
        help="seconds between two commits of a group (default: 5)",
    )
    parser.add_argument(
        "--rate",
        type=_positive_number,
        default=10.0,
        metavar="N",
        help="records produced per second to each partition (default: 10)",
    )
    parser.add_argument(
        "--phase",
        type=_phase,
        default=10,
        metavar="N",
        help="commits before the stopped consumer stops and between rewinds; set it to lagwatch's "
        "storage.intervals (default: 10)",
    )
    parser.add_argument(
        "--prefix",
        default=DEFAULT_PREFIX,
        metavar="NAME",
        help=f"topics and groups are named PREFIX-SCENARIO (default: {DEFAULT_PREFIX})",
    )
    parser.add_argument(
        "--duration",
        type=_positive_number,
        metavar="SECONDS",
        help="stop after this many seconds (default: run until Ctrl-C or SIGTERM)",
    )
    parser.add_argument(
        "--console-consumer",
        type=shlex.split,
        default=[],
        metavar="COMMAND",
        help="command that runs Kafka's console consumer, for consumer-protocol (default: "
        "kafka-console-consumer.sh from PATH, else scripts/kafka-local of a lagwatch checkout)",
    )


def run_workload(args: argparse.Namespace, bootstrap_servers: Sequence[str]) -> int:
    """Run the workload until Ctrl-C, SIGTERM or `--duration`; returns the exit code (1 on failure)."""
    config = WorkloadConfig(
        bootstrap_servers=tuple(bootstrap_servers),
        scenarios=tuple(args.scenarios),
        prefix=args.prefix,
        commit_interval=args.commit_interval,
        rate=args.rate,
        phase=args.phase,
        console_consumer=tuple(args.console_consumer),
    )
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        # aiokafka logs every retried connection at ERROR; the workload reports failures itself.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        asyncio.run(_until_signal(config, args.duration))
    except (OSError, RuntimeError) as error:  # KafkaError is a RuntimeError
        cause = f": {error.__cause__}" if error.__cause__ is not None else ""
        print(f"{_PROG}: {error}{cause}", file=sys.stderr)
        return 1
    return 0


async def _until_signal(config: WorkloadConfig, duration: float | None) -> None:
    task = asyncio.create_task(run_scenarios(config, duration))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m exporter.tools.workload`, until `lagwatch demo workload` is wired."""
    parser = argparse.ArgumentParser(
        prog="python -m exporter.tools.workload", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("LAGWATCH_CLUSTERS__LOCAL__BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        metavar="HOST:PORT,...",
        help="Kafka bootstrap servers (default: 127.0.0.1:9092)",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    servers = [server.strip() for server in args.bootstrap_servers.split(",") if server.strip()]
    return run_workload(args, servers)
