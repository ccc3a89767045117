"""The runner end to end with real containers: the template entry is run, scored and
recorded; misbehaving entries are recorded with the right reason and touch nothing else;
the local backend gives the docker backend's score; ``sarbench validate`` passes the
template and lists a broken copy's problems."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import docker
import pytest

from harness.entries import get_entry, load_entry
from harness.record import SCHEMA, RunFolder, load_records
from harness.runner.run import run_one
from harness.settings import Settings
from tests.runner_support import cli, make_bench, make_ctx

pytestmark = pytest.mark.docker
pytest_plugins = ["tests.docker_support"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory, base_image: str) -> Settings:
    """A work folder with two tiny datasets, the template and a hostile entry, two profiles."""
    return make_bench(tmp_path_factory.mktemp("bench"))


@pytest.fixture(scope="module")
def template_run(bench: Settings, docker_client: docker.DockerClient):
    entry = get_entry(bench.submissions_dir, "template")
    return run_one(make_ctx(bench, docker_client), entry, "default", 0, "tiny")


@pytest.fixture(scope="module")
def hostile_runs(bench: Settings, docker_client: docker.DockerClient, template_run) -> dict:
    """Every hostile variant, run after the template; the template's record bytes before."""
    before = (template_run.run_dir / "record.json").read_bytes()
    entry = get_entry(bench.submissions_dir, "hostile")
    runs = {}
    for variant in ("probe", "crash", "bad-output"):
        runs[variant] = run_one(make_ctx(bench, docker_client), entry, variant, 0, "tiny")
    for variant in ("sleep", "hog"):
        runs[variant] = run_one(make_ctx(bench, docker_client, "tight"), entry, variant, 0, "tiny")
    return {"runs": runs, "template_before": before}


def test_template_runs_end_to_end_and_is_scored(template_run, docker_client) -> None:
    record = template_run.record
    assert template_run.action == "ran"
    assert record.status == "ok" and record.reason is None
    assert record.schema == SCHEMA == "sarbench.run/2" and record.isolated is True
    assert record.image_digest is not None and record.image_digest.startswith("sha256:")
    assert record.dataset_digest.startswith("sha256:") and record.split == "test"
    # the tiny dataset's flood label is exactly (post - pre < -2 dB): the template learns it
    assert record.score is not None
    assert record.score.metrics["iou"] > 0.9
    assert record.score.n_chips == 2
    assert set(record.phases) == {"train", "predict"}
    assert all(p.status == "ok" and p.image_id for p in record.phases.values())
    assert record.machine["cpus"] >= 1
    run_dir = template_run.run_dir
    for rel in (
        "record.json",
        "logs/train.log",
        "logs/predict.log",
        "config/train.json",
        "artifacts/fit.json",
        "predictions/test_00.tif",
    ):
        assert (run_dir / rel).is_file(), rel
    assert not (run_dir / "work").exists()
    config = json.loads((run_dir / "config" / "train.json").read_text())
    assert config["phase"] == "train" and config["dataset"]["splits"] == ["train", "val"]
    assert config["task"]["prediction"] == {"dtype": "uint8", "range": [0, 1]}
    assert config["dataset"]["band_roles"] == ["pre", "post"]  # from VV_pre_db, VV_post_db
    left = docker_client.containers.list(
        all=True, filters={"label": f"sarbench.run={record.run_id}"}
    )
    assert left == []


def test_running_again_skips_and_keeps_the_record(bench, docker_client, template_run) -> None:
    before = (template_run.run_dir / "record.json").read_bytes()
    entry = get_entry(bench.submissions_dir, "template")
    again = run_one(make_ctx(bench, docker_client), entry, "default", 0, "tiny")
    assert again.action == "skipped" and again.run_dir == template_run.run_dir
    assert (template_run.run_dir / "record.json").read_bytes() == before


def test_container_sees_no_network_read_only_root_no_targets(hostile_runs) -> None:
    outcome = hostile_runs["runs"]["probe"]
    assert outcome.record.status == "ok"
    probe = json.loads((outcome.run_dir / "artifacts" / "probe.json").read_text())
    assert probe["uid"] == 65532 and probe["gid"] == 65532
    assert int(probe["cap_eff"], 16) == 0
    assert probe["network"].startswith("refused") and probe["dns"].startswith("refused")
    assert "Read-only file system" in probe["root_write"]
    assert "Read-only file system" in probe["data_write"]
    assert probe["tmp_write"] == "allowed"
    assert probe["test_targets_exist"] is False
    assert not any("/test" in p for p in probe["data_paths"])  # train sees train and val only
    assert any(p.startswith("/data/train/targets/") for p in probe["data_paths"])


@pytest.mark.parametrize(
    ("variant", "reason", "phrase"),
    [
        ("sleep", "timeout", "4"),
        ("hog", "oom", "memory"),
        ("crash", "crash", "boom: the model diverged"),
    ],
)
def test_misbehaviour_is_recorded_with_its_reason(hostile_runs, variant, reason, phrase) -> None:
    record = hostile_runs["runs"][variant].record
    assert record.status == "failed" and record.reason == reason, record
    assert phrase in record.detail
    assert record.score is None and "predict" not in record.phases


def test_bad_output_is_invalid_output_listing_each_problem(hostile_runs) -> None:
    record = hostile_runs["runs"]["bad-output"].record
    assert record.status == "failed" and record.reason == "invalid-output"
    problems = "\n".join(record.problems)
    assert "test_00" in problems and "missing" in problems
    assert "float64" in problems and "notes.txt" in problems


def test_other_records_are_untouched(bench, hostile_runs, template_run) -> None:
    assert (template_run.run_dir / "record.json").read_bytes() == hostile_runs["template_before"]
    records = list(load_records(bench.runs_dir))
    assert len({r.run_id for r in records}) == len(records) == 6


def test_local_and_docker_backends_give_the_same_score(bench, docker_client) -> None:
    entry = get_entry(bench.submissions_dir, "template")
    got = {}
    for backend in ("docker", "local"):
        outcome = run_one(
            make_ctx(bench, docker_client, backend=backend), entry, "default", 0, "tiny-ndvi"
        )
        assert outcome.record.status == "ok", outcome.record.detail
        got[backend] = outcome.record
    local, docker_ = got["local"], got["docker"]
    assert local.isolated is False and docker_.isolated is True
    assert local.run_id != docker_.run_id
    assert local.score is not None and docker_.score is not None
    # as JSON, where an undefined metric (NaN) is null and equals itself
    assert local.score.to_json()["metrics"] == docker_.score.to_json()["metrics"]
    assert local.score.to_json()["chips"] == docker_.score.to_json()["chips"]
    # both publish, as two runs (the local one is marked unisolated)
    records = [RunFolder(bench.runs_dir / r.run_id).load() for r in got.values()]
    assert len({r.key_hash for r in records}) == 2


def test_cli_run_prints_the_score_and_exits_0(bench, template_run) -> None:
    result = cli(bench, "run", "template", "--dataset", "tiny", "--profile", "test")
    assert result.exit_code == 0, result.output
    assert "iou=" in result.output and "skipped" in result.output


def test_validate_passes_the_template(bench) -> None:
    result = cli(
        bench, "validate", str(bench.submissions_dir / "template.toml"), "--profile", "test"
    )
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output and "val iou" in result.output
    # every dataset the entry is scored on ran (both tasks), each said so on one line
    out = result.output
    assert "== tiny (flood, variant default) ==" in out and "val mse" in out
    assert re.search(r"^  tiny +PASS$", out, re.M) and re.search(r"^  tiny-ndvi +PASS$", out, re.M)
    assert out.rstrip().splitlines()[-1].startswith("next: `sarbench submit ")


def test_a_new_entry_validates_as_it_is(bench) -> None:
    made = cli(bench, "new", "acme", "--task", "flood", "--team", "Acme Labs")
    assert made.exit_code == 0, made.output
    entry = load_entry(bench.submissions_dir / "acme.toml")
    assert (entry.team, entry.tasks, entry.baseline) == ("Acme Labs", ("flood",), False)
    assert entry.contact and entry.description  # every field filled
    again = cli(bench, "new", "acme")
    assert again.exit_code == 2 and "exists already" in again.output
    result = cli(bench, "validate", "acme", "--profile", "test")
    assert result.exit_code == 0, result.output
    out = result.output
    assert re.search(r"^  tiny +PASS$", out, re.M), out
    # a flood dataset known but not prepared here is named, with the command that prepares it
    assert re.search(
        r"^  flood-synth +SKIPPED: not prepared here: `sarbench datasets prepare", out, re.M
    )
    assert "tiny-ndvi" not in out  # not one of its tasks
    assert out.rstrip().splitlines()[-1] == (
        "next: `sarbench submit acme --out acme.sarbench` writes the file to send to the "
        "maintainers (docs/competing.md)"
    )


def test_validate_lists_the_problems_of_a_broken_copy(bench, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(bench.submissions_dir / "template", broken)
    code = (broken / "entry.py").read_text()
    code = code.replace('dtype = "uint8"', 'dtype = "float32"').replace(
        "for i, path in enumerate(inputs, 1):", "for i, path in enumerate(inputs[1:], 1):"
    )
    (broken / "entry.py").write_text(code)
    result = cli(
        bench, "validate", str(broken), "--task", "flood", "--dataset", "tiny", "--profile", "test"
    )
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output
    assert "val_00" in result.output and "missing" in result.output
    # each kind of problem is one line (files of one kind are grouped), with the fix
    dtype = [line for line in result.output.splitlines() if "float32" in line]
    assert len(dtype) == 1 and "fix: convert before writing" in dtype[0], result.output
    assert "next: fix the problems above" in result.output


def test_validate_takes_an_image_by_name(bench, template_run) -> None:
    # the harness named the template's image after the entry and its ID
    digest = template_run.record.image_digest
    assert digest is not None
    name = f"sarbench-entry/template:{digest.removeprefix('sha256:')[:12]}"
    result = cli(
        bench, "validate", name, "--task", "flood", "--dataset", "tiny", "--profile", "test",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output
