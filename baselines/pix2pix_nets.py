"""The pix2pix networks (Isola et al. 2017): a UNet generator and a PatchGAN discriminator.

Both follow that paper's building blocks: 4x4 convolutions with stride 2, LeakyReLU(0.2) in
the encoder and the discriminator, ReLU in the decoder, normalisation after every
convolution but the first (and the innermost, as in the authors' published code), dropout
of 50 % in the three deepest decoder blocks, ``tanh`` at the output, weights drawn from
N(0, 0.02). pix2pix keeps that dropout on at test time as its generator's noise; this
baseline predicts in eval mode, dropout off (our choice; why: :mod:`baselines.pix2pix`).

The depth is a parameter: ``n_down`` halvings of the input (7 takes a 128x128 chip down
to 1x1, like the authors' code's ``unet_128``; the paper's network for 256x256 images has
8); the quick profile uses fewer levels and fewer filters. The discriminator with
``n_layers=3`` sees 70x70 pixel patches, the paper's default PatchGAN.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

Norm = Literal["batch", "instance"]


def _norm(kind: Norm, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.InstanceNorm2d(channels, affine=False)


def level_channels(ngf: int, n_down: int) -> list[int]:
    """Feature channels at each encoder level: ``ngf``, doubling, capped at ``8 * ngf``."""
    return [ngf * min(2**i, 8) for i in range(n_down)]


class UNetGenerator(nn.Module):
    """UNet with ``n_down`` strided convolutions down and as many transposed ones up.

    Input (N, in_channels, H, W) with H and W multiples of ``2**n_down``; output
    (N, out_channels, H, W) in [-1, 1].
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 1,
        ngf: int = 64,
        n_down: int = 7,
        norm: Norm = "batch",
        dropout: float = 0.5,
        dropout_levels: int = 3,
    ) -> None:
        super().__init__()
        if n_down < 2:
            raise ValueError(f"n_down must be at least 2, got {n_down}")
        self.n_down = n_down
        chans = level_channels(ngf, n_down)
        bias = norm == "instance"  # batch norm has its own shift
        downs: list[nn.Module] = [nn.Conv2d(in_channels, chans[0], 4, 2, 1, bias=bias)]
        for i in range(1, n_down):
            innermost = i == n_down - 1
            layers: list[nn.Module] = [
                nn.LeakyReLU(0.2),
                nn.Conv2d(chans[i - 1], chans[i], 4, 2, 1, bias=bias or innermost),
            ]
            if not innermost:
                layers.append(_norm(norm, chans[i]))
            downs.append(nn.Sequential(*layers))
        self.downs = nn.ModuleList(downs)
        # ups[i] takes level i (concatenated with its skip, except the innermost) to level i-1.
        ups: list[nn.Module] = []
        for i in range(n_down):
            c_in = chans[i] if i == n_down - 1 else 2 * chans[i]
            if i == 0:
                ups.append(
                    nn.Sequential(
                        nn.ReLU(), nn.ConvTranspose2d(c_in, out_channels, 4, 2, 1), nn.Tanh()
                    )
                )
                continue
            layers = [
                nn.ReLU(),
                nn.ConvTranspose2d(c_in, chans[i - 1], 4, 2, 1, bias=bias),
                _norm(norm, chans[i - 1]),
            ]
            # dropout in the deepest decoder blocks (pix2pix's noise z; off at test here)
            if dropout > 0 and i >= n_down - dropout_levels:
                layers.append(nn.Dropout(dropout))
            ups.append(nn.Sequential(*layers))
        self.ups = nn.ModuleList(ups)
        init_weights(self)

    @property
    def multiple(self) -> int:
        """Height and width of an input must be multiples of this."""
        return 2**self.n_down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips: list[torch.Tensor] = []
        h = x
        for down in self.downs:
            h = down(h)
            skips.append(h)
        for i in reversed(range(self.n_down)):
            if i < self.n_down - 1:
                h = torch.cat([h, skips[i]], dim=1)
            h = self.ups[i](h)
        return h


class PatchDiscriminator(nn.Module):
    """PatchGAN: one real/fake logit per overlapping patch (70x70 pixels for 3 layers).

    Input: the condition and the image, concatenated on channels.
    """

    def __init__(
        self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: Norm = "batch"
    ) -> None:
        super().__init__()
        bias = norm == "instance"
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
        c = ndf
        for i in range(1, n_layers + 1):
            c_out = ndf * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers += [
                nn.Conv2d(c, c_out, 4, stride, 1, bias=bias),
                _norm(norm, c_out),
                nn.LeakyReLU(0.2),
            ]
            c = c_out
        layers.append(nn.Conv2d(c, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([condition, image], dim=1))


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """pix2pix initialisation: convolutions N(0, gain), norm scales N(1, gain), biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
