"""What runs inside a SARBench container: reading the dataset layout, GeoTIFF chips and
predictions, and the contract's mounts and ``/config/run.json``. numpy and rasterio only.

The harness reads the data with this same code, and copies this package into images: the
baseline image (the repository's root ``Dockerfile``) and every entry built from its own
folder (the harness stages it as ``<context>/sarbench_io/`` before each build; the
template's ``Dockerfile`` copies it to ``/app/sarbench_io``). Using it is optional: the
contract (docs/contract.md) is folders of GeoTIFFs and one JSON file.

- :mod:`sarbench_io.contract`: :class:`Mounts` (where ``/data/<split>``, ``/model``,
  ``/output``... are, from the ``SARBENCH_*`` variables) and :func:`read_run_config`;
- :mod:`sarbench_io.loader`: :class:`SplitDir` reads a split folder, one :class:`Sample`
  (inputs, target, valid mask, grid) at a time;
- :mod:`sarbench_io.geo`: :class:`Grid`, :func:`read_raster`, :func:`write_raster`;
- :mod:`sarbench_io.layout`: the layout's folder and file names;
- :mod:`sarbench_io.bands`: band roles (``pre``/``post``, ``VV``/``VH``) and
  :func:`run_band_roles`, what the bands of a run's dataset are;
- :mod:`sarbench_io.errors`: what it raises (:class:`DataFileError`, :class:`ContractError`).

A ``predict`` phase::

    from sarbench_io import Mounts, SplitDir, read_run_config, write_raster

    mounts = Mounts.from_env()
    config = read_run_config(mounts.config)
    for sample in SplitDir(mounts.test_inputs):
        mask = model(sample.inputs).astype("uint8")        # (H, W)
        write_raster(mounts.output / f"{sample.id}.tif", mask, sample.grid)
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# The names below are imported on first use, so that importing the errors alone (the
# harness does, everywhere) does not load rasterio.
_WHERE = {
    "ContractError": "errors",
    "DataFileError": "errors",
    "SarbenchError": "errors",
    "Grid": "geo",
    "Raster": "geo",
    "read_raster": "geo",
    "write_raster": "geo",
    "Sample": "loader",
    "SplitDir": "loader",
    "Mounts": "contract",
    "read_run_config": "contract",
    "run_band_roles": "bands",
}
__all__ = [
    "ContractError",
    "DataFileError",
    "Grid",
    "Mounts",
    "Raster",
    "Sample",
    "SarbenchError",
    "SplitDir",
    "read_raster",
    "read_run_config",
    "run_band_roles",
    "write_raster",
]

if TYPE_CHECKING:
    from sarbench_io.bands import run_band_roles
    from sarbench_io.contract import Mounts, read_run_config
    from sarbench_io.errors import ContractError, DataFileError, SarbenchError
    from sarbench_io.geo import Grid, Raster, read_raster, write_raster
    from sarbench_io.loader import Sample, SplitDir


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'sarbench_io' has no attribute {name!r}")
    value = getattr(import_module(f"sarbench_io.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
