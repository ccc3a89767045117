"""Fixtures and helpers for tests that run real containers on a real Docker engine.

Import the fixtures into a test module (``from tests.docker_support import ...``). Without
an engine the tests are skipped with the reason, except when ``CI=true``: then they fail.
The base image is built the first time (about a minute; needs root and debootstrap).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from harness.runtime.docker_backend import LABEL_MANAGED, connect
from harness.runtime.errors import EngineUnavailableError, ImageBuildError
from harness.runtime.images import BASE_IMAGE, build_base_image
from harness.runtime.phase import Mounts
from tests.helpers import unavailable as needs_unavailable

RUN_LABEL = "sarbench.run"


unavailable = functools.partial(needs_unavailable, what="the Docker tests")
"""Fail under CI (``CI=true``), skip elsewhere (:func:`tests.helpers.unavailable`)."""


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        client = connect()
    except EngineUnavailableError as exc:
        unavailable(str(exc))
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_client: docker.DockerClient) -> str:
    """The base image's name, built when the engine lacks it."""
    try:
        build_base_image(docker_client, BASE_IMAGE)
    except ImageBuildError as exc:
        unavailable(f"cannot build {BASE_IMAGE}: {exc}")
    return BASE_IMAGE


@pytest.fixture
def run_labels(docker_client: docker.DockerClient) -> Iterator[dict[str, str]]:
    """Labels unique to one test; afterwards no container with them may be left."""
    labels = {RUN_LABEL: f"test-{uuid.uuid4().hex[:12]}"}
    yield labels
    selector = {"label": [f"{RUN_LABEL}={labels[RUN_LABEL]}"]}
    left = docker_client.containers.list(all=True, filters=selector)
    for container in left:
        container.remove(force=True)
    assert not left, f"containers left behind: {[c.name for c in left]}"


def no_managed_leftovers(client: docker.DockerClient, labels: dict[str, str]) -> bool:
    """True when no container carries both the managed label and these labels."""
    selector = [LABEL_MANAGED, *(f"{k}={v}" for k, v in labels.items())]
    return not client.containers.list(all=True, filters={"label": selector})


def script(tmp_path: Path, code: str, name: str = "main.py") -> tuple[Mounts, list[str]]:
    """Write ``code`` to a folder mounted read-only at ``/app``; return (mounts, command)."""
    app = tmp_path / "app"
    app.mkdir(exist_ok=True)
    (app / name).write_text(code)
    return {app: ("/app", "ro")}, ["python3", f"/app/{name}"]
