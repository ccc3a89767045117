"""Scoring throughput against scikit-learn and torchmetrics, on the same arrays.

Run from the repository root::

    python -m bench.scoring                      # 1,000 chips of 512 x 512 (about 4 GB)
    python -m bench.scoring --chips 100 --repeat 1

It builds flood masks (uint8) and NDVI images (float32) for ``--chips`` chips, then times

- the pooled flood IoU and the pooled NDVI MSE with the harness (per-chip sufficient
  statistics, then pooled), without and with a nodata / farm mask;
- the same numbers with scikit-learn (``jaccard_score``, ``mean_squared_error``) and
  torchmetrics (functional ``binary_jaccard_index`` and ``mean_squared_error`` on the whole
  stack, and a metric object updated chip by chip; ``validate_args=False``, its fastest),
  where installed; a missing peer is skipped with a note;
- a 10,000-resample bootstrap interval over the chips.

Each timing is the best of ``--repeat`` runs (a run that takes over 10 s is not repeated).
Throughput is in Mpixel/s; ratios are harness / peer (above 1: the harness is faster). The
harness's numbers are float64 throughout; the peers' float32 results are shown with their
difference from the harness's, to show what float32 accumulation costs.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.scoring.metrics import ChipReducer, iou, mse
from harness.scoring.stats import bootstrap_ci

_CHUNK = 50


@dataclass
class Arrays:
    flood_pred: np.ndarray
    flood_target: np.ndarray
    ndvi_pred: np.ndarray
    ndvi_target: np.ndarray
    valid: np.ndarray


def make_arrays(chips: int, size: int, seed: int) -> Arrays:
    """Seeded data, generated in chunks so that no float64 temporary is larger than a chunk."""
    rng = np.random.default_rng(seed)
    shape = (chips, size, size)
    out = Arrays(
        flood_pred=np.empty(shape, np.uint8),
        flood_target=np.empty(shape, np.uint8),
        ndvi_pred=np.empty(shape, np.float32),
        ndvi_target=np.empty(shape, np.float32),
        valid=np.empty(shape, np.bool_),
    )
    for start in range(0, chips, _CHUNK):
        sl = slice(start, min(chips, start + _CHUNK))
        n = sl.stop - sl.start
        target = rng.random((n, size, size), dtype=np.float32) < 0.3
        flip = rng.random((n, size, size), dtype=np.float32) < 0.1
        out.flood_target[sl] = target
        out.flood_pred[sl] = target ^ flip
        ndvi = rng.uniform(-1, 1, (n, size, size)).astype(np.float32)
        noise = rng.normal(0, 0.1, (n, size, size)).astype(np.float32)
        out.ndvi_target[sl] = ndvi
        out.ndvi_pred[sl] = np.clip(ndvi + noise, -1, 1)
        out.valid[sl] = rng.random((n, size, size), dtype=np.float32) < 0.95
    return out


def best_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """(best seconds, last result) over ``repeat`` runs; stops repeating after 10 s."""
    best, result, spent = float("inf"), None, 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        took = time.perf_counter() - start
        best, spent = min(best, took), spent + took
        if spent > 10.0:
            break
    return best, result


def harness_pooled(a: Arrays, task: str, masked: bool) -> float:
    """The scoring path: reduce every chip (``ChipReducer``), pool, compute the metric."""
    pred, target = (
        (a.flood_pred, a.flood_target) if task == "flood" else (a.ndvi_pred, a.ndvi_target)
    )
    reducer = ChipReducer(task, with_ssim=False)
    for i in range(len(pred)):
        reducer.add(pred[i], target[i], a.valid[i] if masked else None)
    pooled = reducer.table().pooled()
    return float(iou(pooled) if task == "flood" else mse(pooled))


def peers(a: Arrays) -> dict[str, dict[str, Callable[[], float]]]:
    """Peer implementations by metric; a missing package is reported and skipped."""
    out: dict[str, dict[str, Callable[[], float]]] = {"iou": {}, "mse": {}}
    if importlib.util.find_spec("sklearn"):
        from sklearn.metrics import jaccard_score, mean_squared_error

        fp, ft = a.flood_pred.ravel(), a.flood_target.ravel()
        npred, ntgt = a.ndvi_pred.ravel(), a.ndvi_target.ravel()
        out["iou"]["scikit-learn jaccard_score"] = lambda: float(jaccard_score(ft, fp))
        out["mse"]["scikit-learn mean_squared_error"] = lambda: float(
            mean_squared_error(ntgt, npred)
        )
    else:
        print("note: scikit-learn is not installed; skipped (pip install scikit-learn)")
    if importlib.util.find_spec("torch") and importlib.util.find_spec("torchmetrics"):
        out["iou"].update(_torch_iou(a))
        out["mse"].update(_torch_mse(a))
    else:
        print("note: torch or torchmetrics is not installed; skipped (pip install torchmetrics)")
    return out


def _torch_iou(a: Arrays) -> dict[str, Callable[[], float]]:
    import torch
    from torchmetrics.classification import BinaryJaccardIndex
    from torchmetrics.functional.classification import binary_jaccard_index

    p, t = torch.from_numpy(a.flood_pred), torch.from_numpy(a.flood_target)

    def per_chip() -> float:
        metric = BinaryJaccardIndex(validate_args=False)
        for i in range(len(p)):
            metric.update(p[i], t[i])
        return float(metric.compute())

    return {
        "torchmetrics binary_jaccard_index (whole stack)": lambda: float(
            binary_jaccard_index(p, t, validate_args=False)
        ),
        "torchmetrics BinaryJaccardIndex (update per chip)": per_chip,
    }


def _torch_mse(a: Arrays) -> dict[str, Callable[[], float]]:
    import torch
    from torchmetrics.functional import mean_squared_error
    from torchmetrics.regression import MeanSquaredError

    p, t = torch.from_numpy(a.ndvi_pred), torch.from_numpy(a.ndvi_target)

    def per_chip() -> float:
        metric = MeanSquaredError()
        for i in range(len(p)):
            metric.update(p[i], t[i])
        return float(metric.compute())

    return {
        "torchmetrics mean_squared_error (whole stack)": lambda: float(mean_squared_error(p, t)),
        "torchmetrics MeanSquaredError (update per chip)": per_chip,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chips", type=int, default=1000)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--resamples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    mpix = args.chips * args.size * args.size / 1e6
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"numpy {np.__version__}"
    )
    print(
        f"data: {args.chips} chips of {args.size} x {args.size} = {mpix:.0f} Mpixel; "
        f"best of {args.repeat}"
    )
    start = time.perf_counter()
    arrays = make_arrays(args.chips, args.size, args.seed)
    print(f"generated in {time.perf_counter() - start:.1f} s\n")

    tasks = {"iou": "flood", "mse": "ndvi"}
    others = peers(arrays)
    for metric in ("iou", "mse"):
        task = tasks[metric]
        secs, value = best_time(lambda t=task: harness_pooled(arrays, t, False), args.repeat)
        rate = mpix / secs
        print(f"pooled {metric}")
        print(
            f"  {'harness (float64, per-chip stats)':<52} {rate:9.1f} Mpix/s   "
            f"{secs:8.3f} s   value {value:.10f}"
        )
        msecs, mvalue = best_time(lambda t=task: harness_pooled(arrays, t, True), args.repeat)
        print(
            f"  {'harness, with nodata / farm mask':<52} {mpix / msecs:9.1f} Mpix/s   "
            f"{msecs:8.3f} s   value {mvalue:.10f}"
        )
        for name, fn in others[metric].items():
            psecs, pvalue = best_time(fn, args.repeat)
            print(
                f"  {name:<52} {mpix / psecs:9.1f} Mpix/s   {psecs:8.3f} s   "
                f"value {pvalue:.10f} (differs by {abs(pvalue - value):.1e})   "
                f"harness/peer speed {psecs / secs:.1f}x"
            )
        print()

    tables = {}
    for metric, task in tasks.items():
        pred = arrays.flood_pred if task == "flood" else arrays.ndvi_pred
        target = arrays.flood_target if task == "flood" else arrays.ndvi_target
        reducer = ChipReducer(task, with_ssim=False)
        for i in range(args.chips):
            reducer.add(pred[i], target[i])
        tables[metric] = reducer.table()
    for name, table in tables.items():
        secs, ci = best_time(
            lambda t=table, n=name: bootstrap_ci(t, n, n_resamples=args.resamples), args.repeat
        )
        print(
            f"bootstrap {name}: {args.resamples} resamples of {args.chips} chips in "
            f"{secs * 1e3:.0f} ms  ({ci.estimate:.6f} [{ci.low:.6f}, {ci.high:.6f}])"
        )

    n_ssim = min(args.chips, 20)
    reducer = ChipReducer("ndvi")
    secs, _ = best_time(
        lambda: [
            reducer.add(arrays.ndvi_pred[i], arrays.ndvi_target[i], arrays.valid[i])
            for i in range(n_ssim)
        ],
        1,
    )
    print(
        f"ndvi stats with SSIM (11 x 11 Gaussian window): "
        f"{n_ssim * args.size**2 / 1e6 / secs:.1f} Mpix/s over {n_ssim} chips"
    )


if __name__ == "__main__":
    main()
