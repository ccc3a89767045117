"""Small real datasets made by code, for tests of the data layer and what builds on it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
import pytest

from harness.datasets.source import SampleRecord
from harness.geo import Grid

if TYPE_CHECKING:
    from click.testing import Result

    from harness.settings import Settings


VV_VH_BANDS = ("VV_db", "VH_db")
"""Band names of one date's two polarisations (Sen1Floods11's): roles VV/VH."""


class TinySource:
    """A seeded flood-like (or ndvi-like) dataset of a few 32x32 chips per split.

    Flood targets follow the bands: with the default pre/post bands a pixel is flood where
    ``post - pre < -2`` dB; with ``bands=VV_VH_BANDS`` (one date) where ``VV < -14`` dB.
    """

    bands: tuple[str, ...] = ("VV_pre_db", "VV_post_db")

    def __init__(
        self,
        name: str = "tiny",
        task: str = "flood",
        seed: int = 0,
        counts: dict[str, int] | None = None,
        size: int = 32,
        with_valid: bool = True,
        bands: tuple[str, ...] | None = None,
    ) -> None:
        self.name, self.task, self.seed, self.size = name, task, seed, size
        if bands is not None:
            self.bands = tuple(bands)
        self.counts = counts or {"train": 4, "val": 2, "test": 2}
        self.with_valid = with_valid

    def describe(self) -> dict[str, Any]:
        return {"kind": "synthetic", "generator": "tiny", "seed": self.seed}

    def expected_counts(self) -> dict[str, int]:
        return dict(self.counts)

    def samples(self) -> Iterator[SampleRecord]:
        rng = np.random.default_rng(self.seed)
        col = 0
        for split, n in self.counts.items():
            for i in range(n):
                col += 1
                grid = Grid.from_origin(
                    "EPSG:32630",
                    700000.0 + col * self.size * 10,
                    4370000.0,
                    10.0,
                    self.size,
                    self.size,
                )
                x = np.round(rng.normal(-12, 3, (2, self.size, self.size)), 3).astype(np.float32)
                if self.task == "flood" and self.bands == VV_VH_BANDS:
                    y = (x[0] < -14).astype(np.uint8)
                elif self.task == "flood":
                    y = (x[1] - x[0] < -2).astype(np.uint8)
                else:
                    y = np.round(np.clip(rng.normal(0.5, 0.2, grid.shape), -1, 1), 4)
                    y = y.astype(np.float32)
                valid = None
                if self.with_valid:
                    valid = np.ones(grid.shape, np.uint8)
                    valid[:3, :5] = 0
                yield SampleRecord(
                    split=split,
                    id=f"{split}_{i:02d}",
                    inputs=x,
                    grid=grid,
                    target=y,
                    valid=valid,
                    meta={"index": i},
                )


def dataset_cli(settings: Settings, *args: str) -> Result:
    """``sarbench --home H --data-root D --datasets-dir M ARGS...`` of ``settings``, in
    process."""
    from click.testing import CliRunner

    from harness.cli import main

    return CliRunner().invoke(
        main,
        [
            "--home", str(settings.home),
            "--data-root", str(settings.data_root),
            "--datasets-dir", str(settings.manifests_dir),
            *args,
        ],
    )  # fmt: skip


def unavailable(reason: str, *, what: str) -> NoReturn:
    """``what`` (e.g. "the Docker tests") cannot run, for ``reason``: a failure under CI
    (``CI=true``), where container, browser, cluster and store tests must run; a skip
    elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {what} cannot run: {reason}")
    pytest.skip(reason)


LOOPBACK = "127.0.0.1"
BIN = Path(sys.executable).parent
"""The environment's scripts (``mlflow``, ``sarbench``)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def start_mlflow(args: list[str], log: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """``mlflow <args> --host 127.0.0.1 --port <free>`` in a session of its own (to stop
    it with its workers), its output in ``log``: its URL and process. The test's own
    ``MLFLOW_TRACKING_URI`` is not passed on."""
    port = free_port()
    command = [str(BIN / "mlflow"), *args, "--host", LOOPBACK, "--port", str(port)]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    return f"http://{LOOPBACK}:{port}", proc


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    """Wait until the ``mlflow`` at ``url`` (started by :func:`start_mlflow`) answers on
    ``/health``; fail the test, with the end of its ``log``, when it exits first or does
    not answer within ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    pytest.fail(f"mlflow did not answer within {timeout_s:g} s:\n{log.read_text()[-3000:]}")
