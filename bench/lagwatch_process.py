"""The pieces of the end-to-end benchmarks: a broker from the jars, and lagwatch as a real process.

`broker()` yields a bootstrap: the one given, or a single broker that scripts/kafka-local starts for the run
and removes afterwards. `Lagwatch` runs the console script `lagwatch` of this virtualenv with a TOML
configuration of the benchmark's, and reads what the kernel says about it: CPU seconds (utime + stime of every
thread, from /proc/PID/stat), time spent waiting for a CPU, and resident memory (VmRSS).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_KAFKA_LOCAL = REPO / "scripts" / "kafka-local"
_LAGWATCH = Path(sys.executable).with_name("lagwatch")
"""The console script of the virtualenv running the benchmark."""
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


@contextlib.contextmanager
def broker(given: str | None, directory: Path, base_port: int = 0) -> Iterator[str]:
    """`given` if set, else a fresh single broker on `base_port` (0: free ports), purged at exit."""
    if given:
        yield given
        return
    state = directory / "kafka"
    command = [sys.executable, str(_KAFKA_LOCAL)]
    started = subprocess.run(
        [*command, "start", "--base-port", str(base_port), "--state-dir", str(state), "--fresh"],
        capture_output=True,
        text=True,
    )
    if started.returncode != 0:
        raise SystemExit(f"kafka-local start failed: {started.stderr.strip()}")
    try:
        yield started.stdout.strip()
    finally:
        subprocess.run([*command, "stop", "--purge", "--state-dir", str(state)], capture_output=True)


def add_load_arguments(parser: argparse.ArgumentParser, groups: int, commits: int) -> None:
    """The broker's address and the loadgen layout's size, as both end-to-end benchmarks take them."""
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    parser.add_argument("--base-port", type=int, default=0, help="of the broker started without --bootstrap")
    parser.add_argument("--groups", type=int, default=groups)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--topics", type=int, default=1_000)
    parser.add_argument("--commits", type=int, default=commits, help="per group-partition, before the start")
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="lagwatch's niceness: below 0 (as root), it gets the CPU it asks for on a busy shared machine",
    )
    parser.add_argument(
        "--allocator",
        choices=sorted(ALLOCATORS),
        default="pymalloc",
        help="lagwatch's memory allocator: CPython's own, or a malloc preloaded with PYTHONMALLOC=malloc",
    )


ALLOCATORS = {
    "pymalloc": {},
    "jemalloc": {"LD_PRELOAD": "libjemalloc.so.2", "PYTHONMALLOC": "malloc"},
    "mimalloc": {"LD_PRELOAD": "libmimalloc.so.2", "PYTHONMALLOC": "malloc"},
}
"""The environment that gives the lagwatch process each allocator (Debian's libjemalloc2, libmimalloc2.0)."""


def describe(args: argparse.Namespace) -> str:
    """The machine and the layout, the first line a benchmark prints."""
    return (
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, load average {load_average()}; "
        f"{args.groups:,} groups x {args.partitions} partitions x {args.commits} commits, "
        f"{args.topics:,} topics; lagwatch's allocator {args.allocator}"
    )


def exit_on_sigterm() -> None:
    """SIGTERM ends the benchmark through its `finally` clauses, which stop the processes and the broker it
    started (a background job ignores SIGINT)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of every thread of the process so far."""
    # The command name in parentheses may hold spaces: the fields that follow it are counted from its end.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def cpu_wait_seconds(pid: int) -> float:
    """Time the process' live threads spent runnable but waiting for a CPU (run queue, /proc/.../schedstat).
    On a shared machine this says whether a CPU figure is what lagwatch asked for or what it was given."""
    waited = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            waited += int((task / "schedstat").read_text().split()[1])
    return waited / 1e9


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def metric_values(text: str, name: str) -> list[float]:
    """Values of every sample of one family in an exposition text, labels or none."""
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", re.MULTILINE)
    return [float(value) for value in pattern.findall(text)]


def _toml(sections: Mapping[str, Mapping[str, object]]) -> str:
    # JSON's strings, numbers, booleans and lists of them are TOML values as well.
    lines = [f"{key} = {json.dumps(value)}" for key, value in sections.get("", {}).items()]
    for section, values in sections.items():
        if section:
            lines += ["", f"[{section}]", *(f"{key} = {json.dumps(value)}" for key, value in values.items())]
    return "\n".join(lines) + "\n"


class Lagwatch:
    """One lagwatch process serving HTTP on a free loopback port, logging to a file in `directory`."""

    def __init__(
        self,
        bootstrap: str,
        directory: Path,
        settings: Mapping[str, Mapping[str, object]] | None = None,
        name: str = "lagwatch",
        nice: int = 0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        sections: dict[str, dict[str, object]] = {
            "": {"log_level": "warning"},
            "clusters.local": {"bootstrap_servers": bootstrap.split(",")},
            "http": {"listen": f"127.0.0.1:{self.port}"},
            "lag_seconds": {"state_dir": str(directory / f"{name}-state")},
        }
        for section, values in (settings or {}).items():
            sections.setdefault(section, {}).update(values)
        config = directory / f"{name}.toml"
        config.write_text(_toml(sections))
        self.log = directory / f"{name}.log"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("LAGWATCH_")} | dict(env or {})
        with self.log.open("wb") as log:
            self.started = time.monotonic()
            self.process = subprocess.Popen(
                [
                    "nice",
                    "-n",
                    str(nice),
                    str(Path(sys.executable).with_name("lagwatch")),
                    "--config",
                    str(config),
                ],
                env=environment,
                cwd=directory,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def cpu_wait(self) -> float:
        return cpu_wait_seconds(self.pid)

    def connection(self, timeout: float = 60.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def get(self, path: str, gzip: bool = False) -> tuple[int, bytes]:
        connection = self.connection()
        try:
            connection.request("GET", path, headers={"Accept-Encoding": "gzip"} if gzip else {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def wait_ready(self, timeout: float, poll: float = 0.1) -> float:
        """Seconds from the process start to its first `/-/ready` 200."""
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"lagwatch exited with {self.process.returncode}; see {self.log}")
            with contextlib.suppress(OSError):
                if self.get("/-/ready")[0] == 200:
                    return time.monotonic() - self.started
            time.sleep(poll)
        raise TimeoutError(f"lagwatch not ready after {timeout:.0f} s; see {self.log}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Lagwatch:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
