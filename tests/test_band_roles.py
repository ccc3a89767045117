"""Band roles (issue 14): datasets say what their bands are, entries say what they need,
and the plan runs each variant only where its roles fit, listing the others as skipped.

Unit tests of the roles (from names, from a manifest), of entry files, of plans and of the
containers' second line of defence, then ``sarbench run threshold`` with the local backend
on a tiny VV/VH flood dataset: only ``single-band`` runs and is recorded."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from baselines import prithvi, threshold
from baselines.contract import ContractError, RunConfig
from harness.bands import PRE_POST, VV_VH, DatasetFacts, band_roles, roles_from_names
from harness.datasets import ops
from harness.datasets.manifest import Manifest
from harness.entries import EntryError, get_entry, load_entries, load_entry
from harness.errors import ManifestError, SarbenchError
from harness.record import load_records
from harness.runner.plan import dataset_facts, make_plan
from harness.runner.run import EntryMismatchError, check_supported
from harness.settings import REPO_ROOT, Settings
from harness.tasks import TASKS
from sarbench_io import read_run_config, run_band_roles
from tests.helpers import VV_VH_BANDS, TinySource
from tests.runner_support import TEST_PROFILE, bench_settings, cli

SUBMISSIONS = REPO_ROOT / "submissions"
FLOOD_SYNTH = Manifest.load(REPO_ROOT / "datasets" / "flood-synth" / "manifest.json")
FACTS = {
    "flood-synth": DatasetFacts.of(FLOOD_SYNTH),
    "ndvi-synth": DatasetFacts.of(
        Manifest.load(REPO_ROOT / "datasets" / "ndvi-synth" / "manifest.json")
    ),
    "sen1floods11": DatasetFacts("sen1floods11", "flood", ("VV_db", "VH_db"), VV_VH),
    "flood-study": DatasetFacts("flood-study", "flood", ("band1", "band2"), None),
    "farms": DatasetFacts("farms", "ndvi", ("VV_db", "VH_db"), VV_VH, ("train", "val", "test")),
}


def facts(name: str) -> DatasetFacts:
    return FACTS[name]


# -- roles of a dataset -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bands", "roles"),
    [
        (("VV_pre_db", "VV_post_db"), PRE_POST),  # flood-synth
        (("pre_VV_db", "post_VV_db"), PRE_POST),
        (("VV_preflood", "VV_postflood"), PRE_POST),
        (("VV_db", "VH_db"), VV_VH),  # Sen1Floods11, ndvi-synth
        (("S1_VV", "S1_VH"), VV_VH),
        (("VH_db", "VV_db"), ("VH", "VV")),  # in band order
        (("band1", "band2"), None),  # a folder import without band descriptions
        (("VV_pre", "VH_post"), None),  # two polarisations: not "one polarisation"
        (("VV_pre", "VV"), None),  # a dated band beside an undated one
        (("VV", "VV"), None),
        (("pre_post", "post"), None),
    ],
)
def test_roles_are_read_off_band_names_only_where_unambiguous(bands, roles) -> None:
    assert roles_from_names(bands) == roles


def test_the_committed_datasets_have_the_roles_their_tasks_allow() -> None:
    assert TASKS["flood"].band_layouts == (PRE_POST, VV_VH)
    assert TASKS["ndvi"].band_layouts == (VV_VH,)
    assert FLOOD_SYNTH.band_roles is None  # not declared: read off its band names
    assert band_roles(FLOOD_SYNTH) == PRE_POST
    assert FACTS["ndvi-synth"].roles == VV_VH


def test_a_manifest_declares_roles_that_win_over_names_and_enter_its_digest() -> None:
    declared = dataclasses.replace(FLOOD_SYNTH, bands=("band1", "band2"), band_roles=PRE_POST)
    assert band_roles(declared) == PRE_POST
    assert band_roles(dataclasses.replace(declared, band_roles=None)) is None
    raw = declared.to_dict()
    assert raw["band_roles"] == ["pre", "post"]
    back = Manifest.from_dict(json.loads(json.dumps(raw)))
    assert back.band_roles == PRE_POST and back.digest == declared.digest
    # like groups: only a manifest that has roles has them in its digest
    assert "band_roles" not in FLOOD_SYNTH.to_dict()
    assert declared.digest != dataclasses.replace(declared, band_roles=None).digest
    assert dataclasses.replace(declared, band_roles=VV_VH).digest != declared.digest
    # a hand edit of the roles is caught by the digest
    with pytest.raises(ManifestError, match="does not match its content"):
        Manifest.from_dict(raw | {"band_roles": ["VV", "VH"]})
    for bad, phrase in (
        (["VV", "XX"], "'band_roles': unknown band role 'XX'"),
        (["VV"], "'band_roles': 1 band role(s) for 2 band(s)"),
        (["VV", "VV"], "'band_roles': band roles repeat"),
        ("pre,post", "'band_roles': band roles must be a list of strings"),
    ):
        with pytest.raises(ManifestError, match=re.escape(phrase)):
            Manifest.from_dict(raw | {"band_roles": bad})


# -- what entries need --------------------------------------------------------------------


def test_baselines_declare_roles_not_dataset_names() -> None:
    entries = load_entries(SUBMISSIONS)
    for entry in entries.values():
        assert entry.datasets == (), entry.name
    t = entries["threshold"]
    for variant in ("default", "otsu", "smoothed"):
        assert t.roles_for(variant) == (PRE_POST,)
    assert t.roles_for("single-band") == (VV_VH,)
    assert "requires_roles" not in t.resolve_options("single-band", "quick")
    assert entries["prithvi"].roles_for("temporal") == (PRE_POST,)
    assert entries["prithvi"].roles_for("patch-embed") == ()
    assert entries["unet"].roles_for("default") == ()
    assert all(entries["pix2pix"].roles_for(v) == (VV_VH,) for v in entries["pix2pix"].variants)
    assert entries["template"].roles_for("default") == (PRE_POST, VV_VH)
    assert [entries[n].default_dataset() for n in ("threshold", "pix2pix", "template")] == [
        "flood-synth",
        "ndvi-synth",
        "flood-synth",
    ]


HEAD = 'name = "m"\nteam = "t"\ncontact = "c"\n'
IMAGE = '[image]\nref = "sha256:' + "ab" * 32 + '"\n'


def _entry(tmp_path: Path, body: str):
    path = tmp_path / "m.toml"
    path.write_text(HEAD + body)
    return load_entry(path)


def test_requires_roles_forms_and_mistakes(tmp_path: Path) -> None:
    entry = _entry(
        tmp_path,
        'tasks = ["flood"]\nrequires_roles = [["pre", "post"], ["VV", "VH"]]\n' + IMAGE
        + "[variants.a]\n[variants.b]\nrequires_roles = []\nx = 1\n"
        + '[variants.c]\nrequires_roles = ["VV", "VH"]\n',
    )  # fmt: skip
    assert entry.roles_for("a") == (PRE_POST, VV_VH)
    assert entry.roles_for("b") == ()  # [] in a variant: any roles
    assert entry.roles_for("c") == (VV_VH,)
    assert entry.variants["b"] == {"x": 1}  # not an option: never reaches the container
    with pytest.raises(EntryError) as info:
        _entry(
            tmp_path,
            'tasks = ["ndvi"]\nrequires_roles = ["pre", "post"]\n' + IMAGE
            + '[options]\nrequires_roles = ["VV", "VH"]\n'
            + '[variants.a]\nrequires_roles = ["VV", "HH"]\n'
            + '[variants.b]\nrequires_roles = "VV"\n',
        )  # fmt: skip
    text = str(info.value)
    for phrase in (
        "`requires_roles`: pre/post is not a band layout of task(s) ndvi (theirs: VV/VH)",
        "`options.requires_roles`: the band roles an entry needs are not an option",
        "`variants.a.requires_roles`: unknown band role 'HH'",
        "`variants.b.requires_roles` must be a list of band roles",
    ):
        assert phrase in text, phrase


def test_an_entry_without_datasets_runs_on_every_dataset_of_its_task_whose_roles_fit() -> None:
    unet = get_entry(SUBMISSIONS, "unet")
    for name in ("flood-synth", "sen1floods11", "flood-study"):
        assert unet.why_not(facts(name), "default") is None, name
    assert "is for task ndvi; the entry does flood" in str(unet.why_not(facts("ndvi-synth")))
    t = get_entry(SUBMISSIONS, "threshold")
    assert t.why_not(facts("sen1floods11"), "single-band") is None
    assert t.why_not(facts("sen1floods11"), "otsu") == (
        "needs bands pre/post; sen1floods11's bands are VV/VH (VV_db, VH_db)"
    )
    assert "are not known" in str(t.why_not(facts("flood-study"), "default"))
    with pytest.raises(EntryMismatchError, match="prithvi/temporal does not run on sen1floods11"):
        check_supported(get_entry(SUBMISSIONS, "prithvi"), facts("sen1floods11"), "temporal")
    check_supported(get_entry(SUBMISSIONS, "prithvi"), facts("sen1floods11"), "patch-embed")


def test_an_entry_that_still_lists_datasets_is_restricted_to_them(tmp_path: Path) -> None:
    entry = _entry(tmp_path, 'tasks = ["flood"]\ndatasets = ["sen1floods11"]\n' + IMAGE)
    assert entry.default_dataset() == "sen1floods11"
    assert entry.why_not(facts("sen1floods11"), "default") is None
    reason = entry.why_not(facts("flood-synth"), "default")
    assert reason is not None and "restricts it to dataset(s) sen1floods11" in reason
    plan = make_plan([entry], "quick", [0], facts=facts, dataset="flood-synth")
    assert plan.runs == () and [s.variants for s in plan.skipped] == [("default",)]


# -- plans --------------------------------------------------------------------------------


def test_threshold_on_vv_vh_runs_single_band_and_skips_change_detection() -> None:
    entry = get_entry(SUBMISSIONS, "threshold")
    plan = make_plan([entry], "quick", [0, 1], facts=facts, dataset="sen1floods11")
    assert [(r.variant, r.seed, r.dataset) for r in plan] == [
        ("single-band", 0, "sen1floods11"),
        ("single-band", 1, "sen1floods11"),
    ]
    (skip,) = plan.skipped
    assert skip.variants == ("default", "otsu", "smoothed")
    assert skip.line() == (
        "skipped threshold/default, otsu, smoothed on sen1floods11: needs bands pre/post; "
        "sen1floods11's bands are VV/VH (VV_db, VH_db)"
    )
    assert plan.to_dict()["skipped"][0]["variants"] == ["default", "otsu", "smoothed"]


def test_pix2pix_pretraining_needs_a_pretrain_split() -> None:
    """A folder-imported ndvi dataset has no second-sensor ``pretrain`` split: only the
    variant without pre-training runs there; on ndvi-synth every variant does."""
    entry = get_entry(SUBMISSIONS, "pix2pix")
    plan = make_plan([entry], "quick", [0], facts=facts, dataset="farms")
    assert [(r.variant, r.dataset) for r in plan] == [("no-pretrain", "farms")]
    (skip,) = plan.skipped
    assert skip.line() == (
        "skipped pix2pix/full, no-finetune, no-sar-indexes, no-train-aug, no-tta on farms: "
        "needs a pretrain split; farms has train, val, test"
    )
    assert len(make_plan([entry], "quick", [0], facts=facts, dataset="ndvi-synth").runs) == 6


def test_requires_splits_is_not_an_option(tmp_path: Path) -> None:
    toml = (SUBMISSIONS / "template.toml").read_text()
    (tmp_path / "template.toml").write_text(toml + '\n[profiles.quick]\nrequires_splits = ["x"]\n')
    with pytest.raises(EntryError, match="the splits an entry needs are not an option"):
        load_entry(tmp_path / "template.toml")


def test_on_flood_synth_the_change_detection_variants_run() -> None:
    entries = [get_entry(SUBMISSIONS, n) for n in ("threshold", "prithvi", "unet")]
    plan = make_plan(entries, "quick", [0], facts=facts)  # each entry's default: flood-synth
    assert [(r.entry, r.variant, r.dataset) for r in plan] == [
        ("threshold", "default", "flood-synth"),
        ("threshold", "otsu", "flood-synth"),
        ("threshold", "smoothed", "flood-synth"),
        ("prithvi", "patch-embed", "flood-synth"),
        ("prithvi", "temporal", "flood-synth"),
        ("unet", "default", "flood-synth"),
    ]
    assert [s.line() for s in plan.skipped] == [
        "skipped threshold/single-band on flood-synth: needs bands VV/VH; flood-synth's "
        "bands are pre/post (VV_pre_db, VV_post_db)"
    ]
    on_vv_vh = make_plan(entries, "quick", [0], facts=facts, dataset="sen1floods11")
    assert [(r.entry, r.variant) for r in on_vv_vh] == [
        ("threshold", "single-band"),
        ("prithvi", "patch-embed"),
        ("unet", "default"),
    ]
    assert [(s.entry, s.variants) for s in on_vv_vh.skipped] == [
        ("threshold", ("default", "otsu", "smoothed")),
        ("prithvi", ("temporal",)),
    ]


def test_a_plan_with_nothing_left_says_why() -> None:
    entries = [get_entry(SUBMISSIONS, n) for n in ("threshold", "pix2pix")]
    plan = make_plan(entries, "quick", [0], facts=facts, dataset="flood-study")
    assert [(s.entry, s.reason.split(";")[0]) for s in plan.skipped] == [
        ("threshold", "needs bands pre/post"),
        ("threshold", "needs bands VV/VH"),
        ("pix2pix", "flood-study is for task flood"),
    ]
    with pytest.raises(SarbenchError, match="nothing to run") as info:
        plan.require_runs()
    assert "skipped pix2pix/full, no-pretrain" in str(info.value)


# -- containers: the run config and the second line of defence ----------------------------


def _config(roles: tuple[str, ...] | None, bands=("VV_db", "VH_db"), **options) -> RunConfig:
    return RunConfig(
        phase="train", task="flood", dataset="d", dataset_digest="sha256:0", entry="e",
        variant="v", options=options, seed=0, profile="quick", time_budget_s=60.0,
        bands=tuple(bands), band_roles=roles,
    )  # fmt: skip


def test_older_run_configs_still_read_and_get_roles_from_band_names(tmp_path: Path) -> None:
    old = {
        "contract": 1, "phase": "train", "task": {"name": "flood", "input_bands": 2},
        "dataset": {"name": "d", "digest": "sha256:0", "bands": ["VV_pre_db", "VV_post_db"]},
        "entry": "e", "variant": "v", "options": {}, "seed": 0, "profile": "quick",
        "time_budget_s": 60, "resources": {},
    }  # fmt: skip
    path = tmp_path / "run.json"
    path.write_text(json.dumps(old))
    assert run_band_roles(read_run_config(path)) == PRE_POST
    assert RunConfig.load(path).band_roles == PRE_POST
    old["dataset"]["band_roles"] = ["VV", "VH"]  # declared: wins over the names
    path.write_text(json.dumps(old))
    assert RunConfig.load(path).band_roles == VV_VH
    old["dataset"]["band_roles"] = None  # the harness says: not known
    path.write_text(json.dumps(old))
    assert RunConfig.load(path).band_roles is None


def test_baselines_refuse_variants_on_roles_they_cannot_use() -> None:
    difference = threshold.ThresholdOptions()
    single = threshold.ThresholdOptions(method="band", band=0)
    threshold.check_roles(_config(PRE_POST), difference)
    threshold.check_roles(_config(VV_VH), single)
    threshold.check_roles(_config(PRE_POST), dataclasses.replace(single, band=1))  # post
    with pytest.raises(ContractError, match=r"needs bands pre/post; the bands of d .* are VV/VH"):
        threshold.check_roles(_config(VV_VH), difference)
    with pytest.raises(ContractError, match="have no known roles"):
        threshold.check_roles(_config(None, bands=("band1", "band2")), difference)
    with pytest.raises(ContractError, match="band 0 is pre"):
        threshold.check_roles(_config(PRE_POST), single)
    temporal = prithvi.PrithviOptions(adapter="temporal")
    prithvi.check_roles(_config(PRE_POST), temporal)
    prithvi.check_roles(_config(VV_VH), prithvi.PrithviOptions(adapter="patch-embed"))
    with pytest.raises(ContractError, match=r"adapter 'temporal'.*needs bands pre/post"):
        prithvi.check_roles(_config(VV_VH), temporal)


# -- the command line ---------------------------------------------------------------------


@pytest.fixture
def vv_vh_bench(tmp_path: Path) -> Settings:
    """The repository's entries, a `test` profile and a tiny VV/VH flood dataset."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "test.toml").write_text(TEST_PROFILE)
    settings = bench_settings(tmp_path, SUBMISSIONS, profiles)
    ops.materialise(settings, TinySource(name="tiny-vv", bands=VV_VH_BANDS), progress=False)
    return settings


def test_cli_run_threshold_on_vv_vh_records_only_single_band(vv_vh_bench: Settings) -> None:
    assert dataset_facts(vv_vh_bench)("tiny-vv").roles == VV_VH
    args = ("--dataset", "tiny-vv", "--backend", "local", "--profile", "test")
    result = cli(vv_vh_bench, "run", "threshold", *args)
    assert result.exit_code == 0, result.output
    assert (
        "skipped threshold/default, otsu, smoothed on tiny-vv: needs bands pre/post; "
        "tiny-vv's bands are VV/VH (VV_db, VH_db)"
    ) in result.output
    assert "threshold/single-band seed 0" in result.output
    assert "1 run(s), 0 failed, 3 variant(s) skipped" in result.output
    records = list(load_records(vv_vh_bench.runs_dir))
    assert [(r.variant, r.status) for r in records] == [("single-band", "ok")]
    assert records[0].score is not None and records[0].primary > 0.9  # the label: VV < -14
    run_dir = vv_vh_bench.runs_dir / records[0].run_id
    for phase in ("train", "predict"):
        config = json.loads((run_dir / "config" / f"{phase}.json").read_text())
        assert config["dataset"]["band_roles"] == ["VV", "VH"]
    # nothing applicable left: an error that says why, and nothing more is recorded
    result = cli(vv_vh_bench, "run", "threshold", "--variant", "otsu", *args)
    assert result.exit_code == 2, result.output
    assert "nothing to run" in result.output and "needs bands pre/post" in result.output
    assert len(list(load_records(vv_vh_bench.runs_dir))) == 1
