"""A misbehaving entry for the runner's tests. ``options.behaviour`` picks what it does:

- ``probe``: train writes what it can see and do into /model/artifacts/probe.json (user,
  capabilities, network, writes to the root filesystem and the data mounts, every path under
  /data); predict writes valid all-zero flood predictions.
- ``sleep``: train sleeps past any limit.   - ``hog``: train allocates memory until killed.
- ``crash``: train prints a little and fails.   - ``bad-output``: predict writes wrong files.
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
        return
    if behaviour == "bad-output":
        predict_zeros(dtype="float64", skip_first=True)
        (OUTPUT / "notes.txt").write_text("extra")
    else:
        predict_zeros()


if __name__ == "__main__":
    main(sys.argv[1])
