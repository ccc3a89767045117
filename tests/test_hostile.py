"""Hostile submissions, crashes of the harness, and bad input: each attack of
docs/security.md against real containers and a real store. Every attack ends as a recorded
failure with the right reason (or, where the attack is silently defeated, as an ok run whose
probe shows the defeat); the host's files, the test targets and every other record are
unchanged afterwards."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from harness.datasets import ops
from harness.entries import get_entry
from harness.record import RunFolder, RunRecord, load_records
from harness.runner.run import run_one
from harness.runtime.scratch import kernel_limits_available
from harness.settings import REPO_ROOT, Settings
from tests.docker_support import unavailable
from tests.http_recorder import recording_server
from tests.runner_support import cli, cli_args, cli_env, make_bench, make_ctx

pytestmark = pytest.mark.docker
pytest_plugins = ["tests.docker_support"]

TIGHT = ("fork-bomb",)
NDVI = ("nan", "just-over")


def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, list[str]]]:
    """Where the network attacks point: it must hear nothing."""
    with recording_server() as recorded:
        yield recorded


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory, base_image: str, server) -> Settings:
    if not kernel_limits_available():
        unavailable("the output-cap attacks need root and loop devices (kernel limits)")
    return make_bench(tmp_path_factory.mktemp("hostile"), {"wmts": f'url = "{server[0]}"'})


@pytest.fixture(scope="module")
def attacks(bench: Settings, docker_client: docker.DockerClient) -> dict:
    """A good run first, then every attack; what the data and that record were before."""
    data_before = _tree_digest(bench.data_root)
    good = run_one(
        make_ctx(bench, docker_client),
        get_entry(bench.submissions_dir, "template"),
        "default",
        0,
        "tiny",
    )
    good_before = (good.run_dir / "record.json").read_bytes()
    hostile = get_entry(bench.submissions_dir, "hostile")
    runs = {}
    for variant in hostile.variants:
        if variant in ("slow-ok", "sleep", "hog", "probe", "crash", "bad-output"):
            continue  # slow-ok is for the crash tests; the rest are in test_runner.py
        profile = "tight" if variant in TIGHT else "test"
        dataset = "tiny-ndvi" if variant in NDVI else "tiny"
        runs[variant] = run_one(
            make_ctx(bench, docker_client, profile), hostile, variant, 0, dataset
        )
    return {
        "runs": runs,
        "good": good,
        "good_before": good_before,
        "data_before": data_before,
        "client": docker_client,
    }


def _record(attacks: dict, variant: str) -> RunRecord:
    return attacks["runs"][variant].record


def test_predict_cannot_write_data_or_model_nor_find_targets(attacks: dict) -> None:
    outcome = attacks["runs"]["probe-predict"]
    assert outcome.record.status == "ok"
    log = (outcome.run_dir / "logs" / "predict.log").read_text()
    probe = json.loads(log.rsplit("PROBE ", 1)[1])
    assert "Read-only file system" in probe["data_write"]
    assert "Read-only file system" in probe["model_write"]
    assert probe["network"].startswith("refused")
    assert probe["targets_seen"] == []  # nowhere on the container's filesystem
    assert probe["data_listing"] == ["test"]


@pytest.mark.parametrize(
    ("variant", "reason", "phrase"),
    [
        ("fork-bomb", "timeout", "killed at the wall-clock limit"),
        ("fill-disk", "output_limit", "into its writable mounts; the cap is 67108864"),
        # reserved space with size 0, data below paths past PATH_MAX, an inode flood: the
        # kernel stops each at the scratch filesystem's size or inode count
        ("fallocate", "output_limit", "into its writable mounts; the cap is 67108864"),
        ("long-paths", "output_limit", "into its writable mounts; the cap is 67108864"),
        ("inode-flood", "output_limit", "files or more in its writable mounts; the limit is"),
    ],
)
def test_resource_attacks_are_stopped_with_their_reason(attacks, variant, reason, phrase) -> None:
    record = _record(attacks, variant)
    assert record.status == "failed" and record.reason == reason, record.detail
    assert phrase in record.detail


@pytest.mark.parametrize(
    ("variant", "phrase"),
    [
        ("fallocate", "fallocate refused after"),
        ("long-paths", "No space left on device"),
        ("inode-flood", "No space left on device"),
    ],
)
def test_output_attacks_hit_the_kernels_limit(attacks: dict, variant: str, phrase: str) -> None:
    outcome = attacks["runs"][variant]
    assert outcome.record.output_limit_by == "kernel"
    log = (outcome.run_dir / "logs" / "train.log").read_text()
    assert phrase in log  # the write failed in the container: the limit is the kernel's


def test_odd_trees_break_nothing_and_leave_nothing(attacks: dict, bench: Settings) -> None:
    """1,500 nested folders and 250-character names: the run ends ok, the walk kept what
    it could of the artifacts, the work folder and its scratch filesystems are gone, and
    the same run skips when asked again."""
    outcome = attacks["runs"]["deep-tree"]
    assert outcome.record.status == "ok", outcome.record.detail
    assert not (outcome.run_dir / "work").exists()
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        assert str(bench.runs_dir) not in mounts.read()
    hostile = get_entry(bench.submissions_dir, "hostile")
    again = run_one(make_ctx(bench, attacks["client"]), hostile, "deep-tree", 0, "tiny")
    assert again.action == "skipped"


def test_a_fork_bomb_hits_the_pids_limit(attacks: dict) -> None:
    outcome = attacks["runs"]["fork-bomb"]
    log = (outcome.run_dir / "logs" / "train.log").read_text()
    assert "fork refused after" in log
    children = int(log.split("fork refused after ")[1].split()[0])
    assert children < 64  # the tight profile's pids limit
    assert os.fork  # and the host can still fork: this test process goes on


def test_a_log_flood_is_capped(attacks: dict) -> None:
    outcome = attacks["runs"]["log-flood"]
    assert outcome.record.status == "ok"
    log = outcome.run_dir / "logs" / "train.log"
    assert 0 < log.stat().st_size <= 1024 * 1024  # the profile's 1 MiB cap; 20 MB written


@pytest.mark.parametrize(
    ("variant", "phrases"),
    [
        ("symlinks", ["test_00.tif: is a symbolic link", "passwd.tif: is a symbolic link"]),
        ("vrt", ["test_00.tif: is a VRT file, not a GeoTIFF"]),
        ("huge", ["test_00.tif: is 200000 x 200000 pixels", "pixels not read"]),
        ("wrong-crs", ["test_00.tif: has CRS EPSG:4326"]),
        ("nan", ["test_00.tif: 1024 pixel(s) are NaN"]),
        ("no-output", ["test_00.tif: missing", "test_01.tif: missing"]),
        ("odd-names", ["..evil.tif: extra file"]),
        ("wmts", ["test_00.tif: is a WMTS file, not a GeoTIFF"]),
        ("bands", ["test_00.tif: has 16384 bands"]),
        ("just-over", ["1.0000001"]),
    ],
)
def test_bad_output_is_invalid_output(attacks: dict, variant: str, phrases: list[str]) -> None:
    record = _record(attacks, variant)
    assert record.status == "failed" and record.reason == "invalid-output"
    problems = "\n".join(record.problems)
    for phrase in phrases:
        assert phrase in problems, problems
    assert record.score is None


def test_no_prediction_makes_the_harness_fetch_a_url(attacks: dict, server) -> None:
    assert _record(attacks, "wmts").reason == "invalid-output"
    assert server[1] == []  # the WMTS "prediction" was never opened as WMTS


def test_problem_lists_are_capped_and_escaped(attacks: dict) -> None:
    many = attacks["runs"]["many-files"]
    assert many.record.reason == "invalid-output"
    assert len(many.record.problems) <= 51
    assert "more problem" in many.record.problems[-1]
    assert (many.run_dir / "record.json").stat().st_size < 200_000
    escaped = attacks["runs"]["escapes"]
    text = json.dumps(list(escaped.record.problems))
    assert "\\u001b" not in text and "\\x1b" in text  # shown, not obeyed


def test_mountinfo_shows_no_host_paths(attacks: dict, bench: Settings) -> None:
    outcome = attacks["runs"]["mountinfo"]
    assert outcome.record.status == "ok"
    lines = (outcome.run_dir / "logs" / "predict.log").read_text().splitlines()
    targets = (" /output ", " /model ", " /config/run.json ", " /data/test/inputs ")
    mine = [line for line in lines if any(t in line for t in targets)]
    assert len(mine) == 4, lines
    for line in mine:  # each shows a path inside its own filesystem, nothing of the host's
        for host in (str(bench.home), str(bench.data_root), str(outcome.run_dir), "/tmp"):
            assert host not in line, line


def test_poisoned_artifacts_do_not_reach_the_site(
    attacks: dict, bench: Settings, tmp_path: Path
) -> None:
    """Every record of this module's runs is published: the poisoned curve's record is
    named and skipped, the rest publish; the hostile files never reach the site."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    published = cli(bench, "publish", "--tracking-uri", uri)
    poison = attacks["runs"]["poison"].run_dir.name
    assert published.exit_code == 2, published.output
    refused = published.output.split("not published")[-1]
    assert "1 record(s) not published" in published.output
    assert poison in refused and "step" in refused
    assert attacks["runs"]["xss"].run_dir.name not in refused
    site = tmp_path / "site"
    built = cli(bench, "leaderboard", "build", "--tracking-uri", uri, "--out", str(site))
    assert built.exit_code == 0, built.output
    names = {p.name for p in site.rglob("*") if p.is_file()}
    assert "real.png" in names
    assert not names & {"report.html", "plot.svg", "fake.png"}
    for path in site.rglob("*"):
        if path.is_file():
            assert b"alert(" not in path.read_bytes(), path


def test_path_traversal_writes_nothing_outside(attacks: dict, bench: Settings) -> None:
    outcome = attacks["runs"]["odd-names"]
    log = (outcome.run_dir / "logs" / "predict.log").read_text()
    assert "traversal: refused" in log
    assert not list(bench.home.parent.rglob("evil"))


def test_data_targets_and_other_records_are_unchanged(attacks: dict, bench: Settings) -> None:
    assert _tree_digest(bench.data_root) == attacks["data_before"]
    ops.verify(bench, "tiny", progress=False)
    good = attacks["good"]
    assert (good.run_dir / "record.json").read_bytes() == attacks["good_before"]
    ids = [r.run_id for r in load_records(bench.runs_dir)]
    assert len(ids) == len(set(ids)) == 1 + len(attacks["runs"])
    # nothing outside the run folders: each holds only what a run keeps, no work folder
    # and no scratch filesystem is left mounted, and the bench root holds what it had
    kept = {"record.json", "logs", "config", "artifacts", "predictions"}
    for run_dir in (attacks["runs"][v].run_dir for v in attacks["runs"]):
        assert {p.name for p in run_dir.iterdir()} <= kept, run_dir
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        assert str(bench.runs_dir) not in mounts.read()  # (the data stage lives on)
    root = bench.home.parent
    assert {p.name for p in root.iterdir()} == {
        "submissions", "profiles", "data", "manifests", "home"
    }  # fmt: skip


# -- crash safety ------------------------------------------------------------------------


def _sarbench(settings: Settings, *args: str) -> subprocess.Popen:
    env = {**os.environ, **cli_env(settings)}
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *cli_args(settings), *args],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _slow_ok_run(settings: Settings, *extra: str) -> subprocess.Popen:
    return _sarbench(
        settings, "run", "hostile", "--variant", "slow-ok", "--dataset", "tiny",
        "--profile", "test", *extra,
    )  # fmt: skip


def _train_container(client: docker.DockerClient) -> Any:
    """The hostile entry's running train container, once it has started."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        running = client.containers.list(
            filters={"label": ["sarbench.entry=hostile", "sarbench.phase=train"]}
        )
        if running:
            return running[0]
        time.sleep(0.1)
    pytest.fail("the train container never started")


def test_sigkill_mid_run_leaves_no_record_and_the_next_run_finishes_it(
    bench: Settings, docker_client: docker.DockerClient, attacks: dict
) -> None:
    proc = _slow_ok_run(bench)
    run_id = _train_container(docker_client).labels["sarbench.run"]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    run_dir = bench.runs_dir / run_id
    assert run_dir.is_dir() and not (run_dir / "record.json").exists()
    assert not list(run_dir.glob(".*.tmp"))
    left = docker_client.containers.list(all=True, filters={"label": f"sarbench.run={run_id}"})
    assert left, "the killed harness's container should still be there to be found"
    again = _slow_ok_run(bench)
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out
    # the next harness start removed the unfinished folder (and any container) first
    assert f"an unfinished run folder left by a harness that is gone: {run_id}" in out
    record = RunFolder(run_dir).load()
    assert record.status == "ok" and record.run_id == run_id
    left = docker_client.containers.list(all=True, filters={"label": f"sarbench.run={run_id}"})
    assert left == []


def test_a_killed_harness_does_not_outlive_the_wall_clock(
    bench: Settings, docker_client: docker.DockerClient, attacks: dict
) -> None:
    """kill -9 of `sarbench run` mid-phase: the container is dead one second after its
    limit (the detached watchdog), then removed."""
    from harness.runtime.docker_backend import _parse_time

    proc = _sarbench(
        bench, "run", "hostile", "--variant", "sleep", "--dataset", "tiny",
        "--profile", "tight", "--seed", "5",
    )  # fmt: skip
    container = _train_container(docker_client)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    started = _parse_time(container.attrs["State"]["StartedAt"])
    assert started is not None
    limit = 4.0  # the tight profile's train limit
    time.sleep(max(0.0, started + limit + 1.0 - time.time()))
    try:
        container.reload()
        status = container.status
    except docker.errors.NotFound:
        status = "removed"
    assert status in ("exited", "dead", "removed"), status
    gone = time.monotonic() + 15
    while time.monotonic() < gone:
        try:
            container.reload()
        except docker.errors.NotFound:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the watchdog did not remove the dead harness's container")
    # the killed run's folder and scratch filesystems go at the next start (or `reap`)
    run_dir = bench.runs_dir / container.labels["sarbench.run"]
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        assert str(run_dir) in mounts.read()
    reaped = _sarbench(bench, "reap")
    out, _ = reaped.communicate(timeout=60)
    assert reaped.returncode == 0, out
    assert not run_dir.exists()
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        assert str(run_dir) not in mounts.read()


def test_reap_removes_expired_and_orphaned_containers(
    docker_client: docker.DockerClient, base_image: str, tmp_path: Path
) -> None:
    import fcntl

    from harness.runtime.watchdog import LABEL_DEADLINE, LABEL_LOCK

    free, held = tmp_path / "free.lock", tmp_path / "held.lock"
    free.touch()
    held.touch()
    common = {"sarbench.managed": "1", "sarbench.run": f"reap-{tmp_path.name}"}
    made = {
        "expired": {LABEL_DEADLINE: f"{time.time() - 60:.0f}"},
        "orphan": {LABEL_DEADLINE: f"{time.time() + 600:.0f}", LABEL_LOCK: str(free)},
        "alive": {LABEL_DEADLINE: f"{time.time() + 600:.0f}", LABEL_LOCK: str(held)},
    }
    containers = {
        name: docker_client.containers.run(
            base_image,
            ["sleep", "600"],
            detach=True,
            network_mode="none",
            labels={**common, **labels},
        )
        for name, labels in made.items()
    }
    fd = os.open(held, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a live harness holds this run's lock
    try:
        result = subprocess.run(
            [sys.executable, "-m", "harness.cli", "--home", str(tmp_path / "home"), "reap"],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        assert "past its wall-clock deadline" in result.stdout
        assert "left by a harness that is gone" in result.stdout
        for name in ("expired", "orphan"):
            with pytest.raises(docker.errors.NotFound):
                containers[name].reload()
        containers["alive"].reload()
        assert containers["alive"].status == "running"
    finally:
        os.close(fd)
        for container in containers.values():
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)


def test_two_processes_on_one_store_make_one_record(bench: Settings, attacks: dict) -> None:
    before = {r.run_id for r in load_records(bench.runs_dir)}
    first, second = _slow_ok_run(bench, "--seed", "7"), _slow_ok_run(bench, "--seed", "7")
    outs = [p.communicate(timeout=300)[0] for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outs
    new = [r for r in load_records(bench.runs_dir) if r.run_id not in before]
    assert len(new) == 1 and new[0].status == "ok" and new[0].seed == 7
    assert sum("skipped" in out for out in outs) == 1


# -- integrity and bad input ---------------------------------------------------------------


def test_a_tampered_dataset_refuses_to_run_and_names_the_file(
    bench: Settings, tmp_path: Path, attacks: dict
) -> None:
    target = bench.data_root / "tiny" / "test" / "targets" / "test_01.tif"
    original = target.read_bytes()
    before = sorted(p.name for p in bench.runs_dir.iterdir())
    try:
        target.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        result = cli(bench, "run", "template", "--dataset", "tiny", "--profile", "test",
                     "--seed", "11")  # fmt: skip
        assert result.exit_code == 1, result.output
        assert "test/targets/test_01.tif" in result.output
        assert sorted(p.name for p in bench.runs_dir.iterdir()) == before
    finally:
        target.write_bytes(original)


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["run", "templat"], "Did you mean 'template'"),
        (
            ["run", "template", "--variant", "defualt", "--profile", "test"],
            "Did you mean 'default'",
        ),
        (
            ["run", "template", "--dataset", "tiny-ndvii", "--profile", "test"],
            "Did you mean 'tiny-ndvi'",
        ),
        (["run", "template", "--profile", "tigh"], "Did you mean 'tight'"),
        (["validate", "nope:latest"], "give --task"),
    ],
)
def test_bad_names_are_clear_errors_and_write_nothing(bench: Settings, args, phrase) -> None:
    before = sorted(p.name for p in bench.runs_dir.iterdir()) if bench.runs_dir.exists() else []
    result = cli(bench, *args)
    assert result.exit_code == 2, result.output
    assert phrase in result.output
    after = sorted(p.name for p in bench.runs_dir.iterdir()) if bench.runs_dir.exists() else []
    assert after == before


def test_a_malformed_entry_file_is_refused_naming_it(bench: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text('name = "broken"\ntasks = ["flood"\n')
    result = cli(bench, "run", str(bad))
    assert result.exit_code == 2 and str(bad) in result.output and "not valid TOML" in result.output


def test_a_missing_image_is_a_clear_error(bench: Settings, tmp_path: Path) -> None:
    entry = tmp_path / "ghost.toml"
    entry.write_text(
        'name = "ghost"\nteam = "t"\ncontact = "c"\ntasks = ["flood"]\ndatasets = ["tiny"]\n'
        f'[image]\nref = "sha256:{"0" * 64}"\n'
    )
    result = cli(bench, "run", str(entry), "--profile", "test")
    assert result.exit_code == 2, result.output
    assert f"sha256:{'0' * 64}" in result.output and "not in the Docker engine" in result.output
