"""The Makefile's developer commands: what they run, and that what they point at exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MAKEFILE = (REPO / "Makefile").read_text()


def _dry_run(*args: str) -> str:
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", *args], cwd=REPO, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_kafka_stop_stops_the_cluster_on_kafka_port() -> None:
    assert "scripts/kafka-local stop --base-port 12345" in _dry_run("kafka-stop", "KAFKA_PORT=12345")
    assert "scripts/kafka-local start --base-port 12345" in _dry_run("kafka-start", "KAFKA_PORT=12345")


def test_make_test_installs_what_the_tests_need_first() -> None:
    commands = _dry_run("-W", ".venv/.installed", "test", "VENV=.venv").splitlines()
    (pytest,) = [i for i, command in enumerate(commands) if command.startswith(".venv/bin/python -m pytest")]
    assert commands.index("scripts/install-test-deps") < pytest


def test_every_file_the_makefile_cites_exists() -> None:
    # Globs (bench/bench_*.py) are not citations of one file.
    cited = set(re.findall(r"\b(?:bench|docs|scripts|tests)/[\w./-]+(?![\w*])", MAKEFILE))
    assert "bench/README.md" in cited
    assert sorted(path for path in cited if not (REPO / path).exists()) == []
