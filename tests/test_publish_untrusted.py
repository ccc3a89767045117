"""Publishing and the site treat what containers wrote as untrusted (issue 11).

Real MLflow SQLite stores in tmp, real ``sarbench`` processes. The scenario: 20 run
records, 3 of them poisoned (a loss curve with steps 1e30 and inf; an option key
``bad key!``; a metric name with punctuation plus an infinite timing). Decided behaviour:
those 3 are *refused* (named, with every problem, nothing of them written) and the other 17
are published; a 200,000-row loss curve is not refused but *thinned* to
``MAX_POINTS`` points per curve, and its run's ``sarbench.publish_notes`` says so.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient
from PIL import Image

from harness.leaderboard.site import MARKER
from harness.publish.content import (
    MAX_POINTS,
    MAX_STEP,
    LossCurves,
    name_problem,
    read_loss_csv,
)
from harness.publish.errors import RecordError
from harness.publish.files import not_servable
from harness.publish.mlflow_store import Publisher, default_tracking_uri
from harness.record import RunFolder
from harness.settings import Settings
from tests.records_factory import (
    RunSpec,
    edit_record,
    make_run,
    make_test_split,
    pix2pix_options,
    standard_runs,
)

SARBENCH = Path(sys.executable).with_name("sarbench")
BIG_ROWS = 200_000
HOSTILE_FILES = {
    "evil.html": b"<html><script>alert('html')</script></html>",
    "<img src=x onerror=alert(1)>.svg": b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
    "payload.js": b"alert('js')",
    "fake.png": b"<html><script>alert('png')</script></html>",
    "page.txt": b"  <html><script>alert('txt')</script></html>",
    "broken.json": b"{not json",
}
SCRIPT_TEAM = "<script>alert('team')</script>"
SCRIPT_OPTION = "<script>alert('option')</script>"
SCRIPT_COLUMN = "<script>alert('column')</script>"


def _settings(home: Path) -> Settings:
    return Settings(home=home, data_root=home / "data", manifests_dir=home / "manifests")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("MLFLOW_TRACKING_URI", "SARBENCH_HOME", "SARBENCH_DATA_ROOT"):
        env.pop(name, None)
    return env


def _command(home: Path, *args: str) -> list[str]:
    uri = default_tracking_uri(_settings(home))
    settings = ["--home", str(home), "--data-root", str(home / "data")]
    return [str(SARBENCH), *settings, *args, "--tracking-uri", uri]


def sarbench(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``sarbench`` as a real process on ``home``'s store."""
    return subprocess.run(
        _command(home, *args), capture_output=True, text=True, env=_env(), timeout=600
    )


def _all_runs(client: MlflowClient) -> list[Any]:
    """Every run of a record, deleted ones included (not the board runs they nest under)."""
    exps = client.search_experiments(view_type=ViewType.ALL)
    runs = client.search_runs(
        [e.experiment_id for e in exps], run_view_type=ViewType.ALL, max_results=5000
    )
    return [r for r in runs if "sarbench.key" in r.data.tags]


def refused_folders(stderr: str) -> dict[str, list[str]]:
    """``{run folder: [problem, ...]}`` from the report ``sarbench publish`` ends with."""
    out: dict[str, list[str]] = {}
    block = stderr[stderr.index("record(s) not published") :]
    current = None
    for line in block.splitlines()[1:]:
        if line.startswith("    - ") and current is not None:
            out[current].append(line[6:])
        elif line.startswith("  ") and not line.startswith("   "):
            current = line.strip()
            out[current] = []
    return out


# ---------------------------------------------------------------------------------------
# The scenario: 20 records, 3 poisoned
# ---------------------------------------------------------------------------------------


def _png(path: Path) -> None:
    Image.new("RGB", (8, 8), (10, 200, 30)).save(path)


@dataclass
class Scenario:
    home: Path
    good: list[Path]
    poisoned: dict[str, Path]
    first: dict[str, str]  # run folder name -> MLflow run ID, published before the rest
    result: subprocess.CompletedProcess[str]
    site: subprocess.CompletedProcess[str]

    @property
    def client(self) -> MlflowClient:
        return MlflowClient(default_tracking_uri(_settings(self.home)))

    def run(self, folder: Path) -> Any:
        (run,) = [r for r in _all_runs(self.client) if r.info.run_name == folder.name]
        return run

    def named(self, prefix: str) -> Path:
        (folder,) = [d for d in self.good if d.name.startswith(prefix)]
        return folder


def _scenario_runs(settings: Settings) -> tuple[list[Path], dict[str, Path]]:
    flood = {"dataset": "flood-synth", "task": "flood"}
    ndvi = {"dataset": "ndvi-synth", "task": "ndvi"}
    splits = {
        "flood-synth": make_test_split(settings, "flood-synth", "flood"),
        "ndvi-synth": make_test_split(settings, "ndvi-synth", "ndvi"),
    }

    def make(spec: RunSpec) -> Path:
        return make_run(settings, spec, splits[spec.dataset])

    good = [
        make(RunSpec("threshold", noise=0.3, phases=("predict",), **flood)),
        make(RunSpec("unet", noise=0.1, **flood)),
        make(RunSpec("unet", seed=1, noise=0.12, **flood)),
        make(RunSpec("unet", seed=2, status="failed", reason="timeout", **flood)),
        make(RunSpec("prithvi", noise=0.095, gpu_seconds=42.0, **flood)),
        make(RunSpec("acme-seg", noise=0.01, baseline=False, backend="local", **flood)),
    ]
    # the same entry, variant and seed built twice: two images, never one row
    hostile = RunSpec(
        "acme-seg",
        noise=0.05,
        baseline=False,
        team=SCRIPT_TEAM,
        options={"note": SCRIPT_OPTION},
        image="acme-seg-v1",
        **flood,
    )
    good.append(make(hostile))
    good.append(make(RunSpec("acme-seg", noise=0.2, baseline=False, image="acme-seg-v2", **flood)))
    art = good[-2] / "artifacts"
    for name, data in HOSTILE_FILES.items():
        (art / name).write_bytes(data)
    _png(art / "plot.png")
    (art / "metrics.csv").write_text("epoch,acc\n0,0.5\n1,0.75\n")
    (art / "summary.json").write_text('{"best": 0.75}')
    (art / "loss.csv").write_text(f"epoch,{SCRIPT_COLUMN}\n0,1.0\n1,0.5\n")

    longrun = make(RunSpec("longrun", noise=0.1, baseline=False, **flood))
    rows = "".join(f"{i},{1.0 / (i + 1):.6g},{i % 7}\n" for i in range(BIG_ROWS))
    (longrun / "artifacts" / "loss.csv").write_text("step,a,b\n" + rows)
    good.append(longrun)
    halfepoch = make(RunSpec("halfepoch", noise=0.1, baseline=False, **flood))
    (halfepoch / "artifacts" / "loss.csv").write_text(
        "epoch,loss\n0.5,1.0\n1.0,0.6\n1.5,nan\n2.0,inf\n"
    )
    good.append(halfepoch)
    for variant in ("full", "no-pretrain", "no-finetune", "no-sar-indexes", "no-train-aug"):
        good.append(
            make(RunSpec("pix2pix", variant=variant, options=pix2pix_options(variant), **ndvi))
        )
    full = pix2pix_options("full")
    good.append(make(RunSpec("pix2pix", variant="full", seed=1, options=full, **ndvi)))
    perfect = make(RunSpec("pix2pix", variant="no-tta", options=pix2pix_options("no-tta"), **ndvi))
    edit_record(perfect, lambda r: r["score"]["metrics"].update(psnr="inf"))  # legitimate
    good.append(perfect)
    assert len(good) == 17

    badsteps = make(RunSpec("badsteps", baseline=False, **flood))
    (badsteps / "artifacts" / "loss.csv").write_text(
        "step,loss\n0,1.0\n1e30,0.5\ninf,0.25\n3,0.1\n"
    )
    badkey = make(RunSpec("badkey", baseline=False, options={"bad key!": 1}, **flood))
    badmetric = make(RunSpec("badmetric", baseline=False, **flood))

    def punctuate(r: dict[str, Any]) -> None:
        r["score"]["metrics"]["io*u!"] = 0.5
        r["timings"]["train_s"] = "inf"

    edit_record(badmetric, punctuate)
    return good, {"steps": badsteps, "key": badkey, "metric": badmetric}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    home = tmp_path_factory.mktemp("untrusted")
    good, poisoned = _scenario_runs(_settings(home))
    early = [good[1], good[2], good[-1]]
    before = sarbench(home, "publish", *map(str, early))
    assert before.returncode == 0, before.stderr
    client = MlflowClient(default_tracking_uri(_settings(home)))
    first = {r.info.run_name: r.info.run_id for r in _all_runs(client)}
    assert len(first) == 3
    result = sarbench(home, "publish")
    site = sarbench(home, "leaderboard", "build", "--out", str(home / "site"), "--resamples", "200")
    return Scenario(home, good, poisoned, first, result, site)


def test_the_good_17_are_published_and_the_3_poisoned_are_named(scenario: Scenario) -> None:
    result = scenario.result
    assert result.returncode == 2, result.stdout + result.stderr
    assert "published 17 record(s)" in result.stdout
    assert "14 created" in result.stdout and "3 exists" in result.stdout
    assert "3 record(s) not published" in result.stderr
    assert "Traceback" not in result.stderr
    refused = refused_folders(result.stderr)
    assert set(refused) == {str(p) for p in scenario.poisoned.values()}

    steps = refused[str(scenario.poisoned["steps"])]
    assert len(steps) == 1 and "artifacts/loss.csv" in steps[0]
    assert "line 3: '1e30'" in steps[0] and "line 4: 'inf'" in steps[0]
    assert str(MAX_STEP) in steps[0]
    (key,) = refused[str(scenario.poisoned["key"])]
    assert "option 'bad key!'" in key and "'!'" in key
    metric = refused[str(scenario.poisoned["metric"])]  # every problem of it, grouped
    assert len(metric) == 2
    assert any("'io*u!'" in p and "'*'" in p for p in metric)
    assert "timings.train_s: inf is not a finite number >= 0" in metric


def test_nothing_of_a_refused_record_reaches_the_store(scenario: Scenario) -> None:
    runs = _all_runs(scenario.client)
    names = sorted(r.info.run_name for r in runs)
    assert names == sorted(d.name for d in scenario.good)
    assert all(r.info.lifecycle_stage == "active" for r in runs)
    assert all(r.data.tags.get("sarbench.published") == "complete" for r in runs)


def test_what_was_published_before_is_kept_as_it_was(scenario: Scenario) -> None:
    for name, mlflow_id in scenario.first.items():
        assert scenario.run(scenario.home / "runs" / name).info.run_id == mlflow_id
    again = sarbench(scenario.home, "publish")
    assert again.returncode == 2
    assert "published 17 record(s)" in again.stdout and "17 exists" in again.stdout
    assert len(_all_runs(scenario.client)) == 17


def test_a_200k_row_loss_curve_is_thinned_and_says_so(scenario: Scenario) -> None:
    run = scenario.run(scenario.named("longrun"))
    history = scenario.client.get_metric_history(run.info.run_id, "loss/a")
    steps = sorted(h.step for h in history)
    assert len(steps) == MAX_POINTS
    assert steps[0] == 0 and steps[-1] == BIG_ROWS - 1
    assert len(scenario.client.get_metric_history(run.info.run_id, "loss/b")) == MAX_POINTS
    notes = run.data.tags["sarbench.publish_notes"]
    assert f"{BIG_ROWS} rows thinned to {MAX_POINTS} points" in notes
    lines = scenario.result.stderr.splitlines()
    assert any(line.startswith("longrun.") and "thinned" in line for line in lines)


def test_fractional_epochs_use_row_numbers_and_keep_nan_and_inf(scenario: Scenario) -> None:
    run = scenario.run(scenario.named("halfepoch"))
    history = scenario.client.get_metric_history(run.info.run_id, "loss/loss")
    assert sorted(h.step for h in history) == [0, 1, 2, 3]
    assert (
        "is not whole numbers; the row number is the step"
        in (run.data.tags["sarbench.publish_notes"])
    )


def test_an_infinite_score_is_a_legitimate_metric(scenario: Scenario) -> None:
    run = scenario.run(scenario.named("pix2pix.no-tta"))
    assert run.data.metrics["psnr"] > 1e308


def test_a_hostile_column_name_is_made_safe_and_noted(scenario: Scenario) -> None:
    (folder,) = [
        d
        for d in scenario.good
        if "acme-seg" in d.name and (d / "artifacts" / "evil.html").exists()
    ]
    run = scenario.run(folder)
    curves = [m for m in run.data.metrics if m.startswith("loss/")]
    assert curves == ["loss/_script_alert__column____script_"]
    assert (
        "published as 'loss/_script_alert__column____script_'"
        in (run.data.tags["sarbench.publish_notes"])
    )


# ---------------------------------------------------------------------------------------
# The site
# ---------------------------------------------------------------------------------------


def test_hostile_artifacts_never_reach_the_site(scenario: Scenario) -> None:
    assert scenario.site.returncode == 0, scenario.site.stderr
    site = scenario.home / "site"
    assert (site / MARKER).is_file()
    names = {p.name for p in site.rglob("*")}
    for hostile in HOSTILE_FILES:
        assert hostile not in names, hostile
    assert not [p for p in site.rglob("*.svg")] and not [
        p for p in site.rglob("*.js") if p.parent.name != "assets"
    ]
    assert {"plot.png", "metrics.csv", "summary.json", "loss.csv"} <= names
    payloads = [data for name, data in HOSTILE_FILES.items() if name != "broken.json"]
    for path in site.rglob("*"):
        if path.is_file():  # not under another name either
            data = path.read_bytes()
            assert not [p for p in payloads if p in data], path
    (png,) = site.rglob("plot.png")
    with Image.open(png) as img:
        assert img.size == (8, 8)
    # but the hostile files are still in MLflow, the store of record
    (folder,) = [d for d in scenario.good if (d / "artifacts" / "evil.html").exists()]
    stored = {
        a.path
        for a in scenario.client.list_artifacts(scenario.run(folder).info.run_id, "artifacts")
    }
    assert "artifacts/evil.html" in stored


def test_withheld_files_are_named_escaped_on_the_entry_page(scenario: Scenario) -> None:
    page = (scenario.home / "site/flood/flood-synth/acme-seg/default/index.html").read_text()
    assert "<code>artifacts/evil.html</code>: type .html is not served" in page
    assert "<code>artifacts/&lt;img src=x onerror=alert(1)&gt;.svg</code>" in page
    assert "<code>artifacts/fake.png</code>: not a PNG" in page
    assert "<code>artifacts/page.txt</code>: starts like markup" in page
    assert "<code>artifacts/broken.json</code>: not valid JSON" in page
    assert "<code>artifacts/payload.js</code>" in page
    assert 'href="' in page and "artifacts/plot.png" in page


def test_container_chosen_strings_are_escaped_everywhere(scenario: Scenario) -> None:
    pages = {p: p.read_text() for p in (scenario.home / "site").rglob("*.html")}
    assert pages
    for path, html in pages.items():
        assert "<script>alert" not in html, path
        assert "<img src=x" not in html, path
        scripts = re.findall(r"<script\b[^>]*>", html)
        assert all('src="' in s and s.endswith('sort.js">') for s in scripts), (path, scripts)
    entry = "\n".join(html for p, html in pages.items() if "acme-seg" in str(p))
    assert "&lt;script&gt;alert(&#39;option&#39;)&lt;/script&gt;" in entry
    assert "&lt;script&gt;alert(&#39;column&#39;)&lt;/script&gt;" in entry  # plot legend
    board = pages[scenario.home / "site/flood/flood-synth/index.html"]
    assert "&lt;script&gt;alert(&#39;team&#39;)&lt;/script&gt;" in board


def test_two_images_of_one_entry_are_two_rows(scenario: Scenario) -> None:
    ranking = json.loads((scenario.home / "site/flood/flood-synth/ranking.json").read_text())
    acme = [r for r in ranking if r["entry"] == "acme-seg"]
    assert len(acme) == 2
    assert len({r["image_digest"] for r in acme}) == 2
    for row in acme:
        (run_id,) = row["run_ids"]
        record = RunFolder(scenario.home / "runs" / run_id).load()
        assert record.image_digest == row["image_digest"]
    board = (scenario.home / "site/flood/flood-synth/index.html").read_text()
    for row in acme:
        assert row["image_digest"].split(":")[1][:12] in board


# ---------------------------------------------------------------------------------------
# Concurrent publishers and a locked store
# ---------------------------------------------------------------------------------------


def test_two_publishers_at_once_on_a_fresh_store_both_succeed(tmp_path: Path) -> None:
    dirs = standard_runs(_settings(tmp_path))
    assert not (tmp_path / "mlflow").exists()
    procs = [
        subprocess.Popen(
            _command(tmp_path, "publish"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, out + err
    summaries = [line for out, _ in outputs for line in out.splitlines() if "record(s) to" in line]
    created = sum(int(m) for line in summaries for m in re.findall(r"(\d+) created", line))
    assert created == len(dirs)
    runs = _all_runs(MlflowClient(default_tracking_uri(_settings(tmp_path))))
    assert len(runs) == len(dirs)  # deleted ones included: nothing made twice
    assert sorted(r.info.run_name for r in runs) == sorted(d.name for d in dirs)


HOLD_LOCK = """
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
con.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
con.execute("ROLLBACK")
con.close()
"""


@contextmanager
def locked(db: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding an exclusive transaction on ``db`` until told (a line on
    its stdin) or until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        release(holder)
        holder.wait(timeout=60)


def release(holder: subprocess.Popen[str]) -> None:
    if holder.poll() is None and holder.stdin is not None and not holder.stdin.closed:
        holder.stdin.write("\n")
        holder.stdin.close()


@pytest.fixture
def store_with_one_run(tmp_path: Path) -> tuple[Path, list[Path]]:
    settings = _settings(tmp_path)
    split = make_test_split(settings, "flood-synth", "flood")
    dirs = [
        make_run(settings, RunSpec("unet", seed=s, dataset="flood-synth", task="flood"), split)
        for s in (0, 1)
    ]
    Publisher(settings, default_tracking_uri(settings)).publish(dirs[0])
    return tmp_path, dirs


def _run_ids(home: Path) -> list[str]:
    client = MlflowClient(default_tracking_uri(_settings(home)))
    return sorted(r.info.run_name for r in _all_runs(client))


def test_a_locked_store_gives_a_clear_error_after_the_wait(
    store_with_one_run: tuple[Path, list[Path]],
) -> None:
    home, dirs = store_with_one_run
    db = home / "mlflow" / "mlflow.db"
    with locked(db):
        result = sarbench(home, "publish", "--wait", "1")
    assert result.returncode == 2
    assert f"MLflow tracking store sqlite:///{db.resolve()} is locked" in result.stderr
    assert f"holds a write transaction on {db.resolve()}" in result.stderr
    assert "`--wait SECONDS` waits longer" in result.stderr
    assert "waiting up to 1 s" in result.stderr
    assert "Traceback" not in result.stderr and "sqlalchemy.exc" not in result.stderr
    assert _run_ids(home) == [dirs[0].name]


def test_a_lock_released_during_the_wait_lets_publishing_finish(
    store_with_one_run: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    home, dirs = store_with_one_run
    db = home / "mlflow" / "mlflow.db"
    with locked(db) as holder, open(tmp_path / "stdout", "w") as out:
        proc = subprocess.Popen(
            _command(home, "publish", "--wait", "300"),
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        seen = _read_until(proc.stderr, "is locked by another process; waiting up to 300 s")
        assert seen, "publish never said that it waits for the lock"
        release(holder)  # the lock goes while publish waits
        _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    stdout = (tmp_path / "stdout").read_text()
    assert "1 created" in stdout and "1 exists" in stdout
    assert _run_ids(home) == sorted(d.name for d in dirs)


def _read_until(stream: IO[str] | None, text: str) -> bool:
    assert stream is not None
    return any(text in line for line in stream)


# ---------------------------------------------------------------------------------------
# The rules, one by one
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["loss/train_loss", "optim.lr", "a b", "g-loss:1", "options.seed", "x" * 250]
)
def test_names_mlflow_takes(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("bad key!", "'!'"),
        ("io*u", "'*'"),
        ("<script>", "'<'"),
        ("", "empty"),
        ("a//b", "not a plain path"),
        ("/abs", "not a plain path"),
        ("a/..", "not a plain path"),
        ("x" * 251, "251 characters"),
    ],
)
def test_names_mlflow_refuses(name: str, why: str) -> None:
    problem = name_problem(name)
    assert problem is not None and why in problem


def test_loss_csv_rules() -> None:
    curves = LossCurves()
    read_loss_csv("artifacts/loss.csv", "step,a,a,b c!\n0,1,2,x\n,5,5,5\n2,nan,3,4\n", curves)
    assert curves.problems == []
    assert curves.points == [
        ("loss/a", 0, 1.0),
        ("loss/a", 2, pytest.approx(float("nan"), nan_ok=True)),
        ("loss/b c_", 2, 4.0),
    ]
    notes = " | ".join(curves.notes)
    assert "1 row(s) without a numeric 'step' left out" in notes
    assert "repeats 'loss/a'; left out" in notes
    assert "column 'b c!' published as 'loss/b c_'" in notes

    bad = LossCurves()
    text = "epoch,loss\n" + "".join(f"{s},1\n" for s in ["-inf", "nan", "1e10", "-2e9", "5"] * 2)
    read_loss_csv("artifacts/loss_x.csv", text, bad)
    assert bad.points == [] and len(bad.problems) == 1
    assert "(line 2: '-inf'" in bad.problems[0] and "and 3 more" in bad.problems[0]


def test_a_cut_file_is_noted() -> None:
    curves = LossCurves()
    read_loss_csv("artifacts/loss.csv", "a\n1\n", curves, size=10**9)
    assert curves.notes == ["artifacts/loss.csv: only the first 4 of 1000000000 bytes were read"]


def test_every_problem_of_a_record_is_listed_together() -> None:
    exc = RecordError(Path("/runs/x"), ["first", "second"])
    assert str(exc) == "/runs/x: 2 problems:\n    - first\n    - second"
    assert exc.problems == ["first", "second"]


@pytest.mark.parametrize(
    ("name", "data", "why"),
    [
        ("ok.png", b"\x89PNG\r\n\x1a\n rest", None),
        ("ok.csv", b"a,b\n1,2\n", None),
        ("ok.json", b'{"a": [1, 2]}', None),
        ("ok.log", b"\xef\xbb\xbfstep 1\n", None),
        ("OK.TXT", b"hello", None),
        ("x.html", b"<p>hi</p>", "type .html"),
        ("x.svg", b"<svg/>", "type .svg"),
        ("x.PNG.js", b"1", "type .js"),
        ("noext", b"1", "type (none)"),
        ("x.png", b"GIF89a", "not a PNG"),
        ("x.json", b"{", "not valid JSON"),
        ("x.csv", b"\n <html>", "starts like markup"),
        ("x.txt", b"a\x00b", "NUL"),
        ("x.log", b"\xff\xfe\xfd bad", "not UTF-8"),
        ("a b.csv", b"1", "name is not plain"),
        (".hidden.csv", b"1", "name is not plain"),
    ],
)
def test_what_the_site_serves(tmp_path: Path, name: str, data: bytes, why: str | None) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    problem = not_servable(path, f"artifacts/{name}")
    assert problem is None if why is None else (problem is not None and why in problem)


def test_a_link_is_never_served(tmp_path: Path) -> None:
    (tmp_path / "real.csv").write_text("a\n1\n")
    (tmp_path / "link.csv").symlink_to(tmp_path / "real.csv")
    assert not_servable(tmp_path / "link.csv", "artifacts/link.csv") == "not a regular file"
