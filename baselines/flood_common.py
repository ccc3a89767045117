"""What the deep flood baselines (UNet, Prithvi) share: data, training loop, prediction.

- Inputs are standardised per band with a mean and standard deviation computed on the
  train split's valid, finite pixels only (:class:`Normaliser`, saved with the model).
- **Non-finite inputs** (NaN nodata, inf): each band's statistics use only its finite
  values; a non-finite input value is filled with its band's training mean, which is 0
  after standardising (:data:`FILL_RULE`), in training and in prediction alike, and a
  training pixel with a non-finite band is left out of the loss. So a NaN pixel changes no
  other pixel's prediction beyond what that fill value would (it is the same input), and
  every prediction is finite. The rule is saved with the model (``input_fill``) and logged
  with the number of pixels filled.
- **Non-finite outputs** are an error, never a mask: a non-finite training loss, or a
  non-finite logit on a val or test chip (a diverged model), fails the phase with the chip
  and the count (``logits > 0`` would silently write such pixels as dry).
- Training draws random ``crop`` x ``crop`` windows of the training chips (random flips
  when ``augment``), minimises BCE (or BCE + soft Dice) over **valid** pixels only
  (``Sample.valid``), with AdamW and a cosine learning-rate decay per step.
- Every ``val_every`` epochs the model predicts the whole val chips; the weights with the
  best pooled val IoU are kept (early stopping after ``patience`` evaluations without
  improvement; 0 = never). Training also stops before ``budget_fraction`` of the phase's
  time budget is spent.
- Prediction runs on whole chips, or on overlapping ``tile`` x ``tile`` windows with their
  logits averaged (for a model that must see the size it was trained on, such as a ViT).
- Band roles: the UNet (and Prithvi's ``patch-embed`` adapter) take the bands as channels
  and learn what they mean, so they use pre/post and VV/VH alike; each model checks what
  it needs itself (:func:`baselines.contract.require_roles`). The roles trained on are
  saved with the model, and a model is refused on inputs whose roles differ.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from baselines.contract import ContractError, Paths, RunConfig, log, progress, write_loss_curve
from sarbench_io.bands import layout_text
from sarbench_io.geo import write_raster
from sarbench_io.loader import SplitDir

LOSSES = ("bce", "bce+dice")
FILL_RULE = "non-finite input values: the band's training mean (0 after standardising)"
"""What :meth:`Normaliser.apply` does with a non-finite input value (saved with the model)."""
SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class TrainOptions:
    """Training options shared by the deep flood baselines."""

    epochs: int = 30
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    crop: int = 256
    samples_per_epoch: int = 0
    augment: bool = True
    loss: str = "bce+dice"
    schedule: str = "cosine"
    val_every: int = 1
    patience: int = 0
    amp: bool = True
    budget_fraction: float = 0.85

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}")
        if min(self.epochs, self.batch_size, self.crop, self.val_every) < 1:
            raise ValueError("epochs, batch_size, crop and val_every must be >= 1")
        if not 0 < self.budget_fraction <= 1:
            raise ValueError("budget_fraction must be in (0, 1]")


@dataclass(frozen=True)
class Normaliser:
    """Per-band standardisation fitted on the train split."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, split: SplitDir) -> Normaliser:
        total = total_sq = count = None
        for sample in split:
            x = sample.inputs.astype(np.float64)
            keep = sample.valid_or_all()[None] & np.isfinite(x)
            xs = np.where(keep, x, 0.0)
            s, sq, n = xs.sum((1, 2)), (xs * xs).sum((1, 2)), keep.sum((1, 2))
            total = s if total is None else total + s
            total_sq = sq if total_sq is None else total_sq + sq
            count = n if count is None else count + n
        if total is None or total_sq is None or count is None or (count == 0).any():
            raise ContractError(f"{split.path}: no valid pixels to fit the band statistics on")
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean**2, 1e-12))
        return cls(tuple(float(v) for v in mean), tuple(float(v) for v in std))

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(C, H, W) standardised float32; a non-finite value becomes 0, its band's training
        mean (:data:`FILL_RULE`)."""
        if x.shape[0] != len(self.mean):
            raise ContractError(f"{x.shape[0]} input band(s), the model has {len(self.mean)}")
        mean = np.asarray(self.mean, np.float64)[:, None, None]
        std = np.asarray(self.std, np.float64)[:, None, None]
        z = (x.astype(np.float64) - mean) / std
        return np.where(np.isfinite(z), z, 0.0).astype(np.float32)


@dataclass
class Chips:
    """Standardised chips of one split, with their targets and valid masks, in memory."""

    ids: list[str]
    x: list[np.ndarray]
    y: list[np.ndarray]
    valid: list[np.ndarray]

    @classmethod
    def load(cls, split: SplitDir, norm: Normaliser) -> Chips:
        if not split.has_targets:
            raise ContractError(f"{split.path}: no targets/ to train on")
        chips = cls([], [], [], [])
        filled = 0
        for sample in progress(split, len(split), f"load {split.path.name}", every=0.25):
            assert sample.target is not None
            finite = np.isfinite(sample.inputs).all(0)
            filled += int((~finite).sum())
            chips.ids.append(sample.id)
            chips.x.append(norm.apply(sample.inputs))
            chips.y.append((sample.target == 1).astype(np.float32))
            chips.valid.append(sample.valid_or_all() & finite)
        if filled:
            log(
                f"{split.path.name}: {filled} pixel(s) with a non-finite band: {FILL_RULE}; "
                "left out of the loss"
            )
        return chips

    def __len__(self) -> int:
        return len(self.ids)

    def batch(
        self, index: np.ndarray, crop: int, augment: bool, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Random ``crop`` windows of the chips ``index`` (zero-padded, and not valid, where
        a chip is smaller), each randomly flipped when ``augment``."""
        n_bands = self.x[0].shape[0]
        xb = np.zeros((len(index), n_bands, crop, crop), np.float32)
        yb = np.zeros((len(index), crop, crop), np.float32)
        wb = np.zeros((len(index), crop, crop), np.float32)
        for j, i in enumerate(index):
            h, w = self.y[i].shape
            r = int(rng.integers(0, max(h - crop, 0) + 1))
            c = int(rng.integers(0, max(w - crop, 0) + 1))
            ch, cw = min(crop, h), min(crop, w)
            xs = self.x[i][:, r : r + ch, c : c + cw]
            ys, ws = self.y[i][r : r + ch, c : c + cw], self.valid[i][r : r + ch, c : c + cw]
            if augment and rng.random() < 0.5:
                xs, ys, ws = xs[:, :, ::-1], ys[:, ::-1], ws[:, ::-1]
            if augment and rng.random() < 0.5:
                xs, ys, ws = xs[:, ::-1], ys[::-1], ws[::-1]
            xb[j, :, :ch, :cw], yb[j, :ch, :cw], wb[j, :ch, :cw] = xs, ys, ws
        return torch.from_numpy(xb), torch.from_numpy(yb), torch.from_numpy(wb)


def load_training_data(
    paths: Paths, config: RunConfig | None = None
) -> tuple[Normaliser, Chips, Chips | None]:
    """Band statistics from ``/data/train``, and the train and (if mounted) val chips."""
    if config is not None:
        log(f"bands {', '.join(config.bands)}: roles {layout_text(config.band_roles)}")
    if not paths.has_split("train"):
        raise ContractError(f"no train split mounted at {paths.split('train')}")
    train_split = SplitDir(paths.split("train"))
    norm = Normaliser.fit(train_split)
    log(f"band mean {[round(m, 3) for m in norm.mean]}, std {[round(s, 3) for s in norm.std]}")
    train = Chips.load(train_split, norm)
    val = Chips.load(SplitDir(paths.split("val")), norm) if paths.has_split("val") else None
    if val is None:
        log("no val split: the weights of the last epoch are kept")
    return norm, train, val


def setup_torch(config: RunConfig) -> torch.device:
    """Threads from the run's CPU quota; the GPU where one is visible."""
    torch.set_num_threads(config.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    log(f"device {device}, {config.threads} thread(s)")
    return device


def seg_loss(logits: torch.Tensor, y: torch.Tensor, w: torch.Tensor, kind: str) -> torch.Tensor:
    """BCE (plus the soft Dice loss of the batch for ``bce+dice``) over valid pixels."""
    logits = logits.float()
    bce = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    loss = (bce * w).sum() / w.sum().clamp(min=1.0)
    if kind == "bce+dice":
        p = torch.sigmoid(logits) * w
        loss = loss + 1 - (2 * (p * y).sum() + 1) / (p.sum() + (y * w).sum() + 1)
    return loss


def check_finite(logits: np.ndarray, what: str) -> np.ndarray:
    """``logits``, or a :class:`ContractError` naming ``what`` where any is not finite."""
    bad = int(np.size(logits) - np.count_nonzero(np.isfinite(logits)))
    if bad:
        raise ContractError(
            f"{what}: the model's output holds {bad} non-finite logit(s) of {np.size(logits)} "
            "(its weights or the inputs went non-finite; a diverged model?); no mask is "
            "written for such an output"
        )
    return logits


def _pad(x: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
    if pad_h == 0 and pad_w == 0:
        return x
    mode = "reflect" if pad_h < x.shape[-2] and pad_w < x.shape[-1] else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def _starts(size: int, tile: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile + 1, max(tile // 2, 1)))
    return starts if starts[-1] == size - tile else [*starts, size - tile]


@torch.no_grad()
def predict_logits(
    model: nn.Module, x: np.ndarray, device: torch.device, *, tile: int = 0, multiple: int = 1
) -> np.ndarray:
    """Logits (H, W) of one standardised chip (C, H, W): in one pass (``tile`` 0, or a chip
    no larger than the tile), else averaged over tiles overlapping by half. The sides are
    padded (reflected) to at least ``tile`` and to a multiple of ``multiple``."""
    model.eval()
    h, w = x.shape[1:]
    hp, wp = max(h, tile), max(w, tile)
    hp, wp = hp + (-hp % multiple), wp + (-wp % multiple)
    t = _pad(torch.from_numpy(x)[None].to(device), hp - h, wp - w)
    if not tile or (hp <= tile and wp <= tile):
        return model(t)[0].float().cpu().numpy()[:h, :w]
    out = torch.zeros((hp, wp), device=device)
    hits = torch.zeros((hp, wp), device=device)
    for r in _starts(hp, tile):
        for c in _starts(wp, tile):
            out[r : r + tile, c : c + tile] += model(t[..., r : r + tile, c : c + tile])[0].float()
            hits[r : r + tile, c : c + tile] += 1
    return (out / hits).cpu().numpy()[:h, :w]


def pooled_iou(preds: list[np.ndarray], chips: Chips) -> float:
    """IoU of the flood class pooled over the valid pixels of every chip."""
    tp = fp = fn = 0
    for p, y, v in zip(preds, chips.y, chips.valid, strict=True):
        p, t = p[v], y[v] > 0.5
        tp += int((p & t).sum())
        fp += int((p & ~t).sum())
        fn += int((~p & t).sum())
    return tp / (tp + fp + fn) if tp + fp + fn else 1.0


def evaluate(
    model: nn.Module, chips: Chips, device: torch.device, loss: str, tile: int, multiple: int
) -> tuple[float, float]:
    """(mean loss per chip, pooled IoU) of ``model`` on whole chips."""
    losses, preds = [], []
    for sid, x, y, v in zip(chips.ids, chips.x, chips.y, chips.valid, strict=True):
        logits = predict_logits(model, x, device, tile=tile, multiple=multiple)
        check_finite(logits, f"val chip {sid}")
        lt, yt, vt = (torch.from_numpy(a) for a in (logits, y, v.astype(np.float32)))
        losses.append(float(seg_loss(lt, yt, vt, loss)))
        preds.append(logits > 0)
    return float(np.mean(losses)), pooled_iou(preds, chips)


@dataclass
class FitResult:
    """The kept weights and how training went."""

    state: dict[str, torch.Tensor]
    best_epoch: int
    best_val_iou: float | None
    history: list[dict[str, float]]


def fit(
    model: nn.Module,
    train: Chips,
    val: Chips | None,
    opts: TrainOptions,
    config: RunConfig,
    paths: Paths,
    device: torch.device,
    *,
    started: float,
    tile: int = 0,
    multiple: int = 1,
    param_groups: list[dict[str, Any]] | None = None,
) -> FitResult:
    """Train ``model`` (see the module docstring); writes ``artifacts/loss.csv``."""
    rng = np.random.default_rng(config.seed)
    model.to(device)
    groups = param_groups or [{"params": [p for p in model.parameters() if p.requires_grad]}]
    optimiser = torch.optim.AdamW(groups, lr=opts.lr, weight_decay=opts.weight_decay)
    per_epoch = opts.samples_per_epoch or len(train)
    steps = math.ceil(per_epoch / opts.batch_size)
    total = steps * opts.epochs

    def factor(step: int) -> float:
        if opts.schedule == "constant":
            return 1.0
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, factor)
    amp = opts.amp and device.type == "cuda"
    deadline = started + opts.budget_fraction * config.time_budget_s
    has_val = val is not None and len(val) > 0
    result = FitResult(copy.deepcopy(model.state_dict()), 0, None, [])
    history: list[dict[str, float]] = []
    stale = 0
    log(f"training {opts.epochs} epoch(s) x {steps} step(s) of {opts.batch_size} crop(s)")
    for epoch in range(1, opts.epochs + 1):
        t0 = time.monotonic()
        model.train()
        rounds = math.ceil(per_epoch / len(train))
        order = np.concatenate([rng.permutation(len(train)) for _ in range(rounds)])[:per_epoch]
        running = 0.0
        for s in range(steps):
            index = order[s * opts.batch_size : (s + 1) * opts.batch_size]
            xb, yb, wb = (t.to(device) for t in train.batch(index, opts.crop, opts.augment, rng))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(xb)
            loss = seg_loss(logits, yb, wb, opts.loss)
            if not torch.isfinite(loss):
                raise ContractError(
                    f"training diverged: the loss is {loss.item()} at epoch {epoch}, step "
                    f"{s + 1} (non-finite logits or weights); try a lower lr"
                )
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            scheduler.step()
            running += loss.detach().item()
        row = {"epoch": float(epoch), "train_loss": running / steps}
        row |= {"val_loss": math.nan, "val_iou": math.nan}
        note = ""
        if val is not None and has_val and (epoch % opts.val_every == 0 or epoch == opts.epochs):
            row["val_loss"], row["val_iou"] = evaluate(
                model, val, device, opts.loss, tile, multiple
            )
            note = f", val loss {row['val_loss']:.4f}, val IoU {row['val_iou']:.4f}"
            if result.best_val_iou is None or row["val_iou"] > result.best_val_iou:
                result = FitResult(copy.deepcopy(model.state_dict()), epoch, row["val_iou"], [])
                stale = 0
            else:
                stale += 1
        elif not has_val:
            result = FitResult(copy.deepcopy(model.state_dict()), epoch, None, [])
        seconds = time.monotonic() - t0
        row |= {"lr": float(scheduler.get_last_lr()[0]), "seconds": seconds}
        history.append({k: round(v, 6) for k, v in row.items()})
        write_loss_curve(paths, history)
        log(
            f"epoch {epoch}/{opts.epochs}: train loss {row['train_loss']:.4f}{note} ({seconds:.1f} s)"
        )
        if opts.patience and stale >= opts.patience:
            log(f"early stop: no better val IoU in {stale} evaluation(s)")
            break
        if epoch < opts.epochs and time.monotonic() + seconds > deadline:
            log(f"time budget: stopping after epoch {epoch} (another would pass the deadline)")
            break
    result.history = history
    if result.best_val_iou is not None:
        log(f"kept the weights of epoch {result.best_epoch} (val IoU {result.best_val_iou:.4f})")
    return result


def predict_folder(
    model: nn.Module,
    norm: Normaliser,
    paths: Paths,
    device: torch.device,
    *,
    tile: int = 0,
    multiple: int = 1,
) -> None:
    """One uint8 {0, 1} flood mask (logit > 0) per test input, on the input's grid; a
    non-finite input value is filled (:data:`FILL_RULE`), a non-finite logit is an error."""
    split = SplitDir(paths.test_inputs)
    paths.output.mkdir(parents=True, exist_ok=True)
    model.to(device)
    filled = chips_filled = 0
    for sample in progress(split, len(split), "predict"):
        bad = int((~np.isfinite(sample.inputs)).any(0).sum())
        filled, chips_filled = filled + bad, chips_filled + (bad > 0)
        logits = predict_logits(
            model, norm.apply(sample.inputs), device, tile=tile, multiple=multiple
        )
        check_finite(logits, f"test chip {sample.id}")
        write_raster(paths.output / f"{sample.id}.tif", (logits > 0).astype(np.uint8), sample.grid)
    log(f"{filled} pixel(s) with a non-finite band in {chips_filled} chip(s): {FILL_RULE}")


def save_model(
    path: Path,
    kind: str,
    options: Any,
    norm: Normaliser,
    fitted: FitResult,
    band_roles: tuple[str, ...] | None = None,
) -> None:
    """Write the kept weights with what rebuilds the model: its options and band statistics
    (and the band roles it was trained on, where known)."""
    torch.save(
        {
            "model": kind,
            "options": dataclasses.asdict(options),
            "norm": {"mean": list(norm.mean), "std": list(norm.std)},
            "input_fill": FILL_RULE,
            "band_roles": None if band_roles is None else list(band_roles),
            "state_dict": fitted.state,
            "best_epoch": fitted.best_epoch,
            "best_val_iou": fitted.best_val_iou,
        },
        path,
    )
    log(f"model written to {path}")


def load_model(
    path: Path, kind: str, band_roles: tuple[str, ...] | None = None
) -> tuple[dict[str, Any], Normaliser, dict[str, Any]]:
    """(options, band statistics, state dict) written by :func:`save_model`; a model
    trained on bands of other roles than ``band_roles`` (both known) is refused."""
    if not path.is_file():
        raise ContractError(f"{path}: no trained model (did the train phase run?)")
    doc = torch.load(path, map_location="cpu", weights_only=True)
    if doc.get("model") != kind:
        raise ContractError(f"{path}: a {doc.get('model')!r} model, not a {kind!r} one")
    trained = doc.get("band_roles")
    if trained is not None and band_roles is not None and tuple(trained) != tuple(band_roles):
        raise ContractError(
            f"{path}: trained on bands {layout_text(trained)}, the inputs are "
            f"{layout_text(band_roles)}"
        )
    norm = Normaliser(tuple(doc["norm"]["mean"]), tuple(doc["norm"]["std"]))
    return doc["options"], norm, doc["state_dict"]
