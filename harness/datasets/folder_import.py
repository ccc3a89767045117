"""The folder importer (``folder``): any task's dataset from a folder of GeoTIFFs, one
folder per split. Its format, independence groups, classes and what the user may state
(``dataset.toml``, the flags) are in the docstring of :mod:`harness.datasets.importers`.
"""

from __future__ import annotations

import csv
import os
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import RasterioError

from harness.datasets.import_common import (
    IMPORTER_VERSION,
    Snap,
    SourceDataError,
    _check_name,
    _fits,
    _not_nodata,
    _order,
    _read,
    _rel,
    _stream,
    _values,
)
from harness.datasets.layout import SPLIT_NAME, check_sample_id
from harness.datasets.parcels import _Parcels
from harness.datasets.source import SampleRecord
from harness.errors import SarbenchError
from harness.tasks import TASKS, Task, get_task

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
