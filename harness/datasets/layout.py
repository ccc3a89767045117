"""The on-disk layout of a dataset, shared by the data root and by staged container mounts.

```
<dataset>/
  manifest.json                 the manifest of what is on disk (the committed one, or for
                                a private test its own; not part of the content)
  .sarbench-files.json          raw byte hashes written at prepare/import time (local only)
  <split>/inputs/<id>.tif       input bands, float32 (bands, H, W)
  <split>/targets/<id>.tif      target, one band (flood: uint8 {0,1}; ndvi: float32 [-1, 1])
  <split>/valid/<id>.tif        uint8 valid-pixel mask, 1 = scored, 0 = nodata / not scored
```

A container's ``/data/train`` is one ``<split>/`` folder of this layout; its
``/data/test/inputs`` is the ``inputs/`` folder alone. What a split holds, and the rules of
sample ids and split names, are :mod:`sarbench_io.layout`'s (the code that also runs in
containers), named here too; this module adds the data root's bookkeeping files and
dataset names.
"""

from __future__ import annotations

import re

from harness.errors import SourceError
from sarbench_io.layout import KINDS, SAMPLE_ID, SPLIT_NAME, SUFFIX, check_sample_id, rel_path

__all__ = [
    "BYTES_RECORD",
    "DATASET_NAME",
    "KINDS",
    "LOCAL_COPY",
    "NOT_CONTENT",
    "SAMPLE_ID",
    "SPLIT_NAME",
    "SUFFIX",
    "check_dataset_name",
    "check_sample_id",
    "rel_path",
]

LOCAL_COPY = "manifest.json"
BYTES_RECORD = ".sarbench-files.json"
NOT_CONTENT = frozenset({LOCAL_COPY, BYTES_RECORD})

DATASET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def check_dataset_name(name: str, what: str = "dataset name", hint: str = "") -> str:
    """Return ``name`` if it is a safe folder name for a dataset, else raise ``SourceError``."""
    if not DATASET_NAME.match(name):
        raise SourceError(
            f"{what} {name!r} is not a valid dataset name: use lowercase letters, digits, '-' "
            f"and '_', starting with a letter or digit (at most 64 characters){hint}"
        )
    return name
