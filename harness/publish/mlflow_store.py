"""Publishing run folders to an MLflow tracking store.

    >>> publisher = Publisher(settings, tracking_uri(settings))      # doctest: +SKIP
    >>> publisher.publish(Path("~/.local/share/sarbench/runs/unet.default.s0..."))  # doctest: +SKIP

The embedded default store is SQLite, ``sqlite:///<SARBENCH_HOME>/mlflow/mlflow.db``, with
artifacts in ``<SARBENCH_HOME>/mlflow/artifacts``; any tracking URI works the same (a
server's own artifact store is used then). mlflow is imported when a publisher is built,
never at import time of this module.

Publishing is idempotent. Every run carries the tag ``sarbench.key``, a hash of the
record's key (entry, variant, seed, dataset digest, image digest, conditions fingerprint);
a run with that key and the tag ``sarbench.published = complete`` is left as it is. A run
with the key but without that tag was cut off while publishing: it is deleted and
published again. Two publishers writing the same store at once can still race.
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from harness.publish import content
from harness.publish.errors import RecordError, TrackingError
from harness.publish.quicklooks import write_quicklooks
from harness.publish.records import RunFolder, key_hash, read_run_folder
from harness.settings import Settings

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

EXPERIMENT_PREFIX = "sarbench/"
PARAM_BATCH, METRIC_BATCH = 100, 1000  # what one MLflow log_batch call takes at most


def default_tracking_uri(settings: Settings) -> str:
    """``sqlite:///<home>/mlflow/mlflow.db`` (an absolute path: four slashes)."""
    return f"sqlite:///{(settings.home / 'mlflow' / 'mlflow.db').resolve()}"


def tracking_uri(settings: Settings, uri: str | None = None) -> str:
    """``uri`` when given (the CLI passes ``--tracking-uri`` or ``$MLFLOW_TRACKING_URI``),
    else the embedded default."""
    return uri or default_tracking_uri(settings)


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, else ``None``."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///") :])


def experiment_name(task: str, dataset: str) -> str:
    """``sarbench/<task>/<dataset>``."""
    return f"{EXPERIMENT_PREFIX}{task}/{dataset}"


def connect(uri: str) -> MlflowClient:
    """An MLflow client for ``uri``; a SQLite store's folder is created first."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    db = sqlite_path(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    try:
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)  # opens (and creates) the store now
    except MlflowException as exc:
        raise TrackingError(f"MLflow tracking store {uri}: {exc.message}") from exc
    return client


def _millis(stamp: Any) -> int | None:
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


@dataclass(frozen=True)
class PublishResult:
    """What publishing one run folder did: ``created`` a run, found it ``exists``, or
    ``replaced`` a run that an earlier publish left incomplete."""

    run_dir: Path
    run_id: str
    mlflow_run_id: str
    experiment: str
    action: Literal["created", "exists", "replaced"]
    notes: tuple[str, ...] = ()


class Publisher:
    """Publishes run folders to one tracking store."""

    def __init__(self, settings: Settings, uri: str) -> None:
        self.settings, self.uri = settings, uri
        self.client = connect(uri)
        self._experiments: dict[str, str] = {}

    def _experiment_id(self, name: str) -> str:
        if name in self._experiments:
            return self._experiments[name]
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            if found.lifecycle_stage != "active":
                raise TrackingError(
                    f"MLflow tracking store {self.uri}: experiment {name!r} is deleted; "
                    "restore it (mlflow experiments restore) or remove it for good first"
                )
            exp_id = found.experiment_id
        else:
            db = sqlite_path(self.uri)
            location = None
            if db is not None:
                slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
                location = (db.parent / "artifacts" / slug).as_uri()
            exp_id = self.client.create_experiment(name, artifact_location=location)
        self._experiments[name] = exp_id
        return exp_id

    def _existing(self, exp_id: str, key: str) -> list[Any]:
        runs = self.client.search_runs([exp_id], f"tags.`{content.KEY}` = '{key}'", max_results=50)
        return list(runs)

    def publish(self, run_dir: Path) -> PublishResult:
        """Publish one run folder (see the module docstring for what is logged)."""
        from mlflow.exceptions import MlflowException

        folder = read_run_folder(run_dir)
        record = folder.record
        name = experiment_name(record["task"], record["dataset"]["name"])
        try:
            exp_id = self._experiment_id(name)
            runs = self._existing(exp_id, key_hash(record))
            done = [r for r in runs if r.data.tags.get(content.PUBLISHED) == content.COMPLETE]
            for run in runs:
                if run not in done:  # cut off while publishing: never shown, removed
                    self.client.delete_run(run.info.run_id)
            if done:
                return PublishResult(
                    folder.path, folder.run_id, done[0].info.run_id, name, "exists"
                )
            mlflow_id, notes = self._create(exp_id, folder)
            action: Literal["created", "replaced"] = "replaced" if runs else "created"
        except MlflowException as exc:
            raise TrackingError(
                f"MLflow tracking store {self.uri}: publishing {folder.record_path} "
                f"failed: {exc.message}"
            ) from exc
        return PublishResult(folder.path, folder.run_id, mlflow_id, name, action, notes)

    def _create(self, exp_id: str, folder: RunFolder) -> tuple[str, tuple[str, ...]]:
        from mlflow.entities import Metric, Param, RunTag

        record = folder.record
        tags = content.tags_of(record)
        run = self.client.create_run(
            exp_id, start_time=_millis(record.get("started_at")), tags=tags, run_name=folder.run_id
        )
        run_id = run.info.run_id
        now = _millis(record.get("finished_at")) or int(time.time() * 1000)
        params = [Param(k, v) for k, v in content.params_of(record).items()]
        metrics = [Metric(k, v, now, 0) for k, v in content.metrics_of(record).items()]
        if folder.ok:  # a failed record has no metrics; its loss CSV stays an artifact
            metrics += [Metric(k, v, now, s) for k, s, v in self._loss_points(folder)]
        for start in range(0, len(params), PARAM_BATCH):
            self.client.log_batch(run_id, params=params[start : start + PARAM_BATCH])
        for start in range(0, len(metrics), METRIC_BATCH):
            self.client.log_batch(run_id, metrics=metrics[start : start + METRIC_BATCH])
        notes = self._log_artifacts(run_id, folder)
        note_tags = [RunTag(content.TAG + "publish_notes", "; ".join(notes))] if notes else []
        self.client.log_batch(run_id, tags=[*note_tags, RunTag(content.PUBLISHED, "complete")])
        status = "FINISHED" if folder.ok else "FAILED"
        self.client.set_terminated(run_id, status, end_time=now)
        return run_id, tuple(notes)

    def _loss_points(self, folder: RunFolder) -> list[tuple[str, int, float]]:
        points: list[tuple[str, int, float]] = []
        for csv_path in sorted((folder.path / "artifacts").glob("loss*.csv")):
            try:
                text = csv_path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise RecordError(csv_path, f"cannot read the loss curve ({exc})") from exc
            points += content.loss_points(csv_path.stem, text)
        return points

    def _log_artifacts(self, run_id: str, folder: RunFolder) -> list[str]:
        record, notes = folder.record, []
        self.client.log_artifact(run_id, str(folder.record_path))
        if (folder.path / "run.json").is_file():
            self.client.log_artifact(run_id, str(folder.path / "run.json"), "config")
        for sub in ("logs", "artifacts"):
            if (folder.path / sub).is_dir() and any((folder.path / sub).iterdir()):
                self.client.log_artifacts(run_id, str(folder.path / sub), sub)
        listed = [a for a in record.get("artifacts") or [] if isinstance(a, str)]
        missing = [a for a in listed if not (folder.path / a).is_file()]
        if missing:
            notes.append(f"listed in the record but missing: {', '.join(missing)}")
        with tempfile.TemporaryDirectory(prefix="sarbench-publish-") as tmp:
            work = Path(tmp)
            self.client.log_dict(run_id, {"options": record["options"]}, "config/options.json")
            if not folder.ok:
                return notes
            (work / "chips.csv").write_text(content.chips_csv(record), encoding="utf-8")
            self.client.log_artifact(run_id, str(work / "chips.csv"), "scores")
            looks = write_quicklooks(
                self.settings,
                record["dataset"]["name"],
                record["task"],
                [c["id"] for c in record["score"]["chips"]],
                folder.path / "predictions",
                work / "quicklooks",
            )
            if looks.files:
                self.client.log_artifacts(run_id, str(work / "quicklooks"), "quicklooks")
            if looks.note:
                notes.append(looks.note)
        return notes
