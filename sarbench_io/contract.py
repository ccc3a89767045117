"""The container contract as a container sees it (docs/contract.md): where the mounts are,
and what ``/config/run.json`` says.

Every mount is announced in an environment variable named from its container path:
``SARBENCH_`` and the path in capitals with every run of other characters turned into
``_`` (``/data/train`` -> ``SARBENCH_DATA_TRAIN``). In a container its value is the path
itself; the harness's ``local`` backend sets it to a host folder. :class:`Mounts` reads the
variables with the fixed container paths as fallbacks, so the same code runs under both.

Example::

    mounts = Mounts.from_env()
    config = read_run_config(mounts.config)
    train = mounts.split("train")          # /data/train
    (mounts.model / "model.json").write_text(...)
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sarbench_io.errors import ContractError
from sarbench_io.layout import SPLIT_NAME

CONTRACT = 1
"""The version of the contract this package reads (``run.json``'s ``contract``)."""

CONFIG = "/config/run.json"
MODEL = "/model"
OUTPUT = "/output"
WEIGHTS = "/weights"
TEST_INPUTS = "/data/test/inputs"
DATA = "/data"
"""Container paths of the mounts; a training split ``<name>`` is at ``/data/<name>``."""

RUN_CONFIG_KEYS = (
    "contract", "phase", "task", "dataset", "entry", "variant", "options", "seed", "profile",
    "time_budget_s", "resources",
)  # fmt: skip
"""The keys every ``run.json`` holds (docs/contract.md)."""

ENV_PREFIX = "SARBENCH_"


def env_name(container_path: str) -> str:
    """The variable that announces a mount: ``/data/train`` -> ``SARBENCH_DATA_TRAIN``."""
    return ENV_PREFIX + re.sub(r"[^A-Z0-9]+", "_", container_path.upper()).strip("_")


def mount(container_path: str) -> Path:
    """Where the mount at ``container_path`` is: its ``SARBENCH_*`` variable where set,
    else the container path itself."""
    return Path(os.environ.get(env_name(container_path)) or container_path)


@dataclass(frozen=True)
class Mounts:
    """Where a phase's mounts are: container paths, or host folders under ``local``.

    ``train`` sees ``config``, ``model`` (writable), ``weights`` (when the entry has
    pretrained weights) and its training splits (:meth:`split`); ``predict`` sees
    ``config``, ``model`` (read-only), ``test_inputs`` and ``output`` (writable).
    """

    config: Path
    model: Path
    output: Path
    weights: Path
    test_inputs: Path

    @classmethod
    def from_env(cls) -> Mounts:
        """The mounts as this process's environment announces them."""
        return cls(
            config=mount(CONFIG),
            model=mount(MODEL),
            output=mount(OUTPUT),
            weights=mount(WEIGHTS),
            test_inputs=mount(TEST_INPUTS),
        )

    def split(self, name: str) -> Path:
        """A training split folder: ``/data/train``, ``/data/val``, and any other the
        dataset has (``run.json``'s ``dataset.splits``: ndvi-synth's ``pretrain``)."""
        if not SPLIT_NAME.match(name):
            raise ContractError(f"{name!r} is not a split name")
        return mount(f"{DATA}/{name}")


def read_run_config(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """``/config/run.json`` (or ``path``) as a dict; every key of the contract is there.

    A file that cannot be read, is not a JSON object, lacks a key or was written for
    another version of the contract is a :class:`ContractError` naming the file.
    """
    path = Path(path) if path is not None else mount(CONFIG)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ContractError(f"{path}: cannot read the run configuration: {exc}") from exc
    if not isinstance(raw, dict):
        raise ContractError(f"{path}: the run configuration is not a JSON object")
    missing = [k for k in RUN_CONFIG_KEYS if k not in raw]
    if missing:
        raise ContractError(f"{path}: the run configuration lacks {', '.join(missing)}")
    if raw["contract"] != CONTRACT:
        raise ContractError(
            f"{path}: written for contract {raw['contract']!r}; this sarbench_io reads "
            f"contract {CONTRACT}"
        )
    return raw
