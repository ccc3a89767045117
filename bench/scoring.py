"""Scoring throughput against scikit-learn, torchmetrics and the memory limit.

Run from the repository root::

    python -m bench.scoring                      # 1,000 chips of 512 x 512 (about 3 GB, 10 GB peak)
    python -m bench.scoring --chips 100 --repeat 1

It builds flood masks (uint8) and NDVI images (float32) for ``--chips`` chips, and a nodata /
farm mask (bool, 95 % valid at random), then times

- the pooled flood IoU and the pooled NDVI MSE with the harness (per-chip sufficient
  statistics, then pooled; for ndvi every statistic every ndvi metric needs, R^2 and bias
  included, not just the squared errors), without and with the mask; for ndvi on the
  compiled kernel with two threads (``sarbench --version`` names the path), and on one
  thread beside it;
- the **memory limit**: one ``np.add.reduce`` over the same bytes (pred and target, and the
  mask for the masked form), read as uint8 (the cheapest full read numpy has: about a
  memory pass);
- the same numbers with scikit-learn (``jaccard_score``, ``mean_squared_error``) and
  torchmetrics (functional ``binary_jaccard_index`` and ``mean_squared_error`` on the whole
  stack, and the metric objects ``BinaryJaccardIndex`` and ``MeanSquaredError`` updated chip
  by chip; ``validate_args=False`` where offered, torch's default threads), where installed;
  a missing peer is skipped with a note;
- a 10,000-resample bootstrap interval over the chips.

Each timing is the best of ``--repeat`` runs (a run that takes over 10 s is not repeated).
Throughput is in Mpixel/s; ratios are peer time / harness time (above 1: the harness is
faster). The harness's numbers are float64 throughout; the peers' float32 results are shown
with their difference from the harness's. The closing lines check the targets of issue 19
against this run, and the load average before and after says how busy the machine was.
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

from harness.scoring import kernel
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
        import torch
        import torchmetrics

        print(
            f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"torchmetrics {torchmetrics.__version__}"
        )
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


def memory_limit(arrays: list[np.ndarray]) -> Callable[[], int]:
    """One ``np.add.reduce`` over the bytes of ``arrays``, read as uint8 (sums wrap: only the
    read counts). On this kind of machine it runs at about memory bandwidth, faster than a
    float32 sum of the same bytes."""
    flat = [a.reshape(-1).view(np.uint8) for a in arrays]

    def read() -> int:
        return sum(int(np.add.reduce(f, dtype=np.uint8)) for f in flat)

    return read


@dataclass
class Row:
    name: str
    seconds: float
    value: float | None = None


def _print_row(row: Row, mpix: float, harness: Row | None) -> None:
    line = f"  {row.name:<56} {mpix / row.seconds:9.1f} Mpix/s   {row.seconds:8.3f} s"
    if row.value is not None:
        line += f"   value {row.value:.10f}"
        if harness is not None and harness.value is not None:
            line += f" (differs by {abs(row.value - harness.value):.1e})"
    if harness is not None:
        line += f"   harness/this speed {row.seconds / harness.seconds:.2f}x"
    print(line)


def measure(
    arrays: Arrays, metric: str, others: dict[str, Callable[[], float]], repeat: int
) -> dict[str, Row]:
    """Every row of one metric, printed as measured; keys ``harness``, ``harness masked``,
    ``limit``, ``limit masked`` and each peer's name."""
    task = {"iou": "flood", "mse": "ndvi"}[metric]
    pred, target = (
        (arrays.flood_pred, arrays.flood_target)
        if task == "flood"
        else (arrays.ndvi_pred, arrays.ndvi_target)
    )
    mpix = pred.size / 1e6
    rows: dict[str, Row] = {}
    print(f"pooled {metric}")

    def harness_rows(*variants: tuple[str, str, bool]) -> None:
        for key, name, masked in variants:
            secs, value = best_time(lambda m=masked: harness_pooled(arrays, task, m), repeat)
            rows[key] = Row(name, secs, value)
            _print_row(rows[key], mpix, None)

    harness_rows(
        ("harness", "harness (float64, per-chip stats)", False),
        ("harness masked", "harness, with nodata / farm mask", True),
    )
    if task == "ndvi" and kernel.set_threads(1) == 2:  # the kernel on one thread, for scale
        try:
            harness_rows(
                ("harness 1 thread", "  the same on one thread", False),
                ("harness masked 1 thread", "  the same with the mask, one thread", True),
            )
        finally:
            kernel.set_threads(2)
    for key, name, reads, harness in (
        ("limit", "memory limit: np.add.reduce over pred, target", [pred, target], "harness"),
        (
            "limit masked",
            "memory limit, with the mask's bytes",
            [pred, target, arrays.valid],
            "harness masked",
        ),
    ):
        secs, _ = best_time(memory_limit(reads), repeat)
        rows[key] = Row(name, secs)
        _print_row(rows[key], mpix, rows[harness])
    for name, fn in others.items():
        secs, value = best_time(fn, repeat)
        rows[name] = Row(name, secs, value)
        _print_row(rows[name], mpix, rows["harness"])
    print()
    return rows


def check_targets(rows: dict[str, dict[str, Row]]) -> None:
    """The targets of issue 19, against this run's rows."""
    print("targets (issue 19), this run:")

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    mse = rows["mse"]
    sk = mse.get("scikit-learn mean_squared_error")
    if sk is not None:
        ratio = sk.seconds / mse["harness"].seconds
        print(f"  MSE >= 3x scikit-learn: {ratio:.2f}x, {verdict(ratio >= 3)}")
    for masked in ("", " masked"):
        ratio = mse["harness" + masked].seconds / mse["limit" + masked].seconds
        form = "with the farm mask" if masked else "without a mask"
        print(
            f"  MSE within 2x of the memory limit, {form}: "
            f"{ratio:.1f}x its time, {verdict(ratio <= 2)}"
        )
    for metric, label in (("iou", "IoU"), ("mse", "MSE")):
        tm = [r for name, r in rows[metric].items() if name.startswith("torchmetrics")]
        if not tm:
            print(f"  {label} >= torchmetrics' fastest CPU form: not measured")
            continue
        fastest = min(tm, key=lambda r: r.seconds)
        ratio = fastest.seconds / rows[metric]["harness"].seconds
        print(
            f"  {label} >= torchmetrics' fastest CPU form ({fastest.name}): "
            f"{ratio:.2f}x, {verdict(ratio >= 1)}"
        )


def _load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


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
        f"numpy {np.__version__}; {_load()}"
    )
    print(f"ndvi scoring path: {kernel.describe()}")
    print(
        f"data: {args.chips} chips of {args.size} x {args.size} = {mpix:.0f} Mpixel; "
        f"best of {args.repeat}"
    )
    start = time.perf_counter()
    arrays = make_arrays(args.chips, args.size, args.seed)
    print(f"generated in {time.perf_counter() - start:.1f} s\n")

    others = peers(arrays)
    rows = {metric: measure(arrays, metric, others[metric], args.repeat) for metric in others}
    check_targets(rows)
    print()

    tables = {}
    for metric, task in (("iou", "flood"), ("mse", "ndvi")):
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
    print(_load())


if __name__ == "__main__":
    main()
