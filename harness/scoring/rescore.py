"""``sarbench rescore``: the kept predictions of recorded runs, scored again by this scorer.

A run that ended ``ok`` keeps its validated predictions (``predictions/`` of its folder).
When the scorer changes (:data:`harness.scoring.SCORER_VERSION` is raised), each such run
whose record was scored by another version is scored again from those files, the same way
the runner scored it (same split, independence groups and bootstrap seed), and the result
is added to the run folder as a rescore (:meth:`harness.record.RunFolder.rescore`): the
record file itself is never rewritten, and no container is started.

A run is not rescored (and is listed with the reason) when its dataset on this machine is
not the data it was scored on (another digest), or its predictions are gone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from harness import scoring
from harness.datasets import ops
from harness.errors import SarbenchError
from harness.record import RecordScore, RunFolder, RunRecord, run_folders
from harness.scoring.score import score_predictions
from harness.settings import Settings
from harness.tasks import get_task


@dataclass(frozen=True)
class Rescored:
    """One run scored again: its record as now read, and the primary metric before."""

    record: RunRecord
    before: float


@dataclass(frozen=True)
class NotRescored:
    """A run that needed rescoring and could not be: which, and why."""

    run_id: str
    reason: str


@dataclass
class RescoreReport:
    """What :func:`rescore_runs` did."""

    rescored: list[Rescored]
    not_rescored: list[NotRescored]
    current: int
    """Runs already scored by this scorer version (left alone)."""


def stale(record: RunRecord, scorer: str) -> bool:
    """Whether ``record`` has a score that another scorer version made."""
    return record.ok and record.score is not None and record.scorer != scorer


def _on_disk(settings: Settings) -> Callable[[str], str | None]:
    """Dataset name -> the digest of its verified files here (None: not usable), each
    dataset verified once."""
    cache: dict[str, str | None] = {}

    def digest(name: str) -> str | None:
        if name not in cache:
            try:
                cache[name] = ops.verify(settings, name, progress=False).digest
            except SarbenchError:
                cache[name] = None
        return cache[name]

    return digest


def score_again(settings: Settings, folder: RunFolder, record: RunRecord) -> RecordScore:
    """The score of the run's kept predictions by this scorer, made as the runner makes it."""
    split = ops.open_split(settings, record.dataset, record.split)
    groups = ops.groups_of(settings, record.dataset, record.split)
    result = score_predictions(
        folder.predictions,
        split,
        get_task(record.task.name),
        dataset=record.dataset,
        groups=groups,
        seed=record.seed,
    )
    return RecordScore.from_result(result.to_dict())


def rescore_runs(
    settings: Settings,
    *,
    scorer: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> RescoreReport:
    """Rescore every recorded run under ``settings.runs_dir`` that another scorer version
    scored (``scorer``: the version to record, by default this harness's)."""
    scorer = scorer or scoring.SCORER_VERSION
    digest_here = _on_disk(settings)
    report = RescoreReport([], [], 0)
    for folder in run_folders(settings.runs_dir):
        record = folder.load()
        if not stale(record, scorer):
            report.current += record.ok
            continue
        here = digest_here(record.dataset)
        if here != record.dataset_digest:
            why = (
                f"{record.dataset} is not prepared here"
                if here is None
                else f"{record.dataset} here is {here[:19]}, the run was scored on "
                f"{record.dataset_digest[:19]}"
            )
            report.not_rescored.append(NotRescored(record.run_id, why))
            continue
        if not folder.predictions.is_dir():
            report.not_rescored.append(
                NotRescored(record.run_id, f"its predictions are gone ({folder.predictions})")
            )
            continue
        progress(f"{record.run_id}: scoring again")
        try:
            score = score_again(settings, folder, record)
        except SarbenchError as exc:
            report.not_rescored.append(NotRescored(record.run_id, str(exc)))
            continue
        now = datetime.now(UTC).isoformat(timespec="seconds")
        report.rescored.append(Rescored(folder.rescore(score, scorer, now), record.primary))
    return report
