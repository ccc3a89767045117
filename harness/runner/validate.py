"""``sarbench validate``: a competitor's dress rehearsal on the val split.

The entry runs exactly as :func:`harness.runner.run.run_one` runs it, with the val split in
the test split's place (left out of training; its inputs at ``/data/test/inputs``) and the
records kept in a throwaway folder. Every problem found is listed: a malformed entry file,
an image that does not build, a phase that crashed, timed out or ran out of memory (with
the log's tail), and each broken prediction (the first 50, then how many more). Everything
an entry chose (file names, log lines) is printed with its control characters escaped.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.entries import Entry, ImageSpec, get_entry, load_entry
from harness.errors import SarbenchError, UnknownNameError, printable
from harness.numbers import duration, interval, size
from harness.runner.run import Outcome, RunContext, run_one
from harness.scoring.validate import count_problems, is_more_problems
from harness.settings import Settings
from harness.tasks import TASKS

ADHOC_TEAM = "(validate)"
"""The team of an entry made up for a folder or an image: it cannot be submitted."""
NEXT = "next:"
"""The prefix of the line that ends every ``sarbench validate`` report."""

_WARN_FRACTION = 0.8


def adhoc_entry(settings: Settings, target: str, task: str | None) -> Entry:
    """The entry that ``target`` names: an entry file, a registered name, a folder with a
    Dockerfile, or an image reference (the last two need ``task``, run on any dataset of
    it, by default its embedded dataset, and need no band roles)."""
    path = Path(target)
    if target.endswith(".toml") or path.is_file():
        return load_entry(path)
    if path.is_dir():
        if not (path / "Dockerfile").is_file():
            raise SarbenchError(f"{path}: a folder to validate must hold a Dockerfile")
        folder = path.resolve()
        name = re.sub(r"[^a-z0-9-]+", "-", folder.name.lower()).strip("-") or "entry"
        requirements = "requirements.txt" if (folder / "requirements.txt").is_file() else None
        image = ImageSpec(
            context=folder, repository=f"sarbench-validate/{name}", requirements=requirements
        )
        return _adhoc(name, image, task, folder)
    if (settings.submissions_dir / f"{target}.toml").is_file():
        return get_entry(settings.submissions_dir, target)
    if target.startswith(("/", ".", "~")):  # a path (image references never start so)
        raise SarbenchError(
            f"{target}: no such file or folder (an entry file, a folder with a Dockerfile, "
            "an entry's name or an image reference)"
        )
    if task is None:
        known = sorted(p.stem for p in settings.submissions_dir.glob("*.toml"))
        if difflib.get_close_matches(target, known, n=1):
            raise UnknownNameError("entry", target, known)
    return _adhoc(
        re.sub(r"[^a-z0-9-]+", "-", target.lower()).strip("-"),
        ImageSpec(ref=target),
        task,
        Path.cwd(),
    )


def _adhoc(name: str, image: ImageSpec, task: str | None, where: Path) -> Entry:
    if task is None:
        raise SarbenchError(
            f"{name}: give --task ({' or '.join(TASKS)}) to validate a folder or an image; an "
            "entry file says its tasks itself"
        )
    return Entry(
        name=name,
        team=ADHOC_TEAM,
        contact="(validate)",
        description="validated without an entry file",
        baseline=False,
        tasks=(task,),
        datasets=(),
        phases=("train", "predict"),
        image=image,
        local_command=(),
        local_cwd=where,
        options={},
        profile_options={},
        variants={"default": {}},
        default_variant="default",
        path=where / f"{name}.toml",
    )


def check_entry(
    ctx: RunContext, entry: Entry, variant: str, seed: int, dataset: str, *, runs_dir: Path
) -> tuple[list[str], Outcome | None]:
    """Run the entry on val; every problem found, and what ran (None if it never ran)."""
    unrunnable = ctx.backend.problems(entry)
    if unrunnable:
        return unrunnable, None
    try:
        outcome = run_one(ctx, entry, variant, seed, dataset, eval_split="val", runs_dir=runs_dir)
    except SarbenchError as exc:
        return [str(exc)], None
    record = outcome.record
    problems: list[str] = []
    if not record.ok:
        if record.reason == "invalid-output":  # grouped by kind, with the likely fix
            grouped = [line[4:] for line in record.detail.splitlines() if line.startswith("  - ")]
            problems += [
                p if is_more_problems(p) else f"invalid output: {p}"
                for p in grouped or record.problems
            ]
        else:
            problems.append(f"{record.reason}: {record.detail}")
    for phase, result in record.phases.items():
        budget = ctx.conditions.profile.limits(phase).timeout_s
        if result.ok and result.wall_s > _WARN_FRACTION * budget:
            problems.append(
                f"{phase} took {result.wall_s:.0f} s of its {budget:.0f} s budget on val; "
                "the test split may push it over"
            )
    return problems, outcome


def render_problems(entry: Entry, outcome: Outcome | None, problems: list[str]) -> str:
    """The report ``sarbench validate`` prints."""
    lines = []
    if outcome is not None:
        record = outcome.record
        for phase, result in record.phases.items():
            memory = result.peak_memory_bytes
            mem = f", peak memory {size(memory)}" if memory else ""
            lines.append(f"{phase}: {result.status} in {duration(result.wall_s)}{mem}")
        if record.score is not None:
            score = record.score
            lines.append(
                f"val {record.primary_metric} = "
                f"{interval(record.primary, score.low, score.high)} over {score.n_chips} chips"
            )
        lines.append(f"run folder (logs, predictions): {outcome.run_dir}")
    name = printable(entry.name)
    if problems:
        lines.append(f"FAIL: {name}: {count_problems(problems):,} problem(s):")
        for i, p in enumerate(problems, 1):  # container-chosen text: file names, log tails
            text = printable(p, keep_newlines=True)
            lines.append(f"  {text}" if is_more_problems(p) else f"  {i}. {text}")
    else:
        lines.append(f"PASS: {name} runs under the contract and its predictions score")
    return "\n".join(lines)


@dataclass
class DatasetCheck:
    """One dataset of a :class:`Validation`: what ran on it, or why it was not run."""

    dataset: str
    task: str
    variant: str
    problems: list[str] = field(default_factory=list)
    outcome: Outcome | None = None
    skipped: str | None = None

    @property
    def status(self) -> str:
        """``skipped``, ``pass`` or ``fail``."""
        if self.skipped is not None:
            return "skipped"
        return "fail" if self.problems else "pass"

    def to_json(self) -> dict[str, Any]:
        """The check as JSON (what a submission bundle keeps): no paths of this machine."""
        doc: dict[str, Any] = {
            "dataset": self.dataset,
            "task": self.task,
            "variant": self.variant,
            "status": self.status,
            "skipped": self.skipped,
            "problems": [printable(p, keep_newlines=True) for p in self.problems],
            "score": None,
            "phases": {},
        }
        if self.outcome is not None:
            record = self.outcome.record
            doc["run_id"] = record.run_id
            doc["image_digest"] = record.image_digest
            doc["phases"] = {
                name: {
                    "status": r.status,
                    "wall_s": r.wall_s,
                    "peak_memory_bytes": r.peak_memory_bytes,
                }
                for name, r in record.phases.items()
            }
            if record.score is not None:
                doc["score"] = {
                    "metric": record.primary_metric,
                    "value": record.primary,
                    "low": record.score.low,
                    "high": record.score.high,
                    "n_chips": record.score.n_chips,
                }
        return doc


@dataclass
class Validation:
    """``sarbench validate`` of an entry on every dataset it will be scored on."""

    entry: Entry
    checks: list[DatasetCheck]

    @property
    def ran(self) -> list[DatasetCheck]:
        return [c for c in self.checks if c.skipped is None]

    @property
    def passed(self) -> bool:
        """At least one dataset ran, and none of those that ran has a problem."""
        return bool(self.ran) and all(c.status == "pass" for c in self.ran)

    @property
    def problems(self) -> list[str]:
        """Every problem, prefixed with its dataset."""
        return [f"{c.dataset}: {p}" for c in self.ran for p in c.problems]

    def to_json(self) -> dict[str, Any]:
        return {
            "entry": self.entry.name,
            "team": self.entry.team,
            "passed": self.passed,
            "datasets": [c.to_json() for c in self.checks],
        }

    def render(self, target: str) -> str:
        """The report: each dataset's part, a line per dataset, and the next step."""
        parts = []
        for check in self.ran:
            title = f"== {check.dataset} ({check.task}, variant {printable(check.variant)}) =="
            parts.append(f"{title}\n{render_problems(self.entry, check.outcome, check.problems)}")
        summary = [f"{printable(self.entry.name)} on {len(self.checks)} dataset(s):"]
        for check in self.checks:
            why = f": {check.skipped}" if check.skipped else ""
            if check.status == "fail":
                why = f": {count_problems(check.problems):,} problem(s)"
            summary.append(f"  {check.dataset:<16} {check.status.upper()}{why}")
        parts.append("\n".join(summary))
        parts.append(f"{NEXT} {self.next_step(target)}")
        return "\n\n".join(parts)

    def next_step(self, target: str) -> str:
        """What to do now, as a command where there is one."""
        if not self.ran:
            return (
                "nothing could run: fix what the lines above name (e.g. `sarbench datasets "
                f"prepare {self.checks[0].dataset if self.checks else 'flood-synth'}`), then "
                f"`sarbench validate {target}` again"
            )
        if not self.passed:
            return f"fix the problems above, then run `sarbench validate {target}` again"
        if self.entry.team == ADHOC_TEAM:
            return (
                "it runs; to submit it, give it an entry file: `sarbench new NAME` writes one "
                "(docs/competing.md)"
            )
        return (
            f"`sarbench submit {target} --out {self.entry.name}.sarbench` writes the file to "
            "send to the maintainers (docs/competing.md)"
        )


def candidate_datasets(settings: Settings, entry: Entry, only: str | None) -> list[str]:
    """The datasets to validate on: ``only`` where given; else those the entry names
    (deprecated ``datasets``), else every dataset known here of one of its tasks."""
    if only is not None:
        return [only]
    if entry.datasets:
        return list(entry.datasets)
    from harness.datasets.registry import known_names

    return known_names(settings)


def validate_all(
    ctx: RunContext,
    entry: Entry,
    *,
    seed: int = 0,
    runs_dir: Path,
    variant: str | None = None,
    dataset: str | None = None,
) -> Validation:
    """Run ``entry`` (``variant``, by default its default) on the val split of every
    dataset of its tasks that is known here (or only ``dataset``); a dataset it does not
    apply to, or that is not prepared here, is listed as skipped with the reason."""
    from harness.datasets import ops
    from harness.runner.plan import dataset_facts

    variant = variant or entry.default_variant
    facts_of = dataset_facts(ctx.settings)
    checks: list[DatasetCheck] = []
    for name in candidate_datasets(ctx.settings, entry, dataset):
        try:
            facts = facts_of(name)
        except SarbenchError as exc:
            if dataset is not None or entry.datasets:
                checks.append(DatasetCheck(name, "?", variant, skipped=str(exc)))
            continue
        if facts.task not in entry.tasks:
            if dataset is not None:
                checks.append(DatasetCheck(name, facts.task, variant, skipped=entry.why_not(facts)))
            continue
        check = DatasetCheck(name, facts.task, variant)
        check.skipped = entry.why_not(facts, variant)
        if check.skipped is None and not ops.is_prepared(ctx.settings, name):
            check.skipped = f"not prepared here: `sarbench datasets prepare {name}` first"
        if check.skipped is None:
            check.problems, check.outcome = check_entry(
                ctx, entry, variant, seed, name, runs_dir=runs_dir / name
            )
        checks.append(check)
    for task in entry.tasks:
        if not any(c.task == task for c in checks) and dataset is None:
            checks.append(
                DatasetCheck("(none)", task, variant, skipped=f"no {task} dataset known here")
            )
    return Validation(entry, checks)
