"""One run: an entry's variant and seed on a dataset, under a conditions profile.

Lifecycle of :func:`run_one`: key (dataset digest, image digest, conditions) -> skip when a
record exists -> lock -> prepare the run folder and its configs -> ``train`` container ->
``predict`` container -> keep artifacts -> validate and score on the harness side -> keep
the predictions -> write the record atomically; the working folder and any container of
the run are removed in ``finally``, whatever happened.

Staging mounts the frozen dataset's folders read-only, without copying: every non-test split
for ``train`` and the test split's ``inputs/`` alone for ``predict``. The test targets are
never mounted. Another held-out split of the dataset (Sen1Floods11's ``bolivia``) can take the
test split's place (``eval_split``); no held-out split is ever trained on, and each is a run
and a board of its own. With ``eval_split="val"`` (``sarbench validate``) the val split plays the
test split's part and is left out of training.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from harness import __version__, scoring
from harness.bands import DatasetFacts, band_roles
from harness.conditions.probe import Conditions, GpuSampler
from harness.datasets import ops
from harness.datasets.manifest import Manifest
from harness.entries import Entry, Phase
from harness.errors import SarbenchError
from harness.record import (
    EntryInfo,
    PhaseRecord,
    RecordKey,
    RecordScore,
    RunFolder,
    RunRecord,
    TaskInfo,
    Timings,
    run_key,
    write_json_atomic,
)
from harness.runner.records import lock_path, run_lock
from harness.runner.runfiles import keep_artifacts, keep_predictions, weights_listing
from harness.runtime.backends import Backend, BuildCall, PhaseCall
from harness.runtime.limits import Limits
from harness.runtime.livelog import OnLine
from harness.runtime.phase import Mounts, PhaseResult
from harness.runtime.scratch import Scratch, ScratchError, remove_tree, require_kernel_limits
from harness.runtime.stage import staged
from harness.runtime.watchdog import LABEL_LOCK
from harness.scoring.score import score_predictions
from harness.scoring.validate import PredictionError
from harness.settings import Settings
from harness.tasks import Task, get_task

Progress = Callable[[str], None]
DETAIL_LINES = 20


class WeightsRequiredError(SarbenchError):
    """The entry needs pretrained weights under this profile and none were found."""


class EntryMismatchError(SarbenchError):
    """The entry (or its variant) does not apply to the dataset it was asked to run on: not
    its task, or band roles it cannot use."""


def _quiet(_: str) -> None:
    """The default progress callback: says nothing."""


PhaseLines = Callable[[str, str, float], "OnLine | None"]


def _no_phase_lines(_run_id: str, _phase: str, _limit_s: float) -> OnLine | None:
    """The default: a phase's lines go to its log file only."""
    return None


@dataclass
class RunContext:
    """What every run of one ``sarbench run`` shares.

    ``backend`` runs the phases (:mod:`harness.runtime.backends`); ``weights_dir`` is
    mounted at ``/weights`` for entries that train (``<home>/weights/<entry>`` when absent
    and that folder exists). Dataset verification and image builds happen once per context.
    """

    settings: Settings
    conditions: Conditions
    backend: Backend
    weights_dir: Path | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    progress: Progress = _quiet
    phase_lines: PhaseLines = _no_phase_lines
    """``(run ID, phase, limit in s)`` -> what gets the phase's log lines as they come (the
    terminal's live progress, :mod:`harness.runner.progress`), or None."""
    verified: dict[str, Manifest] = field(default_factory=dict)
    images: dict[str, str | None] = field(default_factory=dict)
    weight_listings: dict[Path, dict[str, Any]] = field(default_factory=dict)

    def manifest(self, dataset: str) -> Manifest:
        """The manifest of the dataset's files on disk (the demo or the private test),
        verified against the committed manifest once."""
        if dataset not in self.verified:
            self.progress(f"verifying {dataset}")
            self.verified[dataset] = ops.verify(self.settings, dataset, progress=False)
        return self.verified[dataset]

    def weights(self, entry: Entry) -> tuple[Path | None, dict[str, Any] | None]:
        """The folder mounted at ``/weights`` for ``entry`` (None: none) and its listing
        with each file's SHA-256 and the folder's digest (hashed once per context)."""
        folder = _weights_dir(self, entry) if entry.trains else None
        if folder is None:
            return None, None
        if folder not in self.weight_listings:
            self.progress(f"hashing the weights in {folder}")
            self.weight_listings[folder] = weights_listing(folder)
        return folder, self.weight_listings[folder]

    def require_weights(self, entry: Entry) -> None:
        """Refuse (:class:`WeightsRequiredError`) to run ``entry`` without the pretrained
        weights its file declares required under this profile (``[weights] required_in``)."""
        spec, profile = entry.weights, self.conditions.profile.name
        if spec is None or profile not in spec.required_in:
            return
        folder = _weights_dir(self, entry)
        why = spec.missing(folder)
        if why is None:
            return
        where = folder or self.settings.home / "weights" / entry.name
        raise WeightsRequiredError(
            f"{entry.name} needs its pretrained weights under profile {profile!r} "
            f"({spec.name}): {why}.\n"
            f"  Put {spec.file} in {where}, or pass --weights DIR (a folder holding it).\n"
            f"  Without weights it trains from random initialisation, which is not the "
            f"{entry.name} baseline: use another profile (e.g. quick), where such runs are "
            f"shown as 'random init'."
        )

    def image_id(self, entry: Entry) -> str | None:
        """The entry's image ID (built offline once per context); None without images."""
        if entry.name not in self.images:
            build = BuildCall(self.build_args, self.progress, self.settings)
            self.images[entry.name] = self.backend.image_id(entry, build)
        return self.images[entry.name]


@dataclass(frozen=True)
class Outcome:
    """What :func:`run_one` did: ``ran`` or ``skipped`` (a record existed), and the record."""

    action: Literal["ran", "skipped"]
    run_dir: Path
    record: RunRecord


def check_supported(entry: Entry, facts: DatasetFacts, variant: str | None = None) -> None:
    """Refuse (:class:`EntryMismatchError`) an entry, or its ``variant``, that does not
    apply to the dataset of ``facts``: by its task and band roles
    (:meth:`Entry.why_not`), as the plan decides."""
    reason = entry.why_not(facts, variant)
    if reason is not None:
        what = entry.name if variant is None else f"{entry.name}/{variant}"
        raise EntryMismatchError(f"{what} does not run on {facts.name}: {reason}")


@dataclass(frozen=True)
class Keyed:
    """A run about to be made: its key and the facts the key was made from."""

    key: RecordKey
    manifest: Manifest
    task: Task
    options: dict[str, Any]
    weights: dict[str, Any] | None


def key_of(
    ctx: RunContext,
    entry: Entry,
    variant: str,
    seed: int,
    dataset: str,
    *,
    eval_split: str = "test",
) -> Keyed:
    """The key of a run (the dataset verified, the image built, the weights hashed: each
    once per context) and what it was made from; refuses a run that cannot be made here
    (a held-out split the dataset lacks, an entry that does not fit, missing weights)."""
    manifest = ctx.manifest(dataset)
    task = get_task(manifest.task)
    if eval_split != "val" and eval_split not in manifest.held_out:
        raise SarbenchError(
            f"dataset {dataset!r}: {eval_split!r} is not one of its held-out splits "
            f"({', '.join(manifest.held_out)}); runs are scored on those only"
        )
    check_supported(entry, DatasetFacts.of(manifest, dataset), variant)
    ctx.require_weights(entry)
    options = entry.resolve_options(variant, ctx.conditions.profile.name)
    image_id = ctx.image_id(entry)
    _folder, weights = ctx.weights(entry)
    key = run_key(
        entry=entry.name,
        variant=variant,
        seed=seed,
        dataset=dataset,
        dataset_digest=manifest.digest,
        image_digest=image_id,
        conditions=ctx.conditions.fingerprint,
        backend=ctx.backend.name if eval_split != "val" else f"{ctx.backend.name}-validate",
        options=options,
        split=eval_split,
        checkpoint=weights["digest"] if weights else "none",
    )
    return Keyed(key, manifest, task, options, weights)


def run_one(
    ctx: RunContext,
    entry: Entry,
    variant: str,
    seed: int,
    dataset: str,
    *,
    eval_split: str = "test",
    runs_dir: Path | None = None,
) -> Outcome:
    """Run one (entry, variant, seed) on ``dataset``; see the module docstring."""
    started = time.monotonic()
    started_at = _now()
    keyed = key_of(ctx, entry, variant, seed, dataset, eval_split=eval_split)
    key = keyed.key
    runs_dir = runs_dir or ctx.settings.runs_dir
    folder = RunFolder(runs_dir / key.run_id)
    done = folder.read()
    if done is not None:
        return Outcome("skipped", folder.path, done)
    with run_lock(runs_dir, key.run_id):
        done = folder.read()  # finished by another process while we waited
        if done is not None:
            return Outcome("skipped", folder.path, done)
        _fresh_run_dir(ctx, folder.path, key.run_id)
        job = _Job(ctx, entry, key, keyed.task, keyed.manifest, eval_split, keyed.options)
        ended = _Ended()
        spaces: list[Scratch] = []
        try:
            _execute(job, folder, ended, spaces)
        finally:
            _cleanup(folder, spaces)
        ended.timings["total_s"] = round(time.monotonic() - started, 3)
        pretrained = pretrained_of(entry, keyed.weights, folder.artifacts / CHECKPOINT_REPORT)
        record = _record(job, ended, keyed.weights, pretrained, started_at, folder.listing())
        folder.save(record)
    return Outcome("ran", folder.path, record)


@dataclass(frozen=True)
class _Job:
    """One run being made: what it runs, under which key, on what."""

    ctx: RunContext
    entry: Entry
    key: RecordKey
    task: Task
    manifest: Manifest
    eval_split: str
    options: dict[str, Any]


@dataclass
class _Ended:
    """How the run went, gathered while it runs; the record is made from it at the end.
    Until a score is kept the run counts as failed with reason ``error``."""

    status: Literal["ok", "failed"] = "failed"
    reason: str | None = "error"
    detail: str = ""
    problems: tuple[str, ...] = ()
    phases: dict[str, PhaseRecord] = field(default_factory=dict)
    timings: dict[str, float | None] = field(default_factory=dict)
    score: RecordScore | None = None
    output_limit_by: str | None = None

    def fail(self, reason: str, detail: str, log_tail: str) -> None:
        self.status, self.reason = "failed", reason
        tail = "\n".join(log_tail.splitlines()[-DETAIL_LINES:])
        self.detail = detail + (f"\n{tail}" if tail else "")


def _execute(job: _Job, run: RunFolder, ended: _Ended, spaces: list[Scratch]) -> None:
    """The phases, the artifacts and the score, told to ``ended``. Every scratch
    filesystem made is appended to ``spaces`` (the caller removes them)."""
    ctx, entry, key, task, manifest = job.ctx, job.entry, job.key, job.task, job.manifest
    eval_split = job.eval_split
    data = ctx.settings.dataset_dir(key.dataset)
    held_out = {*manifest.held_out, eval_split}  # never trained on: test, bolivia...
    train_splits = [s for s in manifest.splits if s not in held_out]
    work = run.work
    for folder in (work, run.logs, run.configs):
        folder.mkdir(parents=True)
    configs = {phase: _write_config(run, phase, job, train_splits) for phase in entry.phases}
    by_kernel = ctx.backend.kernel_limits()
    if ctx.backend.isolated and not by_kernel and require_kernel_limits():
        raise ScratchError(
            "SARBENCH_REQUIRE_KERNEL_LIMITS=1 but this process cannot make loop-mounted "
            "scratch filesystems (it needs root, loop devices and mkfs.ext4)"
        )
    ended.output_limit_by = "kernel" if by_kernel else "polling"
    # each phase's writable folder and its run.json live on a space of their own
    staged: dict[str, tuple[Path, Path]] = {}
    for phase in ("train", "predict"):
        if phase not in entry.phases:
            continue
        limits = ctx.conditions.profile.limits(phase)
        folder, config = _writable_space(work / phase, limits, by_kernel, spaces)
        shutil.copyfile(configs[phase], config / "run.json")
        staged[phase] = (folder, config / "run.json")
    if entry.trains:
        model = staged["train"][0]
    else:
        model = work / "model"
        model.mkdir()
    output = staged["predict"][0]
    phases: list[tuple[Phase, Mounts]] = []
    if entry.trains:
        train_mounts: dict[Any, tuple[str, Any]] = {
            _data_mount(ctx, by_kernel, data / s, manifest): (f"/data/{s}", "ro")
            for s in train_splits
        }
        weights, _listing_unused = ctx.weights(entry)
        if weights is not None:
            train_mounts[weights] = ("/weights", "ro")
        train_mounts[model] = ("/model", "rw")
        train_mounts[staged["train"][1]] = ("/config/run.json", "ro")
        phases.append(("train", train_mounts))
    phases.append(
        (
            "predict",
            {
                _data_mount(ctx, by_kernel, data / eval_split / "inputs", manifest): (
                    "/data/test/inputs",
                    "ro",
                ),
                model: ("/model", "ro"),
                output: ("/output", "rw"),
                staged["predict"][1]: ("/config/run.json", "ro"),
            },
        )
    )
    for phase, mounts in phases:
        ctx.progress(f"{key.run_id}: {phase}")
        result, gpu = _run_phase(ctx, entry, key, phase, mounts, run)
        ended.phases[phase] = PhaseRecord(**result.to_dict(), gpu=gpu)
        ended.timings[f"{phase}_s"] = round(result.wall_s, 3)
        for name in ("gpu_seconds", "energy_j"):
            if gpu and gpu.get(name) is not None:
                ended.timings[name] = (ended.timings.get(name) or 0.0) + gpu[name]
        if phase == "train":
            keep_artifacts(model / "artifacts", run.artifacts)
        if not result.ok:
            ended.fail(
                result.status, f"{phase}: {result.reason}", result.stderr_tail or result.log_tail
            )
            return
    ctx.progress(f"{key.run_id}: scoring")
    split = ops.open_split(ctx.settings, key.dataset, eval_split)
    try:
        groups = ops.groups_of(ctx.settings, key.dataset, eval_split)
        score = score_predictions(
            output, split, task, dataset=key.dataset, groups=groups, seed=key.seed
        )
    except PredictionError as exc:
        ended.fail("invalid-output", exc.summary(), "")
        ended.problems = tuple(exc.lines())  # the first 50, escaped, and a count of the rest
        return
    ended.score = RecordScore.from_result(score.to_dict())
    keep_predictions(output, run.predictions, split.ids)
    ended.status, ended.reason = "ok", None


def _record(
    job: _Job,
    ended: _Ended,
    weights: dict[str, Any] | None,
    pretrained: bool | None,
    started_at: str,
    artifacts: tuple[str, ...],
) -> RunRecord:
    """The run's record: what it was (the job) and how it went (``ended``)."""
    ctx, entry, task = job.ctx, job.entry, job.task
    conditions = ctx.conditions
    return RunRecord(
        run_id=job.key.run_id,
        key=job.key,
        task=TaskInfo(task.name, task.primary_metric, task.higher_is_better),
        entry=EntryInfo(entry.name, entry.team, entry.contact, entry.baseline, entry.description),
        status=ended.status,
        reason=ended.reason,
        detail=ended.detail,
        problems=ended.problems,
        test_kind=job.manifest.test_kind,
        options=job.options,
        ablation=entry.ablation.to_dict() if entry.ablation else None,
        profile=conditions.profile.to_dict(),
        machine=conditions.machine.to_dict(),
        gpu_uuid=conditions.gpu_uuid,
        mismatches=tuple(conditions.mismatches),
        mismatch_allowed=conditions.mismatch_allowed,
        isolated=ctx.backend.isolated,
        output_limit_by=ended.output_limit_by,
        image_ref=entry.image.name or None,
        weights=weights,
        pretrained=pretrained,
        phases=ended.phases,
        timings=Timings(**ended.timings),
        score=ended.score,
        artifacts=artifacts,
        host=socket.gethostname(),
        started_at=started_at,
        finished_at=_now(),
        harness_version=__version__,
        scorer=scoring.SCORER_VERSION,
    )


def _data_mount(ctx: RunContext, by_kernel: bool, folder: Path, manifest: Manifest) -> Path:
    """What is mounted for a data folder: with kernel limits (root), a read-only copy on a
    filesystem of its own, made once per process (:mod:`harness.runtime.stage`), so that the
    container cannot learn the host's data path; else the folder itself."""
    if not by_kernel:
        return folder
    return staged(ctx.settings.home, folder, manifest.digest)


def _writable_space(
    folder: Path, limits: Limits, by_kernel: bool, spaces: list[Scratch]
) -> tuple[Path, Path]:
    """A phase's writable folder and its config folder: on a scratch filesystem of the
    phase's output cap (``by_kernel``), else plain folders watched by polling."""
    if by_kernel:
        space = Scratch.create(
            folder.with_suffix(".img"), folder, limits.output_cap_bytes, limits.output_inodes
        )
        spaces.append(space)
        return space.data, space.config
    (folder / "data").mkdir(parents=True)
    (folder / "config").mkdir()
    return folder / "data", folder / "config"


def _run_phase(
    ctx: RunContext, entry: Entry, key: RecordKey, phase: Phase, mounts: Mounts, run: RunFolder
) -> tuple[PhaseResult, dict[str, Any] | None]:
    limits = ctx.conditions.profile.limits(phase, ctx.conditions.gpu_uuid)
    labels = {
        "sarbench.run": key.run_id,
        "sarbench.phase": phase,
        "sarbench.entry": entry.name,
        LABEL_LOCK: str(lock_path(run.path.parent, key.run_id)),
    }
    sampler = GpuSampler(ctx.conditions.gpu_uuid) if ctx.conditions.gpu_uuid else None
    if sampler is not None:
        sampler.start()
    try:
        on_line = ctx.phase_lines(key.run_id, phase, limits.timeout_s)
        call = PhaseCall(
            entry, key.image_digest, phase, mounts, limits, labels, run.log(phase), on_line
        )
        result = ctx.backend.run_phase(call)
    finally:
        gpu = sampler.stop() if sampler is not None else None
    return result, gpu


def _write_config(run: RunFolder, phase: Phase, job: _Job, train_splits: list[str]) -> Path:
    """``config/<phase>.json``: what the container reads at ``/config/run.json``."""
    key, task, manifest = job.key, job.task, job.manifest
    profile = job.ctx.conditions.profile
    doc = {
        "contract": 1,
        "phase": phase,
        "task": {
            "name": task.name,
            "input_bands": task.input_bands,
            "prediction": {"dtype": task.prediction_dtype, "range": list(task.prediction_range)},
        },
        "dataset": {
            "name": key.dataset,
            "digest": manifest.digest,
            "bands": list(manifest.bands),
            "band_roles": _list_or_none(band_roles(manifest)),
            "splits": train_splits,
        },
        "entry": key.entry,
        "variant": key.variant,
        "options": job.options,
        "seed": key.seed,
        "profile": profile.name,
        "time_budget_s": profile.limits(phase).timeout_s,
        "resources": {
            "cpus": profile.cpus,
            "memory_bytes": profile.memory_bytes,
            "gpu": profile.gpu_model is not None,
        },
    }
    path = run.config(phase)
    write_json_atomic(path, doc)
    return path


CHECKPOINT_REPORT = "checkpoint_report.json"
"""An artifact in which an entry may say whether it loaded the weights mounted at /weights
(``{"pretrained": false, ...}``): a run that says false is shown as "random init"."""


def pretrained_of(entry: Entry, weights: dict[str, Any] | None, report: Path) -> bool | None:
    """Whether the run started from pretrained weights (:attr:`RunRecord.pretrained`).
    What the harness knows wins: no weights mounted is never pretrained, whatever the
    container says; a container may only say that it did not use the weights mounted."""
    if weights is None:
        return False if entry.weights is not None else None
    names = {f.get("name") for f in weights.get("files", [])}
    if entry.weights is not None and entry.weights.file not in names:
        return False  # a folder without the declared file
    return not _report_denies_weights(report)


def _report_denies_weights(report: Path) -> bool:
    """Whether the entry's checkpoint report (at most 1 MiB of JSON) says
    ``"pretrained": false``; a missing, oversized or unreadable report denies nothing."""
    try:
        if not report.is_file() or report.stat().st_size > 1 << 20:
            return False
        doc = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("pretrained") is False


def _list_or_none(roles: tuple[str, ...] | None) -> list[str] | None:
    return None if roles is None else list(roles)


def _weights_dir(ctx: RunContext, entry: Entry) -> Path | None:
    if ctx.weights_dir is not None:
        return ctx.weights_dir
    default = ctx.settings.home / "weights" / entry.name
    return default if default.is_dir() else None


def _fresh_run_dir(ctx: RunContext, run_dir: Path, run_id: str) -> None:
    """An unfinished run's leftovers (a killed harness) are removed before it starts again:
    any container still labelled with its run ID, its scratch filesystems and its folder,
    however deep or odd the tree a container left there (the folder is made before any
    container starts, so no folder means no container)."""
    if run_dir.exists():
        ctx.progress(f"{run_id}: removing an unfinished earlier attempt")
        ctx.backend.remove_leftovers(run_id)
        remove_tree(run_dir)
    run_dir.mkdir(parents=True)


def _cleanup(run: RunFolder, spaces: list[Scratch]) -> None:
    """The scratch filesystems and the working folder go (each phase's container was
    removed by ``run_phase``)."""
    for space in spaces:
        space.close()
    remove_tree(run.work)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
