"""The Ray executor: each run of a plan a Ray task; this process (the driver) writes the
records.

    sarbench run --baselines --executor ray --ray-address HEAD_IP:6379

The driver connects to the cluster (``--ray-address``, else ``$RAY_ADDRESS``, else the
cluster ``ray start`` runs on this machine) and submits every run of the plan at once, each
asking for the profile's CPUs and, under a GPU profile, one GPU of the profile's model
(:mod:`harness.cluster.resources`). Ray places them; each task runs on its node as
:mod:`harness.cluster.node` says and sends the record and the run folder back. As each run
ends the driver installs it into the home (:func:`harness.cluster.transfer.install`) and
yields it; a run a node refused (data, entry or conditions that differ) is yielded as
:class:`~harness.runner.executor.Refused` and leaves no record.

Faults: a task whose worker or node dies is run again by Ray on another node (up to
:data:`~harness.cluster.resources.MAX_RETRIES` times); the dead attempt wrote only into its
node's scratch, so the home gets exactly one record. A driver killed mid-plan loses only
the runs in flight: the same command again skips every run the home has a record of (the
nodes are told which) and runs the rest.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from harness import __version__
from harness.cluster.node import NodeRequest, NodeResult, file_digest
from harness.cluster.resources import demand, fits, task_options
from harness.cluster.transfer import TransferError, install
from harness.errors import SarbenchError
from harness.record import RecordError, RunFolder, RunRecord, run_folders
from harness.runner.executor import Echo, Finished, Job, Refused
from harness.runner.plan import RunSpec

if TYPE_CHECKING:
    from harness.conditions.profiles import Profile

INSTALL_HINT = "pip install 'sarbench[cluster]'"


def _quiet(_: str) -> None:
    """Says nothing."""


def _task(request: NodeRequest, recorded: frozenset[str]) -> NodeResult:
    """The Ray task: one run on the node it landed on."""
    import ray

    from harness.cluster.node import run_request

    here = ray.get_runtime_context()
    gpus = [str(i) for i in here.get_accelerator_ids().get("GPU", [])]
    return run_request(request, recorded, node=here.get_node_id(), gpu_ids=gpus)


def import_ray() -> Any:
    """The ``ray`` module, or an error that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise SarbenchError(
            f"the Ray executor needs Ray, which is not installed ({exc}): {INSTALL_HINT}"
        ) from None
    return ray


class RayExecutor:
    """Runs a plan's runs as Ray tasks on the cluster at ``address`` (see the module
    docstring); ``None``: ``$RAY_ADDRESS``, else the cluster started on this machine."""

    name = "ray"

    def __init__(self, address: str | None = None, *, echo: Echo = _quiet) -> None:
        self.address, self.echo = address, echo

    def run(self, job: Job) -> Iterator[Finished | Refused]:
        from harness.conditions.profiles import get_profile
        from harness.datasets import ops

        ray = import_ray()
        profile = get_profile(job.settings.profiles_dir, job.options.profile)
        blobs = {}  # the committed manifests every node verifies its copy against
        for name in {spec.dataset for spec in job.plan}:
            ops.require_manifest(job.settings, name)  # says what to do when there is none
            blobs[name] = job.settings.manifest_path(name).read_bytes()
        digests = {name: file_digest(e.path) for name, e in job.entries.items()}
        connected_here = self._connect(ray)
        pending: dict[Any, RunSpec] = {}
        try:
            self._warn_if_no_node_fits(ray, profile)
            token = uuid.uuid4().hex
            recorded = ray.put(frozenset(f.run_id for f in run_folders(job.settings.runs_dir)))
            remote = ray.remote(_task).options(**task_options(profile))
            for spec in job.plan:
                request = NodeRequest(
                    token=token,
                    spec=spec,
                    entry=job.entries[spec.entry],
                    entry_digest=digests[spec.entry],
                    profile=profile,
                    manifest=blobs[spec.dataset],
                    options=job.options,
                    eval_split=job.eval_split,
                    harness_version=__version__,
                )
                pending[remote.remote(request, recorded)] = spec
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                spec = pending.pop(ready[0])
                yield self._settle(ray, job, spec, ready[0])
        finally:
            for ref in pending:  # stopped early (an error, Ctrl-C): nothing more is run
                ray.cancel(ref)
            if connected_here:
                ray.shutdown()

    def _connect(self, ray: Any) -> bool:
        """Connect to the cluster; True when this call connected (and so disconnects)."""
        if ray.is_initialized():
            return False
        where = self.address or "auto"
        try:
            ray.init(
                address=where,
                logging_level=logging.WARNING,
                log_to_driver=False,
                configure_logging=False,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise SarbenchError(
                f"cannot connect to a Ray cluster at {where!r}: {exc}\n"
                "Start one (`ray start --head` on the head node, `ray start --address "
                "HEAD_IP:6379` on the others) and pass --ray-address HEAD_IP:6379 (or set "
                "RAY_ADDRESS); see docs/scale.md."
            ) from None
        return True

    def _warn_if_no_node_fits(self, ray: Any, profile: Profile) -> None:
        """Say so when no node of the cluster could ever take a run (Ray would wait for one
        to join, as an autoscaler may add it)."""
        wanted = demand(profile)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        if any(fits(n.get("Resources", {}), wanted) for n in nodes):
            return
        seen = "; ".join(
            ", ".join(
                f"{k}={v:g}" for k, v in sorted(n.get("Resources", {}).items()) if k in wanted
            )
            or "none of them"
            for n in nodes
        )
        asked = ", ".join(f"{k}={v:g}" for k, v in wanted.items())
        self.echo(
            f"warning: no node of the Ray cluster has what a run of profile {profile.name!r} "
            f"asks ({asked}; the nodes have: {seen or 'no nodes'}). The runs wait until such "
            "a node joins (an autoscaler may add one); Ctrl-C stops them."
        )

    def _settle(self, ray: Any, job: Job, spec: RunSpec, ref: Any) -> Finished | Refused:
        """What became of one task: installed, skipped, or refused (with why)."""
        try:
            result: NodeResult = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # the harness failed on the node
            cause = exc.cause if exc.cause is not None else exc
            return Refused(spec, "a node", f"the task failed: {type(cause).__name__}: {cause}")
        except ray.exceptions.RayError as exc:  # its worker or node died, retries spent
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return Refused(spec, "the cluster", f"the task was lost: {first}")
        where = f"node {result.node[:12]} on {result.host}"
        if result.kind == "refused":
            return Refused(spec, where, result.reason)
        runs_dir = job.settings.runs_dir
        try:
            if result.kind == "skipped":
                done = RunFolder(runs_dir / result.run_id)
                return Finished(spec, "skipped", done.path, done.load())
            record = RunRecord.from_json(result.record, f"the record {where} sent")
            _check_matches(record, spec, job)
            action, folder_, record = install(runs_dir, record, result.files)
        except (RecordError, TransferError) as exc:
            return Refused(spec, where, str(exc))
        return Finished(spec, action, folder_.path, record)


def _check_matches(record: RunRecord, spec: RunSpec, job: Job) -> None:
    """A record must be of the run asked for."""
    got = (record.key.entry, record.variant, record.seed, record.dataset, record.split)
    want = (spec.entry, spec.variant, spec.seed, spec.dataset, job.eval_split)
    if got != want:
        raise TransferError(f"the record sent is of another run: {got}, not {want}")
