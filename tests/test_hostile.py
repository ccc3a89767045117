"""Hostile submissions, crashes of the harness, and bad input: each attack of
docs/security.md against real containers and a real store. Every attack ends as a recorded
failure with the right reason (or, where the attack is silently defeated, as an ok run whose
probe shows the defeat); the host's files, the test targets and every other record are
unchanged afterwards."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from harness.datasets import ops
from harness.entries import get_entry
from harness.runner.records import load_records
from harness.runner.run import run_one
from harness.settings import REPO_ROOT, Settings
from tests.runner_support import cli, cli_args, cli_env, make_bench, make_ctx

pytestmark = pytest.mark.docker
pytest_plugins = ["tests.docker_support"]

TIGHT = ("fork-bomb",)
NDVI = ("nan",)


def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory, base_image: str) -> Settings:
    return make_bench(tmp_path_factory.mktemp("hostile"))


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
    return {"runs": runs, "good": good, "good_before": good_before, "data_before": data_before}


def _record(attacks: dict, variant: str) -> dict:
    return attacks["runs"][variant].record


def test_predict_cannot_write_data_or_model_nor_find_targets(attacks: dict) -> None:
    outcome = attacks["runs"]["probe-predict"]
    assert outcome.record["status"] == "ok"
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
    ],
)
def test_resource_attacks_are_stopped_with_their_reason(attacks, variant, reason, phrase) -> None:
    record = _record(attacks, variant)
    assert record["status"] == "failed" and record["reason"] == reason, record["detail"]
    assert phrase in record["detail"]


def test_a_fork_bomb_hits_the_pids_limit(attacks: dict) -> None:
    outcome = attacks["runs"]["fork-bomb"]
    log = (outcome.run_dir / "logs" / "train.log").read_text()
    assert "fork refused after" in log
    children = int(log.split("fork refused after ")[1].split()[0])
    assert children < 64  # the tight profile's pids limit
    assert os.fork  # and the host can still fork: this test process goes on


def test_a_log_flood_is_capped(attacks: dict) -> None:
    outcome = attacks["runs"]["log-flood"]
    assert outcome.record["status"] == "ok"
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
    ],
)
def test_bad_output_is_invalid_output(attacks: dict, variant: str, phrases: list[str]) -> None:
    record = _record(attacks, variant)
    assert record["status"] == "failed" and record["reason"] == "invalid-output"
    problems = "\n".join(record["problems"])
    for phrase in phrases:
        assert phrase in problems, problems
    assert record["score"] is None


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
    ids = [r["run_id"] for r in load_records(bench.runs_dir)]
    assert len(ids) == len(set(ids)) == 1 + len(attacks["runs"])


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


def test_sigkill_mid_run_leaves_no_record_and_the_next_run_finishes_it(
    bench: Settings, docker_client: docker.DockerClient, attacks: dict
) -> None:
    proc = _slow_ok_run(bench)
    deadline = time.monotonic() + 120
    running = []
    while time.monotonic() < deadline and not running:
        running = docker_client.containers.list(
            filters={"label": ["sarbench.entry=hostile", "sarbench.phase=train"]}
        )
        time.sleep(0.2)
    assert running, "the train container never started"
    run_id = running[0].labels["sarbench.run"]
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
    assert "removing an unfinished earlier attempt" in out
    record = json.loads((run_dir / "record.json").read_text())
    assert record["status"] == "ok" and record["run_id"] == run_id
    left = docker_client.containers.list(all=True, filters={"label": f"sarbench.run={run_id}"})
    assert left == []


def test_two_processes_on_one_store_make_one_record(bench: Settings, attacks: dict) -> None:
    before = {r["run_id"] for r in load_records(bench.runs_dir)}
    first, second = _slow_ok_run(bench, "--seed", "7"), _slow_ok_run(bench, "--seed", "7")
    outs = [p.communicate(timeout=300)[0] for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outs
    new = [r for r in load_records(bench.runs_dir) if r["run_id"] not in before]
    assert len(new) == 1 and new[0]["status"] == "ok" and new[0]["seed"] == 7
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
        (["run", "template", "--dataset", "tiny-ndvii", "--profile", "test"], "supports dataset"),
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
        '[image]\nref = "sarbench-no-such-image:1"\n'
    )
    result = cli(bench, "run", str(entry), "--profile", "test")
    assert result.exit_code == 2, result.output
    assert (
        "sarbench-no-such-image:1" in result.output and "not in the Docker engine" in result.output
    )
