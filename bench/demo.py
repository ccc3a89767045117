"""The demo's wall time on this machine: ``sarbench demo`` on a fresh work folder, step by
step and run by run.

Run from the repository root with a Docker engine up::

    python -m bench.demo                  # fresh folder in the system temp, removed after
    python -m bench.demo --keep DIR       # keep the work folder (site, MLflow) in DIR
    python -m bench.demo --fresh          # also remove every SARBench image first

Everything is done from nothing: both embedded datasets generated, every baseline image
built (without ``--fresh`` an image already built for the same sources is reused, as on a
machine where the demo ran once; with it, every SARBench image on the engine is removed
first: the baselines' and any other entry's, ``sarbench-torch``, ``sarbench-base`` and the
dangling layers of earlier builds, so the base is made again with debootstrap; the
downloaded wheels are kept), every baseline and variant
trained and scored under the quick profile, MLflow filled and the site built. It prints
the time of each step (images: from the start of step 2 to the first run's start), each
run's train, predict and total time, and how much the runs overlapped (the sum of their
times over the wall time of the runs). A second demo in the same folder is timed too: it
must skip every run. Target (issue 19): ``--fresh`` under 8 minutes on a quiet 2-core
machine, each dataset prepared in under 30 s (``make install`` is not timed here: time it
from a fresh clone with ``time make install``).

``--fresh`` removes images that other work on this engine may be using: run it on a
machine of your own.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

from harness.demo import DemoResult, run_demo
from harness.record import RunRecord, load_records
from harness.settings import Settings

TARGET_S = 8 * 60
DATASET_TARGET_S = 30


def _remove_images() -> list[str]:
    """Remove every SARBench image on this engine (repositories ``sarbench*``): the
    baselines' and every other entry's, which are built on the offline images, then the
    torch and base images themselves, and the dangling layers left behind (the classic
    builder's cache), as on a machine where nothing was built; returns what was removed.
    An image that cannot be removed stops the bench: the figures would not be fresh."""
    from harness.runtime.builds import TORCH_IMAGE
    from harness.runtime.images import BASE_IMAGE

    listed = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    refs = [ln.split()[0] for ln in listed if ln.startswith("sarbench")]
    # children before the images they are built from
    order = [r for r in refs if r not in (TORCH_IMAGE, BASE_IMAGE)]
    order += [r for r in (TORCH_IMAGE, BASE_IMAGE) if r in refs]
    for ref in order:
        gone = subprocess.run(["docker", "rmi", "-f", ref], capture_output=True, text=True)
        if gone.returncode != 0:
            raise SystemExit(f"could not remove {ref}: {gone.stderr.strip()}")
    pruned = subprocess.run(
        ["docker", "image", "prune", "-f"], capture_output=True, text=True, check=False
    )
    reclaimed = [ln for ln in pruned.stdout.splitlines() if ln.startswith("Total reclaimed")]
    return [
        f"{len(order)} image(s), {TORCH_IMAGE} and {BASE_IMAGE} among them"
        if {TORCH_IMAGE, BASE_IMAGE} <= set(order)
        else f"{len(order)} image(s)",
        "dangling layers: " + (reclaimed[0] if reclaimed else "none"),
    ]


def _demo(home: Path) -> tuple[DemoResult, float, float]:
    """The demo in ``home``: its result, its wall time and its start (epoch seconds)."""
    settings = Settings.load(home=home)
    began, started = time.time(), time.perf_counter()
    result = run_demo(settings, echo=print)
    return result, time.perf_counter() - started, began


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def _runs_table(records: list[RunRecord]) -> list[str]:
    """One line per run: entry/variant, train, predict and total seconds."""
    lines = [f"  {'run':<32} {'train s':>8} {'predict s':>10} {'total s':>8}"]
    for r in sorted(records, key=lambda r: r.started_at):
        t = r.timings
        lines.append(
            f"  {r.entry.name + '/' + r.variant:<32} {t.train_s or 0:>8.1f} "
            f"{t.predict_s or 0:>10.1f} {t.total_s or 0:>8.1f}"
        )
    return lines


def _report(result: DemoResult, wall: float, began: float, records: list[RunRecord]) -> None:
    steps = dict(result.steps)
    print(f"\nmachine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")
    print("step                          wall s")
    for name, took in result.steps:
        note = ""
        if name.endswith("datasets"):
            note = f"  (target < {DATASET_TARGET_S} s each)"
        print(f"  {name:<28} {took:>6.1f}{note}")
    if records:
        runs_began = began + next(t for n, t in result.steps if n.endswith("datasets"))
        first = min(_epoch(r.started_at) for r in records)
        last = max(_epoch(r.finished_at) for r in records)
        busy = sum(r.timings.total_s or 0 for r in records)
        print(f"    of which images and keys {first - runs_began:>6.1f} (before the first run)")
        print(f"    of which runs            {last - first:>6.1f}")
        print(
            f"  runs overlapped: {busy:.0f} s of run time in {last - first:.0f} s "
            f"({busy / max(last - first, 1e-9):.2f} at a time on average)"
        )
    print("\n".join(_runs_table(records)))
    total = sum(steps.values())
    print(f"\nsarbench demo from nothing: {wall:.0f} s = {wall / 60:.1f} min ", end="")
    print(f"(target < {TARGET_S / 60:.0f} min; steps sum {total:.0f} s; make install not timed)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="Work folder to keep (must not exist).")
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="Remove every SARBench image first (entries', torch, base): a build from nothing.",
    )
    args = parser.parse_args()
    home = args.keep or Path(tempfile.mkdtemp(prefix="sarbench-demo-"))
    try:
        if args.fresh:
            gone = _remove_images()
            print("removed images: " + (", ".join(gone) or "none"))
        result, wall, began = _demo(home)
        records = [r for r in load_records(Settings.load(home=home).runs_dir)]
        _again, again, _ = _demo(home)
        _report(result, wall, began, records)
        print(f"sarbench demo again (every run skipped): {again:.0f} s")
    finally:
        if args.keep is None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
