"""lagwatch against a real broker with SASL_SSL (SCRAM-SHA-512) and mutual TLS listeners (issue #16, item 7).

The test makes a CA, a broker certificate and a client certificate with the openssl command, and starts a
broker of its own through scripts/kafka-local --tls-dir/--scram: PLAINTEXT between brokers and for the test's
own producer and commits, SASL_SSL with a SCRAM-SHA-512 user, and SSL requiring a client certificate signed by
the CA. lagwatch runs as `python -m exporter`, as a user starts it, with its security settings in the
environment.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tests.kafka_cluster import (
    REPO,
    KafkaUnavailableError,
    LocalKafka,
    create_topic,
    local_state_dir,
    produce_records,
    unique_name,
)

USER = "lagwatch-reader"
PASSWORD = "scram-Pa55-7a1c9e"
WRONG_PASSWORD = "not-the-scram-pa55-0b3f"
KEY_PASSWORD_MARKER = "never-logged"
PRODUCED = 10
COMMITTED = 4
WAIT_S = 90.0


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_certificates(directory: Path) -> Path:
    """ca.pem (and its key), broker.pem (key and certificate, for Kafka's PEM key store), client.crt and
    client.key; every certificate for 127.0.0.1 and localhost, valid two days."""
    curve = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *curve, "-keyout", str(directory / "ca.key"), "-out", str(directory / "ca.pem"),
             "-days", "2", "-subj", "/CN=lagwatch test CA")  # fmt: skip
    extensions = directory / "san.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("broker", "client"):
        key, request, cert = (directory / f"{name}.{ext}" for ext in ("key", "csr", "crt"))
        _openssl("req", *curve, "-keyout", str(key), "-out", str(request), "-subj", f"/CN={name}")
        _openssl("x509", "-req", "-in", str(request), "-CA", str(directory / "ca.pem"),
                 "-CAkey", str(directory / "ca.key"), "-CAcreateserial", "-out", str(cert), "-days", "2",
                 "-extfile", str(extensions))  # fmt: skip
    (directory / "broker.pem").write_text(
        (directory / "broker.key").read_text() + (directory / "broker.crt").read_text()
    )
    return directory


@dataclass(frozen=True)
class SecureKafka:
    plaintext: str
    sasl_ssl: str
    ssl: str
    certs: Path


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    if shutil.which("openssl") is None:
        if os.environ.get("CI"):
            pytest.fail("the openssl command is needed to make the test certificates")
        pytest.skip("the openssl command is needed to make the test certificates")
    certs = make_certificates(tmp_path_factory.mktemp("tls"))
    local = LocalKafka(
        local_state_dir().with_name(f"pytest-secure-{os.getpid()}"),
        nodes=1,
        options=("--tls-dir", str(certs), "--scram", f"{USER}:{PASSWORD}"),
    )
    try:
        try:
            local.start()
        except KafkaUnavailableError as error:
            if error.missing_tooling and not os.environ.get("CI"):
                pytest.skip(str(error))
            pytest.fail(str(error), pytrace=False)
        yield SecureKafka(
            local.bootstrap, local.listener_bootstrap("sasl_ssl"), local.listener_bootstrap("ssl"), certs
        )
    finally:
        local.destroy()


@pytest.fixture(scope="module")
async def committed_group(secure_kafka: SecureKafka) -> tuple[str, str]:
    """A topic with PRODUCED records and a group that committed COMMITTED, over the PLAINTEXT listener."""
    admin = AIOKafkaAdminClient(bootstrap_servers=secure_kafka.plaintext)
    await admin.start()
    topic, group = unique_name("secure-topic"), unique_name("secure-group")
    try:
        await create_topic(admin, topic, 1, 1)
    finally:
        await admin.close()
    await produce_records(secure_kafka.plaintext, topic, [PRODUCED])
    consumer = AIOKafkaConsumer(
        bootstrap_servers=secure_kafka.plaintext, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.commit({partition: COMMITTED})
    finally:
        await consumer.stop()
    return topic, group


def sasl_env(kafka: SecureKafka, password: str) -> dict[str, str]:
    return {
        "LAGWATCH_CLUSTERS__LOCAL__SECURITY__PROTOCOL": "SASL_SSL",
        "LAGWATCH_CLUSTERS__LOCAL__SECURITY__SASL_MECHANISM": "SCRAM-SHA-512",
        "LAGWATCH_CLUSTERS__LOCAL__SECURITY__SASL_USERNAME": USER,
        "LAGWATCH_CLUSTERS__LOCAL__SECURITY__SASL_PASSWORD": password,
        "LAGWATCH_CLUSTERS__LOCAL__SECURITY__CA_FILE": str(kafka.certs / "ca.pem"),
    }


def mtls_env(kafka: SecureKafka, *, with_certificate: bool = True) -> dict[str, str]:
    env = {
        "LAGWATCH_CLUSTERS__LOCAL__SECURITY__PROTOCOL": "SSL",
        "LAGWATCH_CLUSTERS__LOCAL__SECURITY__CA_FILE": str(kafka.certs / "ca.pem"),
    }
    if with_certificate:
        env["LAGWATCH_CLUSTERS__LOCAL__SECURITY__CERT_FILE"] = str(kafka.certs / "client.crt")
        env["LAGWATCH_CLUSTERS__LOCAL__SECURITY__KEY_FILE"] = str(kafka.certs / "client.key")
    return env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Running:
    url: str
    log: Path
    session: aiohttp.ClientSession

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.url + path) as response:
            return response.status, await response.text()

    async def json(self, path: str) -> Any:
        code, text = await self.get(path)
        assert code in (200, 404), text
        return json.loads(text)

    async def sample(self, name: str) -> float | None:
        _, text = await self.get("/metrics")
        for line in text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
        return None

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@asynccontextmanager
async def lagwatch(
    bootstrap: str, env: Mapping[str, str], workdir: Path, *args: str
) -> AsyncIterator[Running]:
    port = _free_port()
    log = workdir / "lagwatch.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "exporter", "--bootstrap-servers", bootstrap, "--http.listen", f"127.0.0.1:{port}"),
            *args,
            cwd=REPO,
            env={
                **os.environ,
                **env,
                "LAGWATCH_CLUSTERS__LOCAL__OFFSET_REFRESH": "1",
                "LAGWATCH_CLUSTERS__LOCAL__TOPIC_REFRESH": "1",
                "LAGWATCH_LAG_SECONDS__STATE_DIR": str(workdir / "state"),
            },
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    running = Running(f"http://127.0.0.1:{port}", log, session)
    try:
        deadline = time.monotonic() + WAIT_S
        while True:
            assert process.returncode is None, f"lagwatch exited:\n{running.text()[-3000:]}"
            try:
                await running.get("/-/healthy")
                break
            except aiohttp.ClientError:
                assert time.monotonic() < deadline, f"lagwatch does not answer:\n{running.text()[-3000:]}"
                await asyncio.sleep(0.2)
        yield running
    finally:
        await session.close()
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


async def until(check: Any, what: str, running: Running) -> None:
    deadline = time.monotonic() + WAIT_S
    while not await check():
        assert time.monotonic() < deadline, f"not within {WAIT_S:.0f} s: {what}\n{running.text()[-3000:]}"
        await asyncio.sleep(0.5)


async def reads_the_group(running: Running, topic: str, group: str) -> None:
    """Offsets (the group's commit) and HEADs (its lag) come through the secured listener."""

    async def lag_known() -> bool:
        body = await running.json(f"/v3/kafka/local/consumer/{group}/lag")
        return body["error"] is False and body["status"]["totallag"] == PRODUCED - COMMITTED

    await until(lag_known, f"the lag of {group}", running)
    offsets = await running.json(f"/v3/kafka/local/topic/{topic}")
    assert offsets["offsets"] == [PRODUCED]
    assert await running.sample("lagwatch_cluster_up") == 1


async def test_sasl_ssl_scram_sha_512_reads_offsets_and_heads_and_never_shows_the_password(
    secure_kafka: SecureKafka, committed_group: tuple[str, str], tmp_path: Path
) -> None:
    topic, group = committed_group
    env = sasl_env(secure_kafka, PASSWORD)
    async with lagwatch(secure_kafka.sasl_ssl, env, tmp_path, "--log-level", "debug") as running:
        await reads_the_group(running, topic, group)
        for path in (
            "/v3/config",
            "/v3/kafka/local",
            "/v3/config/cluster/local",
            "/v3/config/consumer/local",
        ):
            code, text = await running.get(path)
            assert code == 200
            assert PASSWORD not in text
        detail = await running.json("/v3/kafka/local")
        assert detail["module"]["client-profile"]["sasl"]["username"] == USER
    shown = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "exporter", "--bootstrap-servers", secure_kafka.sasl_ssl, "config", "show"),
        env={**os.environ, **env},
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = (part.decode() for part in await shown.communicate())
    assert shown.returncode == 0, err
    assert USER in out
    assert "SCRAM-SHA-512" in out
    assert PASSWORD not in out + err
    assert PASSWORD not in running.text()


async def test_mutual_tls_reads_offsets_and_heads(
    secure_kafka: SecureKafka, committed_group: tuple[str, str], tmp_path: Path
) -> None:
    topic, group = committed_group
    async with lagwatch(secure_kafka.ssl, mtls_env(secure_kafka), tmp_path) as running:
        await reads_the_group(running, topic, group)
        detail = await running.json("/v3/kafka/local")
        assert detail["module"]["client-profile"]["tls"]["certfile"].endswith("client.crt")


async def lines_after_a_while(running: Running, needle: str) -> list[str]:
    """The log lines containing `needle` once lagwatch has retried a few times (cluster_up 0 meanwhile)."""

    async def retried() -> bool:
        failures = await running.sample("lagwatch_cluster_up")
        return failures == 0 and running.text().count(needle) >= 1

    await until(retried, f"a line with {needle!r}", running)
    # Several more reconnection attempts (the backoff starts near one second).
    await asyncio.sleep(8)
    assert await running.sample("lagwatch_cluster_up") == 0
    return [line for line in running.text().splitlines() if " WARNING " in line or " ERROR " in line]


async def test_a_wrong_password_gives_one_clear_line_and_cluster_up_0(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    env = sasl_env(secure_kafka, WRONG_PASSWORD)
    async with lagwatch(secure_kafka.sasl_ssl, env, tmp_path) as running:
        lines = await lines_after_a_while(running, "authentication failed")
    assert len(lines) == 1, lines
    assert f"authentication failed at {secure_kafka.sasl_ssl} as '{USER}' with SCRAM-SHA-512" in lines[0]
    assert "security.sasl_password" in lines[0]
    assert WRONG_PASSWORD not in running.text()


async def test_mutual_tls_without_a_client_certificate_says_so_once(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    env = mtls_env(secure_kafka, with_certificate=False)
    async with lagwatch(secure_kafka.ssl, env, tmp_path) as running:
        lines = await lines_after_a_while(running, "client certificate")
    assert len(lines) == 1, lines
    assert secure_kafka.ssl in lines[0]
    assert "security.cert_file" in lines[0]
