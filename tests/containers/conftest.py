"""Fixtures for the container artefacts: the image built from the project's Dockerfile and the Compose stack.

They need a Docker engine (the Compose tests also the Compose v2 plugin). Without them the tests are skipped
on a developer's machine and fail in CI (where CI is set and .ci/run starts dockerd): a green CI means they
ran.
Images build with the classic builder (DOCKER_BUILDKIT=0): the Docker CLI here has no buildx.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import docker  # type: ignore[import-untyped]
import pytest

from tests.kafka_cluster import REPO

IMAGE = "lagwatch:local"
"""The tag docker-compose.yml gives the image, so that the stack runs what the image tests checked."""
T = TypeVar("T")


def need(what: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{what}: CI must provide it (.ci/run starts a Docker engine)", pytrace=False)
    pytest.skip(what)


def docker_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The docker CLI, with the classic builder; the caller checks the return code."""
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except (docker.errors.DockerException, OSError) as error:
        need(f"no Docker engine answers ({error.__class__.__name__})")
    return client


@pytest.fixture(scope="session")
def lagwatch_image(docker_client: docker.DockerClient) -> str:
    """The project's Dockerfile, built as it is (layers are cached, so a second build takes seconds)."""
    built = docker_cli("build", "-t", IMAGE, str(REPO))
    assert built.returncode == 0, f"docker build failed:\n{built.stdout[-4000:]}\n{built.stderr[-4000:]}"
    return IMAGE


def get_text(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return bytes(response.read()).decode()


def get_json(url: str) -> Any:
    return json.loads(get_text(url))


def eventually(probe: Callable[[], T | None], what: str, within: float, every: float = 1.0) -> T:
    """Poll `probe` until it returns something other than None (errors count as not yet)."""
    deadline = time.monotonic() + within
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            found = probe()
        except (OSError, ValueError, KeyError, docker.errors.APIError) as error:
            last, found = error, None
        if found is not None:
            return found
        time.sleep(every)
    raise AssertionError(f"gave up after {within:.0f} s waiting for {what} (last error: {last!r})")
