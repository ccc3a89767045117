"""What a run's Ray task does on the node it lands on (:func:`run_request`).

A node is set up like one machine: its own SarBench installation (the same version, the
same submissions at the same paths), its own work folder and data root (``SARBENCH_HOME``,
``SARBENCH_DATA_ROOT`` in the environment ``ray start`` ran in; a shared filesystem as the
data root, or ``sarbench datasets prepare``/``import`` on the node). The driver sends what
must be the same everywhere: the entry (and the digest of its file), the profile, the
committed manifest of the dataset and the run options. Then, as on one machine:

1. the node's conditions are probed (with the GPU Ray assigned, pinned by UUID) and checked
   against the profile: a mismatch refuses the run unless mismatches are allowed;
2. the node's copy of the dataset is verified against the driver's committed manifest
   (:meth:`harness.runner.run.RunContext.manifest`): a copy that differs refuses the run,
   naming every changed, missing or extra file; nothing is recorded;
3. the run's key is made; a run the driver's home has recorded already is not run again;
4. :func:`harness.runner.run.run_one` runs it in a scratch folder of the node
   (``<node home>/cluster/<plan token>/runs``), scores it there, and the record (with this
   node's ID) and the run folder's files go back to the driver as data; the scratch copy is
   removed. The driver alone writes the home (:mod:`harness.cluster.transfer`).

Conditions, verification and image builds happen once per worker process and plan, as
once per ``sarbench run`` on one machine. The read-only data copies the docker backend
mounts as root (:mod:`harness.runtime.stage`) are made per run and removed when the task
ends: Ray kills idle workers instead of letting them exit, so nothing may be left to exit
handlers. A refusal is an answer (:class:`NodeResult` with
``kind="refused"``), not an error, so Ray does not retry it; a node or worker that dies
mid-run is retried by Ray on another node, and the half-run leaves nothing in the home.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from harness import __version__
from harness.conditions.profiles import Profile
from harness.entries import Entry
from harness.errors import SarbenchError
from harness.runner.executor import RunOptions, make_context
from harness.runner.plan import RunSpec
from harness.runner.run import RunContext, key_of, run_one
from harness.runtime.scratch import remove_tree
from harness.runtime.stage import close_stages, reap_stages
from harness.settings import Settings


@dataclass(frozen=True)
class NodeRequest:
    """One run, and everything of the driver's that the node must use as it is."""

    token: str
    """The plan's token: a worker reuses its context (conditions, verified data, images)
    across the runs of one plan, never across plans."""
    spec: RunSpec
    entry: Entry
    entry_digest: str
    """SHA-256 of the driver's entry file: the node's must be the same."""
    profile: Profile
    manifest: bytes
    """The driver's committed ``manifest.json`` of ``spec.dataset``."""
    options: RunOptions
    eval_split: str
    harness_version: str


@dataclass(frozen=True)
class NodeResult:
    """What a node sends back: ``ran`` (the record's JSON and the run folder's files),
    ``skipped`` (the driver's home has the record) or ``refused`` (why, in ``reason``)."""

    kind: Literal["ran", "skipped", "refused"]
    node: str
    host: str
    run_id: str = ""
    record: Mapping[str, Any] | None = None
    files: bytes = b""
    reason: str = ""


def file_digest(path: Path) -> str:
    """``sha256:<hex>`` of a file's bytes."""
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


_CONTEXTS: dict[tuple[str, tuple[str, ...]], RunContext] = {}
"""This worker process's run contexts, by plan token and GPUs assigned."""


def run_request(
    request: NodeRequest, recorded: frozenset[str], *, node: str, gpu_ids: Sequence[str]
) -> NodeResult:
    """Make one run on this node (see the module docstring). ``recorded``: the run IDs the
    driver's home has records of; ``node``: this node's Ray ID; ``gpu_ids``: the GPUs Ray
    assigned to the task."""
    host = socket.gethostname()
    try:
        ctx, runs_dir = _context(request, gpu_ids)
        spec, entry = request.spec, request.entry
        keyed = key_of(
            ctx, entry, spec.variant, spec.seed, spec.dataset, eval_split=request.eval_split
        )
        run_id = keyed.key.run_id
        if run_id in recorded:
            return NodeResult("skipped", node, host, run_id)
        outcome = run_one(
            ctx, entry, spec.variant, spec.seed, spec.dataset, eval_split=request.eval_split,
            runs_dir=runs_dir,
        )  # fmt: skip
    except SarbenchError as exc:
        return NodeResult("refused", node, host, reason=str(exc))
    finally:  # Ray kills its workers rather than letting them exit: no mount may outlive a task
        close_stages()
    from harness.cluster.transfer import pack

    record = replace(outcome.record, node=node)
    files = pack(outcome.run_dir)
    remove_tree(outcome.run_dir)
    return NodeResult("ran", node, host, record.run_id, record.to_json(), files)


def _context(request: NodeRequest, gpu_ids: Sequence[str]) -> tuple[RunContext, Path]:
    """This node's run context for the request's plan (made once per worker process and
    plan) and the scratch folder its runs go to; refuses what differs from the driver's."""
    if request.harness_version != __version__:
        raise SarbenchError(
            f"this node runs SARBench {__version__}, the driver {request.harness_version}: "
            "install the same version on every node"
        )
    entry = request.entry
    if not entry.path.is_file():
        raise SarbenchError(
            f"this node has no entry file {entry.path}: every node needs the same "
            "submissions at the same paths (the driver's image or checkout; docs/scale.md)"
        )
    if file_digest(entry.path) != request.entry_digest:
        raise SarbenchError(
            f"the entry file {entry.path} on this node differs from the driver's: install "
            "the same submissions on every node"
        )
    base = Settings.load()  # this node's work folder and data root, from its environment
    scratch = base.home / "cluster" / request.token
    settings = replace(base, manifests_dir=scratch / "manifests")
    manifest = settings.dataset_meta_dir(request.spec.dataset) / "manifest.json"
    if not manifest.is_file():  # verified against the driver's, never this node's own
        manifest.parent.mkdir(parents=True, exist_ok=True)
        tmp = manifest.with_name(f".manifest.json.{os.getpid()}.tmp")
        tmp.write_bytes(request.manifest)
        os.replace(tmp, manifest)
    runs_dir = scratch / "runs"
    key = (request.token, tuple(sorted(str(i) for i in gpu_ids)))
    if key not in _CONTEXTS:
        for old in [k for k in _CONTEXTS if k[0] != request.token]:  # an earlier plan's
            _CONTEXTS.pop(old).backend.close()
        _CONTEXTS[key] = _new_context(settings, request, gpu_ids, runs_dir)
    return _CONTEXTS[key], runs_dir


def _new_context(
    settings: Settings, request: NodeRequest, gpu_ids: Sequence[str], runs_dir: Path
) -> RunContext:
    from harness.cluster.resources import node_machine
    from harness.conditions.probe import conditions

    reap_stages(settings.home)  # data copies of workers that were killed mid-task
    allow = request.options.allow_mismatch
    cond = conditions(request.profile, node_machine(gpu_ids), allow_mismatch=allow)
    return make_context(settings, request.options, cond, runs_dir=runs_dir)
