"""The leaderboard site, built from a real MLflow SQLite store in tmp, read back as files
and in headless Chromium (Debian's, at /usr/bin/chromium, driven by Playwright)."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from harness.datasets.loader import SplitDir
from harness.leaderboard.cli import leaderboard
from harness.leaderboard.compare import TOP_CHIPS
from harness.leaderboard.plots import series_names
from harness.leaderboard.site import MARKER, SiteError, SiteSummary, build_site
from harness.numbers import fmt, signed
from harness.publish.mlflow_store import Publisher, connect, tracking_uri
from harness.quicklook import panel_boxes
from harness.record import RecordScore, RunFolder, RunRecord
from harness.scoring.metrics import FloodStats, iou
from harness.scoring.stats import holm, paired_test
from harness.settings import REPO_ROOT, Settings
from tests.helpers import unavailable as needs_unavailable
from tests.marks import check_marks
from tests.records_factory import COMPONENTS, rescore_run, standard_runs
from tests.site_files import SiteFiles

CHROMIUM = Path("/usr/bin/chromium")
RESAMPLES = 2000


@dataclass
class Built(SiteFiles):
    settings: Settings
    uri: str
    out: Path
    summary: SiteSummary
    records: list[RunRecord]

    def records_of(
        self, entry: str, variant: str = "default", backend: str = "docker"
    ) -> list[RunRecord]:
        return sorted(
            (
                r
                for r in self.records
                if (r.entry.name, r.variant, r.backend) == (entry, variant, backend) and r.ok
            ),
            key=lambda r: r.seed,
        )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """Publish the standard runs, then remove the run folders and the data: the site must
    be built from MLflow alone."""
    home = tmp_path_factory.mktemp("leaderboard")
    settings = Settings(home=home, data_root=home / "data", manifests_dir=home / "manifests")
    dirs = standard_runs(settings)
    threshold = next(d for d in dirs if d.name.startswith("threshold."))
    rescore_run(settings, threshold, SplitDir(settings.dataset_dir("flood-synth") / "test"))
    records = [RunFolder(d).load() for d in dirs]
    uri = tracking_uri(settings)
    publisher = Publisher(settings, uri)
    for d in dirs:
        publisher.publish(d)
    shutil.rmtree(home / "runs")
    shutil.rmtree(home / "data")
    out = home / "site"
    summary = build_site(connect(uri), out, n_resamples=RESAMPLES)
    yield Built(settings, uri, out, summary, records)


def test_site_layout(built: Built) -> None:
    assert built.summary.boards == 2 and built.summary.runs == 15
    for rel in (
        "index.html",
        "boards.csv",
        "boards.json",
        "assets/style.css",
        "assets/sort.js",
        MARKER,
        "flood/flood-synth/index.html",
        "flood/flood-synth/ranking.csv",
        "flood/flood-synth/ranking.json",
        "flood/flood-synth/unisolated.json",
        "flood/flood-synth/failed.csv",
        "ndvi/ndvi-synth/ablation-pix2pix.csv",
        "ndvi/ndvi-synth/ablation-pix2pix.json",
        "ndvi/ndvi-synth/pix2pix/full/index.html",
        "flood/flood-synth/unet/default/index.html",
    ):
        assert (built.out / rel).is_file(), rel


def test_index_lists_boards_update_and_conditions(built: Built) -> None:
    page = built.html("index.html")
    assert 'href="flood/flood-synth/index.html"' in page
    assert 'href="ndvi/ndvi-synth/index.html"' in page
    assert "Last update: <strong>2026-11-21 11:02 UTC</strong>" in page  # latest finished_at
    assert "Profile <code>quick</code>" in page
    assert built.records[0].fingerprint in page
    assert "Test CPU @ 2.0GHz" in page
    # the profile as a readable table: units, not raw numbers or a JSON blob
    settings = dict(re.findall(r'<tr><th scope="row">([^<]+)</th><td>([^<]*)</td></tr>', page))
    assert settings["memory"] == "8 GiB" and settings["CPUs"] == "2"
    assert settings["train timeout"] == "30 min" and settings["predict timeout"] == "10 min"
    assert settings["seeds"] == "0, 1" and settings["GPU"] == "none"
    assert "8589934592" not in page and "{" not in page.split("<h2>Conditions</h2>")[1]


def test_official_ranking_has_isolated_ok_runs_only(built: Built) -> None:
    ranking = built.json("flood/flood-synth/ranking.json")
    assert [(r["entry"], r["variant"]) for r in ranking] == [
        ("acme-seg", "default"),
        ("prithvi", "default"),
        ("unet", "default"),
        ("threshold", "default"),
    ]
    assert [r["rank"] for r in ranking] == [1, 2, 3, 4]
    ious = [r["iou"] for r in ranking]
    assert ious == sorted(ious, reverse=True)
    local_ids = {r.run_id for r in built.records if not r.isolated}  # the local backend
    ranked_ids = {i for r in ranking for i in r["run_ids"]}
    assert not local_ids & ranked_ids
    assert not any("s2" in i for i in ranked_ids)  # the failed unet seed
    (unofficial,) = built.json("flood/flood-synth/unisolated.json")
    assert unofficial["entry"] == "acme-seg" and set(unofficial["run_ids"]) == local_ids
    (failed,) = built.json("flood/flood-synth/failed.json")
    assert (failed["entry"], failed["seed"], failed["reason"]) == ("unet", 2, "timeout")
    board = built.html("flood/flood-synth/index.html")
    assert "Unisolated runs (not official)" in board and "timeout" in board
    # prithvi trained without its declared weights: labelled so, in the table and the plot
    assert [r["pretrained"] for r in ranking] == [None, False, None, None]
    assert ">prithvi (random init)<" in board and ">random init<" in board
    assert "prithvi (random init) / default" in board


def test_single_seed_rows_show_the_published_score(built: Built) -> None:
    by_entry = {r["entry"]: r for r in built.json("flood/flood-synth/ranking.json")}
    for entry in ("acme-seg", "prithvi", "threshold"):
        (record,) = built.records_of(entry)
        row, score = by_entry[entry], _score(record)
        assert row["iou"] == pytest.approx(score.metrics["iou"])
        assert row["iou_ci_low"] == pytest.approx(score.low)
        assert row["iou_ci_high"] == pytest.approx(score.high)
        assert row["miou"] == pytest.approx(score.metrics["miou"])
        assert row["seeds"] == [0]
    assert by_entry["prithvi"]["gpu_seconds"] == pytest.approx(42.0)
    assert by_entry["threshold"]["train_s"] is None


def _score(record: RunRecord) -> RecordScore:
    assert record.score is not None, record.run_id
    return record.score


def _flood_stats(records: list[RunRecord]) -> tuple[list[str], FloodStats]:
    """Per-chip confusion counts summed over the records (seeds), straight from the records."""
    ids = [c.id for c in _score(records[0]).chips]
    fields = {}
    for name in ("tp", "fp", "fn", "tn"):
        fields[name] = np.sum(
            [[c.stats[name] for c in _score(r).chips] for r in records], axis=0
        ).astype(np.float64)
    return ids, FloodStats(**fields)


def test_several_seeds_pool_chip_by_chip(built: Built) -> None:
    unet = next(r for r in built.json("flood/flood-synth/ranking.json") if r["entry"] == "unet")
    records = built.records_of("unet")
    assert unet["seeds"] == [0, 1]
    _, stats = _flood_stats(records)
    assert unet["iou"] == pytest.approx(iou(stats.pooled()))
    per_seed = [_score(r).metrics["iou"] for r in records]
    assert unet["seed_mean"] == pytest.approx(np.mean(per_seed))
    assert unet["seed_sd"] == pytest.approx(np.std(per_seed, ddof=1))
    assert unet["iou_ci_low"] < unet["iou"] < unet["iou_ci_high"]


def test_every_row_is_compared_with_the_leader_and_marks_agree(built: Built) -> None:
    ranking = built.json("flood/flood-synth/ranking.json")
    leader = ranking[0]
    assert leader["vs_leader_verdict"] is None
    ids_l, stats_l = _flood_stats(built.records_of(leader["entry"]))
    tests = []
    for row in ranking[1:]:
        records = built.records_of(row["entry"])
        ids, stats = _flood_stats(records)
        groups = _score(records[0]).groups
        assert groups is not None and len(set(groups)) == 6
        test = paired_test(
            ids, stats, ids_l, stats_l, "iou", groups=groups, n_permutations=RESAMPLES
        )
        assert row["vs_leader_p_value"] == pytest.approx(test.p_value)
        assert row["vs_leader_difference"] == pytest.approx(test.difference)
        assert row["vs_leader_unit"] == "group" and row["vs_leader_units"] == 6
        tests.append(test.p_value)
    assert [r["vs_leader_p_holm"] for r in ranking[1:]] == pytest.approx(holm(tests))
    assert check_marks(ranking, "vs_leader", "higher") == len(ranking) - 1
    pairs = built.json("flood/flood-synth/pairwise.json")
    assert len(pairs) == len(ranking) * (len(ranking) - 1) // 2
    assert check_marks(pairs, "a_vs_b", "higher") == len(pairs)
    ablation = built.json("ndvi/ndvi-synth/ablation-pix2pix.json")
    assert check_marks(ablation, "vs_reference", "lower") == len(ablation) - 1
    board = built.html("flood/flood-synth/index.html")
    tied = sum(r["tied_with_leader"] for r in ranking)
    assert len(re.findall(r"tied with #1 [+-]", board)) == tied  # the table's cells
    index = built.json("boards.json")
    flood = next(b for b in index if b["dataset"] == "flood-synth")
    assert flood["leader_tied_with"] == tied


def test_ablation_matrix_as_the_entry_declares_it(built: Built) -> None:
    rows = built.json("ndvi/ndvi-synth/ablation-pix2pix.json")
    assert [r["variant"] for r in rows] == [
        "full",
        "no-pretrain",
        "no-finetune",
        "no-sar-indexes",
        "no-train-aug",
        "no-tta",
    ]
    assert rows[0]["label"] == "Reference (full)" and rows[1]["label"] == "Ablation 1"
    for row in rows:
        off = row["variant"].removeprefix("no-").replace("-", "_")
        assert {c: row[c] for c in COMPONENTS} == {c: c != off for c in COMPONENTS}
    full = rows[0]
    assert full["seeds"] == [0, 1] and full["vs_reference_verdict"] is None
    for row in rows[1:]:
        assert row["reference"] == "full"
        assert row["vs_reference_difference"] == pytest.approx(row["mse"] - full["mse"])
        assert 0 < row["vs_reference_p_value"] <= row["vs_reference_p_holm"] <= 1
    (no_tta,) = built.records_of("pix2pix", "no-tta")
    assert rows[-1]["mse"] == pytest.approx(_score(no_tta).metrics["mse"])
    assert rows[-1]["seeds"] == [0]  # seed 1 failed (oom): listed, never ranked
    (failed,) = built.json("ndvi/ndvi-synth/failed.json")
    assert (failed["variant"], failed["reason"]) == ("no-tta", "oom")
    chips = [c.stats for r in built.records_of("pix2pix", "full") for c in _score(r).chips]
    pooled_mse = sum(c["sum_sq_err"] for c in chips) / sum(c["n"] for c in chips)
    assert full["mse"] == pytest.approx(pooled_mse)
    page = built.html("ndvi/ndvi-synth/index.html")
    assert page.count("✓") == 25 and "Ablation matrix: pix2pix" in page


def test_entry_page_shows_runs_chips_quicklooks_logs_config(built: Built) -> None:
    folder = built.out / "ndvi/ndvi-synth/pix2pix/full"
    page = (folder / "index.html").read_text()
    assert page.count('<section class="run"') == 2
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) == 8
    assert all((folder / src).is_file() for src in images)
    for run in built.records_of("pix2pix", "full"):
        rid = run.run_id
        assert (folder / f"chips-{rid}.csv").is_file() and (folder / f"chips-{rid}.json").is_file()
        chips = json.loads((folder / f"chips-{rid}.json").read_text())
        assert [c["id"] for c in chips] == [c.id for c in _score(run).chips]
        assert chips[0]["mse"] == pytest.approx(_score(run).chips[0].metrics["mse"])
        assert f'href="{rid}/logs/train.log"' in page
        assert (folder / rid / "config" / "train.json").is_file()
    assert "optim.betas" in page and "Loss curves" in page
    # the losses share an axis; time (seconds) is never drawn, as a loss or at all
    plots = [series_names(svg) for svg in re.findall(r"<svg.*?</svg>", page, re.S)]
    curves = [p for p in plots if p["loss"] or p["other"]]
    assert curves and all(
        p == {"loss": ["train_loss", "val_loss"], "other": ["lr"]} for p in curves
    )
    assert "(not drawn: seconds)" in page


def test_text_is_escaped(built: Built) -> None:
    board = built.html("flood/flood-synth/index.html")
    assert "Acme &lt;Labs&gt;" in board and "<Labs>" not in board
    log_page = built.html("flood/flood-synth/unet/default/index.html")
    assert "&lt;started&gt;" in log_page and "<started>" not in log_page


def test_no_page_refers_outside_the_site(built: Built) -> None:
    for path in built.out.rglob("*"):
        if path.suffix not in (".html", ".css", ".js"):
            continue
        text = path.read_text()
        refs = re.findall(r'(?:src|href)="([^"]*)"', text) + re.findall(r"url\(([^)]*)\)", text)
        for ref in refs:
            assert not re.match(r"^(?:[a-z]+:|//)", ref), f"{path}: {ref}"
            ref = ref.split("#", 1)[0]
            if ref:
                assert (path.parent / ref).resolve().is_file(), f"{path}: broken link {ref}"


def test_output_folder_guard_and_rebuild(built: Built, tmp_path: Path) -> None:
    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "mine.txt").write_text("keep me")
    with pytest.raises(SiteError, match="never replaced"):
        build_site(connect(built.uri), precious, n_resamples=200)
    assert (precious / "mine.txt").read_text() == "keep me"
    result = CliRunner().invoke(
        leaderboard,
        [
            "build",
            "--out",
            str(tmp_path / "site"),
            "--tracking-uri",
            built.uri,
            "--resamples",
            "200",
        ],
        obj=built.settings,
    )
    assert result.exit_code == 0, result.output
    again = build_site(connect(built.uri), tmp_path / "site", n_resamples=200)
    assert again.runs == 15 and (tmp_path / "site" / "index.html").is_file()
    assert not list(tmp_path.glob(".site.building"))


def test_entry_page_has_the_description_every_file_and_each_quicklooks_score(built: Built) -> None:
    folder = built.out / "flood/flood-synth/unet/default"
    page = (folder / "index.html").read_text()
    assert '<p class="description">unet &lt;test entry&gt;</p>' in page
    for record in built.records_of("unet"):
        rid = record.run_id
        served = [p.relative_to(folder / rid).as_posix() for p in (folder / rid).rglob("*")]
        files = [f for f in served if (folder / rid / f).is_file()]
        assert {"record.json", "artifacts/loss.csv", "scores/chips.csv"} <= set(files)
        missing = [f for f in files if f'href="{rid}/{f}"' not in page]
        assert not missing, f"served but not linked: {missing}"
        chips = {c.id: c.metrics["iou"] for c in _score(record).chips}
        looks = re.findall(
            rf'<img src="{re.escape(rid)}/quicklooks/([^"]+)\.png"[^>]*><figcaption><code>'
            r'([^<]+)</code> · iou <strong class="chip-score">([^<]+)</strong>',
            page,
        )
        assert len(looks) == 4
        for name, chip, score in looks:
            assert name == chip and score == fmt(chips[chip])


def test_a_rescored_run_is_marked_on_its_board_and_its_entry_page(built: Built) -> None:
    (threshold,) = built.records_of("threshold")
    assert threshold.scorer == "2" and threshold.rescored is not None
    before, now = threshold.rescored["previous"]["iou"], _score(threshold).metrics["iou"]
    assert before != pytest.approx(now)
    board = built.html("flood/flood-synth/index.html")
    assert "Rescored 2026-11-30 with scorer 2 (was 1): threshold / default." in board
    row = next(r for r in built.json("flood/flood-synth/ranking.json") if r["entry"] == "threshold")
    assert row["iou"] == pytest.approx(now)  # the board shows the new score
    entry = built.html("flood/flood-synth/threshold/default/index.html")
    assert f"iou was {fmt(before)} before, {fmt(now)} now." in entry
    assert "Rescored" not in built.html("ndvi/ndvi-synth/index.html")
    assert "Rescored" not in built.html("flood/flood-synth/unet/default/index.html")


def _chip_iou(records: list[RunRecord]) -> dict[str, float]:
    """Each chip's IoU of a row: its confusion counts summed over the seeds."""
    ids, stats = _flood_stats(records)
    return dict(zip(ids, np.atleast_1d(iou(stats)).tolist(), strict=True))


def _points(svg: str, gid: str) -> int:
    """How many markers the scatter's group ``gid`` draws."""
    start = svg.find(f'<g id="{gid}">')
    if start < 0:
        return 0
    end = svg.find('<g id="', start + 1)
    return svg[start:end].count("<use ")


def test_compare_pages_for_every_pair_linked_from_the_pairwise_table(built: Built) -> None:
    from PIL import Image

    pairs = built.json("flood/flood-synth/pairwise.json")
    board = built.html("flood/flood-synth/index.html")
    assert len(pairs) == 6
    for p in pairs:
        assert f'href="{p["compare_page"]}"' in board
        assert (built.out / "flood/flood-synth" / p["compare_page"]).is_file()
        for side in ("a", "b"):  # each entry's page links the pages it is on
            entry = built.html(
                f"flood/flood-synth/{p[side]['entry']}/{p[side]['variant']}/index.html"
            )
            assert f'href="../../{p["compare_page"]}"' in entry
    pair = next(p for p in pairs if (p["a"]["entry"], p["b"]["entry"]) == ("acme-seg", "unet"))
    page = built.html(f"flood/flood-synth/{pair['compare_page']}")
    # the paired difference exactly as the pairwise table has it
    low, high = fmt(pair["a_vs_b_low"]), fmt(pair["a_vs_b_high"])
    assert f"A − B = {signed(pair['a_vs_b_difference'])} [{low}, {high}]" in page
    assert (
        f"p = {fmt(pair['a_vs_b_p_value'], 2)} before and {fmt(pair['a_vs_b_p_holm'], 2)} "
        "after Holm over 6 pairs"
    ) in page
    # per chip, from the records: unet pools its two seeds chip by chip
    a, b = _chip_iou(built.records_of("acme-seg")), _chip_iou(built.records_of("unet"))
    assert all(np.isfinite(list(a.values()) + list(b.values())))
    expected = sorted(a, key=lambda c: (-abs(a[c] - b[c]), c))[:TOP_CHIPS]
    shown = re.findall(r'<section class="chip-pair">\s*<h3><code>([^<]+)</code>', page)
    assert shown == expected
    table = built.json(f"flood/flood-synth/{pair['compare_page'].removesuffix('.html')}.json")
    assert {r["chip"]: r["a_iou"] for r in table} == pytest.approx(a)
    assert {r["chip"]: r["b_iou"] for r in table} == pytest.approx(b)
    svg = re.search(r'<svg class="plot".*?</svg>', page, re.S)
    assert svg is not None
    assert _points(svg[0], "chips-marked") == TOP_CHIPS
    assert _points(svg[0], "chips-marked") + _points(svg[0], "chips-other") == len(a)
    # pictures: each prediction panel cut from that run's published quicklook
    (acme,) = built.records_of("acme-seg")
    looks = built.out / "flood/flood-synth/acme-seg/default" / acme.run_id / "quicklooks"
    published = {p.stem for p in looks.glob("*.png")}
    assert len(published) == 4
    compare = built.out / "flood/flood-synth/compare"
    for chip in expected:
        panel = f"panels/rows/acme-seg.default/{chip}.png"
        if chip not in published:
            assert not (compare / panel).exists()
            continue
        assert f'src="{panel}"' in page
        with Image.open(looks / f"{chip}.png") as whole, Image.open(compare / panel) as cut:
            boxes = panel_boxes(whole.width)
            assert boxes is not None
            left, right = boxes[2]
            expected_panel = whole.convert("RGB").crop((left, 0, right, whole.height))
            assert np.array_equal(np.asarray(cut), np.asarray(expected_panel))
    n_without = sum(chip not in published for chip in expected)
    assert page.count("No quicklook of this chip was published for A") == n_without


# ---------------------------------------------------------------------------------------
# In a real browser
# ---------------------------------------------------------------------------------------


_unavailable = functools.partial(needs_unavailable, what="the browser test")
"""Fail under CI (``CI=true``), skip elsewhere (:func:`tests.helpers.unavailable`)."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed (pip install playwright)")
    with sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        except Error as exc:
            _unavailable(f"Chromium at {CHROMIUM} does not start: {exc}")
        yield b
        b.close()


def _column(page: Any, table: str, col: int) -> list[str]:
    return page.eval_on_selector_all(
        f"{table} tbody tr", f"rows => rows.map(r => r.cells[{col}].dataset.sort)"
    )


def test_in_chromium(built: Built, browser: Any) -> None:
    page = browser.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((built.out / "index.html").as_uri())
    assert page.locator("#t-boards tbody tr").count() == 2
    page.click("text=flood-synth")
    assert page.url.endswith("/flood/flood-synth/index.html")
    assert page.locator("#t-ranking tbody tr").count() == 4
    assert page.locator("#t-unisolated tbody tr").count() == 1
    assert page.locator("#t-failed tbody tr").count() == 1
    assert page.locator('svg.plot g[id^="row-"]').count() == 5  # a dot per official row
    best_first = [float(v) for v in _column(page, "#t-ranking", 3)]
    assert best_first == sorted(best_first, reverse=True)
    header = page.locator("#t-ranking thead th").nth(3)
    header.locator("button").click()
    assert header.get_attribute("aria-sort") == "ascending"
    assert [float(v) for v in _column(page, "#t-ranking", 3)] == sorted(best_first)
    header.locator("button").click()
    assert header.get_attribute("aria-sort") == "descending"
    assert [float(v) for v in _column(page, "#t-ranking", 3)] == best_first
    page.locator("#t-ranking thead th").nth(1).locator("button").click()
    entries = _column(page, "#t-ranking", 1)
    assert entries == sorted(entries)

    page.click("#t-ranking >> text=unet")
    assert page.url.endswith("/flood/flood-synth/unet/default/index.html")
    images = page.locator(".quicklooks img")
    assert images.count() == 8
    widths = page.eval_on_selector_all(
        ".quicklooks img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)"
    )
    assert all(w > 0 for w in widths), widths

    page.goto((built.out / "flood/flood-synth/index.html").as_uri())
    page.locator("#t-pairwise tbody tr").first.locator("a").click()
    assert "/flood/flood-synth/compare/" in page.url
    assert page.locator("section.chip-pair").count() == 6
    assert page.locator('svg.plot g[id^="chips-"]').count() == 2
    widths = page.eval_on_selector_all(
        "section.chip-pair img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)"
    )
    assert widths and all(w > 0 for w in widths), widths

    page.goto((built.out / "ndvi/ndvi-synth/index.html").as_uri())
    assert page.locator("#t-ablation-pix2pix tbody tr").count() == 6
    assert page.locator("#t-ablation-pix2pix tbody td.check").count() == 30
    page.close()
    assert errors == []
    assert requests and all(u.startswith("file://") for u in requests), [
        u for u in requests if not u.startswith("file://")
    ]


def test_a_one_group_split_shows_its_interval_as_n_a_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One independence group cannot give an interval: neither a single run's (published
    as n/a with its note) nor a row that pools seeds (bootstrapped on the site)."""
    from tests import records_factory

    monkeypatch.setattr(records_factory, "GROUP_SIZE", 100)  # every chip in group g0
    settings = Settings(home=tmp_path, data_root=tmp_path / "data", manifests_dir=tmp_path / "m")
    split = records_factory.make_test_split(settings, "flood-synth", "flood")
    specs = [
        records_factory.RunSpec("unet", "flood-synth", "flood", seed=0, noise=0.1),
        records_factory.RunSpec("unet", "flood-synth", "flood", seed=1, noise=0.12),
        records_factory.RunSpec("threshold", "flood-synth", "flood", noise=0.3),
    ]
    uri = tracking_uri(settings)
    publisher = Publisher(settings, uri)
    for spec in specs:
        publisher.publish(records_factory.make_run(settings, spec, split))
    build_site(connect(uri), tmp_path / "site", n_resamples=200)
    ranking = json.loads((tmp_path / "site" / "flood" / "flood-synth" / "ranking.json").read_text())
    assert {r["entry"]: len(r["seeds"]) for r in ranking} == {"unet": 2, "threshold": 1}
    for row in ranking:
        assert row["iou_ci_low"] is None and row["iou_ci_high"] is None, row
        assert row["iou_ci_note"] == (
            "n/a: the split has 1 independence group (g0); an interval needs at least 2"
        )
    page = (tmp_path / "site" / "flood" / "flood-synth" / "index.html").read_text()
    assert page.count("[interval n/a]") == 2


SCREENSHOTS = Path(
    os.environ.get("SARBENCH_SCREENSHOTS", REPO_ROOT / "ci-artifacts" / "screenshots")
)
"""Where the browser test leaves its screenshots (CI keeps the folder as an artifact)."""


@pytest.mark.parametrize("width", [1400, 390])
def test_pages_fit_the_screen_with_the_score_in_view(
    built: Built, browser: Any, width: int
) -> None:
    """Index, a board, an entry page, the claims page and a compare page at a desktop's
    and a phone's width: none scrolls sideways, the ranking's and the compare page's
    scores are within the screen, and a screenshot of each is kept."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": width, "height": 900})
    pages = {
        "index": "index.html",
        "board": "flood/flood-synth/index.html",
        "entry": "flood/flood-synth/unet/default/index.html",
        "claims": "claims.html",
        "compare": "flood/flood-synth/"
        + built.json("flood/flood-synth/pairwise.json")[0]["compare_page"],
    }
    for name, rel in pages.items():
        page.goto((built.out / rel).as_uri())
        sideways = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert sideways <= 0, f"{rel} scrolls {sideways} px sideways at {width} px"
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
    page.goto((built.out / pages["board"]).as_uri())
    for row in range(page.locator("#t-ranking tbody tr").count()):
        cell = page.locator("#t-ranking tbody tr").nth(row).locator("td").nth(3)
        box = cell.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box
        assert cell.locator(".sub").inner_text().startswith("[")  # its interval, in view
    vs = page.locator("#t-ranking tbody tr").nth(1).locator("td").last
    assert vs.locator(".sub").inner_text().startswith("[")  # the difference's interval
    page.goto((built.out / pages["compare"]).as_uri())  # both scores and intervals in view
    for cell in page.locator("table.pair td.primary").all():
        box = cell.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box
        assert cell.locator(".sub").inner_text().startswith("[")
    page.close()
