"""The on-disk layout of a dataset, shared by the data root and by staged container mounts.

```
<dataset>/
  manifest.json                 copy of the frozen manifest (not part of the content)
  .sarbench-files.json          raw byte hashes written at prepare/import time (local only)
  <split>/inputs/<id>.tif       input bands, float32 (bands, H, W)
  <split>/targets/<id>.tif      target, one band (flood: uint8 {0,1}; ndvi: float32 [-1, 1])
  <split>/valid/<id>.tif        uint8 valid-pixel mask, 1 = scored, 0 = nodata / not scored
```

A container's ``/data/train`` is one ``<split>/`` folder of this layout; its
``/data/test/inputs`` is the ``inputs/`` folder alone.
"""

from __future__ import annotations

import re

from harness.errors import SourceError

KINDS: tuple[str, ...] = ("inputs", "targets", "valid")
SUFFIX = ".tif"
LOCAL_COPY = "manifest.json"
BYTES_RECORD = ".sarbench-files.json"
NOT_CONTENT = frozenset({LOCAL_COPY, BYTES_RECORD})

DATASET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
SAMPLE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
SPLIT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def rel_path(split: str, kind: str, sample_id: str) -> str:
    """Relative POSIX path of one file of one sample."""
    return f"{split}/{kind}/{sample_id}{SUFFIX}"


def check_dataset_name(name: str, what: str = "dataset name", hint: str = "") -> str:
    """Return ``name`` if it is a safe folder name for a dataset, else raise ``SourceError``."""
    if not DATASET_NAME.match(name):
        raise SourceError(
            f"{what} {name!r} is not a valid dataset name: use lowercase letters, digits, '-' "
            f"and '_', starting with a letter or digit (at most 64 characters){hint}"
        )
    return name


def check_sample_id(sample_id: str) -> str:
    """Return ``sample_id`` if it is a safe file stem, else raise ``ValueError``."""
    if not SAMPLE_ID.match(sample_id) or sample_id.endswith("."):
        raise ValueError(
            f"sample id {sample_id!r} is not allowed: use letters, digits, '_', '-' and '.', "
            "starting with a letter or digit (at most 128 characters)"
        )
    return sample_id
