"""Publishing run folders to an MLflow tracking store.

    >>> publisher = Publisher(settings, tracking_uri(settings))      # doctest: +SKIP
    >>> publisher.publish(Path("~/.local/share/sarbench/runs/unet.default.s0..."))  # doctest: +SKIP

The embedded default store is SQLite, ``sqlite:///<SARBENCH_HOME>/mlflow/mlflow.db``, with
artifacts in ``<SARBENCH_HOME>/mlflow/artifacts``; any tracking URI works the same (a
server's own artifact store is used then). mlflow is imported when a publisher is built,
never at import time of this module.

How a record is laid out (few tags, facts as params, scores as metrics, resources under
``system/``, the dataset as an input, runs nested under their board's run) is
:mod:`harness.publish.layout`; board runs, the experiment's kind and description, and
hiding MLflow's empty ``Default`` experiment are :mod:`harness.publish.boards`.

Publishing is idempotent. Every run carries the tag ``sarbench.key``, a hash of the
record's key (entry, variant, seed, dataset digest, image digest, conditions fingerprint);
a run with that key and the tag ``sarbench.published = complete`` is left as it is. A run
with the key but without that tag is being published, or was cut off while publishing: it
is never shown, and it is deleted as cut off when no other publisher can be at work on it
(a SQLite store, whose publishers take turns under its lock) or when it began more than
:data:`CUT_OFF_S` ago (the tag ``sarbench.publishing``, set when a run is created).

Many writers (a tracking server, ``--tracking-uri http://...``, which processes on many
machines share without a common lock): two publishers of one record may both find no run
and both create one. So after marking its run complete, a publisher lists the complete
runs of the key and keeps one, the *first*: the oldest ``sarbench.publishing`` (runs
published before that tag existed count as oldest), then the smallest MLflow run ID. It
deletes every other. Every publisher orders the runs the same way, and a run is complete
before its publisher looks, so the last publisher to look sees every complete run and
leaves exactly the first: nothing is lost (the first is never deleted) and nothing stays
twice. A publisher whose run was not the first reports ``exists``. Deleted runs are
MLflow's soft deletes (``mlflow gc`` removes them for good).

A record's content is untrusted (option keys from entry files, loss curves from the
container): everything it would publish is computed and checked first
(:mod:`harness.publish.content`), and a record with any problem is refused with all of them
before anything of it reaches the store. Store creation and each record's write happen
under the store's publish lock, waiting for a locked SQLite file
(:mod:`harness.publish.locking`), so concurrent publishers neither race nor duplicate.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from harness.errors import DataFileError
from harness.publish import content, layout
from harness.publish.boards import (
    MAX_COPIES,
    PUBLISHING,
    BoardRuns,
    delete_run,
    describe_experiment,
    hide_default_experiment,
    log_dataset,
    publish_order,
    publishing_began,
)
from harness.publish.errors import RecordError, StoreBusyError, TrackingError
from harness.publish.files import MAX_ARTIFACT_FILES, loss_curves, regular_files
from harness.publish.locking import (
    DEFAULT_WAIT_S,
    Say,
    StoreGuard,
    lock_file,
    sqlite_path,
    store_error,
)
from harness.publish.quicklooks import write_quicklooks
from harness.publish.rescored import behind, update_score
from harness.record import RunFolder, RunRecord
from harness.settings import Settings

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

__all__ = [
    "DEFAULT_WAIT_S",
    "EXPERIMENT_PREFIX",
    "PUBLISHING",
    "Prepared",
    "PublishResult",
    "Publisher",
    "connect",
    "default_tracking_uri",
    "experiment_name",
    "sqlite_path",
    "tracking_uri",
]

EXPERIMENT_PREFIX = "sarbench/"
CUT_OFF_S = 3600.0
"""A run left incomplete for longer than this is taken as cut off (its publisher died)."""
PARAM_BATCH, METRIC_BATCH = 100, 1000  # what one MLflow log_batch call takes at most
ARTIFACT_FOLDERS = ("config", "logs", "artifacts")
MAX_MILLIS = 2**53
PRIVATE_NOTE = "no quicklooks: the test is private, and a quicklook would show its hidden truth"


def default_tracking_uri(settings: Settings) -> str:
    """``sqlite:///<home>/mlflow/mlflow.db`` (an absolute path: four slashes)."""
    return f"sqlite:///{(settings.home / 'mlflow' / 'mlflow.db').resolve()}"


def tracking_uri(settings: Settings, uri: str | None = None) -> str:
    """``uri`` when given (the CLI passes ``--tracking-uri`` or ``$MLFLOW_TRACKING_URI``),
    else the embedded default."""
    return uri or default_tracking_uri(settings)


def experiment_name(task: str, dataset: str) -> str:
    """``sarbench/<task>/<dataset>``."""
    return f"{EXPERIMENT_PREFIX}{task}/{dataset}"


def _is_db_error(exc: BaseException) -> bool:
    from mlflow.exceptions import MlflowException

    return isinstance(exc, MlflowException) or type(exc).__module__.startswith("sqlalchemy")


def connect(
    uri: str,
    *,
    wait_s: float = DEFAULT_WAIT_S,
    say: Say | None = None,
    guard: StoreGuard | None = None,
) -> MlflowClient:
    """An MLflow client for ``uri``. A SQLite store's folder is made first, and the store
    is opened (created and migrated when new) under its publish lock, so that two
    processes opening a new store at once do not race; a locked store is waited for up to
    ``wait_s`` seconds (see :mod:`harness.publish.locking`)."""
    from mlflow.tracking import MlflowClient

    db = sqlite_path(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    guard = guard or StoreGuard(uri, lock_file(uri), wait_s, say)

    def open_store() -> MlflowClient:
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)  # opens (and creates) the store now
        return client

    try:
        return guard.run(open_store, "opening the store")
    except StoreBusyError:
        raise
    except Exception as exc:
        if _is_db_error(exc):
            raise store_error(uri, "opening the store", exc) from exc
        raise


def _millis(stamp: Any) -> int | None:
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        millis = int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)
    except (ValueError, OverflowError, OSError):
        return None
    return millis if 0 <= millis <= MAX_MILLIS else None


def _complete(run: Any) -> bool:
    return run.data.tags.get(content.PUBLISHED) == content.COMPLETE


@dataclass(frozen=True)
class PublishResult:
    """What publishing one run folder did: ``created`` a run, found it ``exists``,
    ``updated`` its score (the record was rescored since it was published), or
    ``replaced`` a run that an earlier publish left incomplete."""

    run_dir: Path
    run_id: str
    mlflow_run_id: str
    experiment: str
    action: Literal["created", "exists", "updated", "replaced"]
    notes: tuple[str, ...] = ()


@dataclass
class Prepared:
    """Everything one record will publish, computed and checked before the store is
    touched: params, metrics (loss-curve points included), tags, the files to upload
    (``(path, artifact folder)``), notes on what was cut or left out, and its board."""

    folder: RunFolder
    record: RunRecord
    params: dict[str, str]
    metrics: dict[str, float]
    loss: list[tuple[str, int, float]]
    tags: dict[str, str]
    files: list[tuple[Path, str]]
    notes: list[str]
    board: layout.Board


def prepare(folder: RunFolder, record: RunRecord) -> Prepared:
    """Compute and check what ``folder`` would publish; a :class:`RecordError` lists every
    problem (names MLflow would refuse, numbers that are not, bad loss-curve steps)."""
    problems: list[str] = []
    notes: list[str] = []
    params = content.params_of(record, problems)
    params.update({content.TAG + k: v for k, v in layout.fields_of(record).items()})
    metrics = content.metrics_of(record, problems)
    loss: list[tuple[str, int, float]] = []
    if record.ok:  # a failed record has no metrics; its loss CSV stays an artifact
        curves = loss_curves(folder.path)
        problems += curves.problems
        notes += curves.notes
        loss = curves.points
        clash = sorted({n for n, _, _ in loss} & set(metrics))
        if clash:
            problems.append(f"loss-curve metric(s) {clash} clash with the record's metrics")
    if problems:
        raise RecordError(folder.path, problems)
    files: list[tuple[Path, str]] = []
    for sub in ARTIFACT_FOLDERS:
        for path in regular_files(folder.path / sub):
            rel = path.relative_to(folder.path).parent.as_posix()
            files.append((path, rel))
    if len(files) > MAX_ARTIFACT_FILES:
        notes.append(
            f"{len(files) - MAX_ARTIFACT_FILES} file(s) not uploaded (at most "
            f"{MAX_ARTIFACT_FILES} per run), from {files[MAX_ARTIFACT_FILES][0].name}"
        )
        files = files[:MAX_ARTIFACT_FILES]
    missing = [a for a in record.artifacts if not (folder.path / a).is_file()]
    if missing:
        shown = ", ".join(missing[:10]) + (
            f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        )
        notes.append(f"listed in the record but missing: {shown}")
    board = layout.board_of(record)
    tags = layout.tags_of(record, board)
    return Prepared(folder, record, params, metrics, loss, tags, files, notes, board)


class Publisher:
    """Publishes run folders to one tracking store.

    ``wait_s`` bounds how long each operation waits for a store locked by another
    process; ``say`` is told (once per wait) that it waits."""

    def __init__(
        self,
        settings: Settings,
        uri: str,
        *,
        wait_s: float = DEFAULT_WAIT_S,
        say: Say | None = None,
    ) -> None:
        self.settings, self.uri = settings, uri
        # MLflow prints two "View run at http://..." lines per run on a server's store
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        self.guard = StoreGuard(uri, lock_file(uri, settings.home), wait_s, say)
        self.client = connect(uri, guard=self.guard)
        self.boards = BoardRuns(self.client)
        self._experiments: dict[str, str] = {}
        if sqlite_path(uri) is not None:  # a server's Default is others' too: left alone
            self.guard.run(lambda: hide_default_experiment(self.client), "opening the store")

    def links(self) -> dict[str, str]:
        """Each experiment published to so far: its ranking view in MLflow's UI."""
        return {name: layout.ui_link(self.uri, i) for name, i in sorted(self._experiments.items())}

    def _experiment_id(self, name: str, record: RunRecord) -> str:
        """The ID of experiment ``name`` (made when new), its kind and description set."""
        if name in self._experiments:
            return self._experiments[name]
        found = self.client.get_experiment_by_name(name)
        tags: dict[str, str] = {}
        if found is not None:
            if found.lifecycle_stage != "active":
                raise TrackingError(
                    f"MLflow tracking store {self.uri}: experiment {name!r} is deleted; "
                    "restore it (mlflow experiments restore) or remove it for good first"
                )
            exp_id, tags = found.experiment_id, dict(found.tags)
        else:
            db = sqlite_path(self.uri)
            location = None
            if db is not None:
                slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
                location = (db.parent / "artifacts" / slug).resolve().as_uri()
            exp_id = self._create_experiment(name, location)
        describe_experiment(self.client, exp_id, tags, record)
        self._experiments[name] = exp_id
        return exp_id

    def _create_experiment(self, name: str, location: str | None) -> str:
        """A new experiment, or the one another publisher created at the same moment."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.create_experiment(name, artifact_location=location)
        except MlflowException:
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id  # another publisher created it meanwhile: shared

    def _existing(self, exp_id: str, key: str) -> list[Any]:
        runs = self.client.search_runs(
            [exp_id], f"tags.`{content.KEY}` = '{key}'", max_results=MAX_COPIES
        )
        return list(runs)

    def _cut_off(self, run: Any, now_ms: int) -> bool:
        """Whether an incomplete run was cut off (not being published right now)."""
        if sqlite_path(self.uri) is not None:  # publishers take turns under the lock
            return True
        began = publishing_began(run)
        return began is None or now_ms - began > CUT_OFF_S * 1000

    def _keep_first(self, runs: list[Any]) -> Any:
        """The first of complete runs of one key (see the module docstring); every other is
        deleted (another publisher may have deleted it already)."""
        first = min(runs, key=publish_order)
        for run in runs:
            if run.info.run_id != first.info.run_id:
                delete_run(self.client, run.info.run_id)
        return first

    def publish(self, run_dir: Path) -> PublishResult:
        """Publish one run folder (see the module docstring for what is logged).

        A :class:`RecordError` (with every problem) when the record cannot be published
        as it is, before anything of it reaches the store; a :class:`TrackingError` when
        the store refuses it; a :class:`StoreBusyError` when the store stayed locked."""
        folder = RunFolder(Path(run_dir))
        record = folder.load()
        prepared = prepare(folder, record)
        name = experiment_name(record.task.name, record.dataset)
        key, board = record.key_hash, prepared.board
        data = layout.dataset_input_of(record, self._dataset_location(record.dataset))
        with tempfile.TemporaryDirectory(prefix="sarbench-publish-") as tmp:
            extra = self._harness_files(folder, record, Path(tmp), prepared.notes)

            def write() -> PublishResult:
                exp_id = self._experiment_id(name, record)
                runs = self._existing(exp_id, key)
                done = [r for r in runs if _complete(r)]
                now = int(time.time() * 1000)
                cut_off = [r for r in runs if not _complete(r) and self._cut_off(r, now)]
                for run in cut_off:  # never shown; removed
                    delete_run(self.client, run.info.run_id)
                if done:
                    first = self._keep_first(done)
                    if layout.BOARD in first.data.tags:  # runs of the earlier layout: as they are
                        self.boards.settle(exp_id, board, first.data.tags.get(layout.PARENT))
                    found: Literal["exists", "updated"] = "exists"
                    if behind(first, record):  # rescored since: its new score, same run
                        scores = [path for path, where in extra if where == "scores"]
                        update_score(
                            self.client, first.info.run_id, record, prepared.metrics, scores
                        )
                        found = "updated"
                    return PublishResult(folder.path, record.run_id, first.info.run_id, name, found)
                parent = self.boards.parent(exp_id, board, data)
                mlflow_id = self._create(exp_id, prepared, extra, parent, data)
                self.boards.settle(exp_id, board, parent)
                # another publisher of this record may have made a run of its own meanwhile
                first = self._keep_first([r for r in self._existing(exp_id, key) if _complete(r)])
                if first.info.run_id != mlflow_id:
                    return PublishResult(
                        folder.path, record.run_id, first.info.run_id, name, "exists"
                    )
                action: Literal["created", "replaced"] = "replaced" if cut_off else "created"
                notes = tuple(prepared.notes)
                return PublishResult(folder.path, record.run_id, mlflow_id, name, action, notes)

            try:
                return self.guard.run(write, f"publishing {folder.path.name}")
            except (StoreBusyError, RecordError):
                raise
            except Exception as exc:
                if _is_db_error(exc):
                    raise store_error(self.uri, f"publishing {folder.record_path}", exc) from exc
                raise

    def _dataset_location(self, dataset: str) -> str:
        """A ``file://`` URI of the folder this publisher's settings hold ``dataset`` in (the
        dataset input's source; its digest, not this path, says which data it is)."""
        return (self.settings.data_root / dataset).resolve().as_uri()

    def _harness_files(
        self, folder: RunFolder, record: RunRecord, work: Path, notes: list[str]
    ) -> list[tuple[Path, str]]:
        """What the harness makes for an ok record (``scores/chips.csv``, quicklooks), in
        ``work``, before the store is locked; a quicklook that cannot be drawn is a note."""
        files: list[tuple[Path, str]] = []
        (work / "options.json").write_text(
            json.dumps({"options": record.options}, indent=2, default=str), encoding="utf-8"
        )
        files.append((work / "options.json", "config"))
        if record.score is None:
            return files
        (work / "chips.csv").write_text(content.chips_csv(record), encoding="utf-8")
        files.append((work / "chips.csv", "scores"))
        if record.test_kind == "private":  # a quicklook shows the truth: never a hidden one
            notes.append(PRIVATE_NOTE)
            return files
        try:
            looks = write_quicklooks(
                self.settings,
                record.dataset,
                record.task.name,
                [c.id for c in record.score.chips],
                folder.predictions,
                work / "quicklooks",
            )
        except (DataFileError, OSError, ValueError) as exc:
            notes.append(f"no quicklooks: {exc}")
            return files
        files += [(p, "quicklooks") for p in looks.files]
        if looks.note:
            notes.append(looks.note)
        return files

    def _create(
        self,
        exp_id: str,
        prepared: Prepared,
        extra: list[tuple[Path, str]],
        parent: str,
        data: layout.DatasetInput,
    ) -> str:
        """A new entry run of ``prepared`` under board run ``parent``; its MLflow run ID."""
        from mlflow.entities import Metric, Param, RunTag

        folder, record = prepared.folder, prepared.record
        began = {PUBLISHING: str(int(time.time() * 1000)), layout.PARENT: parent}
        run = self.client.create_run(
            exp_id,
            start_time=_millis(record.started_at),
            tags={**prepared.tags, **began},
            run_name=record.run_id,
        )
        run_id = run.info.run_id
        now = _millis(record.finished_at) or int(time.time() * 1000)
        params = [Param(k, v) for k, v in prepared.params.items()]
        metrics = [Metric(k, v, now, 0) for k, v in prepared.metrics.items()]
        metrics += [Metric(k, v, now, s) for k, s, v in prepared.loss]
        for start in range(0, len(params), PARAM_BATCH):
            self.client.log_batch(run_id, params=params[start : start + PARAM_BATCH])
        for start in range(0, len(metrics), METRIC_BATCH):
            self.client.log_batch(run_id, metrics=metrics[start : start + METRIC_BATCH])
        log_dataset(self.client, run_id, data)
        self.client.log_artifact(run_id, str(folder.record_path))
        for path, where in [*prepared.files, *extra]:
            self.client.log_artifact(run_id, str(path), where)
        if prepared.notes:
            note = content.clip("; ".join(prepared.notes), content.MAX_TAG)
            self.client.log_batch(run_id, tags=[RunTag(layout.NOTES, note)])
        status = "FINISHED" if record.ok else "FAILED"
        self.client.set_terminated(run_id, status, end_time=now)
        # last: a run without this tag was cut off while publishing and is never shown
        self.client.set_tag(run_id, content.PUBLISHED, content.COMPLETE)
        return run_id
