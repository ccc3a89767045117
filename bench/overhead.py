"""The harness's cost per run against a bare ``docker run`` of the same image.

Run from the repository root (a Docker engine must answer; flood-synth is prepared under
``$SARBENCH_HOME`` when it is not)::

    python -m bench.overhead                 # 7 runs of each, interleaved
    python -m bench.overhead --repeat 3
    python -m bench.overhead --profile       # and where the harness's time goes

The entry is trivial and predict-only (``bench/trivial_entry``: all-zero masks for the 20
test chips of flood-synth), so the figure is the harness's own work: stage the mounts and
``run.json``, create and start the locked-down container, watch it, collect its log, remove
it, validate and score the predictions (10,000 bootstrap resamples), and write the record.
The peer is ``docker run --rm --network none`` of the same image with the same two mounts,
doing the same work, timed from the same process. Dataset verification (once per
``sarbench run`` invocation, not per run) and the image build are done before timing.

Prints the median seconds of both, the overhead (harness - bare) and the ratio
(harness / bare). Targets (issue 19): under 0.3 s of overhead. With ``--profile`` the
harness's runs are also profiled (cProfile, which slows them: the medians above are
timed without it, in separate runs) and the calls that took the most time in all are
printed: staging (scratch filesystems), the container's life, scoring, the record.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from harness.conditions.probe import conditions
from harness.conditions.profiles import get_profile
from harness.datasets import ops
from harness.entries import load_entry
from harness.runner.run import RunContext, run_one
from harness.runtime.backends import DockerBackend
from harness.runtime.builds import ensure_entry_image
from harness.runtime.docker_backend import connect
from harness.settings import REPO_ROOT, Settings

TRIVIAL = """
name = "trivial"
team = "bench"
contact = "bench"
tasks = ["flood"]
datasets = ["flood-synth"]
phases = ["predict"]
[image]
context = "trivial"
"""
"""The trivial entry (``bench/trivial_entry``: predict only), less how it is built or run."""
ENTRY = (
    TRIVIAL
    + """[image.build_args]
BASE_IMAGE = "{base}"
"""
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="Profile the harness's runs.")
    args = parser.parse_args()
    settings = Settings.load()
    if not ops.is_prepared(settings, "flood-synth"):
        print("preparing flood-synth ...", flush=True)
        ops.prepare(settings, "flood-synth", progress=False)
    client = connect()
    template = load_entry(REPO_ROOT / "submissions" / "template.toml")
    template_id = ensure_entry_image(client, template)
    # the trivial entry builds on the template's image: allowed here, by the maintainer
    base = f"{template.image.name}:{template_id.removeprefix('sha256:')[:12]}"
    os.environ["SARBENCH_BASE_IMAGES"] = base
    with tempfile.TemporaryDirectory(prefix="sarbench-overhead-") as tmp:
        root = Path(tmp)
        shutil.copytree(REPO_ROOT / "bench" / "trivial_entry", root / "trivial")
        (root / "trivial.toml").write_text(ENTRY.format(base=base))
        entry = load_entry(root / "trivial.toml")
        profile = get_profile(settings.profiles_dir, "quick")
        ctx = RunContext(settings, conditions(profile, allow_mismatch=True), DockerBackend(client))
        ctx.manifest("flood-synth")  # verified once, as `sarbench run` does
        image = ctx.image_id(entry)
        inputs = settings.dataset_dir("flood-synth") / "test" / "inputs"
        harness_s, bare_s = [], []
        run_one(ctx, entry, "default", 0, "flood-synth", runs_dir=root / "warm")  # warm caches
        for i in range(args.repeat):
            started = time.perf_counter()
            outcome = run_one(ctx, entry, "default", 0, "flood-synth", runs_dir=root / f"h{i}")
            harness_s.append(time.perf_counter() - started)
            assert outcome.record.ok, outcome.record.detail
            out = root / f"bare{i}"
            out.mkdir()
            os.chmod(out, 0o777)
            started = time.perf_counter()
            subprocess.run(
                [
                    "docker",
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "-v",
                    f"{inputs}:/data/test/inputs:ro",
                    "-v",
                    f"{out}:/output",
                    str(image),
                    "predict",
                ],
                check=True,
            )
            bare_s.append(time.perf_counter() - started)
            assert len(list(out.glob("*.tif"))) == 20
        if args.profile:
            profiler = cProfile.Profile()
            for i in range(args.repeat):
                profiler.runcall(
                    run_one, ctx, entry, "default", 0, "flood-synth", runs_dir=root / f"p{i}"
                )
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(40)
            print(f"where the harness's time goes ({args.repeat} runs, cumulative):")
            print(text.getvalue())
    client.close()
    h, b = statistics.median(harness_s), statistics.median(bare_s)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (a busy machine inflates both)")
    print(f"runs: {args.repeat} of each, interleaved; medians")
    print(f"harness run_one (stage, container, collect, validate, score, record): {h:.3f} s")
    print(f"bare `docker run --rm --network none` (peer):                         {b:.3f} s")
    print(f"overhead: {h - b:+.3f} s (target < 0.3 s); ratio harness/bare: {h / b:.2f}x")


if __name__ == "__main__":
    main()
