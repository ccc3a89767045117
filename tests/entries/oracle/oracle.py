"""An entry that cheats: inside ``predict`` it reruns the public generator of the dataset
it is given (its public seeds, so the *demo* test split) and writes the regenerated test
targets as its predictions, the k-th regenerated chip for the k-th input. On the demo test
that is a perfect score; on a private test, made from a secret it does not have, the same
trick scores no better than chance. Runs on the local backend, where the harness's own
generator code is importable (an image could carry a copy of it just as well)."""

from __future__ import annotations

import sys

import numpy as np

from harness.datasets.registry import generator
from sarbench_io import Mounts, read_raster, read_run_config, write_raster

MOUNTS = Mounts.from_env()


def predict(config: dict) -> None:
    name = config["dataset"]["name"]
    source = generator(name).build()  # the public generator and seeds: the demo test
    rebuilt = [s for s in source.samples() if s.split == "test"]
    rebuilt.sort(key=lambda s: s.id)
    inputs = sorted(MOUNTS.test_inputs.glob("*.tif"))
    print(f"oracle: {len(rebuilt)} test chips rebuilt for {len(inputs)} inputs", flush=True)
    dtype = config["task"]["prediction"]["dtype"]
    for sample, path in zip(rebuilt, inputs, strict=True):
        grid = read_raster(path).grid
        assert sample.target is not None
        write_raster(MOUNTS.output / path.name, np.asarray(sample.target, dtype=dtype), grid)


if __name__ == "__main__":
    if sys.argv[1:] != ["predict"]:
        sys.exit("usage: oracle.py predict")
    predict(read_run_config(MOUNTS.config))
