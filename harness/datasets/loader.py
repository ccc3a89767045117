"""The one loader, shared by the harness, the baselines and entries: :class:`SplitDir`
and :class:`Sample` are :mod:`sarbench_io.loader`'s (numpy and rasterio only, so that
images can copy it without the rest of the harness), named here for the harness.

Importing it from here also imports :mod:`harness.geo`, which closes GDAL's network for
the process before any raster is read.
"""

from __future__ import annotations

import harness.geo  # noqa: F401  (closes GDAL's network: see harness.geo)
from sarbench_io.loader import Sample, SplitDir

__all__ = ["Sample", "SplitDir"]
