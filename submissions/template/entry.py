"""A SARBench entry, line by line: copy this folder and replace the model.

The harness starts your image twice, each time as a fresh, locked-down container:

    <entrypoint> train      # reads /data/train, /data/val; writes /model
    <entrypoint> predict    # reads /data/test/inputs, /model; writes /output

There is no network, the root filesystem is read-only (write scratch files to /tmp), and
you run as an unprivileged user. Everything is in docs/contract.md.

This template's "model" is deliberately tiny, so the whole loop is easy to follow:
- flood: flooding darkens the radar image, so a pixel is flood when post - pre (dB) drops
  below a threshold; `train` picks the threshold with the best IoU on the train split. On
  a dataset whose two bands are VV and VH of one date (band roles, below) there is no
  "before": the rule thresholds VV instead (open water is dark).
- ndvi: a least-squares line from (VV, VH) in dB to NDVI over the farm pixels.

It needs numpy and rasterio (requirements.txt), and `sarbench_io`: SARBench's small reader
of the dataset layout and the contract (numpy + rasterio only), the same code the harness
reads the data with. The harness copies it into this folder before every build, and the
Dockerfile copies it into the image. Using it is optional: the contract is only folders of
GeoTIFFs and one JSON file, so rasterio alone will do (see docs/contract.md).
"""

from __future__ import annotations

import json
import sys

import numpy as np

from sarbench_io import Mounts, SplitDir, read_raster, read_run_config, run_band_roles, write_raster

# 1. Paths. Every mount is also announced in an environment variable (SARBENCH_MODEL,
#    SARBENCH_DATA_TRAIN, ...); Mounts reads them, with the container paths (/model,
#    /data/train, ...) as fallbacks, so the same code runs under `sarbench run --backend
#    local`, where they point at host folders.
MOUNTS = Mounts.from_env()


# 2. Reading a split. SplitDir reads <split>/inputs/<id>.tif (bands x H x W, float32),
#    targets/<id>.tif, and valid/<id>.tif (1 where a pixel is scored) where the dataset has
#    masks, one Sample at a time, checking that they share the input's grid.
def chips(split: SplitDir):
    for sample in split:
        x = sample.inputs
        valid = sample.valid_or_all() & np.isfinite(x).all(axis=0)  # nodata is never scored
        yield x, sample.target, valid


# 3. Band roles: what the bands are. run.json's dataset.band_roles says it ("pre", "post":
#    one polarisation before and after the event; "VV", "VH": two polarisations of one
#    date). The harness runs this entry only on the layouts its .toml lists under
#    requires_roles, so for flood it is one of those two here.
def flood_feature(x: np.ndarray, config: dict) -> np.ndarray:
    if run_band_roles(config) == ("VV", "VH"):
        return x[0]  # VV dB of the event: open water is dark
    return x[1] - x[0]  # post - pre dB: flooding darkens


# 4. train: fit on /data/train, save everything predict needs into /model.
#    `config` is /config/run.json: task, dataset, your variant's options, seed, time budget.
def train(config: dict) -> None:
    rng = np.random.default_rng(config["seed"])  # seed everything random from the config
    data = list(chips(SplitDir(MOUNTS.split("train"))))
    print(f"train: {len(data)} chips, task {config['task']['name']}", flush=True)
    if config["task"]["name"] == "flood":
        feature = np.concatenate([flood_feature(x, config)[v] for x, _, v in data])
        truth = np.concatenate([y[v] > 0 for _, y, v in data])
        pick = rng.choice(feature.size, size=min(feature.size, 2_000_000), replace=False)
        feature, truth = feature[pick], truth[pick]
        best = (-1.0, 0.0)
        candidates = np.linspace(-12.0, 0.0, 61)  # dB of change
        if run_band_roles(config) == ("VV", "VH"):
            candidates = np.linspace(-30.0, -5.0, 126)  # dB of VV
        for t in candidates:
            pred = feature < t
            inter, union = np.sum(pred & truth), np.sum(pred | truth)
            best = max(best, (inter / union if union else 0.0, float(t)))
        model = {"threshold_db": best[1], "train_iou": best[0]}
    else:
        x = np.concatenate([xx[:, v].T for xx, _, v in data])
        y = np.concatenate([yy[v] for _, yy, v in data])
        design = np.column_stack([x, np.ones(len(x))])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        model = {"coef": coef.tolist()}
    (MOUNTS.model / "model.json").write_text(json.dumps(model))
    # Anything in /model/artifacts (loss curves, options) is kept with the run record.
    (MOUNTS.model / "artifacts").mkdir(exist_ok=True)
    (MOUNTS.model / "artifacts" / "fit.json").write_text(json.dumps(model, indent=1))
    print(f"train: done: {model}", flush=True)


# 5. predict: one GeoTIFF per test input into /output, same file name, same grid.
#    flood: one band uint8 in {0, 1}; ndvi: one band float32 in [-1, 1].
def predict(config: dict) -> None:
    model = json.loads((MOUNTS.model / "model.json").read_text())
    task = config["task"]["name"]
    # /data/test/inputs holds inputs only: test targets never enter a container.
    inputs = sorted(MOUNTS.test_inputs.glob("*.tif"))
    for i, path in enumerate(inputs, 1):
        chip = read_raster(path)  # chip.data: (bands, H, W); chip.grid: CRS, transform, size
        x = np.nan_to_num(chip.data, nan=0.0)
        if task == "flood":
            pred = flood_feature(x, config) < model["threshold_db"]
            dtype = "uint8"
        else:
            a, b, c = model["coef"]
            pred = np.clip(a * x[0] + b * x[1] + c, -1.0, 1.0)
            dtype = "float32"
        # One band, the input's grid and file name, no nodata value.
        write_raster(MOUNTS.output / path.name, pred.astype(dtype), chip.grid)
        if i % 10 == 0 or i == len(inputs):
            print(f"predict: {i}/{len(inputs)}", flush=True)


# 6. The entrypoint: the phase is the only argument. Exit non-zero on failure; the harness
#    records the last lines of your log.
if __name__ == "__main__":
    phase = sys.argv[1] if len(sys.argv) == 2 else ""
    if phase not in ("train", "predict"):
        sys.exit("usage: entry.py train|predict")
    config = read_run_config(MOUNTS.config)  # every key of docs/contract.md is there
    {"train": train, "predict": predict}[phase](config)
