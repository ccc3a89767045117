"""The compiled ndvi window kernel, when it was built, and the choice of path.

``setup.py`` compiles ``_ndvi_window.c`` at install where a C compiler is found. The
kernel computes one window's statistics (``ndvi_sums._window_sums_numpy``'s)
in one pass over float32 or float64 inputs, on two threads for a large window, with the
bits of the numpy path: every sum follows numpy's pairwise summation tree, and a window
split across threads is split at the top of that tree. Other dtypes, and installs
without a compiler, use numpy alone.

Environment:

- ``SARBENCH_SCORING_KERNEL=numpy`` scores with numpy alone (the default, ``auto``, uses
  the kernel where it was built);
- ``SARBENCH_SCORING_THREADS=1`` keeps the kernel to one thread (the default: two where
  this process may use two CPUs).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from harness.errors import SarbenchError

try:
    from harness.scoring import _ndvi_window as _compiled
except ImportError:  # built without a C compiler: numpy alone
    _compiled = None

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class KernelSettingError(SarbenchError):
    """An environment variable of the scoring kernel holds a value it does not take."""


def _configure() -> Any:
    """The kernel module to use, or None for numpy alone, from the environment."""
    choice = os.environ.get("SARBENCH_SCORING_KERNEL", "auto").strip().lower() or "auto"
    if choice not in ("auto", "numpy"):
        raise KernelSettingError(
            f"SARBENCH_SCORING_KERNEL={choice!r} is not a scoring path: use 'auto' (the "
            "compiled kernel where it was built) or 'numpy'"
        )
    threads = os.environ.get("SARBENCH_SCORING_THREADS", "").strip()
    if threads not in ("", "1", "2"):
        raise KernelSettingError(
            f"SARBENCH_SCORING_THREADS={threads!r}: use 1 or 2 (unset: 2 where this "
            "process may use two CPUs)"
        )
    if choice == "numpy" or _compiled is None:
        return None
    _compiled.set_threads(int(threads) if threads else min(2, _cpus()))
    return _compiled


_UNSET = object()
_state: Any = _UNSET


def _active() -> Any:
    """The configured kernel (None: numpy), read from the environment on first use."""
    global _state
    if _state is _UNSET:
        _state = _configure()
    return _state


def takes(p: np.ndarray, t: np.ndarray, v: np.ndarray | None) -> bool:
    """Whether the kernel computes this window: built, chosen, and float32 or float64
    ``p`` and ``t`` of one dtype, C-contiguous, with a bool mask or none."""
    active = _state if _state is not _UNSET else _active()
    return (
        active is not None
        and p.dtype == t.dtype
        and p.dtype in _DTYPES
        and p.flags.c_contiguous
        and t.flags.c_contiguous
        and (v is None or (v.dtype == np.bool_ and v.flags.c_contiguous))
    )


def window_sums(*args: Any) -> tuple[Any, ...]:
    """The kernel's ``window_sums`` (see ``_ndvi_window.c``)."""
    return _active().window_sums(*args)


def set_threads(n: int) -> int:
    """Threads per window (1 or 2) for the rest of this process; returns the old value
    (1 where numpy alone scores)."""
    active = _active()
    return 1 if active is None else active.set_threads(n)


def describe() -> str:
    """The scoring path in use, in words, for benches and ``sarbench --version``."""
    active = _active()
    if _compiled is None:
        return "numpy (the compiled kernel was not built: no C compiler at install?)"
    if active is None:
        return "numpy (SARBENCH_SCORING_KERNEL=numpy)"
    info = active.info()
    threads = info["threads"]
    return f"compiled kernel ({info['isa']}, {threads} thread{'s' if threads > 1 else ''})"
