"""What a run asks of a Ray cluster, and which GPU Ray gave it.

A run asks for the profile's CPUs; under a GPU profile also for one GPU and for Ray's
*accelerator type* of the profile's GPU model (``NVIDIA H100 80GB HBM3`` -> ``H100``), the
``accelerator_type:<type>`` resource Ray gives every node with such GPUs, so that it lands
only on a node that has one. Ray's type is coarser than the model (every H100 is ``H100``):
the node's own probe then checks the exact model, as on one machine
(:func:`harness.conditions.probe.check`), and refuses another unless mismatches are allowed.

Ray tells a task its GPUs by ID (an index into the node's GPUs, or a UUID when the node's
``CUDA_VISIBLE_DEVICES`` named them so); the harness pins a GPU by UUID, never by index
(:func:`gpu_uuids`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from harness.conditions.probe import Machine, probe
from harness.conditions.profiles import Profile

MAX_RETRIES = 3
"""How often Ray runs a task again after its worker or node died (never after an error of
the harness: those are answers, not faults)."""
_MODEL_TOKEN = re.compile(r"\b([A-Z]+[0-9][A-Z0-9]*)\b")


def accelerator_type(gpu_model: str) -> str:
    """Ray's accelerator type of an NVIDIA GPU model as ``nvidia-smi`` names it: what Ray
    itself derives from the name of a node's GPUs (``NVIDIA H100 80GB HBM3`` -> ``H100``,
    ``NVIDIA A100-SXM4-80GB`` -> ``A100``), else the first model token of the name."""
    try:
        from ray._private.accelerators.nvidia_gpu import NvidiaGPUAcceleratorManager

        found = NvidiaGPUAcceleratorManager._gpu_name_to_accelerator_type(gpu_model)
    except (ImportError, AttributeError):  # another Ray: the same rule, by hand
        found = None
    if found:
        return str(found)
    match = _MODEL_TOKEN.search(gpu_model.removeprefix("NVIDIA "))
    return match.group(1) if match else gpu_model.replace(" ", "-")


def task_options(profile: Profile) -> dict[str, Any]:
    """The Ray task options of one run under ``profile``: its CPUs, one GPU of its model
    where it has one, retries after a dead worker or node, and spread over the nodes."""
    options: dict[str, Any] = {
        "num_cpus": profile.cpus,
        "max_retries": MAX_RETRIES,
        "retry_exceptions": False,
        "scheduling_strategy": "SPREAD",
    }
    if profile.gpu_model is not None:
        options["num_gpus"] = 1
        options["accelerator_type"] = accelerator_type(profile.gpu_model)
    return options


def demand(profile: Profile) -> dict[str, float]:
    """The resources one run asks for, as Ray names them in a node's resources."""
    wanted = {"CPU": float(profile.cpus)}
    if profile.gpu_model is not None:
        wanted["GPU"] = 1.0
        wanted[f"accelerator_type:{accelerator_type(profile.gpu_model)}"] = 0.001
    return wanted


def fits(resources: dict[str, float], wanted: dict[str, float]) -> bool:
    """Whether a node with ``resources`` (totals) could ever run a task of ``wanted``."""
    return all(resources.get(name, 0.0) >= amount for name, amount in wanted.items())


def _index_uuids() -> dict[str, str]:
    """``nvidia-smi``'s GPU index -> UUID on this node (empty without ``nvidia-smi``)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return {}
    try:
        done = subprocess.run(
            [exe, "--query-gpu=index,uuid", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    out = {}
    for line in done.stdout.splitlines() if done.returncode == 0 else ():
        index, _, uuid = (part.strip() for part in line.partition(","))
        if index and uuid:
            out[index] = uuid
    return out


def gpu_uuids(ids: Sequence[str | int]) -> set[str]:
    """The UUIDs of the GPUs Ray gave a task (its accelerator IDs: UUIDs as they are,
    indexes looked up with ``nvidia-smi``)."""
    ids = [str(i) for i in ids]
    by_index = _index_uuids() if any(not i.startswith("GPU-") for i in ids) else {}
    return {i if i.startswith("GPU-") else by_index.get(i, f"index {i}") for i in ids}


def node_machine(assigned_gpus: Sequence[str | int]) -> Machine:
    """This node as the run sees it: the probe, with only the GPUs Ray gave the task
    when it gave any (so the GPU chosen, and pinned by UUID, is the one Ray assigned)."""
    machine = probe()
    if not assigned_gpus:
        return machine
    uuids = gpu_uuids(assigned_gpus)
    return replace(machine, gpus=tuple(g for g in machine.gpus if g.uuid in uuids))
