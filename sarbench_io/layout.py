"""The on-disk layout of a dataset split: what a container's ``/data/<split>`` holds.

```
<split>/inputs/<id>.tif       input bands, float32 (bands, H, W)
<split>/targets/<id>.tif      target, one band (flood: uint8 {0,1}; ndvi: float32 [-1, 1])
<split>/valid/<id>.tif        uint8 valid-pixel mask, 1 = scored, 0 = nodata / not scored
```

A container's ``/data/train`` is one ``<split>/`` folder of this layout; its
``/data/test/inputs`` is the ``inputs/`` folder alone. The data root adds a manifest and
bookkeeping files around the splits (``harness.datasets.layout``); docs/datasets.md has
the whole format.
"""

from __future__ import annotations

import re

KINDS: tuple[str, ...] = ("inputs", "targets", "valid")
SUFFIX = ".tif"

SAMPLE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
SPLIT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def rel_path(split: str, kind: str, sample_id: str) -> str:
    """Relative POSIX path of one file of one sample."""
    return f"{split}/{kind}/{sample_id}{SUFFIX}"


def check_sample_id(sample_id: str) -> str:
    """Return ``sample_id`` if it is a safe file stem, else raise ``ValueError``."""
    if not SAMPLE_ID.match(sample_id) or sample_id.endswith("."):
        raise ValueError(
            f"sample id {sample_id!r} is not allowed: use letters, digits, '_', '-' and '.', "
            "starting with a letter or digit (at most 128 characters)"
        )
    return sample_id
