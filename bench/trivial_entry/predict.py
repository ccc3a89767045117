"""Write an all-zero uint8 mask for every test input, on its grid (bench/overhead.py)."""

import os
import sys
from pathlib import Path

import numpy as np
import rasterio

inputs = Path(os.environ.get("SARBENCH_DATA_TEST_INPUTS", "/data/test/inputs"))
output = Path(os.environ.get("SARBENCH_OUTPUT", "/output"))
if sys.argv[1:] != ["predict"]:
    sys.exit("usage: predict.py predict")
for path in sorted(inputs.glob("*.tif")):
    with rasterio.open(path) as src:
        profile, shape = src.profile, (src.height, src.width)
    profile.update(count=1, dtype="uint8", nodata=None)
    with rasterio.open(output / path.name, "w", **profile) as dst:
        dst.write(np.zeros(shape, np.uint8), 1)
