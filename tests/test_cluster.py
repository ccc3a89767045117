"""The Ray executor on a real Ray cluster: a head and two worker nodes on this machine
(Ray's cluster utilities; every address 127.0.0.1), one worker advertising a fake GPU of
the test GPU profile's accelerator type. Each worker node has a work folder and a copy of
the data of its own (``SARBENCH_HOME``, ``SARBENCH_DATA_ROOT`` in its environment), as nodes
that share no filesystem with the driver; the driver is this process.

The cluster starts once for the module (about 10 s); the runs are the template entry on the
tiny datasets with the local backend (about a second each). The node-killing test comes
last: it leaves one worker. Without Ray the cluster tests are skipped, except under
``CI=true``: then they fail.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import shutil
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from harness.cluster.resources import accelerator_type, demand, fits
from harness.cluster.transfer import TransferError, install, pack, unpack
from harness.conditions.profiles import get_profile
from harness.entries import get_entry
from harness.record import RunFolder, RunRecord, run_folders
from harness.runner.executor import Finished, Job, RunOptions
from harness.runner.plan import dataset_facts, make_plan
from harness.settings import Settings
from tests.helpers import unavailable as needs_unavailable
from tests.records_factory import RunSpec as FakeRun
from tests.records_factory import make_run, make_test_split
from tests.runner_support import TEST_PROFILE, cli, make_bench

# Before Ray is imported: Ray then takes 127.0.0.1 as this machine's address everywhere
# (otherwise a driver connecting to 127.0.0.1 is sent to the machine's outward address).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

try:
    import ray  # noqa: F401  (the executor imports it; here: is it installed?)
    from ray.cluster_utils import Cluster
except ImportError as exc:  # the core install: no `sarbench[cluster]`
    Cluster, RAY_MISSING = None, str(exc)
else:
    RAY_MISSING = ""

pytest_plugins = ["tests.docker_support"]  # docker_client, base_image

LOOPBACK = "127.0.0.1"
GPU_MODEL = "NVIDIA H100 80GB HBM3"
GPU_PROFILE = TEST_PROFILE.replace('name = "test"', 'name = "gpu"').replace(
    'memory = "1GiB"', f'memory = "1GiB"\ngpu_model = "{GPU_MODEL}"'
)
LOCAL = ("--backend", "local")
SEEDS = (0, 1, 2, 3)
HOLD = '''
"""The template, held at the start of train until the test lets it go."""
import json, os, runpy, sys, time, uuid
from pathlib import Path

config = json.loads(Path(os.environ["SARBENCH_CONFIG_RUN_JSON"]).read_text())
hold = Path(config["options"]["hold"])
if sys.argv[1] == "train":
    (hold / f"started-{uuid.uuid4().hex}").write_text(os.environ.get("SARBENCH_HOME", ""))
    deadline = time.monotonic() + 120
    while not (hold / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
sys.argv[0] = "entry.py"
runpy.run_path("entry.py", run_name="__main__")
'''


unavailable = functools.partial(needs_unavailable, what="the Ray cluster tests")
"""Fail under CI (``CI=true``), skip elsewhere (:func:`tests.helpers.unavailable`)."""


@dataclass
class Bench:
    settings: Settings
    """The driver's work folder (the home the records go to)."""
    cluster: Any
    address: str
    gpu_node: str
    cpu_node: str
    homes: dict[str, Path]
    """Each worker node's ID -> its own work folder (its data under ``data/``)."""
    nodes: dict[str, Any]
    hold: Path


def _held_entry(settings: Settings, hold: Path) -> None:
    """``slow``: the template with ``hold.py`` in front (its train waits for ``release``)."""
    subs = settings.submissions_dir
    shutil.copytree(subs / "template", subs / "slow")
    (subs / "slow" / "hold.py").write_text(HOLD)
    toml = (subs / "template.toml").read_text()
    toml = toml.replace('name = "template"', 'name = "slow"')
    toml = toml.replace('context = "template"', 'context = "slow"')
    toml = toml.replace('cwd = "template"', 'cwd = "slow"')
    toml = toml.replace('command = ["{python}", "entry.py"]', 'command = ["{python}", "hold.py"]')
    toml = toml.replace("\n[image]", f'\n[options]\nhold = "{hold}"\n\n[image]', 1)
    assert 'name = "slow"' in toml and "hold.py" in toml and "[options]" in toml
    (subs / "slow.toml").write_text(toml)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    if Cluster is None:
        unavailable(f"Ray is not installed ({RAY_MISSING}): pip install 'sarbench[cluster]'")
    import ray._private.ray_constants as ray_constants

    assert not ray_constants.ENABLE_RAY_CLUSTER, "Ray was imported before this module set it"
    root = tmp_path_factory.mktemp("cluster")
    settings = make_bench(root)
    # a stale copy left by an image build would shadow the installed sarbench_io
    shutil.rmtree(settings.submissions_dir / "template" / "sarbench_io", ignore_errors=True)
    (settings.profiles_dir / "gpu.toml").write_text(GPU_PROFILE)
    hold = root / "hold"
    hold.mkdir()
    _held_entry(settings, hold)
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "node_ip_address": LOOPBACK,
            "num_cpus": 0,  # the head runs no run: the workers do
            "include_dashboard": False,
            # a dead node is noticed in seconds, not the default half a minute
            "_system_config": {"health_check_period_ms": 500, "health_check_failure_threshold": 4},
        },
    )
    try:
        homes, nodes = {}, {}
        for name, extra in (
            ("gpu", {"num_gpus": 1, "resources": {f"accelerator_type:{accelerator_type(GPU_MODEL)}": 1}}),
            ("cpu", {}),
        ):  # fmt: skip
            home = root / f"node-{name}"
            shutil.copytree(settings.data_root, home / "data")  # the node's own copy
            env = {"SARBENCH_HOME": str(home), "SARBENCH_DATA_ROOT": str(home / "data")}
            node = cluster.add_node(node_ip_address=LOOPBACK, num_cpus=1, env_vars=env, **extra)
            homes[node.node_id], nodes[node.node_id] = home, node
        cluster.wait_for_nodes()
        gpu, cpu = list(nodes)
        yield Bench(settings, cluster, cluster.address, gpu, cpu, homes, nodes, hold)
    finally:
        cluster.shutdown()


def _ray(bench: Bench, *args: str) -> Any:
    return cli(bench.settings, "run", *args, "--executor", "ray", "--ray-address", bench.address)


def _seeds(*seeds: int) -> list[str]:
    return [a for s in seeds for a in ("--seed", str(s))]


def _records(settings: Settings, profile: str, entry: str = "template") -> dict[int, RunRecord]:
    found = [f.load() for f in run_folders(settings.runs_dir)]
    return {r.seed: r for r in found if r.profile_name == profile and r.entry.name == entry}


def _comparable(record: RunRecord) -> dict[str, Any]:
    """A record less what depends on where and when it ran."""
    doc = record.to_json()
    for name in ("timings", "host", "node", "started_at", "finished_at", "phases"):
        doc.pop(name)
    doc["conditions"].pop("machine")
    return doc


def _predictions(folder: RunFolder) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.predictions.iterdir())
    }


@dataclass
class CpuRuns:
    ray: dict[int, RunRecord]
    local: dict[int, RunRecord]
    local_settings: Settings


@pytest.fixture(scope="module")
def cpu_runs(bench: Bench) -> CpuRuns:
    """The template's four seeds under the CPU profile: through Ray into the driver's
    home, and through the local executor into another home."""
    result = _ray(bench, "template", *LOCAL, "--profile", "test", *_seeds(*SEEDS))
    assert result.exit_code == 0, result.output
    local_settings = replace(bench.settings, home=bench.settings.home.parent / "local-home")
    result = cli(local_settings, "run", "template", *LOCAL, "--profile", "test", *_seeds(*SEEDS))
    assert result.exit_code == 0, result.output
    return CpuRuns(
        _records(bench.settings, "test"), _records(local_settings, "test"), local_settings
    )


def test_ray_executor_records_equal_the_local_executors(cpu_runs: CpuRuns, bench: Bench) -> None:
    assert sorted(cpu_runs.ray) == sorted(cpu_runs.local) == list(SEEDS)
    for seed in SEEDS:
        on_ray, here = cpu_runs.ray[seed], cpu_runs.local[seed]
        assert on_ray.ok and here.ok
        assert on_ray.run_id == here.run_id  # the same key: dataset digest, conditions...
        assert on_ray.score is not None and here.score is not None
        assert on_ray.score.to_json() == here.score.to_json()  # every chip's figures
        assert _comparable(on_ray) == _comparable(here)
        assert on_ray.node in bench.homes and here.node == ""
        assert [p.status for p in on_ray.phases.values()] == ["ok", "ok"]
        ray_folder = RunFolder(bench.settings.runs_dir / on_ray.run_id)
        local_folder = RunFolder(cpu_runs.local_settings.runs_dir / here.run_id)
        assert _predictions(ray_folder) == _predictions(local_folder)
        assert ray_folder.listing() == local_folder.listing() == on_ray.artifacts
    # the nodes ran in scratch folders of their own and kept nothing of the runs
    for home in bench.homes.values():
        assert not list(home.glob("cluster/*/runs/template.*"))


def test_a_cpu_plan_spreads_over_both_workers(cpu_runs: CpuRuns, bench: Bench) -> None:
    assert {r.node for r in cpu_runs.ray.values()} == {bench.gpu_node, bench.cpu_node}


def test_a_gpu_plan_runs_only_on_the_worker_with_that_gpu(bench: Bench) -> None:
    # no real GPU here: the probe finds none, so the mismatch must be allowed (recorded)
    result = _ray(
        bench, "template", *LOCAL, "--profile", "gpu", "--allow-mismatch", *_seeds(0, 1, 2)
    )
    assert result.exit_code == 0, result.output
    records = _records(bench.settings, "gpu")
    assert sorted(records) == [0, 1, 2]
    assert {r.node for r in records.values()} == {bench.gpu_node}
    for record in records.values():
        assert record.ok and record.mismatch_allowed
        assert any(GPU_MODEL in m for m in record.mismatches), record.mismatches


def test_a_node_whose_copy_of_the_data_differs_refuses_its_runs(bench: Bench) -> None:
    changed = bench.homes[bench.cpu_node] / "data" / "tiny" / "test" / "inputs" / "test_00.tif"
    original = changed.read_bytes()
    changed.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    try:
        result = _ray(bench, "template", *LOCAL, "--profile", "test", *_seeds(20, 21))
    finally:
        changed.write_bytes(original)
    assert result.exit_code == 2, result.output
    refusals = [line for line in result.output.splitlines() if line.startswith("refused ")]
    assert refusals, result.output  # two runs, two idle one-CPU workers: one each
    for line in refusals:
        assert f"(node {bench.cpu_node[:12]} on " in line, line
        assert "dataset 'tiny' does not match its manifest" in line, line
    assert "test/inputs/test_00.tif" in result.output, result.output  # the file, named
    assert "not recorded" in result.output and "run the same command again" in result.output
    records = {s: r for s, r in _records(bench.settings, "test").items() if s in (20, 21)}
    assert len(records) == 2 - len(refusals)  # a refused run leaves no record
    assert all(r.ok and r.node == bench.gpu_node for r in records.values())


def test_the_same_command_again_resumes_skipping_recorded_runs(
    cpu_runs: CpuRuns, bench: Bench
) -> None:
    runs_dir = bench.settings.runs_dir
    lost = cpu_runs.ray[2].run_id  # as if the driver had been killed before it came back
    shutil.rmtree(runs_dir / lost)
    kept = {
        r.run_id: (runs_dir / r.run_id / "record.json").read_bytes()
        for s, r in cpu_runs.ray.items()
        if s != 2
    }
    result = _ray(bench, "template", *LOCAL, "--profile", "test", *_seeds(*SEEDS))
    assert result.exit_code == 0, result.output
    assert result.output.count("(recorded before; skipped)") == 3, result.output
    again = RunFolder(runs_dir / lost).load()
    assert again.ok and again.node in bench.homes
    for run_id, blob in kept.items():  # never rewritten
        assert (runs_dir / run_id / "record.json").read_bytes() == blob


def test_a_docker_run_on_a_node_is_isolated_and_leaves_nothing_mounted(
    bench: Bench, docker_client: Any, base_image: str
) -> None:
    result = _ray(bench, "template", "--profile", "test", *_seeds(30))  # the docker backend
    assert result.exit_code == 0, result.output
    record = _records(bench.settings, "test")[30]
    assert record.ok and record.isolated and record.backend == "docker", record.detail
    assert record.image_digest and record.node in bench.homes
    mounts = Path("/proc/self/mounts").read_text()
    for home in bench.homes.values():  # the node's read-only data copies went with the task
        assert str(home) not in mounts
        assert not any((home / ".stage").glob("*")) if (home / ".stage").exists() else True


def _wait_for(found: Callable[[], list[Path]], what: str, limit_s: float = 120) -> list[Path]:
    deadline = time.monotonic() + limit_s
    while not (got := found()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {limit_s:.0f} s")
        time.sleep(0.1)
    return got


def test_a_worker_node_killed_mid_run_is_retried_on_the_other(bench: Bench) -> None:
    """Last in this module: it leaves the cluster with one worker."""
    from harness.cluster.ray_executor import RayExecutor

    settings = bench.settings
    slow = get_entry(settings.submissions_dir, "slow")
    plan = make_plan([slow], "test", (0,), facts=dataset_facts(settings))
    options = RunOptions("local", "test", False, None, None, ())
    errors: list[BaseException] = []
    dying: list[str] = []

    def kill_the_node_it_runs_on() -> None:
        try:
            (started,) = _wait_for(lambda: list(bench.hold.glob("started-*")), "the run's start")
            dying.append(next(n for n, h in bench.homes.items() if str(h) == started.read_text()))
            bench.cluster.remove_node(bench.nodes[dying[0]], allow_graceful=False)  # mid-train
        except BaseException as exc:
            errors.append(exc)
        finally:
            (bench.hold / "release").touch()

    killer = threading.Thread(target=kill_the_node_it_runs_on)
    killer.start()
    try:
        results = list(RayExecutor(bench.address).run(Job(settings, plan, {"slow": slow}, options)))
    finally:
        killer.join(timeout=300)
    assert not errors, errors
    (dying_node,) = dying
    (done,) = results
    assert isinstance(done, Finished), done
    assert done.action == "ran" and done.record.ok
    assert done.record.node != dying_node and done.record.node in bench.homes
    assert len(list(bench.hold.glob("started-*"))) == 2  # the run started again elsewhere
    runs = [f for f in run_folders(settings.runs_dir) if f.run_id.startswith("slow.")]
    assert [f.run_id for f in runs] == [done.record.run_id]  # one record, none duplicated
    leftovers = settings.runs_dir / ".incoming"
    assert not leftovers.exists() or not any(leftovers.iterdir())


# --- without a cluster --------------------------------------------------------------------


@pytest.fixture
def made_run(settings: Settings) -> RunFolder:
    split = make_test_split(settings, "flood-synth", "flood")
    return RunFolder(make_run(settings, FakeRun("unet", "flood-synth", "flood"), split))


def test_install_writes_a_whole_folder_and_never_overwrites(
    made_run: RunFolder, tmp_path: Path
) -> None:
    record = made_run.load()
    runs = tmp_path / "driver-runs"
    action, folder, got = install(runs, record, pack(made_run.path))
    assert (action, got) == ("ran", record)
    assert folder.load() == record and folder.listing() == made_run.listing()
    changed = replace(record, host="elsewhere")
    action, folder, got = install(runs, changed, pack(made_run.path))
    assert action == "skipped" and got == record and folder.load().host == record.host
    assert not any((runs / ".incoming").iterdir())


def test_install_refuses_links_and_paths_outside(made_run: RunFolder, tmp_path: Path) -> None:
    for name, kind in (("../escape", tarfile.REGTYPE), ("logs/link", tarfile.SYMTYPE), ("record.json", tarfile.REGTYPE)):  # fmt: skip
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            member = tarfile.TarInfo(name)
            member.type, member.linkname = kind, "/etc/passwd" if kind == tarfile.SYMTYPE else ""
            tar.addfile(member, io.BytesIO(b""))
        with pytest.raises(TransferError):
            unpack(buffer.getvalue(), tmp_path / "x")
        with pytest.raises(TransferError):
            install(tmp_path / "runs", made_run.load(), buffer.getvalue())
        assert not (tmp_path / "runs" / made_run.run_id).exists()


def test_a_gpu_profile_asks_for_one_gpu_of_its_model(tmp_path: Path) -> None:
    assert accelerator_type(GPU_MODEL) == "H100"  # as Ray names a node's H100s
    assert accelerator_type("NVIDIA A100-SXM4-80GB") == "A100"
    (tmp_path / "gpu.toml").write_text(GPU_PROFILE)
    wanted = demand(get_profile(tmp_path, "gpu"))
    assert wanted == {"CPU": 1.0, "GPU": 1.0, "accelerator_type:H100": 0.001}
    assert fits({"CPU": 16.0, "GPU": 8.0, "accelerator_type:H100": 1.0}, wanted)
    assert not fits({"CPU": 16.0, "GPU": 8.0, "accelerator_type:A100": 1.0}, wanted)
    assert not fits({"CPU": 16.0}, wanted)


def test_a_ray_address_needs_the_ray_executor(settings: Settings) -> None:
    result = cli(settings, "run", "template", "--ray-address", "head.example:6379")
    assert result.exit_code == 2
    assert "--ray-address is for the Ray executor: add --executor ray" in result.output


def test_the_gpu_ray_assigned_is_the_one_pinned_by_uuid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.cluster import resources
    from harness.conditions.probe import Gpu, Machine, conditions

    gpus = tuple(Gpu(GPU_MODEL, f"GPU-{i}-uuid", "550.54", 1980.0, 80 * 2**30) for i in range(4))
    monkeypatch.setattr(resources, "probe", lambda: Machine("a CPU", 64, 2**40, gpus))
    monkeypatch.setattr(
        resources, "_index_uuids", lambda: {str(i): g.uuid for i, g in enumerate(gpus)}
    )
    machine = resources.node_machine(["2"])  # Ray's ID: an index into the node's GPUs
    assert machine.gpus == (gpus[2],)
    (tmp_path / "gpu.toml").write_text(GPU_PROFILE)
    chosen = conditions(get_profile(tmp_path, "gpu"), machine)
    assert chosen.gpu_uuid == "GPU-2-uuid" and not chosen.mismatches
    assert resources.node_machine(["GPU-3-uuid"]).gpus == (gpus[3],)  # a UUID as it is
    assert resources.node_machine([]).gpus == gpus  # a CPU task: the node as probed
