"""The Sen1Floods11 importer (``sen1floods11``): the hand-labelled chips, from a copy of
the published bucket. Its format, classes, licence and citation are in the docstring of
:mod:`harness.datasets.importers`.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.datasets.import_common import (
    IMPORTER_VERSION,
    Snap,
    SourceDataError,
    _check_name,
    _fits,
    _read,
    _rel,
    _stream,
    _values,
)
from harness.datasets.layout import check_sample_id
from harness.datasets.source import SampleRecord
from harness.errors import SarbenchError

SEARCH_DEPTH = 6  # folder levels searched below a Sen1Floods11 source folder
S1_FOLDER, LABEL_FOLDER = "S1Hand", "LabelHand"
SPLIT_CSVS: dict[str, str] = {
    "train": "flood_train_data.csv",
    "val": "flood_valid_data.csv",
    "test": "flood_test_data.csv",
    "bolivia": "flood_bolivia_data.csv",
}
OPTIONAL_SPLITS = frozenset({"bolivia"})
S1_NAME = re.compile(r"^(?P<event>[^/\\]+)_(?P<chip>[^_/\\]+)_S1Hand\.tif$")
LABEL_VALUES = np.array([-1, 0, 1])
SEN1FLOODS11_URL = "https://github.com/cloudtostreet/Sen1Floods11"

SEN1FLOODS11_ABOUT: dict[str, Any] = {
    "description": (
        "The hand-labelled part of Sen1Floods11: 446 Sentinel-1 GRD chips (IW mode, sigma0 in "
        "dB, bands VV and VH) of 512 x 512 pixels, projected to WGS 84 (EPSG:4326) at about "
        "10 m, over 11 flood events named by country, each with a hand-drawn label of the "
        "water on the chip."
    ),
    "target": "water",
    "classes": {
        "1": (
            "water: all surface water on the chip, permanent water (rivers, lakes, reservoirs) "
            "included, not only newly flooded land; the target is 1 here"
        ),
        "0": "not water; the target is 0 here",
        "-1": (
            "no data / not labelled: left out of scoring (valid mask 0); the target is 0 "
            "there and never scored"
        ),
    },
    "classes_of": "label values in the source's LabelHand files",
    "not_scored": (
        "label -1, and pixels where VV or VH is not finite (the NaN at chip edges); the "
        "inputs keep their NaN (input nodata: NaN)"
    ),
    "source": (
        f"Cloud to Street: the sen1floods11 bucket on Google Cloud Storage (folder v1.1/), "
        f"documented at {SEN1FLOODS11_URL}"
    ),
    "licence": (
        "not stated in the dataset's README, which asks users to cite it: see the source "
        f"({SEN1FLOODS11_URL}) before redistributing"
    ),
    "citation": (
        "Bonafilia, D., Tellman, B., Anderson, T., Issenberg, E. (2020). Sen1Floods11: a "
        "georeferenced dataset to train and test deep learning flood algorithms for "
        "Sentinel-1. The IEEE/CVF Conference on Computer Vision and Pattern Recognition "
        "(CVPR) Workshops, pp. 210-211."
    ),
    "groups": (
        "each chip's flood event, named by country in its file name (Bolivia_103757 -> "
        "Bolivia): chips of one event are correlated"
    ),
    "splits": {
        "train": "flood_train_data.csv",
        "val": "flood_valid_data.csv",
        "test": "flood_test_data.csv",
        "bolivia": (
            "flood_bolivia_data.csv: the held-out Bolivia event, in no other split; scored on "
            "its own (one event, so one independence group: its interval is n/a)"
        ),
    },
    "held_out_splits": ["test", "bolivia"],
}
"""What the Sen1Floods11 importer states about the data (recorded in the manifest's
``source.about``, shown by the dataset card). Sources: the dataset's README and the paper
cited; the README names no licence."""


@dataclass(frozen=True)
class _Chip:
    split: str
    id: str
    event: str
    s1: Path
    label: Path


def _search(root: Path, dir_names: set[str], file_names: set[str]) -> dict[str, list[Path]]:
    """Folders and files with these exact names, at most ``SEARCH_DEPTH`` levels below root.

    A found folder is not searched further; hidden folders are skipped; symbolic links are
    followed once (a loop is not walked twice).
    """
    found: dict[str, list[Path]] = {n: [] for n in (*dir_names, *file_names)}
    seen: set[Path] = set()
    stack = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        real = folder.resolve()
        if real in seen:
            continue
        seen.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:  # an unreadable folder is not searched
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                if entry.name in dir_names:
                    found[entry.name].append(Path(entry.path))
                elif depth < SEARCH_DEPTH:
                    stack.append((Path(entry.path), depth + 1))
            elif entry.name in file_names and entry.is_file():
                found[entry.name].append(Path(entry.path))
    return {k: sorted(v) for k, v in found.items()}


class Sen1Floods11Source:
    """The Sen1Floods11 hand-labelled chips, imported from a copy of the published bucket.

    ``source_dir`` is any folder that holds exactly one ``S1Hand/``, one ``LabelHand/`` and
    one of each split CSV within a few levels (the bucket's ``v1.1/`` folder, or a folder
    with those pieces side by side). A missing or ambiguous piece is an error at once; the
    files themselves are checked while :meth:`samples` streams them (see the module
    docstring).
    """

    bands: tuple[str, ...] = ("VV_db", "VH_db")
    band_roles: tuple[str, ...] = ("VV", "VH")
    about: dict[str, Any] = SEN1FLOODS11_ABOUT

    def __init__(
        self, source_dir: str | os.PathLike[str], name: str | None = None, task: str | None = None
    ) -> None:
        self.source_dir = Path(source_dir)
        if task not in (None, "flood"):
            raise SarbenchError(
                f"sen1floods11 is a flood dataset: its task is 'flood', not {task!r}"
            )
        self.task = "flood"
        self.name = _check_name(name if name is not None else "sen1floods11", "name")
        if not self.source_dir.is_dir():
            raise SourceDataError("sen1floods11", self.source_dir, ["source folder not found"])
        self.s1_dir, self.label_dir, self.csvs = self._locate()
        self._problems: list[str] = []
        self.notes: list[str] = []
        self.snapped: list[Snap] = []
        self._chips = self._plan()

    def _fail(self, problems: list[str]) -> SourceDataError:
        return SourceDataError("sen1floods11", self.source_dir, problems)

    def _r(self, path: Path) -> str:
        return _rel(self.source_dir, path)

    def _locate(self) -> tuple[Path, Path, dict[str, Path]]:
        found = _search(self.source_dir, {S1_FOLDER, LABEL_FOLDER}, set(SPLIT_CSVS.values()))
        problems: list[str] = []
        where = f"within {SEARCH_DEPTH} folder levels"
        layout = {
            S1_FOLDER: "data/flood_events/HandLabeled/S1Hand/<Event>_<id>_S1Hand.tif",
            LABEL_FOLDER: "data/flood_events/HandLabeled/LabelHand/<Event>_<id>_LabelHand.tif",
        }

        def one(key: str, what: str, required: bool) -> Path | None:
            hits = found[key]
            if len(hits) > 1:
                listing = ", ".join(self._r(h) for h in hits)
                problems.append(
                    f"{key}: found {len(hits)} ({listing}); point the importer at the folder "
                    "that holds only one copy of the dataset (e.g. the bucket's v1.1/)"
                )
            elif not hits and required:
                problems.append(f"{key}: not found {where}; expected {what}")
            return hits[0] if len(hits) == 1 else None

        s1 = one(S1_FOLDER, layout[S1_FOLDER], True)
        label = one(LABEL_FOLDER, layout[LABEL_FOLDER], True)
        csvs: dict[str, Path] = {}
        for split, fname in SPLIT_CSVS.items():
            hit = one(fname, f"splits/flood_handlabeled/{fname}", split not in OPTIONAL_SPLITS)
            if hit is not None:
                csvs[split] = hit
        if problems or s1 is None or label is None:
            raise self._fail(problems)
        return s1, label, csvs

    def _read_csv(self, path: Path) -> list[tuple[int, list[str]]]:
        try:
            with path.open(newline="", encoding="utf-8-sig") as f:
                rows = [(n, [c.strip() for c in row]) for n, row in enumerate(csv.reader(f), 1)]
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            self._problems.append(f"{self._r(path)}: unreadable ({exc})")
            return []
        out = []
        for n, cells in rows:
            while cells and not cells[-1]:
                cells.pop()
            if cells:
                out.append((n, cells))
        if not out:
            self._problems.append(
                f"{self._r(path)}: no rows (expected S1Hand file, LabelHand file)"
            )
        return out

    def _plan(self) -> list[_Chip]:
        s1_files = {p.name for p in self.s1_dir.iterdir()}
        label_files = {p.name for p in self.label_dir.iterdir()}
        chips: dict[str, _Chip] = {}
        listed: dict[str, str] = {}  # sample id -> "<csv> line <n>"
        for split, csv_path in self.csvs.items():
            for line, cells in self._read_csv(csv_path):
                at = f"{self._r(csv_path)} line {line}"
                chip = self._row(split, at, cells, s1_files, label_files)
                if chip is None:
                    continue
                if chip.id in chips:
                    other = chips[chip.id].split
                    how = f"twice in split {split!r}" if other == split else "in two splits"
                    self._problems.append(
                        f"{at}: {chip.s1.name} is listed {how} ({other!r} at {listed[chip.id]}, "
                        f"{split!r} here)"
                    )
                    continue
                chips[chip.id] = chip
                listed[chip.id] = at
        return [c for split in SPLIT_CSVS for c in chips.values() if c.split == split]

    def _row(
        self, split: str, at: str, cells: list[str], s1_files: set[str], label_files: set[str]
    ) -> _Chip | None:
        if len(cells) != 2:
            self._problems.append(
                f"{at}: malformed row {','.join(cells)!r}: expected 2 columns "
                "(<Event>_<id>_S1Hand.tif, <Event>_<id>_LabelHand.tif)"
            )
            return None
        s1_name, label_name = cells
        m = S1_NAME.match(s1_name)
        stem = f"{m['event']}_{m['chip']}" if m else ""
        if m is None or label_name != f"{stem}_LabelHand.tif":
            self._problems.append(
                f"{at}: malformed row {s1_name},{label_name}: expected "
                "<Event>_<id>_S1Hand.tif,<Event>_<id>_LabelHand.tif with the same <Event>_<id>"
            )
            return None
        try:
            check_sample_id(stem)
        except ValueError as exc:
            self._problems.append(f"{at}: {s1_name}: {exc}")
            return None
        missing = [
            self._r(folder / fname)
            for folder, fname, present in (
                (self.s1_dir, s1_name, s1_files),
                (self.label_dir, label_name, label_files),
            )
            if fname not in present
        ]
        if missing:
            self._problems.extend(f"{at}: {rel} not found" for rel in missing)
            return None
        return _Chip(split, stem, m["event"], self.s1_dir / s1_name, self.label_dir / label_name)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "import",
            "importer": "sen1floods11",
            "version": IMPORTER_VERSION,
            "source_folder": self.source_dir.resolve().name,
            "params": {
                "s1_dir": self._r(self.s1_dir),
                "label_dir": self._r(self.label_dir),
                "split_csvs": {k: self._r(v) for k, v in self.csvs.items()},
            },
            "about": self.about,
        }

    def expected_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for chip in self._chips:
            counts[chip.split] = counts.get(chip.split, 0) + 1
        return counts

    def samples(self) -> Iterator[SampleRecord]:
        """Every listed chip, split by split in CSV order; raises after checking them all."""
        return _stream(self._problems, self._chips, self._load, self._fail)

    def _load(self, chip: _Chip, problems: list[str]) -> SampleRecord | None:
        s1_rel, label_rel = self._r(chip.s1), self._r(chip.label)
        s1 = _read(chip.s1, s1_rel, problems)
        label = _read(chip.label, label_rel, problems)
        if s1 is None or label is None:
            return None
        before = len(problems)
        if s1.data.shape[0] != len(self.bands):
            problems.append(f"{s1_rel}: {s1.data.shape[0]} band(s), expected 2 (VV, VH)")
        if not np.issubdtype(s1.data.dtype, np.floating):
            problems.append(f"{s1_rel}: dtype {s1.data.dtype}, expected float32 (dB)")
        if label.data.shape[0] != 1:
            problems.append(f"{label_rel}: {label.data.shape[0]} band(s), expected 1")
        _fits(label, label_rel, s1, chip.s1.name, problems, self.snapped)
        bad = ~np.isin(label.data, LABEL_VALUES)
        if bad.any():
            problems.append(
                f"{label_rel}: label values outside {{-1, 0, 1}}: {_values(label.data[bad])} "
                f"({int(bad.sum())} pixels)"
            )
        if len(problems) > before:
            return None
        inputs = s1.data.astype(np.float32, copy=False)
        if s1.nodata is not None and not math.isnan(s1.nodata):  # a declared number: make NaN
            inputs = np.where(inputs == s1.nodata, np.float32(np.nan), inputs)
        lab = label.data[0]
        valid = (lab != -1) & np.isfinite(inputs).all(axis=0)
        return SampleRecord(
            split=chip.split,
            id=chip.id,
            inputs=inputs,
            grid=s1.grid,
            target=(lab == 1).astype(np.uint8),
            valid=valid.astype(np.uint8),
            input_nodata=float("nan"),
            meta={"event": chip.event, "group": chip.event},
        )
