"""Run folders with realistic records (laid out as the runner lays them), made by code for publish tests.

Each record's score is real: tiny test chips (inputs, targets, valid masks) are written
under the data root, predictions are made from the targets with seeded noise, and
:func:`harness.scoring.score.score_predictions` scores them, so the per-chip statistics
are exactly what the harness produces.

:func:`standard_runs` makes the scenario the publish and leaderboard tests share:
flood-synth (threshold, unet with two seeds, prithvi, a competitor, a failed run and an
unisolated local run) and ndvi-synth (pix2pix with its six ablation variants, a second
seed of ``full`` and a failed seed of ``no-tta``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import record as rec
from harness.datasets.loader import SplitDir
from harness.geo import Grid, write_raster
from harness.scoring.score import score_predictions
from harness.settings import Settings
from harness.tasks import get_task

SIZE = 16
N_CHIPS = 12
GROUP_SIZE = 2
"""Chips ``chip_00``/``chip_01`` share an independence group (``g0``), and so on: 6 groups."""
CONDITIONS = "sha256:" + hashlib.sha256(b"quick-conditions").hexdigest()
PROFILE = {
    "name": "quick",
    "cpus": 2.0,
    "memory_bytes": 8 * 2**30,
    "gpu": None,
    "train_timeout_s": 1800,
    "predict_timeout_s": 600,
    "seeds": [0, 1],
}
SCORER = "1"
"""The scorer version of every record made here (:func:`rescore_run` moves one on)."""
MACHINE = {"cpu_model": "Test CPU @ 2.0GHz", "cpus": 2, "memory_bytes": 24 * 2**30, "gpus": []}
ABLATION_NOISE = {
    "full": 0.08,
    "no-pretrain": 0.16,
    "no-finetune": 0.09,
    "no-sar-indexes": 0.1,
    "no-train-aug": 0.14,
    "no-tta": 0.085,
}
COMPONENTS = ("pretrain", "finetune", "sar_indexes", "train_aug", "tta")
ABLATION = {
    "reference": "full",
    "components": list(COMPONENTS),
    "labels": {c: c.replace("_", " ").capitalize() for c in COMPONENTS},
}
"""What pix2pix's entry file declares (``[ablation]``), as the runner records it."""


def digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def make_test_split(settings: Settings, dataset: str, task: str, seed: int = 7) -> SplitDir:
    """``<data root>/<dataset>/test`` with inputs, targets and valid masks of tiny chips."""
    rng = np.random.default_rng(seed)
    root = settings.dataset_dir(dataset) / "test"
    for i in range(N_CHIPS):
        grid = Grid.from_origin("EPSG:32630", 600000.0 + i * SIZE * 10, 4300000.0, 10.0, SIZE, SIZE)
        x = rng.normal(-12, 3, (2, SIZE, SIZE)).astype(np.float32)
        valid = np.ones((SIZE, SIZE), np.uint8)
        valid[:2, :3] = 0
        if task == "flood":
            y = (x[1] - x[0] < -1.5).astype(np.uint8)
        else:
            y = np.clip(rng.normal(0.5, 0.25, (SIZE, SIZE)), -1, 1).astype(np.float32)
        sid = f"chip_{i:02d}"
        write_raster(root / "inputs" / f"{sid}.tif", x, grid, band_names=("VV_pre", "VV_post"))
        write_raster(root / "targets" / f"{sid}.tif", y, grid)
        write_raster(root / "valid" / f"{sid}.tif", valid, grid)
    return SplitDir(root)


def chip_groups(split: SplitDir) -> dict[str, str]:
    """Each chip's independence group: chips in pairs (``chip_00``, ``chip_01`` -> ``g0``)."""
    return {sid: f"g{int(sid.removeprefix('chip_')) // GROUP_SIZE}" for sid in split.ids}


def write_predictions(split: SplitDir, task: str, out: Path, noise: float, seed: int) -> None:
    """Predictions from the targets: flood flips a ``noise`` fraction of pixels; ndvi adds
    Gaussian noise of that standard deviation."""
    rng = np.random.default_rng(seed)
    for sample in split:
        assert sample.target is not None
        if task == "flood":
            flip = rng.random(sample.target.shape) < noise
            pred = np.where(flip, 1 - sample.target, sample.target).astype(np.uint8)
        else:
            noisy = sample.target + rng.normal(0.0, noise, sample.target.shape)
            pred = np.clip(noisy, -1, 1).astype(np.float32)
        write_raster(out / f"{sample.id}.tif", pred, sample.grid)


@dataclass
class RunSpec:
    """One run to make; ``noise`` sets its quality (smaller is better)."""

    entry: str
    dataset: str
    task: str
    variant: str = "default"
    seed: int = 0
    noise: float = 0.1
    options: dict[str, Any] = field(default_factory=dict)
    baseline: bool = True
    team: str = "SARBench maintainers"
    status: str = "ok"
    reason: str | None = None
    backend: str = "docker"
    gpu_seconds: float | None = None
    phases: tuple[str, ...] = ("train", "predict")
    image: str | None = None
    """What the image digest is made from (default ``image-<entry>``); a new image makes a
    new run ID, as with the runner."""
    profile: str = "quick"
    """The conditions profile; another one has other conditions (and a new run ID)."""
    dataset_version: str = ""
    """Changes the dataset's digest (a re-frozen dataset of the same name)."""
    checkpoint: str = "none"
    """The digest of pretrained weights the run trained from (``none``: none)."""

    @property
    def pretrained(self) -> bool | None:
        """As the runner records it: prithvi declares weights, so without a checkpoint it
        is a random-init run; other entries declare none."""
        if self.checkpoint != "none":
            return True
        return False if self.entry == "prithvi" else None

    @property
    def conditions(self) -> str:
        return CONDITIONS if self.profile == "quick" else digest(f"{self.profile}-conditions")

    @property
    def dataset_digest(self) -> str:
        return digest(self.dataset + self.dataset_version)

    @property
    def isolated(self) -> bool:
        return self.backend != "local"  # the local backend runs unisolated, with no image

    @property
    def image_digest(self) -> str:
        return digest(self.image or f"image-{self.entry}")

    @property
    def resolved_options(self) -> dict[str, Any]:
        return {"model": self.entry, "epochs": 2, **self.options}

    @property
    def key(self) -> rec.RecordKey:
        """The run's key, as the runner makes it (so its run ID is a real one)."""
        return rec.run_key(
            entry=self.entry,
            variant=self.variant,
            seed=self.seed,
            dataset=self.dataset,
            dataset_digest=self.dataset_digest,
            image_digest=self.image_digest if self.isolated else None,
            conditions=self.conditions,
            backend=self.backend,
            options=self.resolved_options,
            checkpoint=self.checkpoint,
        )

    @property
    def run_id(self) -> str:
        return self.key.run_id


def _phase(name: str, wall: float, ok: bool, isolated: bool) -> rec.PhaseRecord:
    return rec.PhaseRecord(
        status="ok" if ok else "failed",
        exit_code=0 if ok else 137,
        wall_s=wall,
        peak_memory_bytes=int(wall * 10_000_000),
        log_tail=f"{name} done" if ok else "killed after the time limit",
        image_id=digest("image-id"),
        isolated=isolated,
        reason="" if ok else "timeout",
        output_bytes=4096,
    )


def key_of(**changes: Any) -> rec.RecordKey:
    """A run key with plausible facts (a docker run of unet on flood-synth); ``changes``
    replaces any of them, ``options`` and ``checkpoint`` included."""
    facts: dict[str, Any] = {
        "entry": "unet",
        "variant": "default",
        "seed": 0,
        "dataset": "flood-synth",
        "dataset_digest": "sha256:d",
        "image_digest": "sha256:i",
        "conditions": "sha256:c",
        "backend": "docker",
        "options": {},
    }
    return rec.run_key(**{**facts, **changes})


def make_run(settings: Settings, spec: RunSpec, split: SplitDir) -> Path:
    """Write one run folder under ``<home>/runs`` (through the record module's one writer)
    and return it."""
    task = get_task(spec.task)
    run = rec.RunFolder(settings.home / "runs" / spec.run_id)
    ok = spec.status == "ok"
    score = None
    if ok:
        write_predictions(split, spec.task, run.predictions, spec.noise, spec.seed + 11)
        result = score_predictions(
            run.predictions,
            split,
            task,
            dataset=spec.dataset,
            groups=chip_groups(split),
            n_resamples=300,
        )
        score = rec.RecordScore.from_result(result.to_dict())
    run.logs.mkdir(parents=True, exist_ok=True)
    run.artifacts.mkdir(exist_ok=True)
    phases = {}
    walls = {"train": 10.0 + 5 * spec.noise, "predict": 2.0 + spec.noise}
    for phase in spec.phases:
        failed_here = not ok and phase == "train"
        phases[phase] = _phase(phase, walls[phase], not failed_here, spec.isolated)
        run.log(phase).write_text(f"[00:00:01] {phase} <started>\n")
    options = spec.resolved_options
    if "train" in spec.phases:
        lines = ["epoch,train_loss,val_loss,lr,seconds"] + [  # as the baselines write it
            f"{e},{1.0 / (e + 1):.4f},{1.2 / (e + 1):.4f},0.001,{12.5 * (e + 1)}" for e in range(5)
        ]
        (run.artifacts / "loss.csv").write_text("\n".join(lines) + "\n")
        (run.artifacts / "options.json").write_text(json.dumps({"options": options}))
    # what the runner writes: config/<phase>.json, each mounted at /config/run.json
    run.configs.mkdir(exist_ok=True)
    for phase in spec.phases:
        config = {"contract": 1, "phase": phase, "options": options, "seed": spec.seed}
        run.config(phase).write_text(json.dumps(config))
    train_s = walls["train"] if "train" in spec.phases else None
    record = rec.RunRecord(
        run_id=spec.run_id,
        key=spec.key,
        task=rec.TaskInfo(task.name, task.primary_metric, task.higher_is_better),
        entry=rec.EntryInfo(
            spec.entry,
            spec.team,
            "https://example.invalid/issues",
            spec.baseline,
            f"{spec.entry} <test entry>",
        ),
        status="ok" if ok else "failed",
        reason=spec.reason,
        detail="" if ok else "train: killed after 1800 s",
        options=options,
        ablation=ABLATION if spec.entry == "pix2pix" else None,
        profile={**PROFILE, "name": spec.profile},
        machine=MACHINE,
        isolated=spec.isolated,
        output_limit_by="kernel",
        image_ref="sarbench-baselines:latest",
        weights=None
        if spec.checkpoint == "none"
        else {"path": "/weights", "files": [], "digest": spec.checkpoint},
        pretrained=spec.pretrained,
        phases=phases,
        timings=rec.Timings(
            train_s=train_s if ok else 1800.0,
            predict_s=walls["predict"] if ok else None,
            total_s=(train_s or 0.0) + walls["predict"] + 1.0,
            gpu_seconds=spec.gpu_seconds,
            energy_j=None if spec.gpu_seconds is None else spec.gpu_seconds * 250,
        ),
        score=score,
        artifacts=run.listing(),
        host="test-host",
        started_at=f"2026-11-21T10:{spec.seed:02d}:00Z",
        finished_at=f"2026-11-21T11:{spec.seed:02d}:00Z",
        harness_version="0.1.0",
        scorer=SCORER,
    )
    run.save(record)
    return run.path


def edit_record(folder: Path, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Change a run folder's record.json in place (``change`` edits the parsed record)."""
    record = json.loads((folder / "record.json").read_text())
    change(record)
    (folder / "record.json").write_text(json.dumps(record, indent=1))
    return record


def pix2pix_options(variant: str) -> dict[str, Any]:
    """Resolved pix2pix options of an ablation variant (``no-x`` turns component x off)."""
    off = variant.removeprefix("no-").replace("-", "_")
    opts: dict[str, Any] = {c: c != off for c in COMPONENTS}
    opts["optim"] = {"lr": 0.0002, "betas": [0.5, 0.999]}
    return opts


def standard_specs() -> list[RunSpec]:
    """The shared scenario (see the module docstring)."""
    flood = {"dataset": "flood-synth", "task": "flood"}
    ndvi = {"dataset": "ndvi-synth", "task": "ndvi"}
    specs = [
        RunSpec("threshold", noise=0.3, phases=("predict",), **flood),
        RunSpec("unet", noise=0.1, **flood),
        RunSpec("unet", seed=1, noise=0.12, **flood),
        RunSpec("prithvi", noise=0.095, gpu_seconds=42.0, **flood),
        RunSpec("acme-seg", noise=0.05, baseline=False, team="Acme <Labs>", **flood),
        RunSpec("unet", seed=2, status="failed", reason="timeout", **flood),
        RunSpec("acme-seg", noise=0.01, baseline=False, team="Acme", backend="local", **flood),
    ]
    for variant, noise in ABLATION_NOISE.items():
        specs.append(
            RunSpec(
                "pix2pix", variant=variant, noise=noise, options=pix2pix_options(variant), **ndvi
            )
        )
    specs.append(
        RunSpec(
            "pix2pix", variant="full", seed=1, noise=0.082, options=pix2pix_options("full"), **ndvi
        )
    )
    specs.append(
        RunSpec(
            "pix2pix",
            variant="no-tta",
            seed=1,
            status="failed",
            reason="oom",
            options=pix2pix_options("no-tta"),
            **ndvi,
        )
    )
    return specs


def standard_runs(settings: Settings) -> list[Path]:
    """Make the test splits and every run folder of :func:`standard_specs`."""
    splits = {
        "flood-synth": make_test_split(settings, "flood-synth", "flood"),
        "ndvi-synth": make_test_split(settings, "ndvi-synth", "ndvi"),
    }
    return [make_run(settings, spec, splits[spec.dataset]) for spec in standard_specs()]


RESCORED_AT = "2026-11-30T02:00:00Z"
"""When :func:`rescore_run` says it rescored."""


def rescore_run(settings: Settings, folder: Path, split: SplitDir, scorer: str = "2") -> None:
    """Rescore a run folder as ``sarbench rescore`` does (a rescore file beside the
    untouched record), with a stand-in for a changed scorer: the same kept predictions
    scored again with the first row of every chip no longer counted."""
    changed = settings.home / f"scorer-{scorer}" / split.path.name
    if not changed.is_dir():
        for sample in split:
            grid = sample.grid
            valid = sample.valid_or_all().astype(np.uint8)
            valid[0, :] = 0
            assert sample.target is not None
            write_raster(changed / "inputs" / f"{sample.id}.tif", sample.inputs, grid)
            write_raster(changed / "targets" / f"{sample.id}.tif", sample.target, grid)
            write_raster(changed / "valid" / f"{sample.id}.tif", valid, grid)
    run = rec.RunFolder(folder)
    record = run.load()
    result = score_predictions(
        run.predictions,
        SplitDir(changed),
        get_task(record.task.name),
        dataset=record.dataset,
        groups=chip_groups(split),
        n_resamples=300,
    )
    run.rescore(rec.RecordScore.from_result(result.to_dict()), scorer, RESCORED_AT)
