"""The Ray executor's cost per run against the local executor, on the same plan.

Run from the repository root with ``sarbench[cluster]`` installed (flood-synth is prepared
under ``$SARBENCH_HOME`` when it is not)::

    python -m bench.executor                 # 8 runs a plan, 3 plans of each, interleaved
    python -m bench.executor --runs 16 --repeat 5

The plan is ``--runs`` seeds of a trivial predict-only entry (``bench/trivial_entry``:
all-zero masks for the 20 test chips of flood-synth, scored with 10,000 bootstrap
resamples) through the local backend, under a one-CPU profile. The peer is the local
executor (one process, one run after the other: what ``sarbench run`` does by default).
The Ray executor runs the same plan on a Ray cluster this script starts on 127.0.0.1 (a
head without CPUs and one worker node with one CPU, so its runs also go one at a time):
each run is a task that probes the node, verifies the data (once per worker and plan),
runs, packs the run folder and sends it back, and the driver installs it into the home.
Both are timed from the same process, whole plans (the Ray plan includes connecting to the
cluster and starting its worker process), with fresh seeds and homes each time so that no
run is skipped.

Prints the median seconds per run of both, the overhead per run (Ray - local) and the
ratio (Ray / local). Target: under 1 s of overhead per run.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench.overhead import TRIVIAL
from harness.datasets import ops
from harness.entries import load_entry
from harness.runner.executor import Finished, Job, LocalExecutor, RunOptions
from harness.runner.plan import dataset_facts, make_plan
from harness.settings import REPO_ROOT, Settings

ENTRY = (
    TRIVIAL
    + """[local]
command = ["{python}", "predict.py"]
cwd = "trivial"
"""
)
PROFILE = """
name = "bench"
seeds = [0]
[resources]
cpus = 1.0
memory = "1GiB"
[limits.predict]
timeout_s = 300
"""
LOOPBACK = "127.0.0.1"


def _plan_wall(executor: object, job: Job) -> float:
    started = time.perf_counter()
    done = list(executor.run(job))  # type: ignore[attr-defined]
    wall = time.perf_counter() - started
    bad = [d for d in done if not (isinstance(d, Finished) and d.action == "ran" and d.record.ok)]
    assert len(done) == len(job.plan) and not bad, bad
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=8, help="runs per plan")
    parser.add_argument("--repeat", type=int, default=3, help="plans of each executor")
    args = parser.parse_args()
    # before Ray is imported: it then takes 127.0.0.1 as this machine's address everywhere
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    from ray.cluster_utils import Cluster

    from harness.cluster.ray_executor import RayExecutor

    base = Settings.load()
    if not ops.is_prepared(base, "flood-synth"):
        print("preparing flood-synth ...", flush=True)
        ops.prepare(base, "flood-synth", progress=False)
    with tempfile.TemporaryDirectory(prefix="sarbench-executor-") as tmp:
        root = Path(tmp)
        subs, profiles = root / "submissions", root / "profiles"
        shutil.copytree(REPO_ROOT / "bench" / "trivial_entry", subs / "trivial")
        (subs / "trivial.toml").write_text(ENTRY)
        profiles.mkdir()
        (profiles / "bench.toml").write_text(PROFILE)
        settings = replace(base, submissions_dir=subs, profiles_dir=profiles)
        entry = load_entry(subs / "trivial.toml")
        options = RunOptions("local", "bench", True, None, None, ())
        cluster = Cluster(
            initialize_head=True,
            head_node_args={"node_ip_address": LOOPBACK, "num_cpus": 0, "include_dashboard": False},
        )
        try:
            env = {"SARBENCH_HOME": str(root / "node"), "SARBENCH_DATA_ROOT": str(base.data_root)}
            cluster.add_node(node_ip_address=LOOPBACK, num_cpus=1, env_vars=env)
            cluster.wait_for_nodes()
            local_s, ray_s = [], []
            for i in range(args.repeat):
                seeds = range(i * args.runs, (i + 1) * args.runs)
                plan = make_plan(
                    [entry], "bench", (0,), facts=dataset_facts(settings), seeds=list(seeds)
                )
                for name, executor, walls in (
                    ("local", LocalExecutor(), local_s),
                    ("ray", RayExecutor(cluster.address), ray_s),
                ):
                    home = replace(settings, home=root / f"{name}-{i}")
                    walls.append(_plan_wall(executor, Job(home, plan, {"trivial": entry}, options)))
        finally:
            cluster.shutdown()
    local, on_ray = statistics.median(local_s) / args.runs, statistics.median(ray_s) / args.runs
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"plans: {args.repeat} of each executor, interleaved, {args.runs} runs each; medians")
    print(f"local executor (peer), one process:                  {local:.3f} s per run")
    print(f"ray executor, one 1-CPU worker node (incl. connect): {on_ray:.3f} s per run")
    print(
        f"overhead: {on_ray - local:+.3f} s per run (target < 1 s); "
        f"ratio ray/local: {on_ray / local:.2f}x"
    )


if __name__ == "__main__":
    main()
