"""The second and third layers of the wall-clock limit: they hold when the harness is dead.

1. The harness itself kills a container at its limit (:func:`docker_backend._wait`).
2. A **watchdog** process per container (:func:`spawn`), started in a session of its own so
   that killing the harness (even with SIGKILL, even its process group) leaves it running:
   it waits for the container and kills it :data:`GRACE_S` after the limit; when the harness
   that started it is gone, it also removes the container once it has ended.
3. A **deadline label** (``sarbench.deadline``, seconds since the epoch) on every container,
   and a **lock label** (``sarbench.lock``, the run's lock file): :func:`reap` (run at the
   start of every ``sarbench run`` and ``sarbench validate``, and by ``sarbench reap``)
   kills and removes every managed container past its deadline, and removes every one
   whose run lock is free (its harness died), whatever run key it had.

``python -m harness.runtime.watchdog BASE_URL CONTAINER_ID DEADLINE HARNESS_PID`` runs one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

GRACE_S = 0.5
"""How long after the limit the watchdog kills (the harness, if alive, kills at the limit)."""
LABEL_DEADLINE = "sarbench.deadline"
LABEL_LOCK = "sarbench.lock"
_ALIVE = ("created", "running", "restarting", "paused")


def engine_address(client: object) -> str:
    """The address another process can reach ``client``'s engine at (``unix:///...`` for
    a socket: the client's own ``base_url`` then reads ``http+docker://localhost``)."""
    api = client.api  # type: ignore[attr-defined]
    socket_path = getattr(getattr(api, "_custom_adapter", None), "socket_path", None)
    if socket_path:
        return f"unix://{socket_path}"
    return str(api.base_url)


def spawn(client: object, container_id: str, deadline: float) -> subprocess.Popen[bytes] | None:
    """Start the watchdog of one container (``deadline``: seconds since the epoch)."""
    base_url = engine_address(client)
    try:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness.runtime.watchdog",
                base_url,
                container_id,
                repr(deadline),
                str(os.getpid()),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
    except OSError:
        return None  # layer 3 (the deadline label) still holds


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is dead for our purpose
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def watch(base_url: str, container_id: str, deadline: float, harness_pid: int) -> int:
    import docker
    import docker.errors
    import requests

    client = docker.DockerClient(base_url=base_url, timeout=30)
    try:
        container = client.containers.get(container_id)
        while True:
            remaining = deadline - time.time()
            if remaining <= 0:
                with contextlib.suppress(docker.errors.APIError):  # ended meanwhile
                    container.kill()
                break
            try:
                container.wait(timeout=min(remaining, 30.0))
                break
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                continue
        # wait for the harness to collect it; remove it ourselves when the harness is gone
        while _pid_alive(harness_pid):
            time.sleep(1.0)
            try:
                container.reload()
            except docker.errors.NotFound:
                return 0
        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True, v=True)
    except docker.errors.NotFound:
        return 0
    finally:
        client.close()
    return 0


@dataclass(frozen=True)
class Reaped:
    name: str
    run: str
    why: str


def lock_is_free(path: str) -> bool:
    """Whether nobody holds the flock of this run lock file (False when it does not exist)."""
    if not path or not Path(path).is_file():
        return False
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing releases the lock if we took it
    return True


def reap(client: object, *, now: float | None = None) -> list[Reaped]:
    """Kill and remove managed containers past their deadline or orphaned by a dead harness."""
    import docker.errors

    from harness.runtime.docker_backend import LABEL_MANAGED

    now = time.time() if now is None else now
    reaped = []
    containers = client.containers.list(all=True, filters={"label": [LABEL_MANAGED]})  # type: ignore[attr-defined]
    for container in containers:
        labels = container.labels or {}
        why = None
        try:
            deadline = float(labels.get(LABEL_DEADLINE, "inf"))
        except ValueError:
            deadline = float("inf")
        if container.status in _ALIVE and now > deadline + GRACE_S:
            why = "past its wall-clock deadline"
        elif lock_is_free(labels.get(LABEL_LOCK, "")):
            why = "left by a harness that is gone"
        if why is None:
            continue
        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            continue
        reaped.append(Reaped(container.name, labels.get("sarbench.run", ""), why))
    return reaped


def reap_runs(runs_dir: Path) -> list[Reaped]:
    """Remove the unfinished run folders under ``runs_dir`` (no record) whose run lock is
    free, with whatever scratch filesystems are still mounted below them: what a killed
    harness left, whatever its run key."""
    from harness.runtime.scratch import remove_tree

    reaped: list[Reaped] = []
    if not runs_dir.is_dir():
        return reaped
    for run_dir in sorted(runs_dir.iterdir()):
        if run_dir.name.startswith(".") or not run_dir.is_dir() or run_dir.is_symlink():
            continue
        if (run_dir / "record.json").exists():
            continue
        if not lock_is_free(str(runs_dir / ".locks" / f"{run_dir.name}.lock")):
            continue
        remove_tree(run_dir)
        reaped.append(Reaped(run_dir.name, run_dir.name, "an unfinished run folder"))
    return reaped


def reap_and_report(
    client: object, echo: Callable[[str], None], runs_dir: Path | None = None
) -> list[Reaped]:
    """:func:`reap`, and :func:`reap_runs` of ``runs_dir`` where given, saying what was
    removed (every harness start does this)."""
    reaped = reap(client)
    for item in reaped:
        echo(f"removed container {item.name} (run {item.run or '?'}): {item.why}")
    if runs_dir is not None:
        reaped += reap_folders(echo, runs_dir)
    return reaped


def reap_folders(echo: Callable[[str], None], runs_dir: Path) -> list[Reaped]:
    """Unfinished run folders and data stages of harnesses that are gone."""
    from harness.runtime.stage import reap_stages

    reaped = reap_runs(runs_dir)
    for item in reaped:
        echo(f"removed {item.why} left by a harness that is gone: {item.name}")
    for name in reap_stages(runs_dir.parent):
        echo(f"removed the data stage {name} left by a harness that is gone")
        reaped.append(Reaped(name, "", "a data stage"))
    return reaped


if __name__ == "__main__":
    sys.exit(watch(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])))
