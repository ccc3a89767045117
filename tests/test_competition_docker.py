"""The submission path end to end on a real Docker engine: a scaffolded entry through
``sarbench submit``, ``queue add``, ``queue run`` to a published board row; a second
submission of the team past its quota refused at ``queue add``; a tampered bundle refused,
naming what does not match; an engine that stops answering mid-run (a proxy in front of
the engine's socket, closed while the container trains) ends ``error``, not charged, and
the next ``queue run`` finishes it; a ``queue run`` killed mid-run (SIGKILL) and started
again finishes the submission exactly once.

One bundle is made per module (``docker save`` of the entry's image, ~450 MB); the other
bundles reuse its image member. The benchmark is a tiny flood-synth (``flood-tiny``, 64-px
chips) frozen with a test secret, so its prepared test is the private one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import docker
import pytest

from harness.competition.bundle import IMAGE, VALIDATION, open_bundle, write_bundle
from harness.competition.store import QueueStore
from harness.datasets import ops
from harness.datasets.flood_synth import FloodSynth
from harness.datasets.registry import GENERATORS, SourceKind
from harness.datasets.secret import ENV_VAR as SECRET_ENV
from harness.datasets.secret import new_secret
from harness.publish.mlflow_store import connect as mlflow_connect
from harness.record import run_folders
from harness.settings import REPO_ROOT, Settings
from tests.docker_support import base_image, docker_client  # noqa: F401 - fixtures
from tests.helpers import unavailable
from tests.runner_support import cli, cli_args, cli_env

pytestmark = pytest.mark.docker

DATASET = "flood-tiny"
ENTRY = "comp-a"
TEAM = "Team A"
PAUSE_S = 3
COMPETITION = f"""
[defaults]
profile = "quick"
runs_per_day = 1
runs_total = 5
image_cap = "2GiB"
predict_log_cap = "1KiB"

[benchmarks.{DATASET}]
"""
TINY = {"chip_size": 64, "tile_rows": 6, "tile_cols": 12, "test_blocks": 2}
TINY_QUOTAS = {"train": 8, "val": 2, "reserved": 2}


class FloodTiny(FloodSynth):
    """flood-synth in miniature, under its own name (a second or two to make)."""

    name = DATASET

    def __init__(self, **kw: object) -> None:
        super().__init__(seed=5, quotas=TINY_QUOTAS, **TINY, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Bench:
    """The competitor's work folder, the bundle it submitted and its digest."""

    root: Path
    competitor: Settings
    bundle: Path
    digest: str
    paused: Path
    """The same image with ``pause_s`` in the entry file's options: train sleeps first."""
    second: Path
    """The team's second submission: the same image, another description."""
    crashing: Path
    """The same image with ``pause_s = -1``: train crashes (the competitor's failure)."""


def _maintainer(bench: Bench, name: str) -> Settings:
    """A maintainer's work folder of its own (queue, runs, MLflow) on the shared data."""
    home = bench.root / name
    home.mkdir()
    (home / "competition.toml").write_text(COMPETITION)
    return replace(bench.competitor, home=home)


def _queued(bench: Bench, name: str, bundle: Path) -> Settings:
    """A maintainer's work folder (:func:`_maintainer`) with ``bundle`` queued."""
    settings = _maintainer(bench, name)
    res = cli(settings, "queue", "add", str(bundle))
    assert res.exit_code == 0, res.output
    return settings


def _rebundle(bundle: Path, out: Path, edit: str) -> Path:
    """``bundle`` with ``edit`` appended to its entry file (the image and validation kept)."""
    made = open_bundle(bundle)
    work = out.parent / f"{out.name}.work"
    work.mkdir()
    with tarfile.open(bundle) as tar:
        tar.extract(made.members[IMAGE], work, filter="data")
        validation = json.loads(tar.extractfile(made.members[VALIDATION]).read())  # type: ignore[union-attr]
    write_bundle(
        out,
        entry_text=made.entry_text + edit,
        validation=validation,
        image_tar=work / IMAGE,
        image_id=made.image_id,
        entry=ENTRY,
        team=TEAM,
    )
    shutil.rmtree(work)
    return out


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory, base_image: str) -> Iterator[Bench]:  # noqa: F811
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(SECRET_ENV, raising=False)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.setitem(
            GENERATORS, DATASET, SourceKind(DATASET, "flood", "tiny", f"{__name__}:FloodTiny")
        )
        root = tmp_path_factory.mktemp("competition")
        settings = Settings(
            home=root / "competitor",
            data_root=root / "data",
            manifests_dir=root / "manifests",
            submissions_dir=root / "submissions",
            profiles_dir=REPO_ROOT / "profiles",
        )
        new_secret(settings)  # the maintainers' secret: the prepared test is the private one
        assert ops.prepare(settings, DATASET, progress=False).test_kind == "private"
        res = cli(settings, "new", ENTRY, "--task", "flood", "--team", TEAM, "--contact", "a@x.org")
        assert res.exit_code == 0, res.output
        entry_file = settings.submissions_dir / f"{ENTRY}.toml"
        code = settings.submissions_dir / ENTRY / "entry.py"
        text = code.read_text()
        pause = '    time.sleep(float(config["options"].get("pause_s", 0)))\n'
        assert "\ndef train(config: dict) -> None:\n" in text and "\nimport json\n" in text
        text = text.replace("\nimport json\n", "\nimport json\nimport time\n", 1)
        text = text.replace(
            "\ndef train(config: dict) -> None:\n",
            f"\ndef train(config: dict) -> None:\n{pause}",
            1,
        )
        code.write_text(text)
        started = time.monotonic()
        res = cli(settings, "submit", str(entry_file), "--out", str(root / "a.sarbench"))
        assert res.exit_code == 0, res.output
        print(f"submit (validate + docker save + bundle): {time.monotonic() - started:.1f} s")
        digest = res.output.split("bundle digest: ")[1].split()[0]
        paused = _rebundle(
            root / "a.sarbench", root / "paused.sarbench", f"\n[options]\npause_s = {PAUSE_S}\n"
        )
        second = _rebundle(root / "a.sarbench", root / "second.sarbench", "")
        crashing = _rebundle(
            root / "a.sarbench", root / "crash.sarbench", "\n[options]\npause_s = -1\n"
        )
        yield Bench(root, settings, root / "a.sarbench", digest, paused, second, crashing)
        for bundle in root.glob("*.sarbench"):  # 441 MiB each
            bundle.unlink()


def _item(settings: Settings) -> dict:
    res = cli(settings, "queue", "status", "--json")
    assert res.exit_code == 0, res.output
    (line,) = res.output.splitlines()
    return json.loads(line)


def test_submit_queue_run_publishes_a_board_row_and_the_quota_holds(bench: Bench) -> None:
    settings = _maintainer(bench, "official")
    res = cli(settings, "queue", "add", str(bench.bundle), "--expect-digest", bench.digest)
    assert res.exit_code == 0, res.output
    assert f"queued {ENTRY}-" in res.output and "used 1 of 1 today" in res.output
    assert _item(settings)["state"] == "pending"

    res = cli(settings, "queue", "run")
    assert res.exit_code == 0, res.output
    item = _item(settings)
    assert item["state"] == "published" and item["attempts"] == 1
    result = json.loads(Path(item["result_file"]).read_text())
    assert result["state"] == "published" and result["charged"] and result["test"] == "private"
    (run,) = result["runs"]
    score = run["score"]
    assert score["primary_metric"] == "iou" and score["low"] <= score["value"] <= score["high"]
    assert "train: " in run["logs"]["train"]["text"]
    # no per-chip score, and not one private test chip named
    text = Path(item["result_file"]).read_text()
    private = ops.verify(settings, DATASET, progress=False).splits["test"]
    assert '"chips"' not in text and not [c for c in private if c in text]

    # published to MLflow, and a row on the board built from it
    from harness.leaderboard.site import build_site

    client = mlflow_connect(f"sqlite:///{settings.home / 'mlflow' / 'mlflow.db'}")
    site = build_site(client, settings.home / "site", n_resamples=200)
    rows = [p for p in site.out.rglob("*.json") if ENTRY in p.read_text()]
    assert rows, "no board table names the entry"

    # the team's second submission is past its daily quota: refused, nothing queued
    res = cli(settings, "queue", "add", str(bench.second))
    assert res.exit_code == 2, res.output
    assert "quota used" in res.output and "used 1 of 1 today" in res.output
    assert "resets at" in res.output and "00:00 UTC" in res.output
    assert len(cli(settings, "queue", "status", "--json").output.splitlines()) == 1


def test_a_tampered_bundle_is_refused_naming_what_does_not_match(bench: Bench) -> None:
    settings = _maintainer(bench, "tamper")
    bad = bench.root / "tampered.sarbench"
    shutil.copyfile(bench.bundle, bad)
    members = open_bundle(bad).members
    for member, at in ((IMAGE, members[IMAGE].size // 2), ("entry.toml", 40)):
        offset = members[member].offset_data + at
        with open(bad, "r+b") as f:
            f.seek(offset)
            byte = f.read(1)
            f.seek(offset)
            f.write(bytes([byte[0] ^ 0x01]))
        res = cli(settings, "queue", "add", str(bad))
        assert res.exit_code == 2, res.output
        assert f"{member}: its SHA-256 does not match the manifest's" in res.output
        assert str(bad) in res.output
        with open(bad, "r+b") as f:  # put it back for the next member
            f.seek(offset)
            f.write(byte)
    res = cli(settings, "queue", "status")
    assert res.exit_code == 0 and "the queue is empty" in res.output
    bad.unlink()


class EngineProxy:
    """A Unix socket that forwards every connection to the engine's; :meth:`stop` closes
    it and every connection through it, as an engine that stops answering would."""

    def __init__(self, path: Path, engine: str) -> None:
        self.path, self.engine = path, engine
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(path))
        self.server.listen(64)
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.engine)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self.server.close()
        self.path.unlink(missing_ok=True)
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


def _engine_socket() -> str:
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if not host.startswith("unix://"):
        unavailable(
            f"the engine proxy needs a Unix socket; DOCKER_HOST is {host}",
            what="the engine-stops-mid-run test",
        )
    return host.removeprefix("unix://")


def _queue_run(settings: Settings, *extra: str) -> subprocess.Popen[str]:
    """``sarbench queue run`` as a process of its own (so that it can be killed)."""
    command = [sys.executable, "-m", "harness.cli", *cli_args(settings), "queue", "run", *extra]
    env = {**os.environ, **cli_env(settings)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _wait_for_training(client: docker.DockerClient, proc: subprocess.Popen[str]) -> None:
    """Until a train container of the entry runs (the entry sleeps PAUSE_S in train)."""
    deadline = time.monotonic() + 180
    labels = [f"sarbench.entry={ENTRY}", "sarbench.phase=train"]
    while time.monotonic() < deadline:
        if client.containers.list(filters={"label": labels, "status": "running"}):
            return
        if proc.poll() is not None:
            pytest.fail(f"queue run ended before training: {proc.stdout.read()}")  # type: ignore[union-attr]
        time.sleep(0.2)
    pytest.fail("no train container within 180 s")


def _records(settings: Settings) -> list[str]:
    return [f.run_id for f in run_folders(settings.runs_dir) if f.read()]


def test_an_engine_that_stops_mid_run_is_the_harness_failure_and_not_charged(
    bench: Bench,
    docker_client: docker.DockerClient,  # noqa: F811
) -> None:
    settings = _queued(bench, "engine-stops", bench.paused)
    proxy = EngineProxy(settings.home / "engine.sock", _engine_socket())
    proc = _queue_run(settings, "--docker-host", f"unix://{proxy.path}")
    try:
        _wait_for_training(docker_client, proc)
        proxy.stop()
        output, _ = proc.communicate(timeout=120)
    finally:
        proxy.stop()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, output
    assert "error (the harness's, not charged; 2 attempt(s) left)" in output, output
    print(output[-600:])
    item = _item(settings)
    assert item["state"] == "error" and item["attempts"] == 1, item
    result = json.loads(Path(item["result_file"]).read_text())
    assert result["state"] == "error" and not result["charged"]
    store = QueueStore(f"sqlite:///{settings.home / 'queue' / 'queue.db'}")
    with store.engine.connect() as con:
        from harness.competition.config import load_competition
        from harness.competition.quotas import usage

        bench_ = load_competition(settings).benchmark(DATASET)
        assert usage(con, TEAM, bench_).today == 0  # the failed attempt holds no slot
    store.close()
    assert _records(settings) == []

    res = cli(settings, "queue", "run")  # the engine answers again: tried again, scored
    assert res.exit_code == 0, res.output
    item = _item(settings)
    assert item["state"] == "published" and item["attempts"] == 2
    assert len(_records(settings)) == 1


def test_a_queue_run_killed_mid_run_finishes_the_submission_exactly_once(
    bench: Bench,
    docker_client: docker.DockerClient,  # noqa: F811
) -> None:
    settings = _queued(bench, "killed", bench.paused)
    proc = _queue_run(settings)
    try:
        _wait_for_training(docker_client, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    item = _item(settings)
    assert item["state"] == "running" and item["attempts"] == 1
    assert _records(settings) == []

    res = cli(settings, "queue", "run")
    assert res.exit_code == 0, res.output
    assert cli(settings, "queue", "run").output.startswith("0 submission(s) run")
    item = _item(settings)
    assert item["state"] == "published" and item["attempts"] == 2
    (run_id,) = _records(settings)
    assert item["run_ids"] == [run_id]
    client = mlflow_connect(f"sqlite:///{settings.home / 'mlflow' / 'mlflow.db'}")
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    keys = [r.data.tags["sarbench.key"] for r in runs if "sarbench.key" in r.data.tags]
    assert len(keys) == 1  # one published run of the record (boards have runs of their own)
    leftovers = docker_client.containers.list(all=True, filters={"label": f"sarbench.run={run_id}"})
    assert not leftovers


def test_a_submission_that_crashes_fails_charged_and_says_why_as_validate_would(
    bench: Bench,
) -> None:
    settings = _queued(bench, "crashes", bench.crashing)
    res = cli(settings, "queue", "run")
    assert res.exit_code == 1, res.output
    item = _item(settings)
    assert item["state"] == "failed" and item["reason"].startswith("crash: train: exited with code")
    result = json.loads(Path(item["result_file"]).read_text())
    assert result["state"] == "failed" and result["charged"]
    (run,) = result["runs"]
    assert run["score"] is None and run["problems"][0].startswith("crash: train: exited with code")
    assert "sleep length must be non-negative" in run["problems"][0]
    assert "sleep length must be non-negative" in run["logs"]["train"]["text"]
    res = cli(settings, "queue", "add", str(bench.second))  # the failure used the day's slot
    assert res.exit_code == 2 and "used 1 of 1 today" in res.output
