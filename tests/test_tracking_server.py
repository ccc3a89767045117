"""Publishing to an MLflow tracking server on PostgreSQL, from many writers at once.

The module starts one ``mlflow server`` (127.0.0.1 only, two workers, artifacts served by
it) on a fresh database of the PostgreSQL named by ``SARBENCH_TEST_POSTGRES``
(``postgresql://USER:PASSWORD@127.0.0.1:PORT/postgres``, a role that may create databases;
``.ci/run`` starts such a PostgreSQL and sets it), and drops the database afterwards.
Without one the tests are skipped, except under ``CI=true``: then they fail.

What is shown: four ``sarbench publish`` processes, each with a work folder of its own (as
four machines sharing no lock), publish the same records at once, and every record is one
complete run, none lost, none twice, all nested under one board run (the racing writers
may each make one: one is kept); a race between two publishers of one record, forced
step by step, leaves the first run and deletes the other; a run another publisher is
writing right now is left alone, one cut off long ago is replaced.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness.publish import content, layout
from harness.publish.mlflow_store import PUBLISHING, Publisher, experiment_name
from harness.record import RunFolder
from harness.settings import Settings
from tests.helpers import BIN, start_mlflow
from tests.helpers import unavailable as needs_unavailable
from tests.records_factory import RunSpec, make_run, make_test_split

PG_ENV = "SARBENCH_TEST_POSTGRES"
WRITERS = 4


unavailable = functools.partial(needs_unavailable, what="the tracking-server tests")
"""Fail under CI (``CI=true``), skip elsewhere (:func:`tests.helpers.unavailable`)."""


def _admin() -> tuple[Any, str]:
    """psycopg and the admin URI, or skip (fail under CI) saying what is missing."""
    admin = os.environ.get(PG_ENV)
    if not admin:
        unavailable(
            f"no PostgreSQL for the tracking-server tests: set {PG_ENV}="
            "postgresql://USER:PASSWORD@127.0.0.1:PORT/postgres (a role that may create "
            "databases; .ci/run starts one)"
        )
    try:
        import psycopg
    except ImportError as exc:
        unavailable(f"psycopg is not installed ({exc}): pip install 'sarbench[cluster]'")
    return psycopg, admin


def _sql(psycopg: Any, admin: str, statement: str) -> None:
    # CREATE/DROP DATABASE cannot run in a transaction
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(statement)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        if _healthy(url):
            return
        time.sleep(0.5)
    pytest.fail(f"mlflow server did not answer within 180 s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``http://127.0.0.1:<port>``: an ``mlflow server`` on a fresh PostgreSQL database."""
    psycopg, admin = _admin()
    root = tmp_path_factory.mktemp("tracking")
    database = f"sarbench_test_{uuid.uuid4().hex[:12]}"
    _sql(psycopg, admin, f"CREATE DATABASE {database}")
    store = admin.rsplit("/", 1)[0] + f"/{database}"
    log = root / "server.log"
    url, proc = start_mlflow(
        [
            "server", "--backend-store-uri", store, "--serve-artifacts",
            "--artifacts-destination", str(root / "artifacts"), "--workers", "2",
        ],
        log,
    )  # fmt: skip
    try:
        _wait_healthy(url, proc, log)
        yield url
    finally:  # a throwaway server: no graceful shutdown to wait for
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        _sql(psycopg, admin, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, list[Path]]:
    """Six run folders of flood-synth (scored for real on tiny chips)."""
    home = tmp_path_factory.mktemp("records")
    settings = Settings(home=home, data_root=home / "data", manifests_dir=home / "manifests")
    split = make_test_split(settings, "flood-synth", "flood")
    specs = [RunSpec("unet", "flood-synth", "flood", seed=s, noise=0.05 + s / 50) for s in range(3)]
    specs += [RunSpec("threshold", "flood-synth", "flood", seed=s) for s in range(2)]
    specs.append(RunSpec("unet", "flood-synth", "flood", seed=9, status="failed", reason="crash"))
    return settings, [make_run(settings, spec, split) for spec in specs]


def _runs(client: Any, view: str = "ACTIVE_ONLY") -> list[Any]:
    from mlflow.entities import ViewType

    ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    return list(client.search_runs(ids, run_view_type=getattr(ViewType, view), max_results=5000))


def test_four_writers_at_once_publish_every_record_exactly_once(
    server: str, records: tuple[Settings, list[Path]], tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    settings, dirs = records
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "SARBENCH_HOME")}
    writers = []
    for i in range(WRITERS):  # each its own work folder (its own lock): four machines
        order = dirs if i % 2 == 0 else dirs[::-1]
        command = [
            str(BIN / "sarbench"), "--home", str(tmp_path / f"writer-{i}"),
            "--data-root", str(settings.data_root),
            "publish", "--tracking-uri", server, *map(str, order),
        ]  # fmt: skip
        writers.append(
            subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
            )
        )
    outputs = [w.communicate(timeout=600) for w in writers]
    for writer, (out, err) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, out + err
        assert f"published {len(dirs)} record(s)" in out, out

    client = MlflowClient(server)
    runs = _runs(client)
    shown = [r for r in runs if r.data.tags.get(content.PUBLISHED) == content.COMPLETE]
    keys = Counter(r.data.tags[content.KEY] for r in shown)
    assert len(shown) == len(dirs) and set(keys.values()) == {1}, keys  # none twice
    (board,) = [r for r in runs if layout.BOARD_RUN in r.data.tags]  # one board, one parent
    assert all(r.data.tags[layout.PARENT] == board.info.run_id for r in shown)
    by_id = {r.info.run_name: r for r in shown}
    assert sorted(by_id) == sorted(d.name for d in dirs)  # none lost
    for folder in dirs:
        record = RunFolder(folder).load()
        run = by_id[record.run_id]
        assert run.data.tags[content.KEY] == record.key_hash
        if record.score is not None:
            assert run.data.metrics["iou"] == pytest.approx(record.score.metrics["iou"])
        names = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert "record.json" in names  # served by the server's artifact store
    entries = [r for r in _runs(client) if content.KEY in r.data.tags]
    assert all(r.data.tags.get(content.PUBLISHED) == content.COMPLETE for r in entries)
    deleted = _runs(client, "DELETED_ONLY")  # the duplicates the race made, removed
    boards = sum(layout.BOARD_RUN in r.data.tags for r in deleted)
    print(
        f"{WRITERS} writers x {len(dirs)} records: {len(deleted) - boards} duplicate run(s) "
        f"and {boards} duplicate board run(s) made and removed"
    )


def _fresh(source: Path, where: Path, image: str) -> Path:
    """A copy of a run folder whose record has another image digest: a key never
    published (as a rebuilt image makes)."""
    record = RunFolder(source).load()
    key = replace(record.key, image_digest="sha256:" + image * 64)
    changed = replace(record, key=key, run_id=key.run_id)
    folder = where / changed.run_id
    shutil.copytree(source, folder)
    (folder / "record.json").unlink()
    RunFolder(folder).save(changed)
    return folder


def _home(settings: Settings, home: Path) -> Settings:
    return Settings(home=home, data_root=settings.data_root, manifests_dir=home / "manifests")


def test_a_race_between_two_publishers_keeps_the_first_run(
    server: str, records: tuple[Settings, list[Path]], tmp_path: Path
) -> None:
    """Forced step by step: A finds no run of the record; B publishes it whole; only then
    does A create its run. A, checking after completing, keeps B's and deletes its own."""
    settings, dirs = records
    folder = _fresh(dirs[0], tmp_path, "b")
    a = Publisher(_home(settings, tmp_path / "a"), server)  # a work folder each: no lock
    b = Publisher(_home(settings, tmp_path / "b"), server)
    by_b: list[Any] = []
    create = a._create

    def create_after_b(*args: Any) -> str:
        by_b.append(b.publish(folder))  # B, while A is between its search and its create
        return create(*args)

    a._create = create_after_b  # type: ignore[method-assign]
    by_a = a.publish(folder)
    (b_result,) = by_b
    assert b_result.action == "created" and by_a.action == "exists"
    assert by_a.mlflow_run_id == b_result.mlflow_run_id
    record = RunFolder(folder).load()
    exp = a.client.get_experiment_by_name(experiment_name(record.task.name, record.dataset))
    runs = a.client.search_runs([exp.experiment_id], f"tags.`{content.KEY}` = '{record.key_hash}'")
    assert [r.info.run_id for r in runs] == [b_result.mlflow_run_id]  # A's own was deleted


def test_a_run_being_written_is_left_alone_and_a_long_cut_off_one_replaced(
    server: str, records: tuple[Settings, list[Path]], tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    settings, dirs = records
    folder = _fresh(dirs[1], tmp_path, "c")
    record = RunFolder(folder).load()
    client = MlflowClient(server)
    name = experiment_name(record.task.name, record.dataset)
    exp = client.get_experiment_by_name(name)
    exp_id = exp.experiment_id if exp is not None else client.create_experiment(name)
    now = int(time.time() * 1000)  # another publisher is writing this run right now
    busy = client.create_run(exp_id, tags={content.KEY: record.key_hash, PUBLISHING: str(now)})
    publisher = Publisher(_home(settings, tmp_path / "p"), server)
    result = publisher.publish(folder)
    assert result.action == "created"
    assert client.get_run(busy.info.run_id).info.lifecycle_stage == "active"  # left alone
    client.delete_run(result.mlflow_run_id)  # as if never published; the other cut off
    client.set_tag(busy.info.run_id, PUBLISHING, str(now - 2 * 3600 * 1000))  # long ago
    again = publisher.publish(folder)
    assert again.action == "replaced"
    assert client.get_run(busy.info.run_id).info.lifecycle_stage == "deleted"
