"""A SARBench entry, line by line: copy this folder and replace the model.

The harness starts your image twice, each time as a fresh, locked-down container:

    <entrypoint> train      # reads /data/train, /data/val; writes /model
    <entrypoint> predict    # reads /data/test/inputs, /model; writes /output

There is no network, the root filesystem is read-only (write scratch files to /tmp), and
you run as an unprivileged user. Everything is in docs/contract.md.

This template's "model" is deliberately tiny, so the whole loop is easy to follow:
- flood: flooding darkens the radar image, so a pixel is flood when post - pre (dB) drops
  below a threshold; `train` picks the threshold with the best IoU on the train split.
- ndvi: a least-squares line from (VV, VH) in dB to NDVI over the farm pixels.
It needs only numpy and rasterio.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import rasterio


# 1. Paths. Every mount is also announced in an environment variable (SARBENCH_*), so the
#    same code runs under `sarbench run --backend local` where they point at host folders.
def mount(variable: str, default: str) -> Path:
    return Path(os.environ.get(variable, default))


CONFIG = mount("SARBENCH_CONFIG_RUN_JSON", "/config/run.json")
MODEL = mount("SARBENCH_MODEL", "/model")
OUTPUT = mount("SARBENCH_OUTPUT", "/output")
TEST_INPUTS = mount("SARBENCH_DATA_TEST_INPUTS", "/data/test/inputs")


def split_dir(name: str) -> Path:
    """A training split: /data/train, /data/val (and /data/pretrain where a dataset has one)."""
    return mount("SARBENCH_DATA_" + name.upper(), f"/data/{name}")


# 2. The run's configuration: task, dataset, your variant's options, seed, time budget.
def load_config() -> dict:
    return json.loads(CONFIG.read_text())


# 3. Reading a split: <split>/inputs/<id>.tif (bands x H x W, float32), targets/<id>.tif,
#    and valid/<id>.tif (1 where a pixel is scored) where the dataset has masks.
def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read().astype(np.float32)


def chips(split: Path):
    for path in sorted((split / "inputs").glob("*.tif")):
        x = read(path)
        y = read(split / "targets" / path.name)[0]
        valid_path = split / "valid" / path.name
        valid = read(valid_path)[0] > 0 if valid_path.exists() else np.ones(y.shape, bool)
        valid &= np.isfinite(x).all(axis=0)
        yield x, y, valid


# 4. train: fit on /data/train, save everything predict needs into /model.
def train(config: dict) -> None:
    rng = np.random.default_rng(config["seed"])  # seed everything random from the config
    data = list(chips(split_dir("train")))
    print(f"train: {len(data)} chips, task {config['task']['name']}", flush=True)
    if config["task"]["name"] == "flood":
        diff = np.concatenate([(x[1] - x[0])[v] for x, _, v in data])
        truth = np.concatenate([y[v] > 0 for _, y, v in data])
        pick = rng.choice(diff.size, size=min(diff.size, 2_000_000), replace=False)
        diff, truth = diff[pick], truth[pick]
        best = (-1.0, 0.0)
        for t in np.linspace(-12.0, 0.0, 61):
            pred = diff < t
            inter, union = np.sum(pred & truth), np.sum(pred | truth)
            best = max(best, (inter / union if union else 0.0, float(t)))
        model = {"threshold_db": best[1], "train_iou": best[0]}
    else:
        x = np.concatenate([xx[:, v].T for xx, _, v in data])
        y = np.concatenate([yy[v] for _, yy, v in data])
        design = np.column_stack([x, np.ones(len(x))])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        model = {"coef": coef.tolist()}
    (MODEL / "model.json").write_text(json.dumps(model))
    # Anything in /model/artifacts (loss curves, options) is kept with the run record.
    (MODEL / "artifacts").mkdir(exist_ok=True)
    (MODEL / "artifacts" / "fit.json").write_text(json.dumps(model, indent=1))
    print(f"train: done: {model}", flush=True)


# 5. predict: one GeoTIFF per test input into /output, same file name, same grid.
#    flood: one band uint8 in {0, 1}; ndvi: one band float32 in [-1, 1].
def predict(config: dict) -> None:
    model = json.loads((MODEL / "model.json").read_text())
    task = config["task"]["name"]
    inputs = sorted(TEST_INPUTS.glob("*.tif"))
    for i, path in enumerate(inputs, 1):
        with rasterio.open(path) as src:
            x = src.read().astype(np.float32)
            profile = src.profile
        x = np.nan_to_num(x, nan=0.0)
        if task == "flood":
            pred = ((x[1] - x[0]) < model["threshold_db"]).astype(np.uint8)
            dtype = "uint8"
        else:
            a, b, c = model["coef"]
            pred = np.clip(a * x[0] + b * x[1] + c, -1.0, 1.0).astype(np.float32)
            dtype = "float32"
        # Keep the input's CRS and transform; one band; no nodata value.
        profile.update(count=1, dtype=dtype, nodata=None, compress="deflate")
        with rasterio.open(OUTPUT / path.name, "w", **profile) as dst:
            dst.write(pred, 1)
        if i % 10 == 0 or i == len(inputs):
            print(f"predict: {i}/{len(inputs)}", flush=True)


# 6. The entrypoint: the phase is the only argument. Exit non-zero on failure; the harness
#    records the last lines of your log.
if __name__ == "__main__":
    phase = sys.argv[1] if len(sys.argv) == 2 else ""
    if phase not in ("train", "predict"):
        sys.exit("usage: entry.py train|predict")
    {"train": train, "predict": predict}[phase](load_config())
