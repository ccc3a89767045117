"""pix2pix for SAR to NDVI, after Kimura et al., "Pre-Training and Fine-Tuning for Satellite
Image-to-Image Translation" (the ndvi baseline, with the study's Table 3 ablations).

Where each setting comes from (the study, pix2pix, or our own choice, and why) is the
settings table of ``baselines/README.md``; the study gives few: the components below, the
SAR index channels, 5,000 pre-training epochs and early stopping of the fine-tuning on
validation MSE (its section 4.4).

A conditional GAN (Isola et al. 2017, the study's section 3.1): a UNet generator maps the
SAR channels of a chip to NDVI (``tanh``, so in [-1, 1]); a 70x70 PatchGAN discriminator
judges (SAR, NDVI) pairs. The generator's loss is the cGAN term plus ``lambda_l1`` times the
L1 distance to the target; the study writes this objective (its eq. 1) without a value
for the weight, so ``lambda_l1`` is pix2pix's 100. Adam, lr 2e-4, betas (0.5, 0.999), the
discriminator's loss halved: pix2pix's. Our choice: both the L1 term and the discriminator
see farm pixels only: the L1 mean runs over the valid mask, and real and generated NDVI are
both set to 0 outside it before the discriminator looks, so that it cannot tell them apart
by the unscored background.

The study's components, each an option (the entry's variants switch them off one by one):

* ``pretrain``: first train on the ``pretrain`` split, whose second-sensor NDVI is mapped
  onto the target sensor by a fitted line (``mapping``, see :mod:`baselines.pix2pix_data`)
* ``finetune``: then train on the target ``train`` split; without ``pretrain`` this is
  training from scratch. Without ``finetune`` the pre-trained model is the model.
* ``sar_indexes``: ten SAR index channels (:mod:`baselines.sar_indexes`) instead of the
  two dB bands, standardised with statistics of the train split
* ``train_aug``: random rotation, zoom and flips of every training sample (the study:
  "rotation, scaling, and flipping"; the ranges are ours)
* ``tta``: predictions averaged over the four flips times three backscatter gains (the
  study: "flipping, and value multiplying"; the gains are ours)

Model selection: the last training phase (fine-tuning, or pre-training when there is no
fine-tuning) keeps the generator of the epoch with the lowest MSE over the farm pixels of
the ``val`` split, and stops after ``patience`` epochs without improvement. The study
early-stops its fine-tuning on validation MSE and trains 5,000 pre-training epochs; it
gives no patience and no cap on fine-tuning epochs (``patience`` and ``epochs_finetune``
are ours). Each phase also stops at its share of the run's time budget.

Prediction runs the generator in eval mode: dropout off and batch normalisation with the
statistics gathered in training. pix2pix does otherwise (dropout on at test time, as its
noise, and the test batch's own statistics); this is our choice, because the benchmark
scores one prediction per chip by squared error, and a prediction's expected squared
error is that of its mean plus its variance, so drawing dropout noise can only add to it
on average; eval mode is the usual stand-in for that mean. It also keeps a chip's
prediction independent of whatever else is in its batch.

Non-finite inputs: a band's NaN or infinite values are filled with the median of that
band's finite values in the chip (:func:`baselines.pix2pix_data.fill_nonfinite`), and every
statistic is fitted on finite values only; how many values were filled is logged. A
prediction that still has a non-finite value fails the phase (a :class:`ContractError`
naming the chip); nothing is written in its place.

Band roles: the SAR indexes (and the pre-training split, whose chips are VV, VH) read
band 1 as VV and band 2 as VH, so a run on bands whose roles are not VV/VH is refused (the
entry file says so too: ``requires_roles``).
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from baselines.contract import (
    ContractError,
    Paths,
    RunConfig,
    log,
    progress,
    require_roles,
    resolve_options,
    write_loss_curve,
    write_options,
)
from baselines.pix2pix_data import (
    MAPPING_METHODS,
    Featurizer,
    LinearMap,
    MappingMethod,
    SplitArrays,
    augment,
    fit_mapping,
    load_split,
    random_crop,
    tta_predict,
)
from baselines.pix2pix_nets import Norm, PatchDiscriminator, UNetGenerator
from sarbench_io.bands import VV_VH
from sarbench_io.geo import write_raster
from sarbench_io.loader import SplitDir

CHECKPOINT = "pix2pix.pt"
FORMAT = 2
PRETRAIN_SHARE = 0.6
"""Share of the training time budget that pre-training may use when fine-tuning follows."""


@dataclass(frozen=True)
class Pix2PixOptions:
    """Options of the pix2pix baseline. The defaults are for one GPU: the study's value
    where it gives one, else pix2pix's (Isola et al. 2017), else ours; the settings table
    of ``baselines/README.md`` gives the source of each."""

    pretrain: bool = True
    finetune: bool = True
    sar_indexes: bool = True
    train_aug: bool = True
    tta: bool = True
    mapping: MappingMethod = "sar-bins"
    lambda_l1: float = 100.0
    lambda_gan: float = 1.0
    epochs_pretrain: int = 5000
    epochs_finetune: int = 1000
    patience: int = 50
    pretrain_chips: int = 0  # 0: every chip of the pretrain split
    batch_size: int = 16
    crop: int = 0  # train on random crops of this size; 0: whole chips
    ngf: int = 64
    ndf: int = 64
    n_down: int = 7
    d_layers: int = 3
    norm: Norm = "batch"
    dropout: float = 0.5
    lr: float = 2e-4
    lr_finetune: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    time_fraction: float = 0.85  # stop training at this share of the phase's time budget
    threads: int = 0  # torch CPU threads; 0: one per CPU of the run's resources

    def __post_init__(self) -> None:
        if self.mapping not in MAPPING_METHODS:
            raise ValueError(f"mapping must be one of {MAPPING_METHODS}, got {self.mapping!r}")
        if self.norm not in ("batch", "instance"):
            raise ValueError(f"norm must be 'batch' or 'instance', got {self.norm!r}")
        if not (self.pretrain or self.finetune):
            raise ValueError("at least one of pretrain and finetune must be true")
        if self.threads < 0:
            raise ValueError(f"threads must be 0 (one per CPU) or more, got {self.threads}")
        positive = ("batch_size", "ngf", "ndf", "d_layers", "patience")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.n_down < 2:
            raise ValueError(f"n_down must be at least 2, got {self.n_down}")
        if self.crop and self.crop % 2**self.n_down:
            raise ValueError(f"crop {self.crop} must be a multiple of 2**n_down = {2**self.n_down}")
        if not 0.0 < self.time_fraction <= 1.0:
            raise ValueError(f"time_fraction must be in (0, 1], got {self.time_fraction}")


def options_of(config: RunConfig) -> Pix2PixOptions:
    """The run's options; bands that are not VV/VH are refused (see the module docstring)."""
    require_roles(config, VV_VH, what="band 1 read as VV, band 2 as VH")
    return resolve_options(Pix2PixOptions, config.options, ignore=("model",))


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def use_cpus(paths: Paths, threads: int) -> None:
    """Set torch's CPU threads: ``threads``, or with 0 one per CPU of the run's resources.

    Without this torch starts a thread per core of the host, which under a CPU quota of a
    few cores makes the threads wait on each other. Small networks gain little from a
    second thread and lose much when another process competes for the cores, hence the
    option. Also flush denormal floats to zero (they slow CPU arithmetic down).
    """
    torch.set_flush_denormal(True)
    if threads > 0:
        torch.set_num_threads(threads)
        return
    try:
        cpus = float(json.loads(paths.config.read_text())["resources"]["cpus"])
    except (OSError, ValueError, KeyError, TypeError):
        return  # no resources in run.json: keep torch's default
    torch.set_num_threads(max(1, math.floor(cpus)))


def build_generator(opts: Pix2PixOptions, in_channels: int) -> UNetGenerator:
    return UNetGenerator(
        in_channels, 1, ngf=opts.ngf, n_down=opts.n_down, norm=opts.norm, dropout=opts.dropout
    )


def masked_l1(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the pixels where ``valid`` is 1 (0 when there are none)."""
    return ((pred - target).abs() * valid).sum() / valid.sum().clamp(min=1.0)


@dataclass
class PhaseData:
    """A split as tensors on the training device: x (N, C, H, W), y and v (N, 1, H, W)."""

    x: torch.Tensor
    y: torch.Tensor
    v: torch.Tensor

    @classmethod
    def of(cls, split: SplitArrays, features: Featurizer, dev: torch.device) -> PhaseData:
        return cls(
            x=torch.from_numpy(features(split.inputs)).to(dev),
            y=torch.from_numpy(split.target[:, None]).to(dev),
            v=torch.from_numpy(split.valid[:, None].astype(np.float32)).to(dev),
        )

    def __len__(self) -> int:
        return self.x.shape[0]


class Trainer:
    """The generator, the discriminator and one training phase at a time."""

    def __init__(self, opts: Pix2PixOptions, in_channels: int, seed: int) -> None:
        self.opts, self.dev = opts, device()
        self.generator = build_generator(opts, in_channels).to(self.dev)
        self.discriminator = PatchDiscriminator(
            in_channels + 1, ndf=opts.ndf, n_layers=opts.d_layers, norm=opts.norm
        ).to(self.dev)
        self.rng = torch.Generator().manual_seed(seed)

    def _batch(
        self, data: PhaseData, idx: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        stack = torch.cat([data.x[idx], data.y[idx], data.v[idx]], dim=1)
        crop = self.opts.crop if 0 < self.opts.crop < min(stack.shape[-2:]) else 0
        if self.opts.train_aug:
            stack = augment(stack, self.rng, crop)
        else:
            stack = random_crop(stack, crop, self.rng)
        c = data.x.shape[1]
        return stack[:, :c], stack[:, c : c + 1], stack[:, c + 1 :]

    def _step(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        v: torch.Tensor,
        opt_g: torch.optim.Optimizer,
        opt_d: torch.optim.Optimizer,
    ) -> dict[str, float]:
        fake = self.generator(x)
        l1 = masked_l1(fake, y, v)
        if self.opts.lambda_gan > 0:
            real_logits = self.discriminator(x, y * v)
            fake_logits = self.discriminator(x, fake.detach() * v)
            loss_d = 0.5 * (
                F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
            )
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            logits = self.discriminator(x, fake * v)
            gan = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        else:
            loss_d = gan = torch.zeros((), device=self.dev)
        loss_g = self.opts.lambda_gan * gan + self.opts.lambda_l1 * l1
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return {"l1": l1.item(), "gan": gan.item(), "d": loss_d.item()}

    @torch.no_grad()
    def val_mse(self, data: PhaseData) -> float:
        """MSE over all valid pixels of ``data``, generator in eval mode, no TTA."""
        self.generator.eval()
        err = count = 0.0
        for i in range(0, len(data), self.opts.batch_size):
            sl = slice(i, i + self.opts.batch_size)
            pred = self.generator(data.x[sl])
            err += float((((pred - data.y[sl]) ** 2) * data.v[sl]).sum())
            count += float(data.v[sl].sum())
        self.generator.train()
        return err / max(count, 1.0)

    def run_phase(
        self,
        name: str,
        data: PhaseData,
        val: PhaseData | None,
        epochs: int,
        lr: float,
        select: bool,
        deadline: float,
    ) -> list[dict[str, float]]:
        """Train for ``epochs``; with ``select`` (and ``val``) keep the best val epoch."""
        o = self.opts
        betas = (o.beta1, o.beta2)
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=lr, betas=betas)
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=betas)
        self.generator.train()
        self.discriminator.train()
        rows: list[dict[str, float]] = []
        best, best_state, since_best = float("inf"), None, 0
        start = time.monotonic()
        log(f"{name}: {len(data)} chips, {epochs} epochs, lr {lr}")
        for epoch in range(1, epochs + 1):
            sums = {"l1": 0.0, "gan": 0.0, "d": 0.0}
            order = torch.randperm(len(data), generator=self.rng)
            steps = 0
            for i in range(0, len(data), o.batch_size):
                idx = order[i : i + o.batch_size].to(self.dev)
                losses = self._step(*self._batch(data, idx), opt_g, opt_d)
                for k, value in losses.items():
                    sums[k] += value
                steps += 1
            row = {"epoch": float(epoch), **{k: s / steps for k, s in sums.items()}}
            # pre-training before fine-tuning is not selected: val only at its end, for the log
            evaluate = val is not None and (select or epoch == epochs)
            row["val_mse"] = self.val_mse(val) if evaluate and val is not None else math.nan
            row["seconds"] = round(time.monotonic() - start, 3)
            rows.append(row)
            if epoch == 1 or epoch % max(1, epochs // 10) == 0 or epoch == epochs:
                shown = ", ".join(f"{k} {v:.5g}" for k, v in row.items() if k != "epoch")
                log(f"{name} epoch {epoch}/{epochs}: {shown}")
            if select and not math.isnan(row["val_mse"]):
                if row["val_mse"] < best:
                    best, since_best = row["val_mse"], 0
                    best_state = copy.deepcopy(self.generator.state_dict())
                else:
                    since_best += 1
                if since_best >= o.patience:
                    log(f"{name}: early stop at epoch {epoch}, no val improvement in {o.patience}")
                    break
            if time.monotonic() > deadline:
                log(f"{name}: stopping at epoch {epoch}, its share of the time budget is spent")
                break
        if best_state is not None:
            self.generator.load_state_dict(best_state)
            log(f"{name}: kept the generator of the best val MSE {best:.6f}")
        return rows


def log_nonfinite(name: str, split: SplitArrays) -> None:
    """Say how many input values of ``split`` are not finite (and so filled), if any."""
    bad = ~np.isfinite(split.inputs)
    if bad.any():
        chips = int(np.count_nonzero(bad.any(axis=(1, 2, 3))))
        log(
            f"{name}: {int(bad.sum())} non-finite input values in {chips} chip(s), filled with "
            "their band's median in the chip; statistics use finite values only"
        )


def train(config: RunConfig, paths: Paths) -> None:
    """Fit the input normalisation, the mapping, pre-train and/or fine-tune; save the model."""
    opts = options_of(config)
    write_options(paths, opts)
    use_cpus(paths, opts.threads)
    start = time.monotonic()
    budget = config.time_budget_s * opts.time_fraction
    if not paths.has_split("train"):
        raise ContractError(f"no train split at {paths.split('train')}")
    train_split = load_split(paths.split("train"))
    val_split = load_split(paths.split("val")) if paths.has_split("val") else None
    try:
        features = Featurizer.fit(train_split.inputs, opts.sar_indexes)
    except ValueError as exc:
        raise ContractError(f"train split: {exc}") from exc
    log(f"inputs: {', '.join(features.names)}; train {len(train_split)} chips")
    log_nonfinite("train", train_split)
    if val_split is not None:
        log_nonfinite("val", val_split)
    trainer = Trainer(opts, len(features.names), config.seed)
    val = PhaseData.of(val_split, features, trainer.dev) if val_split is not None else None
    mapping = LinearMap()
    if opts.pretrain:
        if not paths.has_split("pretrain"):
            raise ContractError(
                f"pretrain = true needs a pretrain split at {paths.split('pretrain')} "
                "(ndvi-synth has one); set pretrain = false otherwise"
            )
        pre = load_split(paths.split("pretrain"), opts.pretrain_chips, config.seed)
        log_nonfinite("pretrain", pre)
        try:
            mapping = fit_mapping(pre, train_split, opts.mapping)
        except ValueError as exc:
            raise ContractError(str(exc)) from exc
        log(
            f"mapping ({mapping.method}): target NDVI = {mapping.gain:.4f} * second sensor "
            f"{mapping.offset:+.4f}, from {len(pre)} pretrain and {len(train_split)} train chips"
        )
        (paths.artifacts / "mapping.json").write_text(json.dumps(asdict(mapping), indent=1))
        mapped = pre.with_target(np.where(pre.valid, mapping(pre.target), 0.0))
        share = PRETRAIN_SHARE if opts.finetune else 1.0
        rows = trainer.run_phase(
            "pretrain",
            PhaseData.of(mapped, features, trainer.dev),
            val,
            opts.epochs_pretrain,
            opts.lr,
            select=not opts.finetune,
            deadline=start + share * budget,
        )
        write_loss_curve(paths, rows, "loss_pretrain.csv")
    if opts.finetune:
        rows = trainer.run_phase(
            "finetune",
            PhaseData.of(train_split, features, trainer.dev),
            val,
            opts.epochs_finetune,
            opts.lr_finetune,
            select=True,
            deadline=start + budget,
        )
        write_loss_curve(paths, rows, "loss_finetune.csv")
    save(paths.model / CHECKPOINT, trainer.generator, opts, features, mapping)
    log(f"saved {CHECKPOINT} after {time.monotonic() - start:.1f} s")


def save(
    path: Path,
    generator: UNetGenerator,
    opts: Pix2PixOptions,
    features: Featurizer,
    mapping: LinearMap,
) -> None:
    torch.save(
        {
            "format": FORMAT,
            "options": json.dumps(asdict(opts)),
            "channels": list(features.names),
            "mean": features.mean.tolist(),
            "std": features.std.tolist(),
            "fill_db": features.fill_db.tolist(),
            "mapping": json.dumps(asdict(mapping)),
            "generator": {k: v.cpu() for k, v in generator.state_dict().items()},
        },
        path,
    )


def load(path: Path, dev: torch.device) -> tuple[UNetGenerator, Featurizer]:
    """The trained generator (eval mode, on ``dev``) and its input channels."""
    if not path.is_file():
        raise ContractError(f"{path}: no trained model; run the train phase first")
    ckpt: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt.get("format") != FORMAT:
        raise ContractError(f"{path}: checkpoint format {ckpt.get('format')}, expected {FORMAT}")
    saved = json.loads(ckpt["options"])
    known = {f.name for f in fields(Pix2PixOptions)}
    arch = Pix2PixOptions(**{k: v for k, v in saved.items() if k in known})
    features = Featurizer(
        arch.sar_indexes,
        np.asarray(ckpt["mean"], np.float32),
        np.asarray(ckpt["std"], np.float32),
        np.asarray(ckpt["fill_db"], np.float32),
    )
    generator = build_generator(arch, len(features.names))
    generator.load_state_dict(ckpt["generator"])
    return generator.to(dev).eval(), features


def _padded(x: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Reflect-pad the last two axes up to multiples of ``multiple``; return the pads."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph or pw:
        x = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, ph), (0, pw)], mode="reflect")
    return x, (h, w)


@torch.no_grad()
def predict_chips(
    generator: UNetGenerator, features: Featurizer, inputs_db: np.ndarray, dev: torch.device
) -> np.ndarray:
    """NDVI (K, H, W) of dB chips (K, 2, H, W), no augmentation."""
    x, (h, w) = _padded(features(inputs_db), generator.multiple)
    out = generator(torch.from_numpy(np.ascontiguousarray(x)).to(dev))
    return out[:, 0, :h, :w].cpu().numpy()


def predict_chip(
    generator: UNetGenerator,
    features: Featurizer,
    chip_db: np.ndarray,
    dev: torch.device,
    tta: bool,
) -> np.ndarray:
    """NDVI (H, W) float32 of one dB chip (2, H, W), with or without test-time augmentation.

    A non-finite prediction is a :class:`ContractError`, never written as something else.
    """
    chip = chip_db.astype(np.float32)

    def run(chips: np.ndarray) -> np.ndarray:
        return predict_chips(generator, features, chips, dev)

    ndvi = tta_predict(run, chip) if tta else run(chip[None])[0]
    bad = int(np.count_nonzero(~np.isfinite(ndvi)))
    if bad:
        raise ContractError(
            f"the generator predicted {bad} non-finite value(s) of {ndvi.size}; the model "
            "is broken (a NaN weight or statistic?), so nothing is written for this chip"
        )
    return np.clip(ndvi, -1.0, 1.0).astype(np.float32)


def predict(config: RunConfig, paths: Paths) -> None:
    """Write one float32 NDVI GeoTIFF per test input, on the input's grid."""
    opts = options_of(config)
    use_cpus(paths, opts.threads)
    dev = device()
    generator, features = load(paths.model / CHECKPOINT, dev)
    split = SplitDir(paths.test_inputs)
    paths.output.mkdir(parents=True, exist_ok=True)
    log(f"predicting {len(split)} chips, tta {'on' if opts.tta else 'off'}")
    filled: dict[str, int] = {}
    for sample in progress(split, len(split), "predict"):
        nonfinite = int(np.count_nonzero(~np.isfinite(sample.inputs)))
        if nonfinite:
            filled[sample.id] = nonfinite
        try:
            ndvi = predict_chip(generator, features, sample.inputs, dev, opts.tta)
        except ContractError as exc:
            raise ContractError(f"test input {sample.id}: {exc}") from exc
        write_raster(paths.output / f"{sample.id}.tif", ndvi, sample.grid)
    if filled:
        shown = ", ".join(f"{sid} ({n})" for sid, n in list(filled.items())[:5])
        more = f" and {len(filled) - 5} more" if len(filled) > 5 else ""
        log(
            f"filled {sum(filled.values())} non-finite input values in {len(filled)} chip(s) "
            f"with their band's median in the chip: {shown}{more}"
        )
