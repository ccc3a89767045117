"""Predictions written by a hostile container: formats that make GDAL reach the network,
decompression bombs, floods of files, deep folders and names made to attack a terminal.

Real GeoTIFFs (written with rasterio, or byte by byte where rasterio would have to decode a
gigabyte to write them), a real HTTP server on 127.0.0.1 that counts every connection, and
real subprocesses (a fresh GDAL, and a peak memory of its own to measure).
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import os
import struct
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import rasterio

from harness.datasets.loader import SplitDir
from harness.errors import printable
from harness.geo import Grid, write_raster
from harness.record import EntryInfo, PhaseRecord, RunRecord, TaskInfo
from harness.runner import validate as runner_validate
from harness.scoring.validate import (
    MAX_PROBLEMS,
    PredictionError,
    Problem,
    cap_problems,
    count_problems,
    is_more_problems,
    read_prediction,
    validate_predictions,
)
from harness.settings import REPO_ROOT
from harness.tasks import get_task
from tests.records_factory import key_of
from tests.test_validate import good_predictions, make_split, write

WEST, NORTH, PIXEL = 500_000.0, 4_600_000.0, 10.0
PEAK_MEMORY_BOUND_MIB = 400  # python + numpy + rasterio alone: about 90 MiB


def grid(size: int) -> Grid:
    return Grid.from_origin("EPSG:32631", WEST, NORTH, PIXEL, size, size)


def split_of(root: Path, sizes: dict[str, int]) -> SplitDir:
    """A split whose inputs (2 bands of float32) have the given sizes, all at one origin."""
    for sid, size in sizes.items():
        write_raster(
            root / "inputs" / f"{sid}.tif", np.zeros((2, size, size), np.float32), grid(size)
        )
    return SplitDir(root)


def problems_of(pred: Path, split: SplitDir, task: str = "flood") -> PredictionError:
    with pytest.raises(PredictionError) as info:
        validate_predictions(pred, split, get_task(task))
    return info.value


def python(script: str, *args: str, env: dict[str, str] | None = None) -> Any:
    """Run ``script`` in a fresh interpreter; it prints one JSON document."""
    res = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


# --- TIFF files made byte by byte ------------------------------------------------------


def zeros_zlib(n: int) -> bytes:
    """A zlib stream that inflates to ``n`` zero bytes (``n`` a multiple of 16 MiB), made
    without ``n`` bytes in memory: a fully flushed deflate block is self-contained, so one
    block of 16 MiB of zeros is repeated, and the Adler-32 of n zeros is (n mod 65521, 1)."""
    chunk = 1 << 24
    assert n % chunk == 0
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = raw.compress(bytes(chunk)) + raw.flush(zlib.Z_FULL_FLUSH)
    return (
        b"\x78\xda"
        + block * (n // chunk)
        + raw.flush()
        + struct.pack(">I", ((n % 65521) << 16) | 1)
    )


def bomb_tiff(
    path: Path, size: int, bands: int, *, tile: int | None = None, strip_bytes: int
) -> None:
    """A deflate-compressed uint8 GeoTIFF of ``size`` x ``size`` pixels on :func:`grid`:
    ``bands`` bands pixel-interleaved in one strip, or one band in one ``tile`` x ``tile``
    tile; the one strip or tile inflates to ``strip_bytes`` zero bytes."""
    data = zeros_zlib(strip_bytes)
    short, long_, double = 3, 4, 12
    tags: list[tuple[int, int, list[float]]] = [
        (256, long_, [size]),  # width
        (257, long_, [size]),  # height
        (258, short, [8] * bands),  # bits per sample
        (259, short, [8]),  # deflate
        (262, short, [1]),  # min-is-black
        (277, short, [bands]),  # samples per pixel
        (284, short, [1]),  # pixel-interleaved
        (339, short, [1] * bands),  # unsigned integers
        (33550, double, [PIXEL, PIXEL, 0.0]),
        (33922, double, [0.0, 0.0, 0.0, WEST, NORTH, 0.0]),
        # projected, pixel-is-area, EPSG:32631
        (34735, short, [1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32631]),
    ]
    if bands > 1:
        tags.append((338, short, [0] * (bands - 1)))  # extra samples
    if tile is None:
        tags += [(273, long_, [0]), (278, long_, [size]), (279, long_, [len(data)])]
    else:
        tags += [(322, long_, [tile]), (323, long_, [tile]), (324, long_, [0])]
        tags.append((325, long_, [len(data)]))
    tags.sort()
    fmt = {short: "H", long_: "I", double: "d"}
    extra_at = 8 + 2 + 12 * len(tags) + 4
    extra = b""
    fields = []
    for tag, kind, values in tags:
        raw = struct.pack(f"<{len(values)}{fmt[kind]}", *values)
        if len(raw) <= 4:
            fields.append((tag, kind, len(values), raw.ljust(4, b"\0")))
        else:
            fields.append((tag, kind, len(values), struct.pack("<I", extra_at + len(extra))))
            extra += raw
    data_at = extra_at + len(extra)
    ifd = struct.pack("<H", len(tags))
    for tag, kind, count, value in fields:
        if tag in (273, 324):  # the strip's or the tile's offset
            value = struct.pack("<I", data_at)
        ifd += struct.pack("<HHI", tag, kind, count) + value
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd + b"\0\0\0\0" + extra + data)


MEMORY_SCRIPT = """
import json, sys
from harness.datasets.loader import SplitDir
from harness.scoring.validate import PredictionError, read_prediction, validate_predictions
from harness.tasks import get_task

split, pred = SplitDir(sys.argv[1]), sys.argv[2]
out = {"read": {}}
try:
    validate_predictions(pred, split, get_task("flood"))
except PredictionError as exc:
    out["validate"] = exc.lines()
for sid in split.ids:
    try:
        out["read"][sid] = list(read_prediction(f"{pred}/{sid}.tif").shape)
    except PredictionError as exc:
        out["read"][sid] = exc.lines()
# VmHWM is this process image's own peak; ru_maxrss would also count the parent's at the
# fork (Linux keeps the larger at exec), which after a long test session is gigabytes
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
out["peak_mib"] = int(hwm.split()[1]) / 1024
print(json.dumps(out))
"""


def test_bombs_are_refused_from_their_header_in_bounded_memory(tmp_path: Path) -> None:
    """16,384 bands in one compressed strip (1 MB on disk, 1 GiB decoded), and one
    32768 x 32768 tile over an 8 x 8 image (1 GiB decoded): refused, nothing decoded."""
    split = split_of(tmp_path / "split", {"bands": 256, "tile": 8, "fine": 8})
    pred = tmp_path / "pred"
    pred.mkdir()
    bomb_tiff(pred / "bands.tif", 256, 16_384, strip_bytes=256 * 256 * 16_384)
    bomb_tiff(pred / "tile.tif", 8, 1, tile=32_768, strip_bytes=32_768**2)
    write(pred / "fine.tif", np.ones((8, 8), np.uint8), grid(8))
    assert (pred / "bands.tif").stat().st_size < 2_000_000
    assert (pred / "tile.tif").stat().st_size < 2_000_000
    with rasterio.open(pred / "bands.tif") as src:  # a real GeoTIFF, on the input's grid
        assert (src.count, src.width, src.crs.to_epsg()) == (16_384, 256, 32631)
        assert src.transform == grid(256).affine

    out = python(MEMORY_SCRIPT, str(split.path), str(pred))
    assert out["validate"] == [
        "bands.tif: has 16384 bands (expected a single band; pixels not read)",
        "tile.tif: has blocks (strips or tiles) of 32768 x 32768 pixels, 1,024 MiB each "
        "decoded (expected blocks of at most 64 MiB decoded; pixels not read)",
    ]
    assert out["read"]["fine"] == [8, 8]  # the scorer reads band 1 of a good file
    assert out["read"]["bands"] == [out["validate"][0]]  # and refuses the bombs the same way
    assert out["read"]["tile"] == [out["validate"][1]]
    assert out["peak_mib"] < PEAK_MEMORY_BOUND_MIB, out


def test_a_file_far_larger_than_its_pixels_is_not_opened(tmp_path: Path) -> None:
    split = split_of(tmp_path / "split", {"a": 8})
    pred = tmp_path / "pred"
    pred.mkdir()
    write(pred / "a.tif", np.zeros((8, 8), np.uint8), grid(8))
    with open(pred / "a.tif", "r+b") as f:
        f.truncate(100 * 2**20)  # sparse: tags GDAL would read whole at open
    (p,) = problems_of(pred, split).problems
    assert (p.what, p.expected) == ("is 100 MiB", "at most 64 MiB for 8 x 8 pixels; not opened")


def test_only_lossless_compressions_are_decoded(tmp_path: Path) -> None:
    split = split_of(tmp_path / "split", {"a": 8, "b": 8})
    pred = tmp_path / "pred"
    pred.mkdir()
    write(pred / "a.tif", np.zeros((8, 8), np.uint8), grid(8), compress="jpeg")
    write(pred / "b.tif", np.zeros((8, 8), np.uint8), grid(8), compress="zstd")
    (p,) = problems_of(pred, split).problems
    assert (p.file, p.what) == ("a.tif", "is compressed with JPEG")
    assert p.expected == "no compression or deflate, lzw, zstd, lzma, packbits; pixels not read"
    with pytest.raises(PredictionError, match=r"a\.tif: is compressed with JPEG"):
        read_prediction(pred / "a.tif")  # what the scorer reads, checked again
    assert read_prediction(pred / "b.tif").shape == (8, 8)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_sibling_files_do_not_change_what_the_validator_sees(tmp_path: Path) -> None:
    """GDAL would take a missing CRS and geotransform from an ``.aux.xml`` beside the file."""
    split = split_of(tmp_path / "split", {"a": 8})
    pred = tmp_path / "pred"
    pred.mkdir()
    write(pred / "a.tif", np.zeros((8, 8), np.uint8), grid(8), crs=None, transform=None)
    sidecar = pred / "a.tif.aux.xml"
    sidecar.write_text(
        "<PAMDataset><SRS>EPSG:32631</SRS>"
        f"<GeoTransform>{WEST}, {PIXEL}, 0, {NORTH}, 0, -{PIXEL}</GeoTransform></PAMDataset>"
    )
    with rasterio.open(pred / "a.tif") as src:  # what a careless reader would see
        assert src.crs.to_epsg() == 32631
    listed = [
        (p.file, p.what.split(" (")[0].split(" off ")[0]) for p in problems_of(pred, split).problems
    ]
    assert listed == [
        ("a.tif.aux.xml", "extra file: not an <id>.tif prediction"),
        ("a.tif", "has CRS none"),
        ("a.tif", "has geotransform"),
    ]


# --- the network -------------------------------------------------------------------------


class CountingServer(http.server.ThreadingHTTPServer):
    """Answers 404 to everything on 127.0.0.1, and remembers every connection."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.connections: list[Any] = []
        self.requests: list[str] = []

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections.append(client_address)
        super().process_request(request, client_address)


class Handler(http.server.BaseHTTPRequestHandler):
    server: CountingServer

    def do_GET(self) -> None:
        self.server.requests.append(f"GET {self.path}")
        self.send_error(404)

    def do_HEAD(self) -> None:
        self.server.requests.append(f"HEAD {self.path}")
        self.send_error(404)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[CountingServer]:
    srv = CountingServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def service_files(folder: Path, url: str) -> dict[str, str]:
    """GDAL service descriptions and a VRT, each naming ``url``."""
    files = {
        "wmts.xml": f"<GDAL_WMTS><GetCapabilitiesUrl>{url}/wmts?</GetCapabilitiesUrl></GDAL_WMTS>",
        "wcs.xml": f"<WCS_GDAL><ServiceURL>{url}/wcs?</ServiceURL><CoverageName>c</CoverageName>"
        "</WCS_GDAL>",
        "wms.xml": f"<GDAL_WMS><Service name='WMS'><ServerUrl>{url}/wms?</ServerUrl>"
        "<Layers>x</Layers></Service><DataWindow><UpperLeftX>0</UpperLeftX><UpperLeftY>1"
        "</UpperLeftY><LowerRightX>1</LowerRightX><LowerRightY>0</LowerRightY><SizeX>8</SizeX>"
        "<SizeY>8</SizeY></DataWindow></GDAL_WMS>",
        "remote.vrt": "<VRTDataset rasterXSize='8' rasterYSize='8'><VRTRasterBand "
        "dataType='Byte' band='1'><SimpleSource><SourceFilename>"
        f"/vsicurl/{url}/source.tif</SourceFilename><SourceBand>1</SourceBand></SimpleSource>"
        "</VRTRasterBand></VRTDataset>",
    }
    for name, text in files.items():
        (folder / name).write_text(text)
    return files


NETWORK_SCRIPT = """
import json, sys
url, folder, guarded = sys.argv[1], sys.argv[2], sys.argv[3] == "guarded"
if guarded:  # the harness first, as every harness process
    from harness.datasets.loader import SplitDir
    from harness.geo import gdal_network_drivers
    from harness.scoring.validate import PredictionError, read_prediction, validate_predictions
    from harness.tasks import get_task
import rasterio

out = {}

def attempt(key, how):
    try:
        out[key] = "ok: " + repr(how())
    except Exception as exc:
        out[key] = type(exc).__name__ + ": " + str(exc)[:200]

def read(path, **kw):
    with rasterio.open(path, **kw) as src:
        return src.read(1).shape

for name in ("wmts.xml", "wcs.xml", "wms.xml", "remote.vrt"):
    attempt(name, lambda: read(f"{folder}/{name}"))  # any driver: what a careless caller does
attempt("vsicurl", lambda: read(f"/vsicurl/{url}/a.tif"))
attempt("http", lambda: read(f"{url}/b.tif"))
attempt("vsis3", lambda: read("/vsis3/bucket/c.tif"))  # AWS_S3_ENDPOINT is the server
if guarded:
    out["drivers"] = gdal_network_drivers()
    try:
        validate_predictions(f"{folder}/pred", SplitDir(f"{folder}/split"), get_task("flood"))
    except PredictionError as exc:
        out["validate"] = exc.lines()
    attempt("read_prediction", lambda: read_prediction(f"{folder}/pred/a.tif"))
print(json.dumps(out))
"""


def network_env(url: str) -> dict[str, str]:
    """This environment without the harness's own GDAL settings (the child must set them
    itself) or any proxy, with /vsis3/ pointed at the local server, and no retries."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("GDAL_SKIP", "CPL_VSIL_CURL_ALLOWED_FILENAME", "PROJ_NETWORK")
        and "proxy" not in k.lower()
    }
    env.update(
        NO_PROXY="*",
        AWS_S3_ENDPOINT=url.removeprefix("http://"),
        AWS_HTTPS="NO",
        AWS_VIRTUAL_HOSTING="FALSE",
        AWS_NO_SIGN_REQUEST="YES",
        GDAL_HTTP_MAX_RETRY="0",
        GDAL_HTTP_TIMEOUT="10",
    )
    return env


def test_gdal_reaches_no_url_in_a_harness_process(tmp_path: Path, server: CountingServer) -> None:
    url = f"http://127.0.0.1:{server.server_address[1]}"
    files = service_files(tmp_path, url)
    split = split_of(tmp_path / "split", {"a": 8, "b": 8, "c": 8})
    (tmp_path / "pred").mkdir()
    for sid, name in zip("abc", ("wmts.xml", "wcs.xml", "wms.xml"), strict=True):
        (tmp_path / "pred" / f"{sid}.tif").write_text(files[name])  # a "prediction"

    out = python(NETWORK_SCRIPT, url, str(tmp_path), "guarded", env=network_env(url))
    assert server.connections == [], (server.requests, out)
    assert out["drivers"] == []
    assert out["validate"] == [
        "a.tif: is a WMTS file, not a GeoTIFF (expected a GeoTIFF)",
        "b.tif: is a WCS file, not a GeoTIFF (expected a GeoTIFF)",
        "c.tif: is a WMS file, not a GeoTIFF (expected a GeoTIFF)",
    ]
    assert out["read_prediction"].startswith("PredictionError: ")
    assert "is a WMTS file, not a GeoTIFF" in out["read_prediction"]
    for key in ("wmts.xml", "wcs.xml", "wms.xml", "vsicurl", "http", "vsis3"):
        assert out[key].startswith("RasterioIOError"), (key, out[key])
    assert split.ids == ["a", "b", "c"]

    # The same files and URLs without the harness: each one reaches the server.
    control = python(NETWORK_SCRIPT, url, str(tmp_path), "plain", env=network_env(url))
    seen = " ".join(server.requests)
    for path in ("/wmts", "/wcs?", "/wms?", "/source.tif", "/a.tif", "/b.tif", "/bucket/c.tif"):
        assert path in seen, (path, server.requests, control)


# --- many files, deep folders, hostile names ------------------------------------------


def test_a_flood_of_files_is_listed_capped(tmp_path: Path) -> None:
    split = make_split(tmp_path)
    pred = good_predictions(split, tmp_path / "pred", "flood")
    fd = os.open(pred, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for i in range(100_000):
            os.close(os.open(f"x{i:06d}", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
    finally:
        os.close(fd)
    exc = problems_of(pred, split)
    assert exc.n_problems == 100_000
    assert len(exc.problems) == MAX_PROBLEMS
    assert [p.file for p in exc.problems] == [f"x{i:06d}" for i in range(MAX_PROBLEMS)]
    lines = exc.lines()
    assert lines[-1] == "... and 99,950 more problems"
    assert count_problems(lines) == 100_000
    assert str(exc).startswith(f"{pred}: 100,000 problem(s)")
    assert len(str(exc)) < 20_000  # what a record or a terminal receives


def test_cap_problems() -> None:
    problems = [Problem(f"f{i}.tif", "missing", "it") for i in range(120)]
    lines = cap_problems(problems)
    assert len(lines) == MAX_PROBLEMS + 1
    assert lines[0] == "f0.tif: missing (expected it)"
    assert lines[-1] == "... and 70 more problems" and is_more_problems(lines[-1])
    assert count_problems(lines) == 120
    assert cap_problems(problems[:3], total=4) == [*lines[:3], "... and 1 more problem"]
    assert cap_problems(["a\x1b[2J"]) == ["a\\x1b[2J"]
    assert cap_problems([]) == []
    assert PredictionError("p", problems).lines() == lines
    assert PredictionError("p", problems[:MAX_PROBLEMS], total=120).lines() == lines


def make_deep(root: Path, name: str, depth: int) -> None:
    """``depth`` nested folders named ``name``, made relative to each other (the whole path
    is far longer than PATH_MAX)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir(name, dir_fd=fd)
        child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(fd)


def remove_deep(root: Path, name: str) -> int:
    """Remove what :func:`make_deep` made, from the bottom, without recursion (shutil.rmtree
    recurses once per level before Python 3.12)."""
    here = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    depth = 0
    try:
        os.chdir(root)
        while os.path.isdir(name):
            os.chdir(name)
            depth += 1
        for _ in range(depth):
            os.chdir("..")
            os.rmdir(name)
    finally:
        os.fchdir(here)
        os.close(here)
    return depth


def test_deep_folders_are_one_problem_and_never_walked(tmp_path: Path) -> None:
    split = make_split(tmp_path)
    pred = good_predictions(split, tmp_path / "pred", "flood")
    name = "d" * 100
    make_deep(pred, name, 1_500)  # 151,500 characters deep
    try:
        (p,) = problems_of(pred, split).problems
        assert (p.file, p.what) == (f"{name}/", "is a subfolder")
    finally:
        assert remove_deep(pred, name) == 1_500


HOSTILE_NAMES = {
    "\x1b[2J\x1b[31mred.tif": "\\x1b[2J\\x1b[31mred.tif",
    "two\nlines.tif": "two\\x0alines.tif",
    "back\rspace\x08.tif": "back\\x0dspace\\x08.tif",
    "title\x1b]0;pwned\x07.tif": "title\\x1b]0;pwned\\x07.tif",
    "right\u202eto-left.tif": "right\\u202eto-left.tif",
    "l" * 250 + ".tif": "l" * 250 + ".tif",
}


def test_hostile_names_are_reported_escaped(tmp_path: Path) -> None:
    split = make_split(tmp_path)
    pred = good_predictions(split, tmp_path / "pred", "flood")
    for name in HOSTILE_NAMES:
        (pred / name).write_bytes(b"x")
    (pred / os.fsdecode(b"bad-\xff\xfe.tif")).write_bytes(b"x")  # not UTF-8
    (pred / "a01.tif").unlink()
    os.mkfifo(pred / "a01.tif")  # a pipe named like a prediction: never opened
    exc = problems_of(pred, split)
    shown = [str(p) for p in exc.problems]
    assert len(shown) == len(HOSTILE_NAMES) + 2
    for line in [*shown, *str(exc).splitlines()]:
        assert line.isprintable(), line
    for escaped in [*HOSTILE_NAMES.values(), "bad-\\xff\\xfe.tif"]:
        assert any(line.startswith(f"{escaped}: extra file") for line in shown), escaped
    assert "a01.tif: is not a regular file (expected a regular file)" in shown
    record = json.dumps([p.to_dict() for p in exc.problems], ensure_ascii=False)
    record.encode("utf-8")  # no lone surrogate left
    assert all(v.isprintable() for p in exc.problems for v in p.to_dict().values())


def test_sarbench_validate_prints_container_text_escaped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The report of ``sarbench validate``: invalid-output problems (already capped by the
    runner) and a crash's log tail, both chosen by the container."""
    entry = SimpleNamespace(name="evil\x1b[2J", local_command=("x",), path=tmp_path / "e.toml")
    problems = [f"x{i}\x1b[5m.tif: extra file (expected none)" for i in range(120)]
    key = key_of(entry=entry.name, dataset="d", backend="docker-validate", split="val")
    predict = PhaseRecord(
        status="ok", exit_code=0, wall_s=1.0, peak_memory_bytes=None, log_tail="", image_id=None
    )
    record = RunRecord(
        run_id=key.run_id,
        key=key,
        task=TaskInfo("flood", "iou", True),
        entry=EntryInfo(entry.name),
        status="failed",
        reason="invalid-output",
        detail="",
        problems=tuple(cap_problems(problems)),
        phases={"predict": predict},
    )
    outcome = SimpleNamespace(record=record, run_dir=tmp_path / "run")
    monkeypatch.setattr(runner_validate, "run_one", lambda *a, **k: outcome)
    limits = SimpleNamespace(timeout_s=100.0)
    ctx: Any = SimpleNamespace(
        backend=SimpleNamespace(problems=lambda entry: []),
        conditions=SimpleNamespace(profile=SimpleNamespace(limits=lambda p: limits)),
    )
    found, rec = runner_validate.check_entry(ctx, entry, "default", 0, "d", runs_dir=tmp_path)
    assert found[0] == "invalid output: x0\\x1b[5m.tif: extra file (expected none)"
    assert found[-1] == "... and 70 more problems"
    report = runner_validate.render_problems(entry, rec, found)  # type: ignore[arg-type]
    assert "FAIL: evil\\x1b[2J: 120 problem(s):" in report
    assert "\n  50. invalid output: x49\\x1b[5m.tif" in report
    assert report.endswith("\n  ... and 70 more problems")
    assert all(line.isprintable() for line in report.splitlines())

    crash = dataclasses.replace(
        record, reason="crash", detail="Traceback:\n  \x1b[31mboom\x1b[0m\r\n"
    )
    outcome.record = crash
    found, rec = runner_validate.check_entry(ctx, entry, "default", 0, "d", runs_dir=tmp_path)
    report = runner_validate.render_problems(entry, rec, found)  # type: ignore[arg-type]
    assert "  1. crash: Traceback:\n  \\x1b[31mboom\\x1b[0m\\x0d\n" in report  # lines kept
    assert "\x1b" not in report and "\r" not in report
    assert printable(report, keep_newlines=True) == report


# --- values --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [(1.0000001, "min 0, max 1.0000001"), (-1.0000001, "min -1.0000001, max 0")],
)
def test_out_of_range_values_are_shown_to_their_last_digit(
    tmp_path: Path, value: float, shown: str
) -> None:
    split = make_split(tmp_path)
    pred = good_predictions(split, tmp_path / "pred", "ndvi")
    data = np.zeros((8, 8), np.float32)
    data[3, 4] = value
    write(pred / "a02.tif", data, grid_of_input(split, "a02"))
    (p,) = problems_of(pred, split, "ndvi").problems
    assert p.what == f"1 pixel(s) are outside [-1, 1] ({shown})"


def grid_of_input(split: SplitDir, sid: str) -> Grid:
    with rasterio.open(split.input_path(sid)) as src:
        t = src.transform
        return Grid("EPSG:32631", (t.a, t.b, t.c, t.d, t.e, t.f), src.height, src.width)
