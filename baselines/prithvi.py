"""Prithvi-EO-1.0-100M fine-tuned on the two SAR bands: the flood study's main model.

**Encoder.** The Prithvi-EO-1.0 ViT (Jakubik et al. 2023, arXiv:2310.18660), a masked
autoencoder pre-trained on 6-band HLS optical imagery (blue, green, red, narrow NIR,
SWIR 1, SWIR 2): a 3-D patch embedding (``Conv3d``, tubelet 1 x 16 x 16 pixels), a cls
token, a fixed 3-D sin-cos position embedding (3/8 of the channels for the column, 3/8
for the row, 1/4 for the frame), pre-norm transformer blocks (``qkv`` and ``proj``
attention, a GELU MLP of ratio 4) and a final LayerNorm; every LayerNorm has eps 1e-5, as
the published code's ``norm_layer=nn.LayerNorm`` has. ``size = "base"`` is the
published model (embed 768, depth 12, 12 heads; its state-dict keys are those of
``Prithvi_EO_V1_100M.pt``); ``size = "tiny"`` (embed 96, depth 2, 3 heads) is for tests and
the CPU ``quick`` profile and has no published weights.

**Adapting 2 SAR bands to a 6-band optical encoder** (option ``adapter``):

- ``patch-embed``: a new 2-band patch embedding replaces the 6-band one (one frame); the
  rest of the encoder is loaded. Its kernel starts from the pretrained one, **split** between
  the two bands by their roles (:func:`split_patch_kernel`): one band gets the sum of the
  visible kernels (blue, green, red), the other the sum of the infrared ones (narrow NIR,
  SWIR 1, SWIR 2); ``pre`` and ``VV`` take the visible group, ``post`` and ``VH`` the
  infrared one (bands of unknown roles: band order). A chip whose bands are equal still
  gets the response the pretrained embedding gives to 6 equal bands (the two groups add up
  to all six), and the **difference** of the bands reaches the encoder through the
  pretrained infrared-minus-visible contrast, so a flood that appears (post darker than
  pre) and one that recedes are told apart from the first step. (An even split, each band
  the 6-kernel sum / 2, shows the encoder only the mean of the bands.) For a pre/post pair
  the assignment follows optical water: a newly flooded pixel, dark after and not before,
  embeds as a pixel dark in the infrared and not in the visible, as open water is. For
  VV/VH the assignment is our choice (VH, cross-polarised, rises with vegetation volume as
  narrow NIR does); what matters is that the two bands start apart.
- ``temporal``: pre and post are two time frames (``num_frames = 2``, tubelet 1), each
  mapped to 6 pseudo-bands by a learned 1x1 convolution (initialised to copy the band into
  all 6) and embedded by the pretrained 6-band patch embedding; the position embedding
  covers the 2 frames.

**Band roles.** ``patch-embed`` takes the bands as channels of one image, whatever they
are: it runs on pre/post and on VV/VH alike. ``temporal`` treats band 1 and band 2 as the
same measurement at two dates (one shared adapter, a time position embedding between
them), which holds for a pre/post pair only: on VV/VH (two polarisations of one date) it is
refused (:func:`check_roles`), and its entry file says so (``requires_roles``).

**Chip size.** The position embedding is a fixed function of the patch grid, so it is
computed for the grid of the input (16 x 16 patches for a 256-pixel chip) rather than
interpolated: positions 0-13 are exactly the pretrained 224-pixel table, 14 and 15 continue
the same sinusoids. The model trains on ``crop``-pixel windows (default 256, the whole
flood-synth chip) and predicts windows of that size, overlapping, averaged.

**Decoder (new).** The last block's tokens, frames stacked on channels, as a grid
(patches x patches), a 1x1 convolution to ``decoder_channels``, then four steps of a 2x
transposed convolution, a 3x3 convolution, BatchNorm and ReLU (halving the channels) back
to pixels, and a 1x1 convolution to one flood logit.

**Checkpoint.** ``/weights/<checkpoint>`` (default ``Prithvi_EO_V1_100M.pt``) is loaded by
:func:`load_prithvi_checkpoint`, which accepts the flat MAE layout and the ``encoder.`` /
``decoder.`` layout, optionally wrapped in ``{"model": ...}`` or ``{"state_dict": ...}``.
The MAE decoder and ``mask_token`` are skipped as expected; the adapted patch kernel
(``adapted``: how it was split, by which roles), missing, unexpected and mis-shaped keys
are logged and written to ``artifacts/checkpoint_report.json``, and the last three are an
error unless ``strict_checkpoint = false``. Without a checkpoint the model trains from
random initialisation and the report says ``"pretrained": false``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from baselines.contract import (
    ContractError,
    Paths,
    RunConfig,
    log,
    require_roles,
    require_task,
    resolve_options,
    write_options,
)
from baselines.flood_common import (
    TrainOptions,
    fit,
    load_model,
    load_training_data,
    predict_folder,
    save_model,
    setup_torch,
)
from sarbench_io.bands import POST, PRE, PRE_POST, VH, VV, layout_text

MODEL_FILE = "prithvi.pt"
REPORT_FILE = "checkpoint_report.json"
PATCH = 16
PRETRAINED_BANDS = 6
SIZES = {"base": (768, 12, 12), "tiny": (96, 2, 3)}
"""embed dim, depth, heads."""
LAYER_NORM_EPS = 1e-5
"""The published code's ``norm_layer=nn.LayerNorm`` (torch's default eps)."""
OPTICAL_BANDS = ("blue", "green", "red", "nir_narrow", "swir_1", "swir_2")
"""The pre-training bands, in the order of the patch kernel's input axis."""
KERNEL_GROUPS = {"visible": (0, 1, 2), "infrared": (3, 4, 5)}
"""How :func:`split_patch_kernel` divides the 6 pretrained band kernels between 2 bands."""
GROUP_OF_ROLE = {PRE: "visible", POST: "infrared", VV: "visible", VH: "infrared"}
"""Which kernel group a band of each role starts from (see the module docstring)."""
ADAPTERS = ("patch-embed", "temporal")


@dataclass(frozen=True)
class PrithviOptions(TrainOptions):
    """Training options plus the model, adapter and checkpoint (see the module docstring)."""

    lr: float = 1e-4
    loss: str = "bce"
    model: str = "prithvi"
    adapter: str = "patch-embed"
    size: str = "base"
    checkpoint: str = "Prithvi_EO_V1_100M.pt"
    require_checkpoint: bool = False
    strict_checkpoint: bool = True
    freeze_encoder: bool = False
    decoder_channels: int = 256

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.adapter not in ADAPTERS:
            raise ValueError(f"adapter must be one of {', '.join(ADAPTERS)}")
        if self.size not in SIZES:
            raise ValueError(f"size must be one of {', '.join(SIZES)}")
        if self.crop % PATCH:
            raise ValueError(f"crop must be a multiple of the patch size {PATCH}")


# -- the encoder --------------------------------------------------------------------------


def sincos_1d(dim: int, positions: np.ndarray) -> np.ndarray:
    """(len(positions), dim): sines then cosines of positions at geometric frequencies."""
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
    angles = np.outer(positions.astype(np.float64), omega)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


@functools.lru_cache(maxsize=16)
def sincos_3d(dim: int, frames: int, rows: int, cols: int) -> torch.Tensor:
    """(1 + frames*rows*cols, dim) position table, a zero row first (the cls token), tokens
    in (frame, row, column) order: [column | row | frame] embeddings of 6/16, 6/16, 4/16."""
    if dim % 16:
        raise ValueError(f"embed dim {dim} must be a multiple of 16")
    wd, td = dim // 16 * 6, dim // 16 * 4
    t, r, c = np.meshgrid(np.arange(frames), np.arange(rows), np.arange(cols), indexing="ij")
    table = np.concatenate(
        [sincos_1d(wd, c.ravel()), sincos_1d(wd, r.ravel()), sincos_1d(td, t.ravel())], axis=1
    )
    table = np.concatenate([np.zeros((1, dim)), table], axis=0)
    return torch.from_numpy(table.astype(np.float32))


class Attention(nn.Module):
    """Multi-head self-attention with one ``qkv`` projection (q, k, v stacked, heads inside)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    """The block's feed-forward part: ``fc1``, GELU, ``fc2``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """A pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    """Holds ``proj``: a Conv3d cutting (1 frame x 16 x 16)-pixel tubelets into tokens."""

    def __init__(self, in_chans: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv3d(
            in_chans, dim, kernel_size=(1, PATCH, PATCH), stride=(1, PATCH, PATCH)
        )


class PrithviEncoder(nn.Module):
    """(B, C, T, H, W) -> last-block tokens (B, T, H/16, W/16, D), cls token dropped."""

    def __init__(self, in_chans: int, dim: int, depth: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.patch_embed = PatchEmbed(in_chans, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        nn.init.xavier_uniform_(self.patch_embed.proj.weight.data.view(dim, -1))
        nn.init.normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embed.proj(x)
        b, d, t, gh, gw = tokens.shape
        pos = sincos_3d(d, t, gh, gw).to(tokens.device, tokens.dtype)
        tokens = tokens.flatten(2).transpose(1, 2) + pos[1:]
        cls = (self.cls_token + pos[:1]).expand(b, -1, -1)
        x = torch.cat([cls, tokens], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, 1:].reshape(b, t, gh, gw, d)


# -- adapter, decoder, segmenter ----------------------------------------------------------


class UpsamplingDecoder(nn.Module):
    """(B, C, h, w) token grid -> (B, 1, 16h, 16w) logits in four 2x steps."""

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.inp = nn.Sequential(nn.Conv2d(in_channels, channels, 1), nn.BatchNorm2d(channels))
        steps: list[nn.Module] = []
        c = channels
        for _ in range(4):
            out = max(c // 2, 8)
            steps += [
                nn.ConvTranspose2d(c, out, 2, stride=2),
                nn.Conv2d(out, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
            ]
            c = out
        self.up = nn.Sequential(*steps)
        self.head = nn.Conv2d(c, 1, 1)
        # start from logits 0 everywhere rather than from one random sign per chip
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.to(memory_format=torch.channels_last)  # NHWC: faster small convolutions on CPU

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        return self.head(self.up(F.relu(self.inp(x))))


class PrithviSegmenter(nn.Module):
    """(B, bands, H, W) -> (B, H, W) flood logits; H and W multiples of 16."""

    def __init__(self, in_bands: int, size: str, adapter: str, decoder_channels: int) -> None:
        super().__init__()
        dim, depth, heads = SIZES[size]
        if adapter == "temporal":
            self.adapter: nn.Conv3d | None = nn.Conv3d(1, PRETRAINED_BANDS, kernel_size=1)
            nn.init.ones_(self.adapter.weight)
            nn.init.zeros_(self.adapter.bias)
            self.encoder = PrithviEncoder(PRETRAINED_BANDS, dim, depth, heads)
            frames = in_bands
        else:
            self.adapter = None
            self.encoder = PrithviEncoder(in_bands, dim, depth, heads)
            frames = 1
        self.decoder = UpsamplingDecoder(frames * dim, decoder_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # patch-embed: the bands are channels of one frame; temporal: each band is a frame
        video = x[:, :, None] if self.adapter is None else self.adapter(x[:, None])
        tokens = self.encoder(video)
        b, t, gh, gw, d = tokens.shape
        grid = tokens.permute(0, 1, 4, 2, 3).reshape(b, t * d, gh, gw)
        return self.decoder(grid)[:, 0]


# -- the checkpoint -----------------------------------------------------------------------


@dataclass
class LoadReport:
    """What loading a checkpoint into the encoder did, key by key."""

    source: str
    pretrained: bool
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape_mismatches: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    adapted: dict[str, str] = field(default_factory=dict)
    new_modules: list[str] = field(default_factory=list)
    pos_embed_max_abs_diff: float | None = None

    @property
    def clean(self) -> bool:
        """No missing, unexpected or mis-shaped key."""
        return not (self.missing or self.unexpected or self.shape_mismatches)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"clean": self.clean}


WRAPPERS = ("model", "state_dict")
PREFIXES = ("module.", "encoder.")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file: unwrapped from ``{"model"|"state_dict": ...}``."""
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, pickle.UnpicklingError) as exc:
        raise ContractError(
            f"{path}: not a torch checkpoint of plain tensors (read with weights_only): {exc}"
        ) from exc
    while isinstance(obj, dict) and any(isinstance(obj.get(w), dict) for w in WRAPPERS):
        obj = next(obj[w] for w in WRAPPERS if isinstance(obj.get(w), dict))
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ContractError(f"{path}: expected a state dict of tensors (maybe under 'model')")
    return obj


def _strip(key: str) -> str:
    for prefix in PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix) :]
    return key


def _pos_embed_diff(table: torch.Tensor) -> float | None:
    """How far a checkpoint's position table is from :func:`sincos_3d` on its grid."""
    table = table.reshape(-1, table.shape[-1])
    n, dim = table.shape[0] - 1, table.shape[1]
    for frames in range(1, 9):
        side = round((n / frames) ** 0.5)
        if frames * side * side == n:
            return float((table.float() - sincos_3d(dim, frames, side, side)).abs().max())
    return None


def split_patch_kernel(
    weight: torch.Tensor, bands: int, roles: tuple[str, ...] | None = None
) -> tuple[torch.Tensor, str]:
    """A ``bands``-band patch kernel from a pretrained 6-band one, (D, 6, t, p, p) ->
    (D, bands, t, p, p), and how it was made.

    Two bands: each band's kernel is the sum of one group of :data:`KERNEL_GROUPS`, the
    group of its role (:data:`GROUP_OF_ROLE`; in band order where the roles are not known
    or do not pick two different groups). Any other count (no SARBench task has one): each
    band gets the sum of the 6 kernels / ``bands``. Both rules add up to the sum of the 6
    kernels, so equal bands get the response of 6 equal pretrained bands."""
    w = weight.float()
    if bands != 2:
        summed = w.sum(dim=1, keepdim=True) / bands
        return summed.expand(-1, bands, -1, -1, -1).clone(), (
            f"{w.shape[1]} -> {bands} bands: each band's kernel is the sum of the pretrained "
            f"band kernels / {bands}"
        )
    named = [GROUP_OF_ROLE.get(r, "") for r in roles] if roles is not None else []
    if len(named) == 2 and "" not in named and len(set(named)) == 2:
        groups, how = named, f"by role ({layout_text(roles)})"
    else:
        groups, how = list(KERNEL_GROUPS), f"by band order (roles {layout_text(roles)})"
    kernels, parts = [], []
    for band, group in enumerate(groups):
        index = list(KERNEL_GROUPS[group])
        kernels.append(w[:, index].sum(dim=1))
        names = "+".join(OPTICAL_BANDS[i] for i in index)
        role = f" ({roles[band]})" if roles is not None and band < len(roles) else ""
        parts.append(f"band {band + 1}{role} <- {names}")
    return torch.stack(kernels, dim=1), (
        f"{w.shape[1]} -> 2 bands {how}: {'; '.join(parts)} (the pretrained band kernels, summed)"
    )


def load_prithvi_checkpoint(
    model: PrithviSegmenter | PrithviEncoder, path: Path, band_roles: tuple[str, ...] | None = None
) -> LoadReport:
    """Load a Prithvi checkpoint file into ``model``'s encoder and report every key."""
    return load_prithvi_state(model, read_state_dict(path), str(path), band_roles)


def load_prithvi_state(
    model: PrithviSegmenter | PrithviEncoder,
    state: dict[str, torch.Tensor],
    source: str,
    band_roles: tuple[str, ...] | None = None,
) -> LoadReport:
    """Load a checkpoint's tensors into ``model``'s encoder and report every key; a 6-band
    patch kernel for a ``patch-embed`` encoder of other bands is split between them by
    their ``band_roles`` (:func:`split_patch_kernel`)."""
    encoder = model.encoder if isinstance(model, PrithviSegmenter) else model
    report = LoadReport(source=source, pretrained=True)
    if isinstance(model, PrithviSegmenter):
        report.new_modules = [n for n, _ in model.named_children() if n != "encoder"]
    own = encoder.state_dict()
    update: dict[str, torch.Tensor] = {}
    for raw_key, value in state.items():
        key = _strip(raw_key)
        if key.startswith("decoder") or key == "mask_token":
            report.skipped[raw_key] = "MAE decoder (pre-training only)"
        elif key == "pos_embed":
            report.skipped[raw_key] = "fixed sin-cos table, recomputed for the input's grid"
            report.pos_embed_max_abs_diff = _pos_embed_diff(value)
        elif key not in own:
            report.unexpected.append(raw_key)
        elif key == "patch_embed.proj.weight" and _band_adaptable(value, own[key]):
            update[key], report.adapted[raw_key] = split_patch_kernel(
                value, own[key].shape[1], band_roles
            )
        elif own[key].shape != value.shape:
            report.shape_mismatches.append(
                {"key": raw_key, "checkpoint": list(value.shape), "model": list(own[key].shape)}
            )
        else:
            update[key] = value
            report.loaded.append(raw_key)
    provided = set(update) | {_strip(m["key"]) for m in report.shape_mismatches}
    report.missing = sorted(k for k in own if k not in provided)
    encoder.load_state_dict(update, strict=False)
    return report


def _band_adaptable(ckpt: torch.Tensor, mine: torch.Tensor) -> bool:
    return (
        ckpt.ndim == mine.ndim == 5
        and ckpt.shape[1] == PRETRAINED_BANDS != mine.shape[1]
        and (ckpt.shape[0] == mine.shape[0] and ckpt.shape[2:] == mine.shape[2:])
    )


def _log_report(report: LoadReport) -> None:
    if not report.pretrained:
        log(f"no checkpoint ({report.source}): training from random initialisation")
        return
    log(
        f"checkpoint {report.source}: {len(report.loaded)} tensor(s) loaded, "
        f"{len(report.adapted)} adapted, {len(report.skipped)} skipped as expected "
        f"(MAE decoder, position table), new: {', '.join(report.new_modules) or '-'}"
    )
    for key, how in report.adapted.items():
        log(f"adapted {key}: {how}")
    if report.pos_embed_max_abs_diff is not None:
        log(f"its position table differs from ours by at most {report.pos_embed_max_abs_diff:.2e}")
    for what in ("missing", "unexpected", "shape_mismatches"):
        items = getattr(report, what)
        if items:
            log(f"checkpoint {what.replace('_', ' ')} ({len(items)}): {items}")


# -- the phases ---------------------------------------------------------------------------


def check_roles(config: RunConfig, opts: PrithviOptions) -> None:
    """Refuse the ``temporal`` adapter on bands that are not a pre/post pair (see the
    module docstring); ``patch-embed`` takes any bands."""
    if opts.adapter == "temporal":
        require_roles(config, PRE_POST, what="adapter 'temporal': the bands as two dates")


def _build(opts: PrithviOptions, in_bands: int) -> PrithviSegmenter:
    return PrithviSegmenter(in_bands, opts.size, opts.adapter, opts.decoder_channels)


def _init_from_checkpoint(
    model: PrithviSegmenter, opts: PrithviOptions, paths: Paths, config: RunConfig
) -> LoadReport:
    path = paths.weights / opts.checkpoint if opts.checkpoint else None
    if path is not None and path.is_file():
        report = load_prithvi_checkpoint(model, path, config.band_roles)
    else:
        where = str(path) if path is not None else "option checkpoint is empty"
        if opts.require_checkpoint:
            raise ContractError(f"no Prithvi checkpoint at {where} (require_checkpoint = true)")
        report = LoadReport(source=where, pretrained=False)
    (paths.artifacts / REPORT_FILE).write_text(json.dumps(report.to_dict(), indent=1))
    _log_report(report)
    if report.pretrained and not report.clean and opts.strict_checkpoint:
        raise ContractError(
            f"{path}: the checkpoint does not fit the encoder (missing {len(report.missing)}, "
            f"unexpected {len(report.unexpected)}, mis-shaped {len(report.shape_mismatches)}"
            f" key(s)); see artifacts/{REPORT_FILE}, or set strict_checkpoint = false"
        )
    return report


def train(config: RunConfig, paths: Paths) -> None:
    """Fine-tune (or train from scratch) on /data/train; keep the best val-IoU weights."""
    started = time.monotonic()
    require_task(config, "flood")
    opts = resolve_options(PrithviOptions, config.options)
    check_roles(config, opts)
    write_options(paths, opts)
    device = setup_torch(config)
    norm, train_chips, val_chips = load_training_data(paths, config)
    model = _build(opts, len(norm.mean))
    report = _init_from_checkpoint(model, opts, paths, config)
    if opts.freeze_encoder:
        if not report.pretrained:
            log("warning: freeze_encoder with a randomly initialised encoder")
        for name, p in model.encoder.named_parameters():
            # a new (adapted) patch embedding keeps learning
            p.requires_grad_(opts.adapter == "patch-embed" and name.startswith("patch_embed."))
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_all = sum(p.numel() for p in model.parameters())
    log(f"Prithvi {opts.size}, adapter {opts.adapter}: {n_all:,} parameters, {n_train:,} trained")
    fitted = fit(
        model,
        train_chips,
        val_chips,
        opts,
        config,
        paths,
        device,
        started=started,
        tile=opts.crop,
        multiple=PATCH,
    )
    save_model(paths.model / MODEL_FILE, "prithvi", opts, norm, fitted, config.band_roles)


def predict(config: RunConfig, paths: Paths) -> None:
    """Predict every test chip in windows of the training crop size."""
    require_task(config, "flood")
    device = setup_torch(config)
    saved, norm, state = load_model(paths.model / MODEL_FILE, "prithvi", config.band_roles)
    opts = PrithviOptions(**saved)
    check_roles(config, opts)
    model = _build(opts, len(norm.mean))
    model.load_state_dict(state)
    predict_folder(model, norm, paths, device, tile=opts.crop, multiple=PATCH)
