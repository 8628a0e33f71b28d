"""Start-up failures a user can cause are one line naming the setting and the cause, exit code 2, no traceback
(issue #11 section 5). Each test runs the real command, `python -m exporter`, which fails before it reaches
Kafka. Permission cases run as an unprivileged user: as `nobody` through setpriv when the tests run as root
(root may bind any port and write any directory), as the current user otherwise."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

NOBODY = 65534
UNPRIVILEGED = (
    ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] if os.geteuid() == 0 else []
)


def _lagwatch(*args: str, unprivileged: bool = False) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("LAGWATCH_")}
    return subprocess.run(
        [*(UNPRIVILEGED if unprivileged else []), sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        timeout=60,
    )


def _one_line_failure(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory the unprivileged user can enter (pytest's own tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="lagwatch-startup-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        subprocess.run(["rm", "-rf", str(path)], check=True)


def test_listen_address_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _lagwatch("--http.listen", f"127.0.0.1:{port}", "--lag-seconds.state-dir", "")
    assert _one_line_failure(done) == (
        f"lagwatch: cannot start: http.listen '127.0.0.1:{port}': address already in use "
        "(another lagwatch or another program listens there)"
    )


def test_permission_denied_on_a_privileged_port() -> None:
    done = _lagwatch("--http.listen", "127.0.0.1:80", "--lag-seconds.state-dir", "", unprivileged=True)
    line = _one_line_failure(done)
    assert line.startswith(
        "lagwatch: cannot start: http.listen '127.0.0.1:80': permission denied "
        "(ports below 1024 need privileges; user id "
    ), line


def test_state_dir_that_cannot_be_created(shared_dir: Path) -> None:
    locked = shared_dir / "locked"
    locked.mkdir(mode=0o755)
    state_dir = locked / "lagwatch"
    done = _lagwatch("--lag-seconds.state-dir", str(state_dir), unprivileged=True)
    assert _one_line_failure(done) == (
        f"lagwatch: cannot start: lag_seconds.state_dir '{state_dir}': permission denied"
    )


def test_state_dir_that_cannot_be_written(shared_dir: Path) -> None:
    state_dir = shared_dir / "read-only"
    state_dir.mkdir(mode=0o555)
    done = _lagwatch("--lag-seconds.state-dir", str(state_dir), unprivileged=True)
    assert _one_line_failure(done) == (
        f"lagwatch: cannot start: lag_seconds.state_dir '{state_dir}': permission denied"
    )


def test_state_file_that_cannot_be_written(shared_dir: Path) -> None:
    state_dir = shared_dir / "state"
    state_dir.mkdir(mode=0o777)
    state_dir.chmod(0o777)
    state_file = state_dir / "heads-local.bin"
    state_file.write_bytes(b"")
    state_file.chmod(0o444)
    done = _lagwatch("--lag-seconds.state-dir", str(state_dir), unprivileged=True)
    assert _one_line_failure(done) == (
        f"lagwatch: cannot start: lag_seconds.state_dir '{state_dir}': state file heads-local.bin: "
        "permission denied"
    )


def test_state_file_that_is_a_directory(shared_dir: Path) -> None:
    (shared_dir / "heads-local.bin").mkdir()
    done = _lagwatch("--lag-seconds.state-dir", str(shared_dir))
    assert _one_line_failure(done) == (
        f"lagwatch: cannot start: lag_seconds.state_dir '{shared_dir}': heads-local.bin is not a regular file"
    )
