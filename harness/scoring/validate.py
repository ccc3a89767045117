"""Checks a prediction folder before anything is scored, and lists every problem at once.

The contract (``docs/metrics.md``, "Predictions"): the folder holds exactly one single-band
GeoTIFF per test input, named like the input (``<id>.tif``), directly in the folder (no
subfolders, no symbolic links, nothing else), on the input's grid (same CRS, same width
and height, transform within 10^-6 of a pixel: :func:`harness.geo.compare_grids`, the rule
imports and the loader apply too), in the task's dtype (flood:
``uint8``; ndvi: ``float32``), with a finite value in range at every pixel, scored or not
(flood: 0 or 1; ndvi: within [-1, 1]). A nodata value declared in the file is ignored: every
pixel is read as it is.

Predictions are written by untrusted code, so:

- the folder is listed one level deep with ``os.scandir`` and never walked into: a subfolder
  (however deep) is one problem, and a folder of a million files costs a bounded amount of
  memory: only the first :data:`MAX_PROBLEMS` problems are kept, with a count of the rest;
- a file's format is told from its first bytes, by this module, and only a TIFF is ever
  given to GDAL, with the GeoTIFF driver alone and without looking at sibling files: GDAL
  otherwise picks a driver by content, and a "prediction" that is really a VRT could make
  the harness read any file it can see (the hidden targets, for one), a WMTS or WCS one
  could make it fetch a URL (GDAL's network access is closed anyway: see
  :func:`harness.geo.close_gdal_network`);
- the header (size, band count, dtype, compression, size of a strip or tile once decoded)
  is checked before any pixel is decoded, so a file claiming enormous dimensions, thousands
  of bands in one compressed strip, or one enormous tile costs nothing; a file that passes
  decodes to at most a band of its input's size plus one block of :data:`MAX_BLOCK_BYTES`;
- every name, message or value that a container chose is printed through
  :func:`harness.errors.printable`.
"""

from __future__ import annotations

import heapq
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.io import DatasetReader

from harness.datasets.layout import SUFFIX
from harness.datasets.loader import SplitDir
from harness.errors import DataFileError, SarbenchError, printable
from harness.geo import GRID_TOLERANCE, Grid, canonical_crs, compare_grids
from harness.tasks import Task

TRANSFORM_TOLERANCE = GRID_TOLERANCE
"""How far a prediction's pixel corners may lie from its input's, in pixels
(:func:`harness.geo.compare_grids`)."""

MAX_PROBLEMS = 50
"""Problems listed by a :class:`PredictionError` (and in a run record); the rest are counted."""

MAX_BLOCK_BYTES = 64 * 2**20
"""Largest strip or tile of a prediction, decoded (GDAL decodes a whole block at a time)."""

MAX_HEADER_BYTES = 64 * 2**20
"""A prediction may be at most this much larger than its pixels uncompressed at 8 bytes
each: GDAL reads a TIFF's tags whole when it opens it, so a file is measured first."""

COMPRESSIONS = ("NONE", "DEFLATE", "LZW", "ZSTD", "LZMA", "PACKBITS")
"""The lossless TIFF compressions a prediction may use (GDAL's names)."""

UNTRUSTED_GDAL_OPTIONS = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_PAM_ENABLED": "NO"}
"""GDAL settings while a prediction is open: no sibling file (``.aux.xml``, ``.ovr``,
``.msk``, world file) is looked for or written."""

_READABLE = "a readable single-band GeoTIFF"
_MORE = re.compile(r"\.\.\. and ([0-9,]+) more problems?")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a prediction folder: which file, what is wrong, what is expected.

    The fields hold text as found (a file name may hold any character but ``/``); ``str()``
    and :meth:`to_dict` escape what a terminal would act on (:func:`printable`).
    """

    file: str
    what: str
    expected: str

    def __str__(self) -> str:
        d = self.to_dict()
        return f"{d['file']}: {d['what']} (expected {d['expected']})"

    def to_dict(self) -> dict[str, str]:
        return {
            "file": printable(self.file),
            "what": printable(self.what),
            "expected": printable(self.expected),
        }


def more_problems(n: int) -> str:
    """The line that stands for ``n`` problems left out of a list.

    >>> more_problems(99_950)
    '... and 99,950 more problems'
    """
    return f"... and {n:,} more problem{'' if n == 1 else 's'}"


def cap_problems(
    problems: Sequence[Problem | str], total: int | None = None, *, limit: int = MAX_PROBLEMS
) -> list[str]:
    """At most ``limit`` problems as printable lines, then one line counting the rest.

    ``total`` is how many problems there are in all, when ``problems`` holds only the first
    ones (as :attr:`PredictionError.problems` does; :meth:`PredictionError.lines` passes it).

    >>> cap_problems(["a", "b\\x1b[2J", "c"], limit=2)
    ['a', 'b\\\\x1b[2J', '... and 1 more problem']
    """
    n = max(len(problems), total or 0)
    lines = [printable(str(p)) for p in problems[:limit]]
    if n > len(lines):
        lines.append(more_problems(n - len(lines)))
    return lines


def is_more_problems(line: str) -> bool:
    """Whether ``line`` is the :func:`more_problems` line of a capped list."""
    return _MORE.fullmatch(line) is not None


def count_problems(lines: Sequence[str]) -> int:
    """How many problems the lines of :func:`cap_problems` stand for.

    >>> count_problems(["a", "b", "... and 1,000 more problems"])
    1002
    >>> count_problems(["invalid output: 20 files: has dtype float32 (...)", "a"])
    21
    """
    n = 0
    for line in lines:
        many = _MORE.fullmatch(line) or _GROUP.match(line)
        n += int(many.group(1).replace(",", "")) if many else 1
    return n


class PredictionError(SarbenchError):
    """Predictions that break the contract.

    ``problems`` holds the first :data:`MAX_PROBLEMS` problems, ``n_problems`` how many were
    found in all, and :meth:`lines` the problems as printed (with the count of the rest).
    """

    def __init__(
        self,
        pred_dir: str | os.PathLike[str],
        problems: Sequence[Problem],
        total: int | None = None,
    ) -> None:
        self.pred_dir = Path(pred_dir)
        self.n_problems = max(len(problems), total or 0)
        self.problems = list(problems[:MAX_PROBLEMS])
        listing = "\n".join(f"  - {line}" for line in self.grouped())
        super().__init__(
            f"{printable(str(self.pred_dir))}: {self.n_problems:,} problem(s) with the "
            f"predictions, nothing was scored:\n{listing}"
        )

    def lines(self) -> list[str]:
        """Every kept problem as a printable line, then ``... and N more problems``."""
        return cap_problems(self.problems, self.n_problems)

    def summary(self) -> str:
        """How many problems, then the grouped lines (:meth:`grouped`), one ``  - `` line
        each: the ``detail`` of an ``invalid-output`` record."""
        listing = "".join(f"\n  - {line}" for line in self.grouped())
        return f"{self.n_problems:,} problem(s) with the predictions:{listing}"

    def grouped(self) -> list[str]:
        """The kept problems grouped by kind (:func:`group_problems`), then the count of
        the rest: what a person reads."""
        lines = group_problems(self.problems)
        left = self.n_problems - len(self.problems)
        return [*lines, more_problems(left)] if left > 0 else lines


_NUMBER = re.compile(r"[0-9][0-9.,e+-]*")
_GROUP = re.compile(r"(?:[a-z ]+: )?([0-9][0-9,]*) files: ")
"""A line of :func:`group_problems` standing for that many files' problems (optionally
after a prefix such as ``invalid output: ``)."""
SHOWN_NAMES = 3
"""Files named in a group of problems of one kind; the rest are counted."""

_FIXES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), fix)
    for pattern, fix in (
        (r"^has dtype", "convert before writing, e.g. pred.astype(np.{dtype})"),
        (r"^missing$", "write one <id>.tif for every input of the split (SplitDir(...).ids)"),
        (
            r"^extra file: no test input",
            "write only the split's ids; predictions of another split?",
        ),
        (r"^extra file: name it", "rename to the lower-case .tif the inputs have"),
        (
            r"geotransform|^has CRS|pixels \(width",
            "write each prediction on its input's grid: write_raster(path, pred, sample.grid)",
        ),
        (r"are NaN|are infinite", "write a finite value at every pixel, scored or not"),
        (r"are not 0 or 1", "threshold the scores into 0/1: (prob > 0.5).astype(np.uint8)"),
        (r"are outside \[", "clip the values: np.clip(pred, -1, 1)"),
        (r"^has [0-9]+ bands", "write a single band: pred of shape (H, W)"),
    )
)


def likely_fix(problem: Problem) -> str | None:
    """The usual cure of a problem of this kind, in words and code (None: no general one)."""
    for pattern, fix in _FIXES:
        if pattern.search(problem.what):
            dtype = problem.expected.split(" ", 1)[0]
            return fix.format(dtype=dtype)
    return None


def group_problems(problems: Sequence[Problem]) -> list[str]:
    """Problems of one kind (the same words but for numbers, and the same expectation) as
    one printable line naming how many files, the first :data:`SHOWN_NAMES` of them and
    the likely fix; a kind of one file is its own line, as :class:`Problem` prints it.

    >>> p = [Problem(f"{i}.tif", "has dtype float32", "uint8 for flood predictions")
    ...      for i in range(5)]
    >>> group_problems(p)[0]
    '5 files: has dtype float32 (expected uint8 for flood predictions): 0.tif, 1.tif, 2.tif and 2 more; fix: convert before writing, e.g. pred.astype(np.uint8)'
    """
    groups: dict[tuple[str, str], list[Problem]] = {}
    for p in problems:
        groups.setdefault((_NUMBER.sub("#", p.what), p.expected), []).append(p)
    lines = []
    for members in groups.values():
        first, fix = members[0], likely_fix(members[0])
        tail = f"; fix: {fix}" if fix else ""
        if len(members) == 1:
            lines.append(printable(f"{first}{tail}"))
            continue
        whats = {m.what for m in members}
        what = first.what if len(whats) == 1 else f"e.g. {first.what}"
        names = ", ".join(m.file for m in members[:SHOWN_NAMES])
        if len(members) > SHOWN_NAMES:
            names += f" and {len(members) - SHOWN_NAMES} more"
        lines.append(
            printable(f"{len(members)} files: {what} (expected {first.expected}): {names}{tail}")
        )
    return lines


def validate_predictions(
    pred_dir: str | os.PathLike[str], split: SplitDir, task: Task
) -> dict[str, Path]:
    """Check every prediction of ``split``'s inputs in ``pred_dir``; return id -> path.

    Raises :class:`PredictionError` listing every missing, extra or faulty file (the first
    :data:`MAX_PROBLEMS` of them, and how many there are). A problem with the split itself
    (an unreadable input) is a :class:`DataFileError`.
    """
    root = Path(pred_dir)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "folder not found"
        raise PredictionError(
            root, [Problem(str(root), what, "a folder with one <id>.tif per test input")]
        )
    expected = set(split.ids)
    example = f"{split.ids[0]}{SUFFIX}" if split.ids else f"<id>{SUFFIX}"
    contract = f"only <id>{SUFFIX} files for the {len(expected)} test inputs (e.g. {example})"
    found: dict[str, Path] = {}
    accounted: set[str] = set()
    n_listed = 0

    def listed_problems(entries: Iterator[os.DirEntry[str]]) -> Iterator[tuple[str, Problem]]:
        nonlocal n_listed
        for entry in entries:
            name = entry.name
            stem = name[: -len(SUFFIX)] if name.endswith(SUFFIX) else ""
            ours = stem in expected
            if ours:
                accounted.add(stem)
            if entry.is_symlink():
                problem = Problem(name, "is a symbolic link", "a regular file")
            elif entry.is_dir(follow_symlinks=False):  # never walked into
                problem = Problem(f"{name}/", "is a subfolder", contract)
            elif not ours:
                problem = Problem(name, _extra_reason(name, expected), contract)
            elif not entry.is_file(follow_symlinks=False):
                problem = Problem(name, "is not a regular file", "a regular file")
            else:
                found[stem] = Path(entry.path)
                continue
            n_listed += 1
            yield name, problem

    try:
        with os.scandir(root) as it:  # in name order, keeping only the first problems
            first = heapq.nsmallest(MAX_PROBLEMS, listed_problems(it), key=lambda t: t[0])
    except OSError as exc:
        what = f"cannot be listed ({exc.strerror or exc})"
        raise PredictionError(root, [Problem(str(root), what, "a readable folder")]) from exc
    problems = [p for _, p in first]
    rest: list[Problem] = [
        Problem(f"{sid}{SUFFIX}", "missing", "one prediction per test input, named like it")
        for sid in sorted(expected - accounted)
    ]
    for sid in sorted(found):
        rest.extend(check_file(found[sid], input_grid(split.input_path(sid)), task))
    if n_listed or rest:
        raise PredictionError(root, [*problems, *rest][:MAX_PROBLEMS], total=n_listed + len(rest))
    return {sid: found[sid] for sid in split.ids}


def _extra_reason(name: str, expected: set[str]) -> str:
    lower = name.lower()
    for ext in (".tif", ".tiff"):
        if lower.endswith(ext) and name[: -len(ext)] in expected:
            return f"extra file: name it {name[: -len(ext)]}{SUFFIX} (lower-case {SUFFIX})"
    if name.endswith(SUFFIX):
        return f"extra file: no test input is called '{name[: -len(SUFFIX)]}'"
    return f"extra file: not an <id>{SUFFIX} prediction"


def input_grid(path: Path) -> Grid:
    """The grid of a test input, from its header (no pixels read)."""
    try:
        with rasterio.open(path, driver="GTiff") as src:
            return Grid(
                crs=canonical_crs(src.crs),
                transform=tuple(float(v) for v in src.transform[:6]),  # type: ignore[arg-type]
                height=src.height,
                width=src.width,
            )
    except RasterioError as exc:
        raise DataFileError(path, f"test input not readable ({exc})") from exc


# First bytes of formats GDAL would open, for a clear message; only TIFF goes to GDAL.
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF
_MAGIC = (
    (b"BM", "BMP"),
    (b"\x89PNG", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF8", "GIF"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"\x89HDF", "HDF5"),
    (b"CDF\x01", "netCDF"),
    (b"CDF\x02", "netCDF"),
    (b"PK\x03\x04", "ZIP"),
    (b"\x1f\x8b", "gzip"),
    (b"%PDF", "PDF"),
    (b"SQLite format 3\x00", "SQLite"),
)
_XML_ROOTS = {
    "VRTDataset": "VRT",
    "GDAL_WMS": "WMS",
    "GDAL_WMTS": "WMTS",
    "WCS_GDAL": "WCS",
    "GDALTileIndexDataset": "GTI",
}
_XML_ROOT = re.compile(rb"<([A-Za-z_][\w.:-]*)")


def sniff_format(head: bytes) -> str | None:
    """``"GTiff"`` for a TIFF or BigTIFF, the name of another format GDAL would open
    (``"VRT"``, ``"WMTS"``, ``"BMP"``...), or None, from a file's first bytes.

    >>> sniff_format(b"II*\\x00\\x08\\x00"), sniff_format(b"<VRTDataset rasterXSize='8'>")
    ('GTiff', 'VRT')
    """
    if head[:4] in _TIFF_MAGIC:
        return "GTiff"
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<"):
        for match in _XML_ROOT.finditer(text):  # the first element after <?xml ...?>
            tag = match.group(1).decode("ascii", "replace")
            return _XML_ROOTS.get(tag.split(":")[-1], "XML")
        return "XML"
    if text.startswith((b"{", b"[")):
        return "JSON"
    return None


def _format_problem(path: Path) -> tuple[str, str] | None:
    """(what, expected) when ``path`` is not a TIFF, told from its first bytes alone."""
    try:
        with open(path, "rb") as f:
            head = f.read(1024)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})", _READABLE
    if not head:
        return "cannot be read (the file is empty)", _READABLE
    kind = sniff_format(head)
    if kind == "GTiff":
        return None
    if kind is None:
        return "cannot be read (not a TIFF file)", _READABLE
    return f"is a {kind} file, not a GeoTIFF", "a GeoTIFF"


@contextmanager
def open_prediction(path: str | os.PathLike[str]) -> Iterator[DatasetReader]:
    """Open an untrusted file as a GeoTIFF: GDAL's GeoTIFF driver alone, no sibling file
    looked at (:data:`UNTRUSTED_GDAL_OPTIONS`). Check its first bytes first
    (:func:`sniff_format`) so that no other format ever reaches GDAL."""
    with (
        warnings.catch_warnings(),
        rasterio.Env(**UNTRUSTED_GDAL_OPTIONS),
        rasterio.open(path, driver="GTiff") as src,
    ):
        # a missing geotransform is reported as a problem, not also as a warning
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield src


def _itemsize(dtype: str) -> int:
    try:
        return np.dtype(dtype).itemsize
    except TypeError:  # GDAL types numpy lacks (complex_int16...)
        return 8


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB" if n >= 2**20 else f"{n:,} bytes"


def decode_problems(src: DatasetReader) -> list[tuple[str, str]]:
    """(what, expected) for every header fact that forbids decoding ``src``'s pixels: more
    or fewer than one band, a compression not in :data:`COMPRESSIONS`, a strip or tile
    larger than :data:`MAX_BLOCK_BYTES` once decoded. Reads no pixel."""
    out: list[tuple[str, str]] = []
    if src.count != 1:
        return [(f"has {src.count} bands", "a single band; pixels not read")]
    structure = src.tags(ns="IMAGE_STRUCTURE")
    compression = str(structure.get("COMPRESSION", "NONE")).upper()
    if compression not in COMPRESSIONS:
        allowed = ", ".join(c.lower() for c in COMPRESSIONS[1:])
        out.append(
            (f"is compressed with {compression}", f"no compression or {allowed}; pixels not read")
        )
    by, bx = src.block_shapes[0]
    size = bx * by * _itemsize(src.dtypes[0])
    if size > MAX_BLOCK_BYTES:
        out.append(
            (
                f"has blocks (strips or tiles) of {bx} x {by} pixels, {_mib(size)} each decoded",
                f"blocks of at most {_mib(MAX_BLOCK_BYTES)} decoded; pixels not read",
            )
        )
    return out


def read_prediction(path: str | os.PathLike[str]) -> np.ndarray:
    """The pixels of one validated prediction (band 1), read again under the same guards
    as :func:`check_file`: a file changed since it was validated is a
    :class:`PredictionError`, never a large allocation."""
    path = Path(path)
    problem = _format_problem(path)
    try:
        if problem is None:
            with open_prediction(path) as src:
                blocked = decode_problems(src)
                if not blocked:
                    return src.read(1)
                problem = blocked[0]
    except RasterioError as exc:
        problem = (f"cannot be read ({_clip(str(exc))})", _READABLE)
    raise PredictionError(path.parent, [Problem(path.name, *problem)])


def _clip(text: str, n: int = 300) -> str:
    return text if len(text) <= n else text[:n] + "..."


def check_file(path: Path, want: Grid, task: Task) -> list[Problem]:
    """Every problem of one prediction file against the grid of its input."""
    name = path.name
    problems: list[Problem] = []

    def bad(what: str, expected: str) -> None:
        problems.append(Problem(name, what, expected))

    problem = _format_problem(path)  # before GDAL sees the file (a VRT, a WMTS...)
    if problem is not None:
        bad(*problem)
        return problems
    size, most = path.lstat().st_size, want.height * want.width * 8 + MAX_HEADER_BYTES
    if size > most:
        bad(
            f"is {_mib(size)}",
            f"at most {_mib(most)} for {want.width} x {want.height} pixels; not opened",
        )
        return problems
    try:
        with open_prediction(path) as src:
            if src.count != 1:
                bad(f"has {src.count} bands", "a single band; pixels not read")
            if (src.height, src.width) != want.shape:
                bad(
                    f"is {src.width} x {src.height} pixels (width x height)",
                    f"{want.width} x {want.height}, the size of its input; pixels not read",
                )
                return problems
            got = Grid(
                crs=canonical_crs(src.crs),
                transform=tuple(float(v) for v in src.transform[:6]),  # type: ignore[arg-type]
                height=src.height,
                width=src.width,
            )
            match = compare_grids(got, want)
            if match.crs is not None:
                bad(f"has CRS {got.crs or 'none'}", f"{want.crs or 'none'}, its input's CRS")
            if match.transform:
                bad(
                    f"has geotransform off its input's: {'; '.join(match.transform)}",
                    f"its input's geotransform, to within {TRANSFORM_TOLERANCE:g} of a pixel",
                )
            if src.count < 1:
                return problems
            dtype = src.dtypes[0]
            if dtype != task.prediction_dtype:
                bad(f"has dtype {dtype}", f"{task.prediction_dtype} for {task.name} predictions")
            if src.count != 1:
                return problems
            blocked = decode_problems(src)
            for what, expected in blocked:
                bad(what, expected)
            if blocked or _kind(dtype) not in "biuf":
                return problems  # (a complex dtype is already a problem; values not compared)
            data = src.read(1)
    except RasterioError as exc:
        bad(f"cannot be read ({_clip(str(exc))})", _READABLE)
        return problems
    for what, expected in check_values(data, task):
        bad(what, expected)
    return problems


def _kind(dtype: str) -> str:
    try:
        return np.dtype(dtype).kind
    except TypeError:  # GDAL types numpy lacks (complex_int16...)
        return "c"


def check_values(data: np.ndarray, task: Task) -> list[tuple[str, str]]:
    """(what, expected) for every kind of bad value in ``data``: NaN, inf, out of range.

    Values are shown as they are, to the last digit that tells them apart (``1.0000001``,
    not ``1``).

    >>> from harness.tasks import get_task
    >>> check_values(np.array([0, 1, 2, 7], dtype=np.uint8), get_task("flood"))
    [('2 pixel(s) are not 0 or 1 (found 2, 7)', '0 or 1 at every pixel')]
    >>> check_values(np.array([0, 1.0000001], dtype=np.float32), get_task("ndvi"))[0][0]
    '1 pixel(s) are outside [-1, 1] (min 0, max 1.0000001)'
    """
    out: list[tuple[str, str]] = []
    finite_hint = "a finite value at every pixel, scored or not (write 0 where unsure)"
    values = data
    if data.dtype.kind in "fc":
        finite = np.isfinite(data)
        if not finite.all():
            n_nan = int(np.count_nonzero(np.isnan(data)))
            n_inf = int(data.size - np.count_nonzero(finite)) - n_nan
            if n_nan:
                out.append((f"{n_nan} pixel(s) are NaN", finite_hint))
            if n_inf:
                out.append((f"{n_inf} pixel(s) are infinite", finite_hint))
            values = data[finite]
    lo, hi = task.prediction_range
    if task.target_kind == "binary_mask":
        wrong = values[(values != lo) & (values != hi)]
        if wrong.size:
            shown = ", ".join(_fmt(v) for v in np.unique(wrong)[:5])
            out.append(
                (
                    f"{wrong.size} pixel(s) are not {_fmt(lo)} or {_fmt(hi)} (found {shown})",
                    f"{_fmt(lo)} or {_fmt(hi)} at every pixel",
                )
            )
    else:
        wrong = values[(values < lo) | (values > hi)]
        if wrong.size:
            out.append(
                (
                    f"{wrong.size} pixel(s) are outside [{_fmt(lo)}, {_fmt(hi)}] "
                    f"(min {_fmt(values.min())}, max {_fmt(values.max())})",
                    f"values within [{_fmt(lo)}, {_fmt(hi)}]; clip them",
                )
            )
    return out


def _fmt(v: float | np.generic) -> str:
    """A value in the fewest digits that still tell it apart in its own dtype: numpy prints
    a float32 as the shortest decimal that reads back to the same float32."""
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    x = float(v)
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return str(v) if isinstance(v, np.floating) else repr(x)
