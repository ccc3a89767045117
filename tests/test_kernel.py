"""The compiled ndvi window kernel (harness/scoring/_ndvi_window.c) against the numpy path.

The kernel must give the numpy path's bits for every window it takes: float32 and float64,
with and without a mask, windows that the two threads split and ones they do not, a centre
given or not, a window alone in its chip or among others, and on the portable code as on
AVX2. Under CI the kernel must have been built (CI has a C compiler).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from harness.scoring import chipstats, kernel, ndvi_sums
from harness.scoring import metrics as M
from tests.helpers import unavailable


@pytest.fixture(autouse=True)
def _built() -> None:
    """Without the kernel (no C compiler at install) these tests skip, and fail under CI."""
    if kernel._compiled is None:
        unavailable(
            "the compiled kernel was not built here (no C compiler at `make install`)",
            what="the kernel tests",
        )


# sizes: below 8, one block, a few blocks, and above the kernel's two-thread threshold
# (65,536), including one that is not a multiple of 8
SIZES = [0, 1, 7, 8, 9, 127, 128, 129, 1000, 4099, 65_536, 70_001, 262_144]


def _window(rng: np.random.Generator, size: int, dtype: str, mask: str):
    target = (rng.uniform(-1, 1, size) * 10.0 ** rng.uniform(-3, 3) + rng.uniform(-50, 50)).astype(
        dtype
    )
    pred = (target + rng.normal(0, 0.1, size)).astype(dtype)
    valid = {
        "none": None,
        "random": rng.random(size) < rng.uniform(0.05, 0.99),
        "all": np.ones(size, bool),
        "nothing": np.zeros(size, bool),
        "halves": np.arange(size) < size // 3,  # every valid pixel on one side
    }[mask]
    if valid is not None:
        target[~valid] = np.nan  # never read
    return pred, target, valid


def _both(pred, target, valid, centre, alone):
    scratch = chipstats._Scratch()
    want = ndvi_sums._window_sums_numpy(pred, target, valid, scratch, centre, alone)
    got = ndvi_sums._window_sums_compiled(pred, target, valid, scratch, centre, alone)
    return got, want


def _fields(w: ndvi_sums._WindowSums) -> tuple:
    return (w.n, *map(float, w.sums), w.centre, w.shifted_sum, w.m2_y, w.min_y, w.max_y)


def test_the_kernel_is_in_use() -> None:
    assert kernel.describe().startswith("compiled kernel")


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mask", ["none", "random", "all", "nothing", "halves"])
def test_the_kernel_gives_the_numpy_paths_bits(threads: int, dtype: str, mask: str) -> None:
    rng = np.random.default_rng([threads, len(dtype), len(mask)])
    before = kernel.set_threads(threads)
    try:
        for size in SIZES:
            for centre, alone in ((None, True), (None, False), (0.37, False)):
                pred, target, valid = _window(rng, size, dtype, mask)
                got, want = _both(pred, target, valid, centre, alone)
                assert _fields(got) == _fields(want), (size, centre, alone)
    finally:
        kernel.set_threads(before)


def test_the_portable_code_gives_the_same_bits() -> None:
    """SARBENCH_KERNEL_ISA=baseline: the code without AVX2, in a fresh process."""
    code = (
        "import numpy as np\n"
        "from harness.scoring import chipstats, kernel, ndvi_sums\n"
        "assert kernel._compiled.info()['isa'] == 'baseline', kernel._compiled.info()\n"
        "rng = np.random.default_rng(5)\n"
        "for size in (9, 129, 4099, 70001):\n"
        "    for dt in ('float32', 'float64'):\n"
        "        p = rng.uniform(-1, 1, size).astype(dt); t = rng.uniform(-1, 1, size).astype(dt)\n"
        "        for v in (None, rng.random(size) < 0.7):\n"
        "            s = chipstats._Scratch()\n"
        "            a = ndvi_sums._window_sums_numpy(p, t, v, s, None, True)\n"
        "            b = ndvi_sums._window_sums_compiled(p, t, v, s, None, True)\n"
        "            assert (a.n, *a.sums, a.m2_y, a.min_y, a.max_y) == "
        "(b.n, *b.sums, b.m2_y, b.min_y, b.max_y), (size, dt)\n"
        "print('same')\n"
    )
    env = {**os.environ, "SARBENCH_KERNEL_ISA": "baseline"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and out.stdout.strip() == "same", out.stderr


def test_whole_chips_score_the_same_on_either_path() -> None:
    """ndvi_stats through the kernel and through numpy alone: chips of one window and of
    several, masked and not, float32 and float64; int16 goes to numpy either way."""
    rng = np.random.default_rng(19)
    for shape, dtype in (((512, 512), "float32"), ((700, 700), "float32"), ((300, 200), "float64")):
        target = rng.uniform(-1, 1, shape).astype(dtype)
        pred = np.clip(target + rng.normal(0, 0.1, shape), -1, 1).astype(dtype)
        for valid in (None, rng.random(shape) < 0.9):
            fast = M.ndvi_stats(pred, target, valid, with_ssim=False)
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(kernel, "_state", None)  # numpy alone
                slow = M.ndvi_stats(pred, target, valid, with_ssim=False)
            for name in ("n", "sum_err", "sum_sq_err", "sum_abs_err", "sum_y", "m2_y"):
                assert float(getattr(fast, name)) == float(getattr(slow, name)), (shape, name)
            for name in ("min_y", "max_y"):
                assert float(getattr(fast, name)) == float(getattr(slow, name)), (shape, name)


def test_nan_or_inf_at_a_valid_pixel_is_refused_on_the_kernels_path() -> None:
    target = np.zeros((64, 64), np.float32)
    target[5, 5] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        M.ndvi_stats(np.zeros_like(target), target, with_ssim=False)
    pred = np.zeros_like(target)
    pred[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        M.ndvi_stats(pred, np.zeros_like(target), with_ssim=False)
    valid = np.ones(target.shape, bool)
    valid[5, 5] = False  # the inf is nodata: never read
    assert float(M.ndvi_stats(np.zeros_like(target), target, valid, with_ssim=False).n) == 4095


def test_a_zero_extreme_is_positive_zero_on_both_paths() -> None:
    target = np.array([0.0, -0.0, 1.0, -0.0], np.float32)
    pred = np.zeros(4, np.float32)
    got, want = _both(pred, target, None, None, True)
    assert np.copysign(1.0, got.min_y) == np.copysign(1.0, want.min_y) == 1.0


def test_bad_buffers_are_refused_with_a_reason() -> None:
    p = np.zeros(16, np.float32)
    scratch = np.zeros(16, np.float32)
    with pytest.raises(ValueError, match="t must have p's dtype"):
        kernel.window_sums(p, np.zeros(16), None, scratch, scratch, None, True)
    with pytest.raises(ValueError, match="float32 or float64"):
        kernel.window_sums(np.zeros(16, np.int16), np.zeros(16, np.int16), None, p, p, None, True)
    with pytest.raises(ValueError, match="bool mask"):
        kernel.window_sums(p, p, np.ones(8, bool), scratch, scratch, None, True)
    with pytest.raises(ValueError, match="at least its length"):
        kernel.window_sums(p, p, None, scratch[:8], scratch, None, True)
    with pytest.raises(TypeError, match="C-contiguous"):
        kernel.window_sums(np.zeros(32, np.float32)[::2], p, None, scratch, scratch, None, True)
    assert not kernel.takes(np.zeros(32, np.float32)[::2], p, None)  # numpy takes these


def test_a_forked_child_sums_on_two_threads() -> None:
    """The worker thread does not survive fork(); the child starts its own."""
    rng = np.random.default_rng(3)
    p, t = rng.uniform(-1, 1, (2, 200_000)).astype(np.float32)
    kernel.set_threads(2)
    scratch = chipstats._Scratch()
    want = _fields(ndvi_sums._window_sums_compiled(p, t, None, scratch, None, True))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: sum again (on two threads), report, exit without cleanup
        try:
            got = _fields(ndvi_sums._window_sums_compiled(p, t, None, scratch, None, True))
            os.write(write, b"same" if got == want else b"different")
        finally:
            os._exit(0)
    os.close(write)
    try:
        import select

        ready, _, _ = select.select([read], [], [], 60)
        assert ready, "the forked child did not answer within 60 s (a stuck worker?)"
        assert os.read(read, 16) == b"same"
    finally:
        os.close(read)
        os.waitpid(pid, 0)


def test_bad_settings_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel, "_state", kernel._UNSET)
    monkeypatch.setenv("SARBENCH_SCORING_KERNEL", "fast")
    with pytest.raises(kernel.KernelSettingError, match="SARBENCH_SCORING_KERNEL='fast'"):
        kernel.describe()
    monkeypatch.setenv("SARBENCH_SCORING_KERNEL", "numpy")
    monkeypatch.setattr(kernel, "_state", kernel._UNSET)
    assert kernel.describe().startswith("numpy")
    assert not kernel.takes(np.zeros(4, np.float32), np.zeros(4, np.float32), None)
    monkeypatch.setenv("SARBENCH_SCORING_KERNEL", "auto")
    monkeypatch.setenv("SARBENCH_SCORING_THREADS", "4")
    monkeypatch.setattr(kernel, "_state", kernel._UNSET)
    with pytest.raises(kernel.KernelSettingError, match="use 1 or 2"):
        kernel.takes(np.zeros(4, np.float32), np.zeros(4, np.float32), None)
    monkeypatch.setattr(kernel, "_state", kernel._UNSET)  # the next test reads it afresh
