"""A misbehaving entry for the runner's tests. ``options.behaviour`` picks what it does:

- ``probe``: train writes what it can see and do into /model/artifacts/probe.json (user,
  capabilities, network, writes to the root filesystem and the data mounts, every path under
  /data); predict writes valid all-zero flood predictions.
- ``sleep``: train sleeps past any limit.   - ``hog``: train allocates memory until killed.
- ``crash``: train prints a little and fails.   - ``bad-output``: predict writes wrong files.
- ``probe-predict``: predict prints (as its last log line) what it can see and do: writes to
  /data and /model, the network, and every path on the filesystem with "targets" in it;
  then writes valid predictions.
- ``fork-bomb``: train forks without end.   - ``fill-disk``: train fills /model.
- ``log-flood``: train prints 20 MB and succeeds.   - ``slow-ok``: train takes 6 s, then ok.
- train attacks the output cap and the harness's walks: ``fallocate`` (reserves 256 MiB
  with FALLOC_FL_KEEP_SIZE: size 0, space taken), ``long-paths`` (data below a path longer
  than PATH_MAX), ``inode-flood`` (60,000 empty files), ``deep-tree`` (1,500 nested folders
  and 250-character names, then ok), ``poison`` (a loss CSV with inf and a step of 1e30:
  refused by the publisher), ``xss`` (200,000 loss rows, HTML and SVG with script, a
  "PNG" that is HTML, and a real PNG).
- predict writes a bad /output: ``wmts`` (a WMTS XML "GeoTIFF" whose URL is
  ``options.url``), ``bands`` (16,384 bands in one compressed strip), ``many-files``
  (5,000 extra files), ``escapes`` (a file name with terminal escape sequences),
  ``just-over`` (ndvi 1.0000001), ``mountinfo`` (prints /proc/self/mountinfo, then valid),
  ``symlinks`` (to an input and to /etc/passwd), ``vrt`` (a
  VRT "GeoTIFF" whose source is ``options.vrt_source``, e.g. a hidden target's host path),
  ``huge`` (a header claiming 200,000 x 200,000 pixels), ``wrong-crs``, ``nan`` (ndvi),
  ``no-output`` (nothing, exit 0), ``odd-names`` (a path-traversal write and a stray file).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

import numpy as np
import rasterio

CONFIG = json.loads(
    Path(os.environ.get("SARBENCH_CONFIG_RUN_JSON", "/config/run.json")).read_text()
)
MODEL = Path(os.environ.get("SARBENCH_MODEL", "/model"))
OUTPUT = Path(os.environ.get("SARBENCH_OUTPUT", "/output"))
INPUTS = Path(os.environ.get("SARBENCH_DATA_TEST_INPUTS", "/data/test/inputs"))


def attempt(action) -> str:
    try:
        action()
    except OSError as exc:
        return f"refused: {type(exc).__name__}: {exc}"
    return "allowed"


def connect() -> None:
    with socket.create_connection(("1.1.1.1", 53), timeout=3):
        pass


def write(path: str) -> None:
    Path(path).write_text("x")


def probe() -> None:
    status = Path("/proc/self/status").read_text()
    cap_eff = next(line.split()[1] for line in status.splitlines() if line.startswith("CapEff"))
    seen = []
    for root, dirs, files in os.walk("/data"):
        seen += [os.path.join(root, n) for n in dirs + files]
    report = {
        "uid": os.getuid(),
        "gid": os.getgid(),
        "cap_eff": cap_eff,
        "network": attempt(connect),
        "dns": attempt(lambda: socket.getaddrinfo("example.com", 80)),
        "root_write": attempt(lambda: write("/usr/sarbench-was-here")),
        "data_write": attempt(lambda: write("/data/train/sarbench-was-here")),
        "tmp_write": attempt(lambda: write("/tmp/ok")),
        "data_paths": sorted(seen),
        "test_targets_exist": os.path.exists("/data/test/targets"),
    }
    (MODEL / "artifacts").mkdir(exist_ok=True)
    (MODEL / "artifacts" / "probe.json").write_text(json.dumps(report, indent=1))


def predict_zeros(dtype: str = "uint8", skip_first: bool = False) -> None:
    for i, path in enumerate(sorted(INPUTS.glob("*.tif"))):
        if skip_first and i == 0:
            continue
        with rasterio.open(path) as src:
            profile = src.profile
            shape = (src.height, src.width)
        profile.update(count=1, dtype=dtype, nodata=None)
        with rasterio.open(OUTPUT / path.name, "w", **profile) as dst:
            dst.write(np.zeros(shape, dtype=dtype), 1)


def probe_predict() -> None:
    targets = []
    for root, dirs, files in os.walk("/"):
        if root == "/":
            dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev")]
        targets += [os.path.join(root, n) for n in dirs + files if "targets" in n]
    report = {
        "data_write": attempt(lambda: write("/data/test/inputs/sarbench-was-here")),
        "model_write": attempt(lambda: write("/model/sarbench-was-here")),
        "network": attempt(connect),
        "targets_seen": targets,
        "data_listing": sorted(os.listdir("/data")),
    }
    predict_zeros()
    print("PROBE " + json.dumps(report), flush=True)


def fork_bomb() -> None:
    children = 0
    while True:
        try:
            if os.fork() == 0:
                time.sleep(3600)
                os._exit(0)
            children += 1
        except OSError:
            print(f"fork refused after {children} children", flush=True)
            time.sleep(0.5)


def fill_disk() -> None:
    chunk = b"x" * (1024 * 1024)
    with open(MODEL / "fill.bin", "wb") as f:
        while True:
            f.write(chunk)
            f.flush()


def fallocate() -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(MODEL / "reserved.bin", os.O_CREAT | os.O_WRONLY, 0o644)
    # FALLOC_FL_KEEP_SIZE = 1: blocks reserved, apparent size stays 0
    for i in range(64):
        if libc.fallocate(fd, 1, ctypes.c_longlong(i * 4 << 20), ctypes.c_longlong(4 << 20)):
            print(f"fallocate refused after {i * 4} MiB: errno {ctypes.get_errno()}", flush=True)
            break
    os.close(fd)


def long_paths() -> None:
    """Folders nested until the path is over 8,000 characters, with 1 MiB files below."""
    fd = os.open(MODEL, os.O_RDONLY | os.O_DIRECTORY)
    name = "d" * 200
    depth = 0
    try:
        while depth < 40:
            depth += 1
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        chunk = b"y" * (1 << 20)
        for i in range(512):
            out = os.open(f"f{i}", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd)
            try:
                os.write(out, chunk)
            finally:
                os.close(out)
    except OSError as exc:
        print(f"long-paths stopped at depth {depth}: {exc}", flush=True)
    finally:
        os.close(fd)


def inode_flood() -> None:
    folder = MODEL / "flood"
    folder.mkdir()
    for i in range(60_000):
        try:
            (folder / f"{i}").touch()
        except OSError as exc:
            print(f"inode flood stopped after {i} files: {exc}", flush=True)
            return


def deep_tree() -> None:
    fd = os.open(MODEL, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(1500):
            os.mkdir("n", dir_fd=fd)
            inner = os.open("n", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
    finally:
        os.close(fd)
    long = MODEL / "artifacts"
    for _ in range(6):
        long = long / ("L" * 250)
    long.mkdir(parents=True)
    (long / ("F" * 250)).write_text("deep")


def poison() -> None:
    """A loss curve no publisher may trust: a step of 1e30, inf, a name with punctuation."""
    art = MODEL / "artifacts"
    art.mkdir()
    rows = ["step,loss,bad metric!", "0,1.0,1", "1e30,inf,nan", "2,0.5,2"]
    (art / "loss.csv").write_text("\n".join(rows) + "\n")


def xss() -> None:
    """Artifacts that are fine as numbers but hostile as files: 200,000 loss rows, HTML and
    SVG with script, a 'PNG' that is HTML, next to a real PNG."""
    art = MODEL / "artifacts"
    art.mkdir()
    rows = ["step,loss"] + [f"{i},{1 / (i + 1):.6f}" for i in range(200_000)]
    (art / "loss.csv").write_text("\n".join(rows) + "\n")
    (art / "report.html").write_text("<script>alert('xss-html')</script>")
    (art / "plot.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg"><script>alert("xss-svg")</script></svg>'
    )
    (art / "fake.png").write_text("<script>alert('xss-png')</script>")
    png = (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x00"
        b"\x00\x00\x00:~\x9bU\x00\x00\x00\nIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05"
        b"\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
    )
    (art / "real.png").write_bytes(png)


def predict_bad(behaviour: str) -> None:
    inputs = sorted(INPUTS.glob("*.tif"))
    if behaviour == "no-output":
        return
    if behaviour == "nan":
        for path in inputs:
            with rasterio.open(path) as src:
                profile, shape = src.profile, (src.height, src.width)
            profile.update(count=1, dtype="float32", nodata=None)
            with rasterio.open(OUTPUT / path.name, "w", **profile) as dst:
                dst.write(np.full(shape, np.nan, np.float32), 1)
        return
    predict_zeros(skip_first=True)
    first = inputs[0]
    target = OUTPUT / first.name
    if behaviour == "symlinks":
        target.symlink_to(first)
        (OUTPUT / "passwd.tif").symlink_to("/etc/passwd")
    elif behaviour == "vrt":
        source = CONFIG["options"]["vrt_source"]
        target.write_text(
            '<VRTDataset rasterXSize="32" rasterYSize="32"><VRTRasterBand dataType="Byte" '
            f'band="1"><SimpleSource><SourceFilename relativeToVRT="0">{source}'
            "</SourceFilename><SourceBand>1</SourceBand></SimpleSource></VRTRasterBand>"
            "</VRTDataset>"
        )
    elif behaviour == "huge":
        with rasterio.open(
            target, "w", driver="GTiff", width=200_000, height=200_000, count=1,
            dtype="uint8", tiled=True, sparse_ok=True, compress="deflate",
        ) as dst:  # fmt: skip
            dst.write(np.zeros((256, 256), np.uint8), 1, window=((0, 256), (0, 256)))
    elif behaviour == "wrong-crs":
        with rasterio.open(first) as src:
            profile, shape = src.profile, (src.height, src.width)
        profile.update(count=1, dtype="uint8", nodata=None, crs="EPSG:4326")
        with rasterio.open(target, "w", **profile) as dst:
            dst.write(np.zeros(shape, np.uint8), 1)
    elif behaviour == "odd-names":
        print("traversal:", attempt(lambda: write(str(OUTPUT / ".." / ".." / "etc" / "evil"))))
        predict_zeros()
        (OUTPUT / "..evil.tif").write_text("stray")
    elif behaviour == "wmts":
        url = CONFIG["options"]["url"]
        target.write_text(
            "<GDAL_WMTS><GetCapabilitiesUrl>"
            f"{url}/wmts?SERVICE=WMTS&amp;REQUEST=GetCapabilities"
            "</GetCapabilitiesUrl></GDAL_WMTS>"
        )
    elif behaviour == "bands":
        with rasterio.open(first) as src:
            profile = src.profile
        profile.update(
            count=16_384, dtype="uint8", nodata=None, compress="deflate", tiled=False,
            blockysize=profile["height"], interleave="pixel",
        )  # fmt: skip
        with rasterio.open(target, "w", **profile) as dst:
            dst.write(np.zeros((16_384, profile["height"], profile["width"]), np.uint8))
    elif behaviour == "many-files":
        predict_zeros()
        for i in range(5_000):
            (OUTPUT / f"extra_{i:05d}.tif").write_bytes(b"")
    elif behaviour == "escapes":
        predict_zeros()
        (OUTPUT / "\x1b[31mred\x1b[0m\x07.tif").write_text("bell")


TRAIN_ATTACKS = {
    "fallocate": fallocate,
    "long-paths": long_paths,
    "inode-flood": inode_flood,
    "deep-tree": deep_tree,
    "poison": poison,
    "xss": xss,
}
BAD_OUTPUTS = (
    "symlinks", "vrt", "huge", "wrong-crs", "nan", "no-output", "odd-names", "wmts", "bands",
    "many-files", "escapes",
)  # fmt: skip


def main(phase: str) -> None:
    behaviour = CONFIG["options"].get("behaviour", "probe")
    if phase == "train":
        if behaviour == "probe":
            probe()
        elif behaviour == "sleep":
            print("sleeping", flush=True)
            time.sleep(3600)
        elif behaviour == "hog":
            hoard = []
            while True:
                hoard.append(np.ones(16 * 1024 * 1024, dtype=np.uint8))
        elif behaviour == "crash":
            for i in range(100):
                print(f"epoch {i}: loss {1 / (i + 1):.3f}", flush=True)
            raise RuntimeError("boom: the model diverged")
        elif behaviour == "fork-bomb":
            fork_bomb()
        elif behaviour == "fill-disk":
            fill_disk()
        elif behaviour == "log-flood":
            line = "flood " * 20 + "\n"
            for _ in range(20_000_000 // len(line)):
                sys.stdout.write(line)
            sys.stdout.flush()
        elif behaviour == "slow-ok":
            print("slow-ok: training", flush=True)
            time.sleep(6)
        elif behaviour in TRAIN_ATTACKS:
            TRAIN_ATTACKS[behaviour]()
        return
    if behaviour == "bad-output":
        predict_zeros(dtype="float64", skip_first=True)
        (OUTPUT / "notes.txt").write_text("extra")
    elif behaviour == "probe-predict":
        probe_predict()
    elif behaviour in BAD_OUTPUTS:
        predict_bad(behaviour)
    elif behaviour == "just-over":
        predict_zeros(dtype="float32")
        first = sorted(OUTPUT.glob("*.tif"))[0]
        with rasterio.open(first, "r+") as dst:
            data = dst.read(1)
            data[0, 0] = np.float32(1.0000001)
            dst.write(data, 1)
    elif behaviour == "mountinfo":
        print(Path("/proc/self/mountinfo").read_text(), flush=True)
        predict_zeros()
    else:
        predict_zeros()


if __name__ == "__main__":
    main(sys.argv[1])
