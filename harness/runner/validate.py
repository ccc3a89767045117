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
from pathlib import Path

from harness.entries import Entry, ImageSpec, get_entry, load_entry
from harness.errors import SarbenchError, UnknownNameError, printable
from harness.numbers import interval
from harness.runner.run import Outcome, RunContext, run_one
from harness.scoring.validate import count_problems, is_more_problems
from harness.settings import Settings
from harness.tasks import TASKS

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
        team="(validate)",
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
        if record.reason == "invalid-output":
            problems += [
                p if is_more_problems(p) else f"invalid output: {p}" for p in record.problems
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
            mem = f", peak memory {memory / 2**20:.0f} MiB" if memory else ""
            lines.append(f"{phase}: {result.status} in {result.wall_s:.1f} s{mem}")
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
