"""UNet trained from scratch on the two SAR bands: the flood study's comparison model.

A plain UNet (Ronneberger et al. 2015): ``depth`` down steps of two 3x3 convolutions with
BatchNorm and ReLU then a 2x2 max-pool, a bottleneck, and ``depth`` up steps (2x2
transposed convolution, concatenation with the skip of the same level, two 3x3
convolutions); ``base_channels`` at full resolution, doubling per level; a 1x1 convolution
to one flood logit. Inputs are the standardised bands (statistics of the train split's
finite values, saved with the model; a non-finite input value is its band's training
mean, and a non-finite output fails the phase); training, checkpoint selection on val IoU
and prediction are :mod:`baselines.flood_common`'s. Chip sides are padded to a multiple of
``2 ** depth`` for prediction, so any chip size works.

Options: :class:`UNetOptions` (the training options of
:class:`~baselines.flood_common.TrainOptions` plus the architecture).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from baselines.contract import Paths, RunConfig, log, require_task, resolve_options, write_options
from baselines.flood_common import (
    TrainOptions,
    fit,
    load_model,
    load_training_data,
    predict_folder,
    save_model,
    setup_torch,
)

MODEL_FILE = "unet.pt"


@dataclass(frozen=True)
class UNetOptions(TrainOptions):
    """Training options plus the architecture (defaults: the classic 64-channel UNet)."""

    model: str = "unet"
    base_channels: int = 64
    depth: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.base_channels < 1 or not 1 <= self.depth <= 6:
            raise ValueError("base_channels must be >= 1 and depth within 1..6")


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """(B, in_bands, H, W) -> (B, H, W) flood logits; H and W multiples of 2 ** depth."""

    def __init__(self, in_bands: int, base_channels: int, depth: int) -> None:
        super().__init__()
        widths = [base_channels * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList(
            _double_conv(in_bands if i == 0 else widths[i - 1], widths[i]) for i in range(depth)
        )
        self.bottleneck = _double_conv(widths[depth - 1], widths[depth])
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in range(depth)
        )
        self.fuse = nn.ModuleList(_double_conv(2 * widths[i], widths[i]) for i in range(depth))
        self.head = nn.Conv2d(base_channels, 1, 1)
        # NHWC is about twice as fast for these small convolutions on CPU (oneDNN)
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = nn.functional.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for i in reversed(range(len(self.up))):
            x = self.fuse[i](torch.cat([self.up[i](x), skips[i]], dim=1))
        return self.head(x)[:, 0]


def train(config: RunConfig, paths: Paths) -> None:
    """Fit the UNet on /data/train, keep the best val-IoU weights in /model/unet.pt."""
    started = time.monotonic()
    require_task(config, "flood")
    opts = resolve_options(UNetOptions, config.options)
    write_options(paths, opts)
    device = setup_torch(config)
    norm, train_chips, val_chips = load_training_data(paths, config)
    model = UNet(len(norm.mean), opts.base_channels, opts.depth)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"UNet: {opts.depth} levels, {opts.base_channels} base channels, {n_params:,} parameters")
    fitted = fit(
        model,
        train_chips,
        val_chips,
        opts,
        config,
        paths,
        device,
        started=started,
        multiple=2**opts.depth,
    )
    save_model(paths.model / MODEL_FILE, "unet", opts, norm, fitted, config.band_roles)


def predict(config: RunConfig, paths: Paths) -> None:
    """Predict every test chip whole with the trained UNet."""
    require_task(config, "flood")
    device = setup_torch(config)
    saved, norm, state = load_model(paths.model / MODEL_FILE, "unet", config.band_roles)
    opts = UNetOptions(**saved)
    model = UNet(len(norm.mean), opts.base_channels, opts.depth)
    model.load_state_dict(state)
    predict_folder(model, norm, paths, device, multiple=2**opts.depth)
