"""Importers of real data: the Sen1Floods11 hand-labelled chips, and any folder of GeoTIFFs.

Both importers stream: they plan from file names first, then read one sample at a time.
Every problem found (a missing or unreadable file, a wrong band count, a target on another
grid, a value out of range...) is collected, and one error lists them all at the end, each
naming its file; nothing is written under the data root unless every sample is sound.

**Grids.** A target (label) or valid mask must lie on its input's grid by the one rule of
:func:`harness.geo.compare_grids`: same size and CRS, transforms within 10^-6 of a pixel
(every pixel corner). Within it, the file is written onto the input's exact grid and listed
in :attr:`snapped` (:class:`Snap`: which file, onto which input, by how many pixels), which
the import report prints: Sen1Floods11's labels, as published, have pixel sizes that
differ from their S1 chip's in the 15th digit (~2e-12 of a pixel across a chip). Beyond
it, the problem names both files and each differing field in words.

**What the data is.** Each importer records in the manifest's ``source.about`` what it can
state about the data: classes and their meaning, source, licence, citation, groups (the
dataset card shows it); and its bands' roles (``band_roles``: ``VV``/``VH``,
``pre``/``post``).

### `sen1floods11`: Sen1Floods11 hand-labelled chips

**Features.** 446 Sentinel-1 GRD chips of 512x512 pixels (10 m, EPSG:4326) over 11 flood
events, with hand-drawn water labels. Bands: `VV_db`, `VH_db` (sigma0 in dB, as published;
NaN where there is no data).

**Format.** Anywhere under the source folder (searched a few levels deep), as in the
published bucket (`v1.1/`):

```
data/flood_events/HandLabeled/S1Hand/<Event>_<id>_S1Hand.tif        2 bands VV, VH, float32 dB
data/flood_events/HandLabeled/LabelHand/<Event>_<id>_LabelHand.tif  int16: -1 nodata, 0, 1
splits/flood_handlabeled/flood_{train,valid,test}_data.csv           required
splits/flood_handlabeled/flood_bolivia_data.csv                      optional
```

Each CSV has no header; a row names an S1Hand file and its LabelHand file. The splits are
`train`, `val` (from `flood_valid_data.csv`), `test` and `bolivia` (the held-out event,
where its CSV exists). Sample ids are `<Event>_<id>`; the manifest records each one's event,
which is also its independence group (chips of one flood event are correlated). The test
labels are published with the data: its test is `public` (comparable, not blind).

**Classes.** Target 1 = water (label 1: all surface water, permanent water included, not
only newly flooded land), 0 = not water (label 0). Label -1 (not labelled) and pixels where
any input band is not finite (the NaN at chip edges) are not scored: the valid mask is 0
there. Inputs are kept as they are, NaN included (their nodata value is NaN). Band roles:
``VV``, ``VH`` (one date, two polarisations; not pre/post).

**Licence.** The dataset's README names none and asks users to cite it; see
https://github.com/cloudtostreet/Sen1Floods11.

**Citation.** Bonafilia, D., Tellman, B., Anderson, T., Issenberg, E. (2020). Sen1Floods11:
a georeferenced dataset to train and test deep learning flood algorithms for Sentinel-1.
CVPR Workshops, pp. 210-211.

### `folder`: any task from a folder of GeoTIFFs

**Format.** One folder per split under the source folder: `train/`, `val/` (also spelled
`valid/` or `validation/`), `test/`, and any other lowercase split name (`pretrain/`...).
In each split folder:

```
inputs/<id>.tif     (or images/, img/)            the task's input bands, any numeric dtype
targets/<id>.tif    (or masks/, labels/, label/)  one band, same grid as its input
valid/<id>.tif      optional, one band            0 = not scored
```

Files pair up by name (`.tif` or `.tiff`). Inputs are stored as float32 and keep their
nodata value. Band names come from the inputs' band descriptions where every input has the
same complete, distinct set; otherwise `band1`, `band2`, ...

**Independence groups.** Chips of one place or one event are correlated; the statistics
need to know which. An optional `groups.csv` in the source folder names them: a header
`id,group`, then one row per chip (its file stem and its group: a site, an event, a tile
block). Without it, the part of the file stem before the first `_` is the group (as in
`valencia_r01c02` or `Bolivia_103757`), where every stem has that form, no prefix is a
split name, and the prefixes group at least two chips together. Otherwise the import says
so, names no groups, and every chip counts as its own group (intervals are then too narrow
if chips are correlated).

**Classes.** Flood targets must be 0 or 1 and ndvi targets in [-1, 1] (stored as float32)
wherever they are not nodata. A pixel is not scored (valid mask 0) where the target holds
its nodata value (or NaN), where an input band holds its nodata value or is not finite,
where the optional valid mask is 0, or, with ``parcels`` (``--parcels PATH``), outside
every polygon of that vector file (GeoPackage, GeoJSON, shapefile; reprojected to each
chip's CRS; a pixel is inside where its centre is): the farm mask of an ndvi dataset. The
name defaults to the folder's name, and the task must be given: this is how the flood
study's own 156/20/20 dataset is imported.

**What the user states.** An optional ``dataset.toml`` in the source folder
(``description``, ``source``, ``licence``, ``citation``, ``[classes]`` target value ->
meaning, ``band_roles``), or the flags ``--class VALUE=MEANING``, ``--licence``,
``--citation``, ``--band-roles`` (which win), say what the data is; the card says "not
stated by the importer" for what nobody stated. Band roles default to what the band names
say without ambiguity (``*pre*``/``*post*``, ``VV``/``VH``).
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import rasterio
from rasterio.errors import RasterioError

from harness.datasets.layout import SPLIT_NAME, check_dataset_name, check_sample_id
from harness.datasets.source import SampleRecord
from harness.errors import DataFileError, SarbenchError
from harness.geo import (
    GRID_TOLERANCE,
    Grid,
    Raster,
    canonical_crs,
    compare_grids,
    read_raster,
    same_crs,
)
from harness.tasks import TASKS, Task, get_task

IMPORTER_VERSION = 1
SEARCH_DEPTH = 6  # folder levels searched below a Sen1Floods11 source folder
MAX_LISTED = 200  # problems written into one error message (all are kept on the error)


class SourceDataError(SarbenchError):
    """A source folder that cannot be imported as it is; lists every problem found.

    Each problem names the file (relative to the source folder) it is about.
    """

    def __init__(self, importer: str, source_dir: Path, problems: list[str]) -> None:
        shown = "\n".join(f"  - {p}" for p in problems[:MAX_LISTED])
        more = (
            f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        )
        super().__init__(
            f"{importer} import from {source_dir}: {len(problems)} problem(s), nothing was "
            f"imported:\n{shown}{more}"
        )
        self.importer, self.source_dir, self.problems = importer, source_dir, problems


# ---------------------------------------------------------------------------------------
# shared helpers


T = TypeVar("T")


def _check_name(name: str, what: str) -> str:
    return check_dataset_name(name, what, hint="; choose one with --name")


def _rel(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _read(path: Path, rel: str, problems: list[str]) -> Raster | None:
    try:
        return read_raster(path)
    except DataFileError as exc:
        problems.append(f"{rel}: {exc.problem}")
        return None


@dataclass(frozen=True)
class Snap:
    """A target or valid mask whose grid differs from its input's within the tolerance
    (:func:`harness.geo.compare_grids`), written onto the input's exact grid: ``file`` and
    ``onto`` (its input) relative to the source folder, ``offset`` the largest distance
    between their pixel corners, in pixels."""

    file: str
    onto: str
    offset: float

    def __str__(self) -> str:
        return f"{self.file}: {self.offset:.2g} pixels, onto the grid of {self.onto}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "onto": self.onto, "offset_pixels": self.offset}


def _fits(
    r: Raster,
    rel: str,
    x: Raster,
    x_rel: str,
    problems: list[str],
    snapped: list[Snap],
    x_said: str | None = None,
) -> bool:
    """Whether ``r`` (a target or a mask) lies on the grid of its input ``x`` within the
    tolerance. Beyond it: a problem naming both files and each difference in words; within
    it but not bit for bit: a :class:`Snap` (the record is written on ``x``'s grid)."""
    match = compare_grids(r.grid, x.grid)
    if not match.same:
        problems.append(
            f"{rel}: grid differs from {x_said or x_rel}: {match} (grids must agree to "
            f"within {GRID_TOLERANCE:g} of a pixel)"
        )
        return False
    if not match.exact:
        snapped.append(Snap(rel, x_rel, match.offset))
    return True


def _values(arr: np.ndarray, limit: int = 5) -> str:
    vals = np.unique(arr)
    text = ", ".join(f"{v:g}" for v in vals[:limit].tolist())
    return text + (", ..." if vals.size > limit else "")


def _not_nodata(data: np.ndarray, nodata: float | None) -> np.ndarray:
    """True where no band of ``data`` ((bands, H, W)) is NaN or the declared nodata value."""
    ok = np.ones(data.shape[1:], dtype=bool)
    if np.issubdtype(data.dtype, np.floating):
        ok &= ~np.isnan(data).any(axis=0)
    if nodata is not None and not math.isnan(nodata):
        ok &= (data != nodata).all(axis=0)
    return ok


def _order(splits: Sequence[str]) -> list[str]:
    first = [s for s in ("train", "val", "test") if s in splits]
    return first + sorted(s for s in splits if s not in first)


def _stream(
    known: list[str],
    items: Sequence[T],
    load: Callable[[T, list[str]], SampleRecord | None],
    fail: Callable[[list[str]], SourceDataError],
) -> Iterator[SampleRecord]:
    """Load and check every item; yield samples until the first problem, then only check.

    Raises ``fail(problems)`` at the end if anything was wrong, so a consumer writing into
    a staging folder never finishes with a partial dataset.
    """
    problems = list(known)
    for item in items:
        rec = load(item, problems)
        if rec is not None and not problems:
            yield rec
    if problems:
        raise fail(problems)


# ---------------------------------------------------------------------------------------
# Sen1Floods11


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


# ---------------------------------------------------------------------------------------
# generic folder


GROUPS_CSV = "groups.csv"
INPUT_FOLDERS = ("inputs", "images", "img")
TARGET_FOLDERS = ("targets", "masks", "labels", "label")
VALID_FOLDER = "valid"
SPLIT_ALIASES = {"valid": "val", "validation": "val"}
TIF_SUFFIXES = (".tif", ".tiff")
ABOUT_FILE = "dataset.toml"
ABOUT_TEXT_KEYS = ("description", "source", "licence", "citation")
GROUP_WORDS = {
    GROUPS_CSV: f"named in {GROUPS_CSV} in the source folder (one row id,group per chip)",
    "file stem prefix": (
        "the part of each file stem before the first '_' (valencia_r01c02 -> valencia)"
    ),
    "none": "none named: every chip counts as its own group",
}


def _read_about(path: Path, rel: str, problems: list[str]) -> dict[str, Any]:
    """``dataset.toml``: optional ``description``, ``source``, ``licence`` (or ``license``),
    ``citation`` (text), ``[classes]`` (target value -> meaning) and ``band_roles`` (one
    role per input band). Every problem is listed."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        problems.append(f"{rel}: unreadable ({exc})")
        return {}
    if "license" in raw:
        if "licence" in raw and raw["licence"] != raw["license"]:
            problems.append(f"{rel}: 'licence' and 'license' differ; keep one")
        raw.setdefault("licence", raw.pop("license"))
        raw.pop("license", None)
    out: dict[str, Any] = {}
    unknown = sorted(set(raw) - {*ABOUT_TEXT_KEYS, "classes", "band_roles"})
    if unknown:
        problems.append(
            f"{rel}: unknown key(s) {', '.join(unknown)}; the keys are "
            f"{', '.join(ABOUT_TEXT_KEYS)}, [classes] and band_roles"
        )
    for key in ABOUT_TEXT_KEYS:
        if key in raw:
            if isinstance(raw[key], str) and raw[key].strip():
                out[key] = raw[key].strip()
            else:
                problems.append(f"{rel}: {key} must be non-empty text")
    classes = raw.get("classes")
    if classes is not None:
        if isinstance(classes, dict) and all(isinstance(v, str) for v in classes.values()):
            out["classes"] = {str(k): v for k, v in classes.items()}
        else:
            problems.append(f'{rel}: [classes] must map target values to text ("1" = "water")')
    roles = raw.get("band_roles")
    if roles is not None:
        if isinstance(roles, list) and all(isinstance(r, str) for r in roles):
            out["band_roles"] = roles
        else:
            problems.append(f'{rel}: band_roles must be a list of text (["pre", "post"])')
    return out


def _known_roles() -> tuple[str, ...] | None:
    """The band roles there are (:mod:`sarbench_io.bands`), or None where it is missing."""
    try:
        from sarbench_io import bands
    except ImportError:  # pragma: no cover - an older sarbench_io
        return None
    return tuple(bands.ROLES)


class _Parcels:
    """Polygons of the pixels to score (farm parcels for ndvi), read once from a vector
    file (GeoPackage, GeoJSON, shapefile: whatever GDAL reads, through pyogrio) and burnt
    onto each chip's grid with :func:`rasterio.features.rasterize`: a pixel is inside where
    its centre is. Geometries in another CRS than a chip's are reprojected to it
    (:func:`rasterio.warp.transform_geom`). Problems (unreadable file, several layers, no
    CRS, features that are not polygons) are added to ``problems``."""

    def __init__(self, path: Path, rel: str, problems: list[str]) -> None:
        self.path, self.rel = path, rel
        self.crs = ""
        self._shapes: list[Any] = []  # shapely geometries, in self.crs
        self._by_crs: dict[str, tuple[list[Any], np.ndarray]] = {}
        before = len(problems)
        self._read(problems)
        self.ok = len(problems) == before
        """Read without a problem: chips may be masked with it."""

    def _read(self, problems: list[str]) -> None:
        rel = self.rel
        try:
            import pyogrio
            import shapely
        except ImportError:  # pragma: no cover - both are dependencies
            problems.append(f"{rel}: reading parcels needs pyogrio and shapely (pip install)")
            return
        if not self.path.is_file():
            problems.append(f"{rel}: parcels file not found")
            return
        try:
            layers = pyogrio.list_layers(self.path)
            if len(layers) != 1:
                names = ", ".join(str(row[0]) for row in layers)
                problems.append(
                    f"{rel}: {len(layers)} layers ({names}); keep the parcels in one layer"
                )
                return
            meta, _, wkb, _ = pyogrio.raw.read(self.path, columns=[], force_2d=True)
        except Exception as exc:  # pyogrio's errors name no common base but Exception
            problems.append(f"{rel}: not a readable vector file ({exc})")
            return
        if not meta.get("crs"):
            problems.append(
                f"{rel}: has no CRS (a shapefile needs its .prj), so its parcels cannot be "
                "placed on the chips"
            )
            return
        self.crs = canonical_crs(meta["crs"])
        others: dict[str, int] = {}
        for geom in shapely.from_wkb(wkb):
            if geom is None or geom.is_empty:
                continue
            parts = (
                getattr(geom, "geoms", [geom]) if geom.geom_type == "GeometryCollection" else [geom]
            )
            for part in parts:
                if part.geom_type in ("Polygon", "MultiPolygon"):
                    self._shapes.append(part)
                else:
                    others[part.geom_type] = others.get(part.geom_type, 0) + 1
        if others:
            kinds = ", ".join(f"{n} {k}" for k, n in sorted(others.items()))
            problems.append(f"{rel}: features that are not polygons ({kinds}); parcels are areas")
        if not self._shapes and not others:
            problems.append(f"{rel}: no parcels (every feature is empty)")

    def describe(self) -> dict[str, Any]:
        """The file's name and SHA-256 (its bytes), its CRS and how many polygons it has."""
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest() if self.ok else None
        return {
            "file": self.path.name,
            "sha256": digest,
            "crs": self.crs,
            "polygons": len(self._shapes),
        }

    def _in(self, crs: str) -> tuple[list[Any], np.ndarray]:
        """The parcels as GeoJSON-like mappings in ``crs`` and their bounds."""
        if crs not in self._by_crs:
            import shapely
            from rasterio.warp import transform_geom

            maps = [shapely.geometry.mapping(g) for g in self._shapes]
            if not same_crs(crs, self.crs):
                maps = list(transform_geom(self.crs, crs, maps))
            shapes = [shapely.geometry.shape(m) for m in maps]
            bounds = shapely.bounds(np.array(shapes, dtype=object)).reshape(-1, 4)
            self._by_crs[crs] = (maps, bounds)
        return self._by_crs[crs]

    def mask(self, grid: Grid) -> np.ndarray:
        """True at the pixels of ``grid`` whose centre is inside a parcel."""
        from rasterio.features import rasterize

        maps, bounds = self._in(grid.crs)
        west, south, east, north = grid.bounds()
        near = (
            (bounds[:, 0] <= east)
            & (bounds[:, 2] >= west)
            & (bounds[:, 1] <= north)
            & (bounds[:, 3] >= south)
        )
        shapes = [(maps[i], 1) for i in np.flatnonzero(near)]
        if not shapes:
            return np.zeros(grid.shape, dtype=bool)
        burnt = rasterize(
            shapes, out_shape=grid.shape, transform=grid.affine, fill=0, dtype="uint8"
        )
        return burnt == 1


@dataclass(frozen=True)
class _Pair:
    split: str
    id: str
    input: Path
    target: Path
    valid: Path | None


@dataclass(frozen=True)
class _SplitFolders:
    folder: Path
    inputs: Path | None
    targets: Path | None
    valid: Path | None


class FolderSource:
    """Any task's dataset from ``<source_dir>/<split>/{inputs,targets[,valid]}/*.tif``.

    Synonyms: an inputs folder may be called ``inputs``, ``images`` or ``img``; a targets
    folder ``targets``, ``masks``, ``labels`` or ``label``; the split folder ``val`` may be
    called ``valid`` or ``validation``. ``name`` defaults to the source folder's name;
    ``task`` is required. Everything is checked while :meth:`samples` streams (see the
    module docstring); a source folder without any split folder is an error at once.
    """

    def __init__(
        self,
        source_dir: str | os.PathLike[str],
        name: str | None = None,
        task: str | None = None,
        *,
        parcels: str | os.PathLike[str] | None = None,
        about: Mapping[str, Any] | None = None,
        band_roles: Sequence[str] | None = None,
    ) -> None:
        self.source_dir = Path(source_dir)
        if task is None:
            raise SarbenchError(
                f"the folder importer needs a task: one of {', '.join(sorted(TASKS))} (--task)"
            )
        self._task: Task = get_task(task)
        self.task = self._task.name
        if name is None:
            self.name = _check_name(self.source_dir.resolve().name, "the folder's name")
        else:
            self.name = _check_name(name, "name")
        if not self.source_dir.is_dir():
            raise SourceDataError("folder", self.source_dir, ["source folder not found"])
        self._problems: list[str] = []
        self.notes: list[str] = []
        self.snapped: list[Snap] = []
        self._splits = self._find_splits()
        self._pairs = self._plan()
        self.bands = self._band_names()
        self._groups, self._group_rule = self._plan_groups()
        self.about = self._about(about or {})
        self.band_roles = self._roles(band_roles)
        self._parcels: _Parcels | None = None
        if parcels is not None:
            path = Path(parcels)
            self._parcels = _Parcels(path, _rel(self.source_dir, path), self._problems)

    def _fail(self, problems: list[str]) -> SourceDataError:
        return SourceDataError("folder", self.source_dir, problems)

    def _r(self, path: Path) -> str:
        return _rel(self.source_dir, path)

    def _find_splits(self) -> dict[str, _SplitFolders]:
        found: dict[str, _SplitFolders] = {}
        folders = sorted(
            p for p in self.source_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
        for folder in folders:
            split = SPLIT_ALIASES.get(folder.name, folder.name)
            if not SPLIT_NAME.match(split):
                self._problems.append(
                    f"{folder.name}/: not a split folder name (train, val, test, or another "
                    "lowercase name of letters, digits, '-' and '_')"
                )
                continue
            if split in found:
                self._problems.append(
                    f"{folder.name}/: split {split!r} is also in {found[split].folder.name}/"
                )
                continue
            valid = folder / VALID_FOLDER
            found[split] = _SplitFolders(
                folder=folder,
                inputs=self._one_of(folder, INPUT_FOLDERS, "inputs"),
                targets=self._one_of(folder, TARGET_FOLDERS, "targets"),
                valid=valid if valid.is_dir() else None,
            )
        if not found:
            raise self._fail(
                [
                    *self._problems,
                    "no split folders found; expected <split>/inputs/*.tif and "
                    "<split>/targets/*.tif, e.g. train/, val/, test/",
                ]
            )
        return {s: found[s] for s in _order(list(found))}

    def _one_of(self, folder: Path, names: tuple[str, ...], what: str) -> Path | None:
        hits = [folder / n for n in names if (folder / n).is_dir()]
        if len(hits) == 1:
            return hits[0]
        listing = ", ".join(f"{n}/" for n in names)
        if hits:
            self._problems.append(
                f"{self._r(folder)}/: more than one {what} folder "
                f"({', '.join(h.name + '/' for h in hits)}); keep one"
            )
        else:
            self._problems.append(f"{self._r(folder)}/: no {what} folder (one of {listing})")
        return None

    def _tifs(self, folder: Path) -> dict[str, Path]:
        out: dict[str, Path] = {}
        for p in sorted(folder.iterdir()):
            if p.name.startswith(".") or not (p.suffix.lower() in TIF_SUFFIXES and p.is_file()):
                continue
            if p.stem in out:
                self._problems.append(f"{self._r(p)}: same name as {out[p.stem].name}")
                continue
            out[p.stem] = p
        return out

    def _plan(self) -> list[_Pair]:
        pairs: list[_Pair] = []
        owner: dict[str, Path] = {}
        for split, sf in self._splits.items():
            if sf.inputs is None or sf.targets is None:
                continue
            inputs, targets = self._tifs(sf.inputs), self._tifs(sf.targets)
            valids = self._tifs(sf.valid) if sf.valid is not None else {}
            if not inputs:
                self._problems.append(f"{self._r(sf.inputs)}/: no GeoTIFFs (*.tif)")
            for stem in sorted(set(targets) - set(inputs)):
                self._problems.append(
                    f"{self._r(targets[stem])}: target without an input in {self._r(sf.inputs)}/"
                )
            for stem in sorted(set(valids) - set(inputs)):
                self._problems.append(
                    f"{self._r(valids[stem])}: valid mask without an input in {self._r(sf.inputs)}/"
                )
            for stem, path in inputs.items():
                before = len(self._problems)
                if stem not in targets:
                    self._problems.append(
                        f"{self._r(path)}: input without a target in {self._r(sf.targets)}/"
                    )
                if sf.valid is not None and stem not in valids:
                    self._problems.append(
                        f"{self._r(path)}: no valid mask in {self._r(sf.valid)}/ (every input "
                        "needs one where the folder exists)"
                    )
                try:
                    check_sample_id(stem)
                except ValueError as exc:
                    self._problems.append(f"{self._r(path)}: {exc}")
                if stem in owner:
                    self._problems.append(
                        f"{self._r(path)}: sample id {stem!r} is also {self._r(owner[stem])}"
                    )
                if len(self._problems) == before:
                    owner[stem] = path
                    pairs.append(_Pair(split, stem, path, targets[stem], valids.get(stem)))
        return pairs

    def _plan_groups(self) -> tuple[dict[str, str] | None, str]:
        """Each chip's independence group and how they were found (see the module doc)."""
        ids = [p.id for p in self._pairs]
        path = self.source_dir / GROUPS_CSV
        if path.is_file():
            return self._groups_from_csv(path, ids), GROUPS_CSV
        split_names = set(self._splits) | set(SPLIT_ALIASES) | {"train", "val", "test"}
        prefixes = {sid: sid.split("_", 1)[0] for sid in ids if "_" in sid.strip("_")}
        why = ""
        if not ids:
            return None, "none"
        if len(prefixes) < len(ids) or not all(prefixes.values()):
            why = "not every file stem has the form <group>_<rest>"
        elif split_names & set(prefixes.values()):
            why = "the file stems start with split names, not with a place or an event"
        elif len(set(prefixes.values())) == len(ids):
            why = "no two chips share a file stem prefix"
        if why:
            self.notes.append(
                f"folder import from {self.source_dir}: no independence groups ({why}, and "
                f"there is no {GROUPS_CSV}), so every chip counts as its own group; if chips "
                "are correlated (one site, one event, adjacent tiles), intervals will be too "
                f"narrow: add {GROUPS_CSV} (header id,group; one row per chip) to the source "
                "folder and import again (with --refreeze if the dataset is frozen)"
            )
            return None, "none"
        return prefixes, "file stem prefix"

    def _groups_from_csv(self, path: Path, ids: list[str]) -> dict[str, str] | None:
        rel = self._r(path)
        try:
            with path.open(newline="", encoding="utf-8-sig") as f:
                rows = [[c.strip() for c in row] for row in csv.reader(f)]
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            self._problems.append(f"{rel}: unreadable ({exc})")
            return None
        rows = [r for r in rows if any(r)]
        if not rows or [c.lower() for c in rows[0]] != ["id", "group"]:
            self._problems.append(f"{rel}: the first row must be the header id,group")
            return None
        groups: dict[str, str] = {}
        known = set(ids)
        for n, row in enumerate(rows[1:], start=2):
            if len(row) != 2 or not row[0] or not row[1]:
                self._problems.append(f"{rel} line {n}: expected <id>,<group>, both non-empty")
            elif row[0] not in known:
                self._problems.append(f"{rel} line {n}: {row[0]!r} is not a chip of the source")
            elif row[0] in groups:
                self._problems.append(f"{rel} line {n}: {row[0]!r} is listed twice")
            else:
                groups[row[0]] = row[1]
        missing = [sid for sid in ids if sid not in groups]
        if missing:
            shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
            self._problems.append(f"{rel}: {len(missing)} chip(s) have no group: {shown}")
        return groups

    def _band_names(self) -> tuple[str, ...]:
        """The inputs' band descriptions if every input has the same complete, distinct set."""
        generic = tuple(f"band{i}" for i in range(1, self._task.input_bands + 1))
        names: tuple[str, ...] | None = None
        first: Path | None = None
        for pair in self._pairs:
            try:
                with rasterio.open(pair.input) as src:
                    desc = tuple(d or "" for d in src.descriptions)
            except RasterioError:  # reported as unreadable when streamed
                return generic
            if not all(desc) or len(set(desc)) != len(desc):
                return generic
            if names is not None and desc != names:
                self._problems.append(
                    f"{self._r(pair.input)}: band names {', '.join(desc)} differ from "
                    f"{', '.join(names)} of {self._r(first or pair.input)}"
                )
                return generic
            names, first = desc, pair.input
        if names is None or len(names) != self._task.input_bands:
            return generic
        return names

    def _about(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """What the user states about the data: ``dataset.toml`` in the source folder, then
        the flags (``given``: ``classes``, ``licence``, ``citation``, ``source``,
        ``description``), which win; and what the importer knows itself."""
        path = self.source_dir / ABOUT_FILE
        stated = _read_about(path, ABOUT_FILE, self._problems) if path.is_file() else {}
        self._toml_roles = stated.pop("band_roles", None)
        for key, value in given.items():
            if value:
                stated[key] = dict(value) if key == "classes" else str(value)
        about: dict[str, Any] = dict(sorted(stated.items()))
        about["stated_by"] = (
            ", ".join(
                w for w, on in ((ABOUT_FILE, path.is_file()), ("flags", any(given.values()))) if on
            )
            or "nobody"
        )
        about["groups"] = GROUP_WORDS[self._group_rule]
        return about

    def _roles(self, given: Sequence[str] | None) -> tuple[str, ...] | None:
        """The bands' roles as stated: the flag, else ``dataset.toml``'s ``band_roles``;
        None where nobody states them (the manifest's reader then takes what the band names
        say unambiguously: ``*pre*``/``*post*``, ``VV``/``VH``)."""
        roles: Sequence[str] | None = given or self._toml_roles
        where = "--band-roles" if given else f"{ABOUT_FILE} band_roles"
        if roles is None:
            return None
        roles = tuple(str(r) for r in roles)
        known = _known_roles()
        if len(roles) != len(self.bands):
            self._problems.append(
                f"{where}: {len(roles)} role(s) for {len(self.bands)} band(s) "
                f"({', '.join(self.bands)})"
            )
        elif known is not None and not set(roles) <= set(known):
            odd = ", ".join(r for r in roles if r not in known)
            self._problems.append(
                f"{where}: unknown role(s) {odd}; the roles are {', '.join(known)}"
            )
        return roles

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "import",
            "importer": "folder",
            "version": IMPORTER_VERSION,
            "source_folder": self.source_dir.resolve().name,
            "params": {
                "splits": {
                    split: {
                        kind: self._r(path) if path is not None else None
                        for kind, path in (
                            ("inputs", sf.inputs),
                            ("targets", sf.targets),
                            ("valid", sf.valid),
                        )
                    }
                    for split, sf in self._splits.items()
                },
                "groups": self._group_rule,
                **({} if self._parcels is None else {"parcels": self._parcels.describe()}),
            },
            "about": self.about,
        }

    def expected_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for pair in self._pairs:
            counts[pair.split] = counts.get(pair.split, 0) + 1
        return counts

    def samples(self) -> Iterator[SampleRecord]:
        """Every sample, split by split (train, val, test, then others), ids sorted."""
        return _stream(self._problems, self._pairs, self._load, self._fail)

    def _load(self, pair: _Pair, problems: list[str]) -> SampleRecord | None:
        task = self._task
        in_rel, t_rel = self._r(pair.input), self._r(pair.target)
        x = _read(pair.input, in_rel, problems)
        y = _read(pair.target, t_rel, problems)
        v = _read(pair.valid, self._r(pair.valid), problems) if pair.valid is not None else None
        if x is None or y is None or (pair.valid is not None and v is None):
            return None
        before = len(problems)
        if x.data.shape[0] != task.input_bands:
            problems.append(
                f"{in_rel}: {x.data.shape[0]} band(s), the {task.name} task needs "
                f"{task.input_bands}"
            )
        if not (
            np.issubdtype(x.data.dtype, np.integer) or np.issubdtype(x.data.dtype, np.floating)
        ):
            problems.append(f"{in_rel}: dtype {x.data.dtype} is not numeric")
        others = [(t_rel, y)]
        if pair.valid is not None and v is not None:
            others.append((self._r(pair.valid), v))
        for rel, r in others:
            if r.data.shape[0] != 1:
                problems.append(f"{rel}: {r.data.shape[0]} band(s), expected 1")
            _fits(r, rel, x, in_rel, problems, self.snapped, f"its input {in_rel}")
        if self._parcels is not None and not x.grid.crs:
            problems.append(
                f"{in_rel}: has no CRS, so the parcels of {self._parcels.rel} cannot be placed "
                "on it"
            )
        if len(problems) > before:
            return None
        target_ok = _not_nodata(y.data, y.nodata)
        target = self._target(y.data[0], target_ok, t_rel, problems)
        if target is None:
            return None
        inputs = x.data.astype(np.float32, copy=False)
        valid = target_ok & _not_nodata(x.data, x.nodata) & np.isfinite(inputs).all(axis=0)
        if v is not None:
            valid &= v.data[0] != 0
        if self._parcels is not None and self._parcels.ok:
            valid &= self._parcels.mask(x.grid)
        return SampleRecord(
            split=pair.split,
            id=pair.id,
            inputs=inputs,
            grid=x.grid,
            target=target,
            valid=valid.astype(np.uint8),
            input_nodata=None if x.nodata is None else float(x.nodata),
            meta={"group": self._groups[pair.id]} if pair.id in (self._groups or {}) else {},
        )

    def _target(
        self, raw: np.ndarray, ok: np.ndarray, rel: str, problems: list[str]
    ) -> np.ndarray | None:
        """The target in the task's dtype, 0 where it is nodata; ``None`` after a problem."""
        task = self._task
        lo, hi = task.prediction_range
        if task.target_kind == "binary_mask":
            bad = ok & (raw != lo) & (raw != hi)
            if bad.any():
                problems.append(
                    f"{rel}: target values outside {{{lo:g}, {hi:g}}} (after nodata): "
                    f"{_values(raw[bad])} ({int(bad.sum())} pixels)"
                )
                return None
            return np.where(ok, raw, lo).astype(task.target_dtype)
        values = raw.astype(task.target_dtype, copy=False)
        bad = ok & ~((values >= lo) & (values <= hi))
        if bad.any():
            problems.append(
                f"{rel}: target values outside [{lo:g}, {hi:g}] (after nodata): min "
                f"{float(values[bad].min()):g}, max {float(values[bad].max()):g} "
                f"({int(bad.sum())} pixels)"
            )
            return None
        return np.where(ok, values, 0).astype(task.target_dtype)
