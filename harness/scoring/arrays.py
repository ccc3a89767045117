"""Array checks and reusable work buffers, shared by the per-chip statistics and SSIM."""

from __future__ import annotations

from typing import Any

import numpy as np


class Scratch:
    """Work buffers by name and dtype, allocated once and grown on demand."""

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, np.dtype], np.ndarray] = {}

    def get(
        self, name: str, size: int, dtype: Any, shape: tuple[int, ...] | None = None
    ) -> np.ndarray:
        key = (name, np.dtype(dtype))
        buf = self._buffers.get(key)
        if buf is None or buf.size < size:
            buf = np.empty(size, dtype)
            self._buffers[key] = buf
        view = buf[:size]
        return view if shape is None else view.reshape(shape)


def binary(a: np.ndarray, name: str) -> np.ndarray:
    """``a`` as a bool mask; values must be 0/1 (or bool)."""
    arr = np.asarray(a)
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype == np.uint8:
        if arr.size and arr.max() > 1:
            raise ValueError(f"{name} must hold only 0 and 1, found {int(arr.max())}")
        return arr.view(np.bool_)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a bool or numeric array, got dtype {arr.dtype}")
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        raise ValueError(f"{name} must hold only 0 and 1, found {arr[bad].flat[0]!r}")
    return arr == 1


def valid_mask(valid: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    if valid is None:
        return None
    v = np.asarray(valid)
    if v.shape != shape:
        raise ValueError(f"valid mask of shape {v.shape} does not fit arrays of shape {shape}")
    return v if v.dtype == np.bool_ else v != 0


def same_shape(pred: np.ndarray, target: np.ndarray) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"pred of shape {pred.shape} and target of shape {target.shape} differ")
