"""How long preparing each embedded dataset takes: ``sarbench datasets prepare`` on a fresh
folder, against the same code making flood-synth's scenes in the calling process.

Run from the repository root::

    python -m bench.datasets                 # flood-synth and ndvi-synth
    python -m bench.datasets flood-synth

For each dataset it prepares (generates, writes, checks the committed digest) the demo test
in a fresh temporary folder, twice: with flood-synth's scenes made in worker processes (what
``prepare`` does) and, as the peer, all in this process (the code before issue 19). It
prints the wall and CPU seconds of each (CPU: this process and its workers) and the ratio.
Target (issue 19): each dataset under 30 s on a quiet 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from harness.datasets import ops
from harness.datasets.flood_synth import chips
from harness.settings import REPO_ROOT, Settings

TARGET_S = 30.0


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children so far."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def prepare_once(name: str, *, in_process: bool) -> tuple[float, float]:
    """(wall s, CPU s) of preparing ``name`` in a fresh folder; ``in_process``: the scenes
    are made in this process."""
    workers = chips.FloodSynth._workers
    if in_process:
        chips.FloodSynth._workers = lambda self, scenes: 1  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory(prefix="sarbench-bench-") as tmp:
            root = Path(tmp)
            settings = Settings(
                home=root, data_root=root / "data", manifests_dir=REPO_ROOT / "datasets"
            )
            cpu, started = _cpu_s(), time.perf_counter()
            outcome = ops.prepare(settings, name, test="demo", progress=False)
            wall = time.perf_counter() - started
            if outcome.status != "prepared":
                raise SystemExit(f"{name}: {outcome.status}")
            return wall, _cpu_s() - cpu
    finally:
        chips.FloodSynth._workers = workers  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=["flood-synth", "ndvi-synth"])
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
    for name in args.names:
        wall, cpu = prepare_once(name, in_process=False)
        peer_wall, peer_cpu = prepare_once(name, in_process=True)
        verdict = "met" if wall < TARGET_S else "NOT met"
        print(
            f"{name}: {wall:.1f} s wall ({cpu:.1f} s CPU); all in one process (peer): "
            f"{peer_wall:.1f} s ({peer_cpu:.1f} s CPU); ratio {peer_wall / wall:.2f}x; "
            f"target < {TARGET_S:.0f} s {verdict}"
        )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
