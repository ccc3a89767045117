"""The demo's wall time on this machine: ``sarbench demo`` on a fresh work folder.

Run from the repository root with a Docker engine up::

    python -m bench.demo                  # fresh folder in the system temp, removed after
    python -m bench.demo --keep DIR       # keep the work folder (site, MLflow) in DIR

Everything is done from nothing: both embedded datasets generated, every baseline image
built (Docker's layer cache and the downloaded wheels are kept between runs, as on a
machine where the demo ran once), every baseline and variant trained and scored under the
quick profile, MLflow filled and the site built. A second run of the demo in the same
folder is timed too: it must skip every run. Target: under 15 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 15 * 60


def _demo(home: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "harness.cli", "--home", str(home), "demo"], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="Work folder to keep (must not exist).")
    args = parser.parse_args()
    home = args.keep or Path(tempfile.mkdtemp(prefix="sarbench-demo-"))
    try:
        first = _demo(home)
        again = _demo(home)
    finally:
        if args.keep is None:
            shutil.rmtree(home, ignore_errors=True)
    print(f"machine: {os.cpu_count()} cores")
    print(f"sarbench demo from nothing: {first / 60:.1f} min (target < {TARGET_S / 60:.0f} min)")
    print(f"sarbench demo again (every run skipped): {again:.0f} s")


if __name__ == "__main__":
    main()
