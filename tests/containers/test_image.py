"""The image built from the project's Dockerfile, run as users run it: against a Kafka broker in a container
on the same Docker network, configured by a mounted TOML file, scraped from the host through a published
port."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker  # type: ignore[import-untyped]
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter import __version__
from tests.containers.conftest import docker_cli, eventually, get_text
from tests.kafka_cluster import KAFKA_LOCAL, KAFKA_VERSION, READY_LINE, unique_name

pytestmark = pytest.mark.containers

UID = 10001
STOP_WITHIN_S = 5.0


def _run(image: str, *args: str, mounts: dict[Path, str] | None = None) -> subprocess.CompletedProcess[str]:
    volumes = [f"--volume={host}:{inside}:ro" for host, inside in (mounts or {}).items()]
    return docker_cli("run", "--rm", *volumes, image, *args, timeout=120)


def test_image_metadata(docker_client: docker.DockerClient, lagwatch_image: str) -> None:
    config = docker_client.images.get(lagwatch_image).attrs["Config"]
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == ["lagwatch"]
    assert config["Cmd"] == ["serve"]
    assert set(config["ExposedPorts"]) == {"7980/tcp"}
    assert set(config["Volumes"]) == {"/var/lib/lagwatch"}
    assert "http://127.0.0.1:7980/-/healthy" in " ".join(config["Healthcheck"]["Test"])
    assert config["Labels"]["org.opencontainers.image.version"] == __version__
    assert config["Labels"]["org.opencontainers.image.licenses"] == "Apache-2.0"


def test_version(lagwatch_image: str) -> None:
    done = _run(lagwatch_image, "--version")
    assert (done.returncode, done.stdout) == (0, f"lagwatch {__version__}\n")


def test_config_check_reads_a_mounted_toml(lagwatch_image: str, tmp_path: Path) -> None:
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text('[clusters.ci]\nbootstrap_servers = ["kafka:9092"]\n\n[storage]\nintervals = 5\n')
    bad.write_text('[clusters.ci]\nbootstrap_servers = ["kafka:9092"]\n\n[storage]\nintervals = 0\n')
    inside = "/etc/lagwatch/lagwatch.toml"

    checked = _run(lagwatch_image, "--config", inside, "config", "check", mounts={good: inside})
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout == "lagwatch: configuration is valid; clusters: ci\n"
    # The mounted file and the image's environment together: TOML for the cluster and the window, the image's
    # LAGWATCH_* variables for the listen address and the state directory.
    shown = _run(lagwatch_image, "--config", inside, "config", "show", mounts={good: inside})
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    for expected in ('bootstrap_servers = ["kafka:9092"]', "intervals = 5", 'listen = "0.0.0.0:7980"'):
        assert expected in lines
    assert 'state_dir = "/var/lib/lagwatch"' in lines

    refused = _run(lagwatch_image, "--config", inside, "config", "check", mounts={bad: inside})
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "lagwatch: config error: storage.intervals: input should be greater than or equal to 1 (got 0)"
    ]


@pytest.fixture(scope="module")
def network(docker_client: docker.DockerClient) -> Iterator[str]:
    created = docker_client.networks.create(unique_name("lagwatch-test"))
    try:
        yield str(created.name)
    finally:
        created.remove()


@pytest.fixture(scope="module")
def kafka(docker_client: docker.DockerClient, network: str) -> Iterator[str]:
    """A single-node Kafka in the apache/kafka image on `network`; returns its bootstrap servers there."""
    name = unique_name("kafka")
    settings = subprocess.run(
        [str(KAFKA_LOCAL), "settings", "--offsets-partitions", "4"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    env = {
        "node.id": "1",
        "process.roles": "broker,controller",
        "controller.quorum.voters": f"1@{name}:9093",
        "listeners": "PLAINTEXT://:9092,CONTROLLER://:9093",
        "advertised.listeners": f"PLAINTEXT://{name}:9092",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        **dict(line.split("=", 1) for line in settings),
    }
    container = docker_client.containers.run(
        f"apache/kafka:{KAFKA_VERSION}",
        name=name,
        network=network,
        detach=True,
        environment={"KAFKA_" + k.replace("_", "__").replace(".", "_").upper(): v for k, v in env.items()},
    )
    try:
        eventually(
            lambda: True if READY_LINE in container.logs().decode(errors="replace") else None,
            "Kafka to start",
            within=120,
        )
        yield f"{name}:9092"
    finally:
        container.remove(force=True)


@pytest.fixture(scope="module")
def lagwatch(
    docker_client: docker.DockerClient,
    lagwatch_image: str,
    network: str,
    kafka: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[docker.models.containers.Container]:
    """The image's default command, configured by a mounted TOML file, its port published on loopback."""
    config = tmp_path_factory.mktemp("lagwatch") / "lagwatch.toml"
    config.write_text(f'[clusters.ci]\nbootstrap_servers = ["{kafka}"]\noffset_refresh = 1\n')
    container = docker_client.containers.run(
        lagwatch_image,
        detach=True,
        network=network,
        environment={"LAGWATCH_CONFIG": "/etc/lagwatch/lagwatch.toml"},
        volumes={str(config): {"bind": "/etc/lagwatch/lagwatch.toml", "mode": "ro"}},
        ports={"7980/tcp": ("127.0.0.1", None)},
        # The image's own health check, run every second instead of every 30 s.
        healthcheck={"interval": 1_000_000_000, "start_period": 30_000_000_000},
    )
    try:
        yield container
    finally:
        container.remove(force=True)


def _published(container: docker.models.containers.Container) -> str:
    container.reload()
    (binding,) = container.attrs["NetworkSettings"]["Ports"]["7980/tcp"]
    assert binding["HostIp"] == "127.0.0.1"
    return f"http://127.0.0.1:{binding['HostPort']}"


def test_container_becomes_healthy(lagwatch: docker.models.containers.Container) -> None:
    def health() -> str | None:
        lagwatch.reload()
        status = lagwatch.attrs["State"]["Health"]["Status"]
        assert status != "unhealthy", lagwatch.attrs["State"]["Health"]["Log"]
        return "healthy" if status == "healthy" else None

    assert eventually(health, "the container's health check", within=90) == "healthy"


def test_metrics_answer_from_the_host_and_the_cluster_is_up(
    lagwatch: docker.models.containers.Container,
) -> None:
    url = _published(lagwatch) + "/metrics"

    def cluster_up() -> dict[str, float] | None:
        samples = {
            sample.name: sample.value
            for family in text_string_to_metric_families(get_text(url))
            for sample in family.samples
            if sample.labels.get("kafka_cluster") == "ci" or sample.name == "lagwatch_build_info"
        }
        return samples if samples.get("lagwatch_cluster_up") == 1 else None

    samples = eventually(cluster_up, "lagwatch_cluster_up 1", within=60)
    assert samples["lagwatch_build_info"] == 1
    assert samples["lagwatch_offsets_caught_up"] == 1
    assert get_text(_published(lagwatch) + "/-/ready") == "lagwatch is Ready.\n"


def test_runs_as_the_unprivileged_user(lagwatch: docker.models.containers.Container) -> None:
    # The server itself (PID 1), not just a shell started beside it.
    status = lagwatch.exec_run(["cat", "/proc/1/status"]).output.decode()
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    assert uids == [str(UID)] * 4
    home = lagwatch.exec_run(["stat", "-c", "%u %a", "/var/lib/lagwatch"]).output.decode().split()
    assert home == [str(UID), "750"]


def test_sigterm_stops_it_cleanly_within_5_s(lagwatch: docker.models.containers.Container) -> None:
    lagwatch.reload()
    assert lagwatch.status == "running"
    started = time.monotonic()
    lagwatch.kill(signal="SIGTERM")
    result = lagwatch.wait(timeout=30)
    took = time.monotonic() - started
    assert result["StatusCode"] == 0, lagwatch.logs(tail=20).decode(errors="replace")
    assert took < STOP_WITHIN_S, f"stopped after {took:.1f} s"
