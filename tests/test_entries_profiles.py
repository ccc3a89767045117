"""Entry files, conditions profiles, the machine probe, run keys, records and plans: the
parts of the runner that need no engine."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

import pytest

from harness.bands import PRE_POST, VV_VH, DatasetFacts
from harness.conditions.probe import (
    ConditionsMismatchError,
    GpuSampler,
    Machine,
    check,
    conditions,
    parse_gpus,
    probe,
)
from harness.conditions.profiles import ProfileError, get_profile, load_profile, parse_size
from harness.entries import EntryError, get_entry, load_entries, load_entry
from harness.errors import SarbenchError, UnknownNameError
from harness.record import (
    EntryInfo,
    RecordError,
    RecordKey,
    RunFolder,
    RunRecord,
    TaskInfo,
    load_records,
)
from harness.runner.plan import make_plan
from harness.runner.records import RunBusyError, run_lock
from harness.settings import REPO_ROOT
from tests.records_factory import key_of

SMI = (
    "NVIDIA H100 80GB HBM3, GPU-6f0c1a2b-1111-2222-3333-444455556666, 550.54.15, 1980, 81559\n"
    "NVIDIA A100-SXM4-40GB, GPU-aaaa, 535.1, [N/A], 40960\n"
)


def _machine(cpus: int = 16, gib: int = 128, smi: str = SMI) -> Machine:
    return Machine(cpu_model="Test CPU", cpus=cpus, memory_bytes=gib * 2**30, gpus=parse_gpus(smi))


def test_every_committed_entry_and_profile_loads() -> None:
    entries = load_entries(REPO_ROOT / "submissions")
    assert "template" in entries
    for entry in entries.values():
        for variant in entry.variants:
            for profile in ("quick", "paper"):
                entry.resolve_options(variant, profile)
    for name in ("quick", "paper"):
        get_profile(REPO_ROOT / "profiles", name)


def test_options_resolve_base_then_profile_then_variant(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text(
        """
name = "m"
team = "t"
contact = "c"
tasks = ["flood"]
datasets = ["flood-synth"]
[image]
ref = "sha256:abababababababababababababababababababababababababababababababab"
[options]
epochs = 30
tta = true
[profiles.quick]
epochs = 2
[variants.full]
[variants.no-tta]
tta = false
epochs = 5
"""
    )
    entry = load_entry(path)
    assert entry.default_variant == "full"
    assert entry.resolve_options("full", "quick") == {"epochs": 2, "tta": True}
    assert entry.resolve_options("full", "paper") == {"epochs": 30, "tta": True}
    assert entry.resolve_options("no-tta", "quick") == {"epochs": 5, "tta": False}
    with pytest.raises(UnknownNameError, match="Did you mean 'no-tta'"):
        entry.check_variant("no-ta")


def test_a_malformed_entry_lists_every_problem_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        """
name = "Bad Name"
team = ""
tasks = ["floood"]
datasets = "flood-synth"
phases = ["predict", "train"]
colour = "blue"
[image]
ref = "x:1"
context = "."
[options]
nested = { a = 1 }
"bad key!" = 1
"""
    )
    with pytest.raises(EntryError) as info:
        load_entry(path)
    text = str(info.value)
    assert str(path) in text
    for phrase in (
        "unknown key `colour`",
        "lower-case",
        "must equal the file name stem",
        "`team` must be a non-empty string",
        "`contact` is required",
        "unknown task 'floood'",
        "`datasets` must be a non-empty list",
        "`phases` must be",
        "exactly one of `ref`",
        "option `options.nested`",
        "option name `options.'bad key!'`",
    ):
        assert phrase in text, phrase


def test_entry_file_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(EntryError, match="file not found"):
        load_entry(tmp_path / "none.toml")
    (tmp_path / "x.toml").write_text("name = [")
    with pytest.raises(EntryError, match="not valid TOML"):
        load_entry(tmp_path / "x.toml")
    with pytest.raises(UnknownNameError, match="Did you mean 'template'"):
        get_entry(REPO_ROOT / "submissions", "templat")


def test_a_build_needs_its_context_and_dockerfile(tmp_path: Path) -> None:
    path = tmp_path / "b.toml"
    path.write_text(
        'name = "b"\nteam = "t"\ncontact = "c"\ntasks = ["ndvi"]\ndatasets = ["ndvi-synth"]\n'
        '[image]\ncontext = "nowhere"\ntag = "b:1"\n'
    )
    with pytest.raises(EntryError) as info:
        load_entry(path)
    assert "no such folder" in str(info.value)
    assert "`image.tag` is no longer accepted" in str(info.value)


def test_a_build_stays_in_the_entrys_own_folder(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "Dockerfile").write_text("FROM sarbench-base:bookworm\n")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "Dockerfile").write_text("FROM sarbench-base:bookworm\n")
    head = 'name = "c"\nteam = "t"\ncontact = "c"\ntasks = ["ndvi"]\ndatasets = ["n"]\n'
    path = tmp_path / "c.toml"
    path.write_text(head + '[image]\ncontext = "c"\n')
    assert load_entry(path).image.name == "sarbench-entry/c"
    for context in ("other", ".", ".."):
        path.write_text(head + f'[image]\ncontext = "{context}"\n')
        with pytest.raises(EntryError, match="outside the entry's folder"):
            load_entry(path)
    path.write_text(head + '[image]\nref = "c:latest"\n')
    with pytest.raises(EntryError, match="must be pinned by digest"):
        load_entry(path)


def test_sizes_and_profile_limits(tmp_path: Path) -> None:
    assert parse_size("8GiB") == 8 * 2**30 and parse_size("512MiB") == 512 * 2**20
    assert parse_size(1234) == 1234
    with pytest.raises(ValueError):
        parse_size("lots")
    quick = get_profile(REPO_ROOT / "profiles", "quick")
    assert quick.limits("train").timeout_s == 900 and quick.limits("predict").timeout_s == 300
    assert quick.limits("train").memory_bytes == 8 * 2**30 and quick.gpu_model is None
    paper = get_profile(REPO_ROOT / "profiles", "paper")
    assert paper.limits("train", "GPU-abc").gpu_uuid == "GPU-abc"
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "other"\nseeds = []\n[resources]\nmemory = "lots"\n[limits]\nfoo = 1\n')
    with pytest.raises(ProfileError) as info:
        load_profile(bad)
    for phrase in ("file name stem", "`seeds`", "`resources.memory`", "unknown limit `foo`"):
        assert phrase in str(info.value)


def test_gpu_query_is_parsed_and_the_profile_gpu_is_chosen_by_uuid() -> None:
    gpus = parse_gpus(SMI)
    assert gpus[0].name == "NVIDIA H100 80GB HBM3" and gpus[0].sm_clock_max_mhz == 1980
    assert gpus[0].memory_bytes == 81559 * 2**20 and gpus[1].sm_clock_max_mhz is None
    paper = get_profile(REPO_ROOT / "profiles", "paper")
    mismatches, uuid = check(paper, _machine())
    assert mismatches == [] and uuid == "GPU-6f0c1a2b-1111-2222-3333-444455556666"


def test_a_mismatch_is_refused_unless_allowed_and_then_recorded() -> None:
    paper = get_profile(REPO_ROOT / "profiles", "paper")
    small = _machine(cpus=2, gib=24, smi="")
    with pytest.raises(ConditionsMismatchError) as info:
        conditions(paper, small)
    text = str(info.value)
    assert "8 CPUs" in text and "64.0 GiB" in text and "NVIDIA H100 80GB HBM3" in text
    assert "--allow-mismatch" in text
    allowed = conditions(paper, small, allow_mismatch=True)
    assert allowed.mismatch_allowed and len(allowed.mismatches) == 3 and allowed.gpu_uuid is None
    same = conditions(paper, _machine())
    assert same.fingerprint != allowed.fingerprint  # the GPU model is part of the conditions
    assert same.fingerprint == conditions(paper, _machine(gib=256)).fingerprint


def test_this_machine_is_probed() -> None:
    machine = probe()
    assert machine.cpus >= 1 and machine.memory_bytes > 0 and machine.cpu_model


def test_gpu_sampler_integrates_power_into_energy() -> None:
    sampler = GpuSampler("GPU-x")
    for t, mem, power in ((0.0, 100, 200.0), (1.0, 300, 300.0), (2.0, 200, 100.0)):
        sampler.add(t, f"GPU-x, {mem}, 50, {power}\nGPU-y, 1, 1, 1\n")
    summary = sampler.summary()
    assert summary["peak_memory_bytes"] == 300 * 2**20
    assert summary["energy_j"] == pytest.approx(250 + 200)
    assert summary["gpu_seconds"] == 2.0 and summary["mean_utilization"] == 50


def _key(**changes: object) -> RecordKey:
    return key_of(**{"options": {"epochs": 2}, **changes})


def test_run_ids_follow_the_key() -> None:
    key = _key()
    assert key.run_id.startswith("unet.default.s0.flood-synth.")
    assert key.run_id == _key().run_id
    for change in (
        {"seed": 1},
        {"image_digest": "sha256:other"},
        {"conditions": "sha256:other"},
        {"backend": "local"},
        {"options": {"epochs": 3}},
        {"dataset_digest": "sha256:other"},
    ):
        assert _key(**change).run_id != key.run_id, change


def _record(run_id: str) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        key=_key(),
        task=TaskInfo("flood", "iou", True),
        entry=EntryInfo("unet"),
        status="failed",
        reason="timeout",
    )


def test_records_are_written_once_and_read_back(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "runs" / "r1")
    folder.path.mkdir(parents=True)
    assert folder.read() is None
    folder.save(_record("r1"))
    with pytest.raises(RecordError, match="never overwritten"):
        folder.save(_record("other"))
    assert [r.run_id for r in load_records(tmp_path / "runs")] == ["r1"]
    assert not list(folder.path.glob(".*.tmp"))
    folder.record_path.write_text(json.dumps({"schema": "other"}))
    with pytest.raises(RecordError, match=r"schema is 'other'"):
        folder.read()


def _hold(runs: str, seconds: float) -> None:
    with run_lock(Path(runs), "r1"):
        time.sleep(seconds)


def test_a_run_lock_is_held_across_processes_and_freed_when_its_holder_dies(
    tmp_path: Path,
) -> None:
    ctx = multiprocessing.get_context("fork")
    holder = ctx.Process(target=_hold, args=(str(tmp_path), 30))
    holder.start()
    try:
        for _ in range(100):  # wait until the child holds it
            try:
                with run_lock(tmp_path, "r1", wait=False):
                    time.sleep(0.05)
            except RunBusyError:
                break
        with (
            pytest.raises(RunBusyError, match="another sarbench process"),
            run_lock(tmp_path, "r1", wait=False),
        ):
            pass
    finally:
        holder.kill()
        holder.join()
    with run_lock(tmp_path, "r1", wait=False):  # the kernel freed it with the dead holder
        pass


def test_plans_expand_variants_and_seeds() -> None:
    entry = get_entry(REPO_ROOT / "submissions", "template")
    facts = {
        "flood-synth": DatasetFacts("flood-synth", "flood", ("VV_pre_db", "VV_post_db"), PRE_POST),
        "ndvi-synth": DatasetFacts(
            "ndvi-synth", "ndvi", ("VV_db", "VH_db"), VV_VH, ("train", "val", "test", "pretrain")
        ),
        "sen1floods11": DatasetFacts("sen1floods11", "flood", ("VV_db", "VH_db"), VV_VH),
        "flood-study": DatasetFacts("flood-study", "flood", ("band1", "band2"), None),
    }.__getitem__
    plan = make_plan([entry], "quick", [0], facts=facts, seeds=[1, 2])
    assert [(s.variant, s.seed, s.dataset) for s in plan] == [
        ("default", 1, "flood-synth"),
        ("default", 2, "flood-synth"),
    ]
    assert plan.skipped == ()
    for name in ("ndvi-synth", "sen1floods11"):  # by task and band roles, not by name
        assert make_plan([entry], "quick", [0], facts=facts, dataset=name)[0].dataset == name
    with pytest.raises(UnknownNameError):
        make_plan([entry], "quick", [0], facts=facts, variants=["nope"])
    unknown = make_plan([entry], "quick", [0], facts=facts, dataset="flood-study")
    assert unknown.runs == () and "needs bands pre/post or VV/VH" in unknown.skipped[0].reason
    with pytest.raises(SarbenchError, match="nothing to run"):
        unknown.require_runs()
    with pytest.raises(SarbenchError, match="nothing to run"):
        make_plan([], "quick", [0], facts=facts)


# --- pretrained weights ------------------------------------------------------------------


def test_weights_tables_are_checked_naming_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text(
        'name = "w"\nteam = "t"\ncontact = "c"\ntasks = ["flood"]\nphases = ["predict"]\n'
        '[image]\nref = "x@sha256:' + "0" * 64 + '"\n'
        '[weights]\nfile = "a/b.pt"\nrequired_in = "paper"\nurl = "https://x"\n'
    )
    with pytest.raises(EntryError) as info:
        load_entry(path)
    for phrase in (
        "unknown key `weights.url`",
        "`weights.name` must say what the weights are",
        "`weights.file` must be a file name (no folders), got 'a/b.pt'",
        "`weights.required_in` must be a list of profile names",
        "`[weights]` is mounted in train only",
    ):
        assert phrase in str(info.value), phrase
    spec = get_entry(REPO_ROOT / "submissions", "prithvi").weights
    assert spec is not None and spec.required_in == ("paper",)
    assert spec.missing(None) == "no weights folder"
    assert spec.missing(tmp_path) == f"Prithvi_EO_V1_100M.pt is not in {tmp_path}"
    (tmp_path / "Prithvi_EO_V1_100M.pt").write_bytes(b"weights")
    assert spec.missing(tmp_path) is None


def test_a_paper_run_without_the_declared_weights_is_refused_before_anything_runs(
    tmp_path: Path,
) -> None:
    from click.testing import CliRunner

    from harness.cli import main

    home, other = tmp_path / "home", tmp_path / "other-weights"
    other.mkdir()
    (other / "some.pt").write_bytes(b"not these")
    base = ["--home", str(home), "run", "--baselines", "--profile", "paper"]
    for more in ([], ["--weights", str(other)]):
        result = CliRunner().invoke(main, [*base, "--backend", "local", "--allow-mismatch", *more])
        assert result.exit_code == 2, result.output  # a usage error, as for other refusals
        out = " ".join(result.output.split())
        assert "prithvi needs its pretrained weights under profile 'paper'" in out
        assert (
            "no weights folder" if not more else f"Prithvi_EO_V1_100M.pt is not in {other}"
        ) in out
        assert "or pass --weights DIR" in out and "shown as 'random init'" in out
        assert not (home / "runs").exists() or not any((home / "runs").iterdir())


def test_pretrained_is_what_the_harness_knows_and_a_report_may_only_deny_it(
    tmp_path: Path,
) -> None:
    from harness.runner.run import pretrained_of

    prithvi = get_entry(REPO_ROOT / "submissions", "prithvi")
    unet = get_entry(REPO_ROOT / "submissions", "unet")
    report = tmp_path / "checkpoint_report.json"
    mounted = {"files": [{"name": "Prithvi_EO_V1_100M.pt"}], "digest": "sha256:1"}
    other = {"files": [{"name": "other.pt"}], "digest": "sha256:2"}
    assert pretrained_of(prithvi, None, report) is False  # declared, not mounted
    assert pretrained_of(unet, None, report) is None  # declares none
    assert pretrained_of(prithvi, other, report) is False  # not the declared file
    assert pretrained_of(prithvi, mounted, report) is True
    report.write_text(json.dumps({"pretrained": False}))  # mounted, not loaded (quick)
    assert pretrained_of(prithvi, mounted, report) is False
    report.write_text(json.dumps({"pretrained": True}))
    assert pretrained_of(prithvi, None, report) is False  # a report cannot claim weights
    report.write_text("{not json")
    assert pretrained_of(prithvi, mounted, report) is True


def test_validate_names_a_missing_path_and_suggests_a_close_entry_name(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from harness.cli import main

    def err(*args: str) -> str:
        result = CliRunner().invoke(main, ["--home", str(tmp_path), "validate", *args])
        assert result.exit_code == 2, result.output
        return " ".join(result.output.split())

    assert "unknown entry 'unett'. Did you mean 'unet'?" in err("unett")
    missing = str(tmp_path / "no" / "such" / "dir")
    assert f"{missing}: no such file or folder" in err(missing)
    assert "./nope: no such file or folder" in err("./nope")
    # a name like no entry is an image reference, which needs its task
    assert "give --task (flood or ndvi)" in err("acme/segmenter:1")
