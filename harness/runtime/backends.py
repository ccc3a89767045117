"""The one seam between the runner and how a phase runs: a :class:`Backend` object.

- :class:`DockerBackend`: the real one. Each phase is a locked-down container
  (:mod:`harness.runtime.docker_backend`), entries run from images the harness builds and
  names (:mod:`harness.runtime.builds`), writable mounts can be kernel-limited scratch
  filesystems, and leftovers of killed harnesses are reaped by label.
- :class:`LocalBackend`: a plain subprocess for debugging (:mod:`harness.runtime.local_backend`);
  isolates nothing, so its records never enter the official table.

The runner, ``sarbench validate``, the demo and the CLI hold a ``Backend`` and never ask
which one it is; :func:`open_backend` makes one from a name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from harness.runtime.limits import Limits
from harness.runtime.livelog import OnLine
from harness.runtime.phase import Mounts, PhaseResult

if TYPE_CHECKING:
    from harness.entries import Entry, Phase
    from harness.settings import Settings

BackendName = Literal["docker", "local"]
Echo = Callable[[str], None]


def _quiet(_: str) -> None:
    """Says nothing."""


@dataclass(frozen=True)
class PhaseCall:
    """One phase to run: the entry, the image it runs from (None without images), the
    phase, its mounts, limits and container labels, and where its log goes."""

    entry: Entry
    image_id: str | None
    phase: Phase
    mounts: Mounts
    limits: Limits
    labels: Mapping[str, str]
    log_path: Path
    on_line: OnLine | None = None
    """Called with each line of the phase's log as it comes (the terminal's progress)."""


@dataclass(frozen=True)
class BuildCall:
    """What building an entry's image needs besides the entry."""

    build_args: Mapping[str, str]
    progress: Echo
    settings: Settings


class Backend(Protocol):
    """How phases run. ``name`` goes into run keys and records; ``isolated`` says whether
    its results may enter the official table."""

    name: BackendName
    isolated: bool

    def image_id(self, entry: Entry, build: BuildCall) -> str | None:
        """The image the entry runs from (built when needed); None where there is none."""
        ...

    def problems(self, entry: Entry) -> list[str]:
        """Why this backend cannot run ``entry`` at all (empty when it can)."""
        ...

    def run_phase(self, call: PhaseCall) -> PhaseResult:
        """Run one phase of ``entry``; everything the entry does is in the result."""
        ...

    def kernel_limits(self) -> bool:
        """Whether writable mounts should be scratch filesystems of the output cap's size."""
        ...

    def remove_leftovers(self, run_id: str) -> None:
        """Remove whatever an interrupted attempt of ``run_id`` left (containers)."""
        ...

    def reap(self, echo: Echo, runs_dir: Path) -> None:
        """Remove what killed harnesses left, whatever their runs (at every start)."""
        ...

    def close(self) -> None: ...


class DockerBackend:
    """Containers on a Docker engine (``client``)."""

    name: BackendName = "docker"
    isolated = True

    def __init__(self, client: Any) -> None:
        self.client = client

    def image_id(self, entry: Entry, build: BuildCall) -> str | None:
        from harness.runtime.builds import ensure_entry_image

        return ensure_entry_image(
            self.client,
            entry,
            build_args=dict(build.build_args),
            progress=build.progress,
            settings=build.settings,
        )

    def problems(self, entry: Entry) -> list[str]:
        return []

    def run_phase(self, call: PhaseCall) -> PhaseResult:
        from harness.runtime import docker_backend

        return docker_backend.run_phase(
            self.client,
            call.image_id or call.entry.image.name,
            [call.phase],
            call.mounts,
            call.limits,
            call.labels,
            log_path=call.log_path,
            on_line=call.on_line,
        )

    def kernel_limits(self) -> bool:
        from harness.runtime.scratch import kernel_limits_available

        return kernel_limits_available()

    def remove_leftovers(self, run_id: str) -> None:
        from harness.runtime.docker_backend import remove_leftovers

        remove_leftovers(self.client, {"sarbench.run": run_id})

    def reap(self, echo: Echo, runs_dir: Path) -> None:
        from harness.runtime.watchdog import reap_and_report

        reap_and_report(self.client, echo, runs_dir)

    def close(self) -> None:
        self.client.close()


class LocalBackend:
    """Subprocesses on this machine: no isolation, for debugging an entry's code."""

    name: BackendName = "local"
    isolated = False

    def image_id(self, entry: Entry, build: BuildCall) -> str | None:
        """None: it runs the entry's [local] command. A copy of ``sarbench_io`` that an
        image build left in the command's folder is brought up to date first, so that an
        old copy never shadows the harness's own."""
        from harness.runtime.builds import CONTAINER_PACKAGE, stage_container_package

        if (entry.local_cwd / CONTAINER_PACKAGE.name).is_dir():
            stage_container_package(entry.local_cwd)
        return None

    def problems(self, entry: Entry) -> list[str]:
        if entry.local_command:
            return []
        return [f"{entry.path}: no [local] command, so the local backend cannot run it"]

    def run_phase(self, call: PhaseCall) -> PhaseResult:
        from harness.runtime import local_backend

        return local_backend.run_phase(
            None,
            "",
            call.entry.local_argv(call.phase),
            call.mounts,
            call.limits,
            call.labels,
            cwd=call.entry.local_cwd,
            log_path=call.log_path,
            on_line=call.on_line,
        )

    def kernel_limits(self) -> bool:
        return False  # nothing is mounted: the folders are the host's own

    def remove_leftovers(self, run_id: str) -> None:
        return None  # its processes die with the harness (their process group is killed)

    def reap(self, echo: Echo, runs_dir: Path) -> None:
        from harness.runtime.watchdog import reap_folders

        reap_folders(echo, runs_dir)

    def close(self) -> None:
        return None


LOCAL_WARNING = (
    "the local backend runs entries as plain subprocesses, without isolation; its records "
    "are marked unisolated and never enter the official table"
)


def open_backend(
    name: BackendName | None,
    *,
    docker_host: str | None = None,
    echo: Echo = _quiet,
    runs_dir: Path | None = None,
) -> Backend:
    """The backend called ``name``; ``None`` means docker when an engine answers, else
    local with a warning. Docker's leftovers (and, with ``runs_dir``, unfinished run
    folders of killed harnesses) are reaped first."""
    from harness.runtime.docker_backend import connect
    from harness.runtime.errors import EngineUnavailableError

    backend: Backend
    if name == "local":
        echo(f"warning: {LOCAL_WARNING}")
        backend = LocalBackend()
    else:
        try:
            backend = DockerBackend(connect(docker_host))
        except EngineUnavailableError as exc:
            if name == "docker":
                raise
            echo(f"WARNING: {exc}\nRunning locally instead: {LOCAL_WARNING}.")
            backend = LocalBackend()
    if runs_dir is not None:
        backend.reap(lambda m: echo(f"note: {m}"), runs_dir)
    return backend
