"""Prometheus and Alertmanager from Debian's packages, run by a test on loopback, and the webhook they notify.

Each daemon gets its own temp dir (config, storage, log), a free 127.0.0.1 port and no clustering, so nothing
leaves the machine and no system service is involved. The rule file is the shipped one with only its `for:`
durations shortened (`shortened_rules`): a test cannot wait the minutes they ask for.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

PROMETHEUS = "prometheus"
ALERTMANAGER = "prometheus-alertmanager"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
POLL_S = 0.1

# A whole `for:` line of a rule: annotations mention durations in prose, never as a `for:` key.
_FOR_LINE = re.compile(r"^(?P<indent>\s+)for: \S+$", re.MULTILINE)

Alert = dict[str, Any]
"""One alert of a webhook notification: status, labels, annotations, startsAt, endsAt, ..."""


def missing_binaries() -> list[str]:
    """Which of Prometheus and Alertmanager are not on PATH."""
    return [name for name in (PROMETHEUS, ALERTMANAGER) if shutil.which(name) is None]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def shortened_rules(text: str, duration: str) -> str:
    """`text` (a Prometheus rule file) with every rule's `for:` set to `duration`, and nothing else changed:
    expressions, range windows, labels and annotations stay as shipped. Raises ValueError otherwise."""
    shortened, count = _FOR_LINE.subn(rf"\g<indent>for: {duration}", text)
    before, after = yaml.safe_load(text), yaml.safe_load(shortened)
    expected = [
        {**rule, "for": duration} if "for" in rule else rule
        for group in before["groups"]
        for rule in group["rules"]
    ]
    if count == 0 or [rule for group in after["groups"] for rule in group["rules"]] != expected:
        raise ValueError("the rule file's `for:` lines are not where shortened_rules expects them")
    return shortened


def prometheus_config(*, lagwatch: str, alertmanager: str | None, rule_file: Path, interval: str) -> str:
    """Scrape `lagwatch` (host:port) as job "lagwatch", as the rules expect, every `interval`; evaluate
    `rule_file` at the same pace and send alerts to `alertmanager` (host:port; None: keep them)."""
    config: dict[str, object] = {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "evaluation_interval": interval,
        },
        "rule_files": [str(rule_file)],
    }
    if alertmanager is not None:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    config["scrape_configs"] = [{"job_name": "lagwatch", "static_configs": [{"targets": [lagwatch]}]}]
    return yaml.safe_dump(config, sort_keys=False)


def alertmanager_config(webhook_url: str, group_by: list[str]) -> str:
    """Every alert to one webhook receiver, notified at once, again after a second when its group changes
    (resolved alerts included), and not repeated within a test."""
    config = {
        "route": {
            "receiver": "webhook",
            "group_by": group_by,
            "group_wait": "0s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [{"name": "webhook", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}],
    }
    return yaml.safe_dump(config, sort_keys=False)


class Daemon:
    """A Prometheus or Alertmanager process serving its HTTP API at `url`."""

    def __init__(self, process: asyncio.subprocess.Process, url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    @classmethod
    async def start(cls, command: list[str], url: str, log: Path) -> Daemon:
        """Run `command`, output to `log`, and return once `url`/-/ready answers 200."""
        with log.open("wb") as output:
            process = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.DEVNULL, stdout=output, stderr=asyncio.subprocess.STDOUT
            )
        daemon = cls(process, url, log)
        try:
            await daemon._wait_ready()
        except BaseException:
            await daemon.stop()
            raise
        return daemon

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    async def get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        async with self._http.get(self.url + path, params=params) as response:
            return await response.json()

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """Prometheus' instant query: the result vector (asserting the query succeeded)."""
        body = await self.get_json("/api/v1/query", {"query": expr})
        assert body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def stop(self) -> None:
        await self._http.close()
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process.returncode is None, f"{self.url} exited early:\n{self.log_tail()}"
            with contextlib.suppress(aiohttp.ClientError):
                async with self._http.get(self.url + "/-/ready") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(POLL_S)
        raise AssertionError(f"{self.url} not ready after {READY_TIMEOUT_S} s:\n{self.log_tail()}")


async def start_prometheus(workdir: Path, config: str) -> Daemon:
    """Prometheus with `config`, its storage and log in `workdir`, on a free loopback port."""
    (workdir / "prometheus.yml").write_text(config)
    address = f"127.0.0.1:{free_port()}"
    command = [
        PROMETHEUS,
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address={address}",
        # Firing alerts are re-sent every minute by default; a notification lost at start-up must not be.
        "--rules.alert.resend-delay=1s",
        "--log.level=warn",
    ]
    return await Daemon.start(command, f"http://{address}", workdir / "prometheus.log")


async def start_alertmanager(workdir: Path, config: str) -> Daemon:
    """Alertmanager with `config`, its storage and log in `workdir`, on a free loopback port, no gossip."""
    (workdir / "alertmanager.yml").write_text(config)
    address = f"127.0.0.1:{free_port()}"
    command = [
        ALERTMANAGER,
        f"--config.file={workdir / 'alertmanager.yml'}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address={address}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    return await Daemon.start(command, f"http://{address}", workdir / "alertmanager.log")


class WebhookReceiver:
    """An aiohttp server on a loopback port that records every notification Alertmanager posts to it."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def alerts(self, since: int = 0) -> list[tuple[int, Alert]]:
        """(notification index, alert) of every alert in the notifications from index `since` on."""
        return [
            (index, alert)
            for index, notification in enumerate(self.notifications[since:], start=since)
            for alert in notification["alerts"]
        ]

    async def wait_for(
        self, labels: Mapping[str, str], status: str, *, since: int = 0, seconds: float
    ) -> tuple[int, Alert]:
        """The first alert with exactly `labels` and `status` ("firing" or "resolved") in a notification from
        index `since` on, waiting up to `seconds` for it."""
        deadline = time.monotonic() + seconds
        while True:
            for index, alert in self.alerts(since):
                if alert["labels"] == labels and alert["status"] == status:
                    return index, alert
            assert time.monotonic() < deadline, (
                f"no {status} alert {dict(labels)} after {seconds} s; got {self.alerts(since)}"
            )
            await asyncio.sleep(POLL_S)

    async def _receive(self, request: web.Request) -> web.Response:
        self.notifications.append(await request.json())
        return web.Response()
