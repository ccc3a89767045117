"""The README's main job, for real: ``sarbench demo`` on a fresh work folder prepares the
embedded datasets, runs every baseline and variant through the docker backend under the
quick profile, publishes to MLflow and builds the site. The longest test of the suite
(several minutes on 2 cores): every baseline is trained."""

from __future__ import annotations

import itertools
import json
import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.conditions.probe import conditions
from harness.conditions.profiles import get_profile
from harness.entries import load_entries
from harness.leaderboard.plots import TIME_COLUMN, series_names
from harness.record import RunRecord, load_records
from harness.runner.executor import fair_share
from harness.runner.plan import dataset_facts
from harness.scoring.chipstats import STATS_TYPES
from harness.scoring.stats import paired_test
from harness.settings import REPO_ROOT, Settings
from tests.marks import check_marks

pytestmark = [pytest.mark.docker, pytest.mark.slow]
pytest_plugins = ["tests.docker_support"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, docker_client, base_image, embedded) -> dict:
    """The demo on a fresh work folder; the data root is the session's already prepared
    embedded datasets (the demo verifies them and skips preparing)."""
    home = tmp_path_factory.mktemp("demo-home")
    args = ["--home", str(home), "--data-root", str(embedded.data_root)]
    result = CliRunner().invoke(main, [*args, "demo", "--backend", "docker"])
    assert result.exit_code == 0, result.output
    settings = Settings.load(home=home, data_root=embedded.data_root)
    return {
        "output": result.output,
        "home": home,
        "args": args,
        "records": list(load_records(settings.runs_dir)),
    }


def test_every_baseline_and_variant_is_scored_with_its_options(demo: dict) -> None:
    entries = [e for e in load_entries(REPO_ROOT / "submissions").values() if e.baseline]
    facts = dataset_facts(Settings.load(home=demo["home"]))
    # every variant that applies to the band roles of its entry's embedded dataset
    want = {
        (e.name, v)
        for e in entries
        for v in e.variants
        if not e.why_not(facts(e.default_dataset()), v)
    }
    assert ("threshold", "single-band") not in want and ("prithvi", "temporal") in want
    got = {(r.entry.name, r.variant): r for r in demo["records"]}
    assert set(got) == want
    # the others are listed with the reason, and nothing of them is recorded
    assert (
        "skipped threshold/single-band on flood-synth: needs bands VV/VH; flood-synth's bands "
        "are pre/post (VV_pre_db, VV_post_db)"
    ) in demo["output"]
    for (name, variant), record in got.items():
        assert record.status == "ok", (name, variant, record.detail)
        assert (record.isolated, record.backend) == (True, "docker")
        assert record.profile_name == "quick"
        entry = next(e for e in entries if e.name == name)
        assert dict(record.options) == entry.resolve_options(variant, "quick")
        assert record.score is not None and record.score.n_chips > 0


def test_unet_beats_the_threshold_by_more_than_the_interval(demo: dict) -> None:
    by = {(r.entry.name, r.variant): r for r in demo["records"]}
    unet, threshold = by[("unet", "default")], by[("threshold", "default")]
    assert unet.score is not None and threshold.score is not None
    assert unet.score.low > threshold.score.high
    # and chip by chip: the paired interval of the difference excludes zero
    a, b = _stats(unet), _stats(threshold)
    groups = unet.score.groups
    assert groups is not None and len(set(groups)) >= 10  # independent blocks of the test
    paired = paired_test(a[0], a[1], b[0], b[1], "iou", groups=groups)
    assert paired.low > 0 and paired.better == "a"


def _stats(record: RunRecord):
    assert record.score is not None
    chips = record.score.chips
    kind = STATS_TYPES[record.task.name]
    names = list(chips[0].stats)
    columns = {n: np.array([float(c.stats[n]) for c in chips]) for n in names}
    return [c.id for c in chips], kind(**columns)


def test_the_site_and_mlflow_hold_every_run(demo: dict) -> None:
    site = Path(demo["home"]) / "site"
    index = (site / "index.html").read_text()
    assert "flood-synth" in index and "ndvi-synth" in index
    pages = "\n".join(p.read_text() for p in site.rglob("index.html"))
    for name in ("threshold", "unet", "prithvi", "pix2pix"):
        assert name in pages
    assert "no-pretrain" in pages and "no-tta" in pages
    # quick runs of prithvi train without its weights: never shown as the pretrained model
    ranking = json.loads((site / "flood" / "flood-synth" / "ranking.json").read_text())
    prithvi = [r for r in ranking if r["entry"] == "prithvi"]
    assert prithvi and all(r["pretrained"] is False for r in prithvi)
    assert {r["pretrained"] for r in ranking if r["entry"] != "prithvi"} == {None}
    board = (site / "flood" / "flood-synth" / "index.html").read_text()
    assert board.count(">prithvi (random init)<") == len(prithvi)
    # a real run's loss plot: the losses on the loss axis, time never drawn as a curve
    unet = (site / "flood" / "flood-synth" / "unet" / "default" / "index.html").read_text()
    plots = [series_names(svg) for svg in re.findall(r"<svg.*?</svg>", unet, re.S)]
    drawn = [name for p in plots for names in p.values() for name in names]
    assert any(p["loss"] for p in plots) and all("loss" in n for p in plots for n in p["loss"])
    assert drawn and not any(TIME_COLUMN.search(name) for name in drawn)
    ndvi = (site / "ndvi" / "ndvi-synth" / "index.html").read_text()
    assert "Ablation matrix: pix2pix" in ndvi
    assert "file://" in demo["output"] and "mlflow ui --backend-store-uri" in demo["output"]
    from harness.publish.mlflow_store import connect

    db = Path(demo["home"]) / "mlflow" / "mlflow.db"
    client = connect(f"sqlite:///{db}")
    runs = [
        run
        for exp in client.search_experiments()
        for run in client.search_runs([exp.experiment_id], max_results=500)
        if "sarbench.board_run" not in run.data.tags  # a board's parent run: no record
    ]
    assert len(runs) == len(demo["records"])


def test_the_demo_boards_marks_never_contradict_themselves(demo: dict) -> None:
    """Every comparison on the boards built from the demo's runs: the words, the adjusted
    p-value and the interval agree, and "better" follows the metric's direction."""
    site = Path(demo["home"]) / "site"
    checked = 0
    for board in ("flood/flood-synth", "ndvi/ndvi-synth"):
        direction = "higher" if board.startswith("flood") else "lower"
        ranking = json.loads((site / board / "ranking.json").read_text())
        assert ranking[0]["vs_leader_verdict"] is None
        checked += check_marks(ranking, "vs_leader", direction)
        pairs = json.loads((site / board / "pairwise.json").read_text())
        checked += check_marks(pairs, "a_vs_b", direction)
        for table in (site / board).glob("ablation-*.json"):
            checked += check_marks(json.loads(table.read_text()), "vs_reference", direction)
    assert checked >= 10
    for record in demo["records"]:  # every demo run says which test it was scored on
        assert record.test_kind == "demo", record.run_id
    index = (site / "index.html").read_text()
    assert "demo test" in index


def test_a_real_runs_configs_reach_mlflow_and_its_entry_page(demo: dict) -> None:
    """The runner's own run folder (not a factory's): config/train.json and
    config/predict.json are MLflow artifacts and are shown on the entry page."""
    from harness.publish.mlflow_store import connect

    unet = next(r for r in demo["records"] if r.entry.name == "unet")
    folder = Path(demo["home"]) / "runs" / unet.run_id
    configs = {p.name: json.loads(p.read_text()) for p in (folder / "config").glob("*.json")}
    assert set(configs) == {"train.json", "predict.json"}
    assert configs["train.json"]["options"] == dict(unet.options)
    client = connect(f"sqlite:///{Path(demo['home']) / 'mlflow' / 'mlflow.db'}")
    (run,) = [
        run
        for exp in client.search_experiments()
        for run in client.search_runs([exp.experiment_id], max_results=500)
        if run.info.run_name == unet.run_id  # an entry run is named by its record's run ID
    ]
    listed = {a.path for a in client.list_artifacts(run.info.run_id, "config")}
    assert {"config/train.json", "config/predict.json"} <= listed
    page = Path(demo["home"]) / "site" / "flood" / "flood-synth" / "unet" / "default"
    html = (page / "index.html").read_text()
    assert "train.json" in html and "predict.json" in html
    assert (page / unet.run_id / "config" / "predict.json").is_file()


def test_running_the_demo_again_skips_every_run(demo: dict) -> None:
    before = {r.run_id: json.dumps(r.to_json(), sort_keys=True) for r in demo["records"]}
    result = CliRunner().invoke(main, [*demo["args"], "demo", "--backend", "docker"])
    assert result.exit_code == 0, result.output
    assert result.output.count("recorded before") == len(before)
    settings = Settings.load(home=demo["home"])
    after = {
        r.run_id: json.dumps(r.to_json(), sort_keys=True) for r in load_records(settings.runs_dir)
    }
    assert after == before


def test_the_demos_runs_go_side_by_side_each_with_the_profiles_one_core(demo: dict) -> None:
    """The demo makes as many runs at a time as the machine holds the quick profile's one
    core and 8 GiB (two on a 2-core CI machine), and says so; every record has the same
    profile (one CPU) and one fingerprint, so that the board pools them all."""
    records = demo["records"]
    assert {r.profile["cpus"] for r in records} == {1.0}
    assert len({r.fingerprint for r in records}) == 1
    profile = get_profile(REPO_ROOT / "profiles", "quick")
    at_once = fair_share(conditions(profile, allow_mismatch=True))
    spans = sorted(
        (datetime.fromisoformat(r.started_at), datetime.fromisoformat(r.finished_at))
        for r in records
    )
    overlapped = any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))
    if at_once > 1:
        assert f"{at_once} runs at a time, each with 1 CPU(s)" in demo["output"]
        assert overlapped
    else:
        assert not overlapped
