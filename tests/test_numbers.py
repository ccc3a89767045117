"""The one number formatter (harness.numbers) and the places that print with it: the site's
tables, ``sarbench score`` and the run summary line."""

from __future__ import annotations

import doctest
import math
from pathlib import Path

import pytest

import harness.numbers as numbers
from harness.leaderboard.conditions import label, value
from harness.numbers import by_name, count, duration, fmt, interval, percent, signed, size
from harness.record import RunFolder
from harness.runner.cli import summary_line
from harness.scoring.cli import render
from harness.scoring.score import score_predictions
from harness.settings import Settings
from harness.tasks import get_task
from tests.records_factory import RunSpec, make_run, make_test_split


def test_the_examples_in_the_docstrings_hold() -> None:
    result = doctest.testmod(numbers)
    assert result.attempted >= 6 and result.failed == 0


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.88712345, "0.8871"),
        (0.010791234, "0.01079"),
        (23.456789, "23.46"),
        (1.0, "1"),
        (0.0, "0"),
        (-0.5, "-0.5"),
        (9999.4, "9999"),
        (12345.6, "12,346"),  # whole and separated, never 1.235e+04
        (5.464e8, "546,400,000"),
        (0.000123456, "0.0001235"),
        (None, "n/a"),
        (math.nan, "n/a"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
    ],
)
def test_fmt_gives_four_significant_digits(value: float | None, text: str) -> None:
    assert fmt(value) == text


def test_signed_interval_percent() -> None:
    assert [signed(0.01234), signed(-0.5), signed(0.0), signed(math.nan)] == [
        "+0.01234",
        "-0.5",
        "0",
        "n/a",
    ]
    assert interval(0.88712, 0.8333, math.nan) == "0.8871 [0.8333, n/a]"
    assert [percent(0.0325), percent(-1.0), percent(math.inf)] == ["+3.25%", "-100%", "n/a"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.04, "0.0 s"),
        (4.25, "4.2 s"),
        (59.94, "59.9 s"),
        (59.96, "1 min"),
        (62, "1 min 02 s"),
        (900, "15 min"),
        (3599.6, "1 h"),
        (3725, "1 h 02 min"),
        (7200, "2 h"),
        (90061, "25 h 01 min"),
        (None, "n/a"),
        (math.inf, "n/a"),
    ],
)
def test_durations_in_s_min_h(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1 KiB"),
        (1536, "1.5 KiB"),
        (5.464e8, "521.1 MiB"),
        (8589934592, "8 GiB"),
        (2**50 * 3, "3 PiB"),
        (None, "n/a"),
    ],
)
def test_sizes_in_binary_units(n: float | None, text: str) -> None:
    assert size(n) == text


def test_a_number_is_formatted_by_the_unit_its_name_carries() -> None:
    assert by_name("peak_memory_bytes", 563937280) == "537.8 MiB"
    assert by_name("train_s", 56.42) == "56.4 s" and by_name("gpu_seconds", 4000) == "1 h 07 min"
    assert by_name("iou", 0.86321) == "0.8632"
    assert count(20000) == "20,000" and count(None) == "n/a"
    # the site's Conditions table: limits with their units, never a raw number or JSON
    assert value("shm_bytes", 536870912) == "512 MiB" and label("shm_bytes").startswith("shared")
    assert value("timeout_s", 900.0) == "15 min" and label("timeout_s") == "timeout"
    assert value("seeds", [0, 1]) == "0, 1" and value("gpu_uuid", None) == "none"
    assert label("log_cap_bytes") == "log cap" and label("gpu_model") == "GPU model"


def test_the_run_summary_line_and_sarbench_score_use_the_formatter(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, data_root=tmp_path / "data", manifests_dir=tmp_path / "m")
    split = make_test_split(settings, "flood-synth", "flood")
    folder = make_run(settings, RunSpec("unet", "flood-synth", "flood", noise=0.1), split)
    record = RunFolder(folder).load()
    assert record.score is not None
    line = summary_line(record, "ran")
    score = record.score
    assert f"iou={fmt(record.primary)} [{fmt(score.low)}, {fmt(score.high)}]" in line
    assert "train 10.5 s predict 2.1 s" in line
    result = score_predictions(RunFolder(folder).predictions, split, get_task("flood"))
    report = render(result).splitlines()
    iou_line = next(x for x in report if x.startswith("iou *"))
    low, high = fmt(result.interval.low), fmt(result.interval.high)
    assert iou_line.split()[2:5] == [fmt(result.metrics["iou"]), f"[{low},", f"{high}]"]
