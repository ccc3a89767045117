"""Write ``published_keys.json``: every tensor of the published Prithvi-EO-1.0-100M
checkpoint (``Prithvi_EO_V1_100M.pt``, formerly ``Prithvi_100M.pt``), name and shape.

The list is written from the published model code, not from SARBench's encoder, so that a
renamed or reshaped key in ``baselines/prithvi.py`` fails the key test instead of passing
it. Sources (read, not copied):

- NASA-IMPACT/hls-foundation-os, ``hls-gfm/models_mae.py``: ``MaskedAutoencoderViT``, the
  pre-training model. A 3-D ``PatchEmbed`` holding ``proj`` (``Conv3d(in_chans,
  embed_dim, (tubelet, patch, patch))`` with bias), ``cls_token`` (1, 1, D), ``pos_embed``
  (1, 1 + T*(img/patch)^2, D; a parameter with ``requires_grad=False``, so in the state
  dict), ``blocks`` of timm's ``Block(dim, heads, mlp_ratio, qkv_bias=True,
  norm_layer=norm_layer)`` (``norm1``, ``attn.qkv``, ``attn.proj``, ``norm2``,
  ``mlp.fc1``, ``mlp.fc2``), ``norm``; then the MAE decoder: ``decoder_embed`` (Linear
  D -> D_dec), ``mask_token`` (1, 1, D_dec), ``decoder_pos_embed``, ``decoder_blocks``,
  ``decoder_norm``, ``decoder_pred`` (Linear D_dec -> tubelet*patch*patch*in_chans).
  ``norm_layer`` defaults to ``nn.LayerNorm``: eps 1e-5.
- The model configuration ``Prithvi_100M_config.yaml`` (``model_args``): img_size 224,
  patch_size 16, num_frames 3, tubelet_size 1, in_chans 6, embed_dim 768, depth 12,
  num_heads 12, decoder_embed_dim 512, decoder_depth 8, decoder_num_heads 16; mlp_ratio is
  the code's default 4; no norm_layer is set, so the LayerNorms keep eps 1e-5. The same
  numbers are terratorch's ``prithvi_eo_v1_100`` configuration.
- IBM/terratorch, ``terratorch/models/backbones/prithvi_mae.py`` and ``prithvi_vit.py``:
  ``PrithviMAE`` holds ``encoder`` (``PrithviViT``) and ``decoder`` (``MAEDecoder``), so
  its state dict prefixes the same names with ``encoder.`` / ``decoder.`` (the
  ``mae`` layout); its checkpoint filter maps the flat "Prithvi V1" names onto it by
  that rule (decoder names: those containing ``decoder`` and ``mask_token``).

Run ``python -m tests.data.prithvi.make`` to rewrite the file; the output is committed.
:func:`published_keys` (any configuration) and :func:`sincos_table` (the fixed position
table's value) also let tests build small checkpoints in the published layout.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("published_keys.json")

CONFIG = {
    "img_size": 224,
    "patch_size": 16,
    "num_frames": 3,
    "tubelet_size": 1,
    "in_chans": 6,
    "embed_dim": 768,
    "depth": 12,
    "num_heads": 12,
    "decoder_embed_dim": 512,
    "decoder_depth": 8,
    "decoder_num_heads": 16,
    "mlp_ratio": 4,
}
LAYER_NORM_EPS = 1e-5
"""torch.nn.LayerNorm's default: the published code passes ``norm_layer=nn.LayerNorm``."""
BANDS = ("blue", "green", "red", "nir_narrow", "swir_1", "swir_2")
"""The HLS bands of pre-training, in the order of ``patch_embed.proj.weight``'s input axis."""


def _block(prefix: str, dim: int, mlp_ratio: int) -> dict[str, list[int]]:
    """timm's ``Block`` with ``qkv_bias=True``: pre-norm attention and MLP."""
    hidden = dim * mlp_ratio
    return {
        f"{prefix}.norm1.weight": [dim],
        f"{prefix}.norm1.bias": [dim],
        f"{prefix}.attn.qkv.weight": [3 * dim, dim],
        f"{prefix}.attn.qkv.bias": [3 * dim],
        f"{prefix}.attn.proj.weight": [dim, dim],
        f"{prefix}.attn.proj.bias": [dim],
        f"{prefix}.norm2.weight": [dim],
        f"{prefix}.norm2.bias": [dim],
        f"{prefix}.mlp.fc1.weight": [hidden, dim],
        f"{prefix}.mlp.fc1.bias": [hidden],
        f"{prefix}.mlp.fc2.weight": [dim, hidden],
        f"{prefix}.mlp.fc2.bias": [dim],
    }


def published_keys(c: dict[str, int]) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """(encoder, MAE decoder) tensors of the flat layout, name -> shape, in module order."""
    d, dd, p, t = c["embed_dim"], c["decoder_embed_dim"], c["patch_size"], c["tubelet_size"]
    tokens = 1 + (c["num_frames"] // t) * (c["img_size"] // p) ** 2
    encoder = {
        "cls_token": [1, 1, d],
        "pos_embed": [1, tokens, d],
        "patch_embed.proj.weight": [d, c["in_chans"], t, p, p],
        "patch_embed.proj.bias": [d],
    }
    for i in range(c["depth"]):
        encoder |= _block(f"blocks.{i}", d, c["mlp_ratio"])
    encoder |= {"norm.weight": [d], "norm.bias": [d]}
    decoder = {
        "mask_token": [1, 1, dd],
        "decoder_pos_embed": [1, tokens, dd],
        "decoder_embed.weight": [dd, d],
        "decoder_embed.bias": [dd],
    }
    for i in range(c["decoder_depth"]):
        decoder |= _block(f"decoder_blocks.{i}", dd, c["mlp_ratio"])
    out = t * p * p * c["in_chans"]
    decoder |= {
        "decoder_norm.weight": [dd],
        "decoder_norm.bias": [dd],
        "decoder_pred.weight": [out, dd],
        "decoder_pred.bias": [out],
    }
    return encoder, decoder


def sincos_table(dim: int, frames: int, rows: int, cols: int) -> np.ndarray:
    """The published ``pos_embed`` value, (1, 1 + frames*rows*cols, dim): a zero row (the
    cls token), then one row per token in (frame, row, column) order, whose channels are
    the width (column) code on 6/16 of them, the height (row) code on 6/16, the time code
    on 4/16; each code is the sines then the cosines of ``pos / 10000 ** (k / (n/2))``."""

    def code(n: int, count: int) -> np.ndarray:
        freq = 10000.0 ** -(np.arange(n // 2) / (n / 2.0))
        angle = np.arange(count)[:, None] * freq[None, :]
        return np.hstack([np.sin(angle), np.cos(angle)])

    w, t = dim // 16 * 6, dim // 16 * 4
    per_token = [
        np.concatenate([code(w, cols)[c], code(w, rows)[r], code(t, frames)[f]])
        for f in range(frames)
        for r in range(rows)
        for c in range(cols)
    ]
    return np.vstack([np.zeros((1, dim)), *per_token])[None]


def document() -> dict[str, object]:
    """The file's content: the configuration, and each layout's name -> shape."""
    encoder, decoder = published_keys(CONFIG)
    return {
        "what": "tensor names and shapes of the published Prithvi_EO_V1_100M.pt (see make.py)",
        "config": CONFIG,
        "layer_norm_eps": LAYER_NORM_EPS,
        "bands": list(BANDS),
        "layouts": {
            "flat": encoder | decoder,
            "mae": {f"encoder.{k}": v for k, v in encoder.items()}
            | {f"decoder.{k}": v for k, v in decoder.items()},
        },
    }


def dumps(doc: dict[str, object]) -> str:
    """JSON with one tensor (name and shape) per line."""
    head = {k: v for k, v in doc.items() if k != "layouts"}
    lines = ["{"] + [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    lines.append(' "layouts": {')
    layouts = doc["layouts"]
    assert isinstance(layouts, dict)
    for i, (name, keys) in enumerate(layouts.items()):
        lines.append(f"  {json.dumps(name)}: {{")
        rows = [f"   {json.dumps(k)}: {json.dumps(v)}" for k, v in keys.items()]
        lines.append(",\n".join(rows))
        lines.append("  }" + ("," if i < len(layouts) - 1 else ""))
    lines += [" }", "}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    OUT.write_text(dumps(document()))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
