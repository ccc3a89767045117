"""The real backend: one phase is one locked-down container, always removed afterwards.

Lifecycle of :func:`run_phase`: prepare (check mounts, limits and image; make writable
folders writable for the container's user) -> create -> start -> watch (memory samples,
output size) and wait with a wall-clock deadline -> collect (state, log) -> remove, in a
``finally``. Every container carries the label ``sarbench.managed=1`` plus the caller's
labels, so :func:`remove_leftovers` can find anything a killed harness left behind.

The client is always passed in; nothing here talks to an engine at import time.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests
from docker.models.containers import Container
from docker.types import DeviceRequest, LogConfig
from docker.types import Mount as DockerMount

from harness.runtime.errors import (
    ContainerCleanupError,
    ContainerCreateError,
    EngineUnavailableError,
    ImageNotFoundError,
    LimitsError,
)
from harness.runtime.images import image_digest
from harness.runtime.limits import Limits
from harness.runtime.livelog import LiveLog, OnLine, follow
from harness.runtime.phase import (
    Mount,
    Mounts,
    PhaseResult,
    check_mounts,
    classify,
    mount_env,
    output_usage,
    over_output_cap,
    prepare_writable,
    tail_lines,
)
from harness.runtime.watchdog import GRACE_S, LABEL_DEADLINE
from harness.runtime.watchdog import spawn as spawn_watchdog

DEFAULT_USER = "65532:65532"
LABEL_MANAGED = "sarbench.managed"
DEFAULT_TAIL_LINES = 50
MEMORY_SAMPLE_S = 0.25
WATCHER_JOIN_S = 0.05
"""How long a phase waits, once its container has exited, for the watcher's last sample."""
# the deadline label allows this long between create and start
_START_SLACK_S = 30.0
_USER = re.compile(r"^(\d+):(\d+)$")


def connect(base_url: str | None = None, timeout: float = 120.0) -> docker.DockerClient:
    """A client for the engine at ``base_url`` (default: ``DOCKER_HOST`` or the local socket).

    Raises :class:`EngineUnavailableError`, with how to start one, if nothing answers.
    """
    try:
        if base_url:
            client = docker.DockerClient(base_url=base_url, timeout=int(timeout))
        else:
            client = docker.from_env(timeout=int(timeout))
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        where = base_url or "DOCKER_HOST or unix:///var/run/docker.sock"
        raise EngineUnavailableError(
            f"no Docker engine answers at {where} ({exc}). Start one, e.g. as root: "
            "`nohup dockerd --bridge=none --iptables=false >/tmp/sarbench-dockerd.log 2>&1 &`"
        ) from exc
    return client


def _host_resources(client: docker.DockerClient) -> tuple[int, int]:
    """The engine host's CPU count and memory, asked once per client (an API round trip)."""
    cached = getattr(client, "_sarbench_host", None)
    if cached is None:
        info = client.info()
        cached = (int(info.get("NCPU", 0)), int(info.get("MemTotal", 0)))
        client._sarbench_host = cached  # type: ignore[attr-defined]
    return cached


def check_host(client: docker.DockerClient, limits: Limits) -> None:
    """Refuse limits that this engine's host cannot give (CPUs, cores, memory)."""
    ncpu, mem_total = _host_resources(client)
    problems = []
    if ncpu and limits.cpus > ncpu:
        problems.append(f"cpus={limits.cpus} but the engine's host has {ncpu} CPUs")
    missing = [c for c in limits.cpuset_cores() if ncpu and c >= ncpu]
    if missing:
        problems.append(f"cpuset={limits.cpuset} names cores {missing} that the host lacks")
    if mem_total and limits.memory_bytes > mem_total:
        problems.append(
            f"memory_bytes={limits.memory_bytes} is more than the host's {mem_total} bytes"
        )
    if problems:
        raise LimitsError(
            "this host cannot give the requested limits: "
            + "; ".join(problems)
            + ". Run on a machine that can, or lower the limits in the conditions profile"
        )


def container_config(
    image: str,
    command: Sequence[str],
    mounts: Sequence[Mount],
    limits: Limits,
    labels: Mapping[str, str],
    env: Mapping[str, str] | None = None,
    *,
    user: str = DEFAULT_USER,
    name: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``client.containers.create``: every isolation setting in one place."""
    environment = {"HOME": "/tmp", **(env or {}), **mount_env(mounts, host_paths=False)}
    config: dict[str, Any] = {
        "image": image,
        "command": list(command),
        "name": name,
        "user": user,
        "hostname": "sarbench",
        "working_dir": "/tmp",
        "environment": environment,
        "labels": {LABEL_MANAGED: "1", **labels},
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,size={limits.tmpfs_bytes},mode=1777"},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "pids_limit": limits.pids,
        "mem_limit": limits.memory_bytes,
        "memswap_limit": limits.memory_bytes,
        "nano_cpus": limits.nano_cpus,
        "cpuset_cpus": limits.cpuset,
        "shm_size": limits.shm_bytes,
        "log_config": LogConfig(
            type=LogConfig.types.JSON,
            # two halves: the engine keeps between half the cap and the cap, newest last
            config={
                "max-size": str(limits.log_cap_bytes // 2),
                "max-file": "2",
                "compress": "false",
            },
        ),
        "mounts": [
            DockerMount(target=m.target, source=str(m.host), type="bind", read_only=m.read_only)
            for m in mounts
        ],
    }
    if limits.gpu_uuid is not None:
        config["device_requests"] = [
            DeviceRequest(device_ids=[limits.gpu_uuid], capabilities=[["gpu"]])
        ]
    return config


def run_phase(
    client: docker.DockerClient,
    image: str,
    command: Sequence[str],
    mounts: Mounts,
    limits: Limits,
    labels: Mapping[str, str],
    env: Mapping[str, str] | None = None,
    *,
    user: str = DEFAULT_USER,
    name: str | None = None,
    tail: int = DEFAULT_TAIL_LINES,
    log_path: Path | None = None,
    on_line: OnLine | None = None,
) -> PhaseResult:
    """Run ``command`` in one container from ``image`` under ``limits``; always remove it.

    ``mounts`` is ``{host_path: (container_path, "ro" | "rw")}``; writable host folders are
    made writable for ``user`` first (see :func:`harness.runtime.phase.prepare_writable`).
    ``log_path``, if given, receives the log as it comes (:mod:`harness.runtime.livelog`)
    and then the whole collected log (at most the log cap); ``on_line`` gets each line as
    the container prints it.
    Raises for problems of the harness's own making (no such image, limits the host cannot
    give, bad mounts, an engine that refuses the configuration); everything the command
    does is reported in the :class:`PhaseResult`.
    """
    if isinstance(command, str):
        raise TypeError("give the command as a list of arguments, not one string")
    uid, gid = _parse_user(user)
    checked = check_mounts(mounts)
    check_host(client, limits)
    image_digest(client, image)  # raises ImageNotFoundError with a hint
    for m in checked:
        if not m.read_only:
            prepare_writable(m.host, uid, gid)
    deadline_label = f"{time.time() + limits.timeout_s + _START_SLACK_S:.0f}"
    labels = {**labels, LABEL_DEADLINE: deadline_label}
    config = container_config(image, command, checked, limits, labels, env, user=user, name=name)
    try:
        container = client.containers.create(**config)
    except docker.errors.ImageNotFound as exc:
        raise ImageNotFoundError(f"image {image!r} disappeared from the engine: {exc}") from exc
    except docker.errors.APIError as exc:
        raise ContainerCreateError(
            f"the engine refused to create a container from {image!r}: {exc.explanation or exc}"
        ) from exc
    try:
        writable = [m.host for m in checked if not m.read_only]
        live = LiveLog(log_path, on_line, limits.log_cap_bytes)
        return _start_and_collect(client, container, writable, limits, tail, log_path, live)
    finally:
        _remove(container)


def remove_leftovers(
    client: docker.DockerClient, label_selector: str | Mapping[str, str] = LABEL_MANAGED
) -> list[str]:
    """Force-remove every container (running or not) with the label; return their names.

    ``label_selector`` is ``"key"``, ``"key=value"`` or a mapping of such pairs (all must
    match), e.g. ``{"sarbench.run": run_id}``. The default takes every container this
    harness started, including those of a run still going on elsewhere on this engine.
    """
    if isinstance(label_selector, str):
        selector = [label_selector]
    else:
        selector = [f"{k}={v}" for k, v in label_selector.items()]
    removed = []
    for container in client.containers.list(all=True, filters={"label": selector}):
        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            continue
        removed.append(container.name)
    return removed


class _Watcher(threading.Thread):
    """Samples memory and the size of the writable mounts while the container runs.

    cgroup v1 reports the high-water mark (``max_usage``); cgroup v2 only the current use,
    so the peak is the highest sample. Output over the cap kills the container.
    """

    def __init__(
        self,
        client: docker.DockerClient,
        container: Container,
        writable: list[Path],
        limits: Limits,
    ) -> None:
        super().__init__(name=f"sarbench-watch-{container.short_id}", daemon=True)
        self.client, self.container, self.writable = client, container, writable
        self.limits, self.output_check_s = limits, limits.output_check_s
        self.peak: int | None = None
        self.output_exceeded = False
        self.stopping = threading.Event()
        self._one_shot: bool | None = True
        self._can_sample = True

    def run(self) -> None:
        next_output_check = time.monotonic() + self.output_check_s
        while not self.stopping.is_set():
            self._sample_memory()
            if self.stopping.is_set():
                return  # the container has exited: its folders are the runner's again
            if self.writable and time.monotonic() >= next_output_check:
                next_output_check = time.monotonic() + self.output_check_s
                if over_output_cap(output_usage(self.writable), self.limits):
                    self.output_exceeded = True
                    _kill(self.container)
                    return
            self.stopping.wait(MEMORY_SAMPLE_S)

    def _sample_memory(self) -> None:
        if not self._can_sample:
            return
        try:
            stats = self.client.api.stats(self.container.id, stream=False, one_shot=self._one_shot)
        except docker.errors.InvalidVersion:  # engines before API 1.41: slower, still works
            self._one_shot = None
            return
        except (docker.errors.APIError, requests.exceptions.RequestException):
            self._can_sample = False  # the container is gone; keep what we have
            return
        memory = stats.get("memory_stats") or {}
        value = memory.get("max_usage") or memory.get("usage")
        if value:
            self.peak = max(self.peak or 0, int(value))


def _log_stream(container: Container) -> object:
    """The container's log as it comes (empty where the engine cannot stream it)."""
    try:
        return container.logs(stdout=True, stderr=True, stream=True, follow=True)
    except (docker.errors.APIError, requests.exceptions.RequestException):
        return iter(())


def _start_and_collect(
    client: docker.DockerClient,
    container: Container,
    writable: list[Path],
    limits: Limits,
    tail: int,
    log_path: Path | None,
    live: LiveLog,
) -> PhaseResult:
    watcher = _Watcher(client, container, writable, limits)
    try:
        container.start()
    except docker.errors.APIError as exc:
        live.close()
        message = str(exc.explanation or exc)
        return PhaseResult(
            status="error",
            exit_code=None,
            wall_s=0.0,
            peak_memory_bytes=None,
            log_tail=message,
            image_id=container.attrs.get("Image"),
            reason=f"the command could not be started: {message}",
        )
    started = time.monotonic()  # the wall-clock limit counts from here
    spawn_watchdog(client, container.id, time.time() + limits.timeout_s + GRACE_S)
    watcher.start()
    follower = follow(_log_stream(container), live)
    try:
        timed_out = _wait(container, started + limits.timeout_s)
    finally:
        watcher.stopping.set()
        # not waited for beyond a moment: a memory sample may still be in flight (the
        # engine can take most of a second to answer one for a container that is just
        # starting), and it would say nothing of the exited container. Without it the run
        # gains that wait back; the peak is the highest sample that came in before.
        watcher.join(timeout=WATCHER_JOIN_S)
        follower.join(timeout=5)  # the stream ends with the container
        live.close()
    elapsed = time.monotonic() - started
    container.reload()
    state = container.attrs["State"]
    log = container.logs(stdout=True, stderr=True)
    # stdout and stderr reach the log through separate pipes, so their lines interleave
    # in no guaranteed order: a traceback can land before the last stdout lines. Keep
    # stderr's own tail too, where the reason for a crash usually is.
    # (The engine applies `tail` before it filters by stream, so take all and cut here.)
    errors = container.logs(stdout=False, stderr=True)
    if log_path is not None:
        log_path.write_bytes(log)
    text = log.decode("utf-8", errors="replace")
    usage = output_usage(writable)
    output_bytes, output_files = usage
    exit_code = int(state.get("ExitCode", -1))
    peak = watcher.peak
    status, reason = classify(
        exit_code=exit_code,
        oom_killed=bool(state.get("OOMKilled")),
        timed_out=timed_out,
        output_exceeded=watcher.output_exceeded or over_output_cap(usage, limits),
        peak=peak,
        limits=limits,
        output_bytes=output_bytes,
        output_files=output_files,
    )
    return PhaseResult(
        status=status,
        exit_code=exit_code,
        wall_s=_lifetime(state) or elapsed,
        peak_memory_bytes=peak,
        log_tail=tail_lines(text, tail),
        image_id=container.attrs.get("Image"),
        reason=reason,
        output_bytes=output_bytes,
        stderr_tail=tail_lines(errors.decode("utf-8", errors="replace"), tail),
    )


def _wait(container: Container, deadline: float) -> bool:
    """Wait for the container to exit; kill it at ``deadline``. True if it was killed."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            container.reload()
            if container.status in ("created", "exited", "dead"):
                return False
            _kill(container)
            container.wait(timeout=60)
            return True
        try:
            container.wait(timeout=remaining)
            return False
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            # docker-py reports a read timeout on its unix socket as either of these; the
            # loop checks the deadline, and reload() raises if the engine itself is gone.
            container.reload()


def _kill(container: Container) -> None:
    try:
        container.kill()
    except docker.errors.APIError as exc:
        if exc.status_code not in (404, 409):  # already gone or no longer running
            raise


def _lifetime(state: Mapping[str, Any]) -> float | None:
    """Seconds between the engine's StartedAt and FinishedAt, if both are known."""
    start, end = _parse_time(state.get("StartedAt")), _parse_time(state.get("FinishedAt"))
    if start is None or end is None or end < start:
        return None
    return end - start


def _parse_time(value: object) -> float | None:
    """An engine timestamp (RFC 3339, UTC, nanoseconds) as seconds since the epoch."""
    if not isinstance(value, str) or not value.endswith("Z") or value.startswith("0001-"):
        return None
    whole, _, fraction = value[:-1].partition(".")
    try:
        moment = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return moment.timestamp() + (float(f"0.{fraction}") if fraction.isdigit() else 0.0)


def _parse_user(user: str) -> tuple[int, int]:
    match = _USER.match(user)
    if match is None:
        raise ValueError(f"user must be numeric 'uid:gid' (like {DEFAULT_USER}), got {user!r}")
    return int(match.group(1)), int(match.group(2))


def _remove(container: Container) -> None:
    try:
        container.remove(force=True, v=True)
    except docker.errors.NotFound:
        return
    except docker.errors.APIError as exc:
        raise ContainerCleanupError(
            f"could not remove container {container.name} ({container.short_id}): {exc}. "
            f"Remove it with `docker rm -f {container.id}`, or remove_leftovers() by label"
        ) from exc
