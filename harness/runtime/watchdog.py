"""The second and third layers of the wall-clock limit: they hold when the harness is dead.

1. The harness itself kills a container at its limit (:func:`docker_backend._wait`).
2. A **watchdog** process per harness process (:func:`spawn`), started on first use in a
   session of its own so that killing the harness (even with SIGKILL, even its process
   group) leaves it running. The harness tells it each container and its deadline on a
   pipe; it kills each container :data:`GRACE_S` after its limit. When the harness is gone
   (the pipe ends), it waits for the containers it knows, kills each at its deadline, and
   removes them.
3. A **deadline label** (``sarbench.deadline``, seconds since the epoch) on every container,
   and a **lock label** (``sarbench.lock``, the run's lock file): :func:`reap` (run at the
   start of every ``sarbench run`` and ``sarbench validate``, and by ``sarbench reap``)
   kills and removes every managed container past its deadline, and removes every one
   whose run lock is free (its harness died), whatever run key it had.

``python -m harness.runtime.watchdog BASE_URL`` runs one (reading ``<id> <deadline>`` lines).
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
from typing import Any

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


class _Daemon:
    """This harness process's watchdog: one process (in a session of its own) that is told
    each container and its deadline on a pipe, one line each."""

    def __init__(self, base_url: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "harness.runtime.watchdog", base_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )

    def tell(self, container_id: str, deadline: float) -> bool:
        stdin = self.process.stdin
        if stdin is None or self.process.poll() is not None:
            return False
        try:
            stdin.write(f"{container_id} {deadline!r}\n".encode())
            stdin.flush()
        except OSError:
            return False
        return True


_DAEMONS: dict[tuple[int, str], _Daemon] = {}


def spawn(client: object, container_id: str, deadline: float) -> bool:
    """Have this process's watchdog kill ``container_id`` at ``deadline`` (seconds since the
    epoch), even if this process dies first; started on first use (one Python start per
    harness process, not per container). False when no watchdog could be had: the deadline
    label (layer 3) still holds."""
    base_url = engine_address(client)
    key = (os.getpid(), base_url)
    for _ in range(2):
        daemon = _DAEMONS.get(key)
        if daemon is None:
            try:
                daemon = _DAEMONS[key] = _Daemon(base_url)
            except OSError:
                return False
        if daemon.tell(container_id, deadline):
            return True
        _DAEMONS.pop(key, None)  # it died: start another, once
    return False


def watch(base_url: str) -> int:
    """The watchdog's loop: read ``<container id> <deadline>`` lines until the harness goes
    (end of input), killing each container at its deadline. Once the harness is gone, wait
    for each container still known to end (or kill it at its deadline) and remove it."""
    import selectors

    import docker
    import docker.errors

    client = docker.DockerClient(base_url=base_url, timeout=30)
    tracked: dict[str, float] = {}
    selector = selectors.DefaultSelector()
    selector.register(sys.stdin, selectors.EVENT_READ)
    harness_gone = False
    next_prune = time.time() + 5.0

    def find(cid: str) -> Any:
        try:
            return client.containers.get(cid)
        except docker.errors.APIError:  # NotFound included: removed by the harness
            return None

    def end(found: Any, *, kill: bool) -> None:
        with contextlib.suppress(docker.errors.APIError):
            if kill:
                found.kill()
            if harness_gone:
                found.remove(force=True, v=True)

    try:
        while True:
            now = time.time()
            for cid, deadline in list(tracked.items()):
                if now >= deadline:
                    found = find(cid)
                    if found is not None:
                        end(found, kill=True)
                    del tracked[cid]
            if harness_gone or now >= next_prune:
                next_prune = now + 5.0
                for cid in list(tracked):
                    found = find(cid)
                    if found is None:
                        del tracked[cid]
                    elif harness_gone and found.status not in _ALIVE:
                        end(found, kill=False)
                        del tracked[cid]
            if harness_gone:
                if not tracked:
                    return 0
                time.sleep(max(0.0, min(0.2, min(tracked.values()) - time.time())))
                continue
            wait = min([*tracked.values(), now + 5.0]) - now
            if selector.select(timeout=max(0.0, wait)):
                line = sys.stdin.readline()
                if not line:
                    harness_gone = True
                    continue
                cid, _, deadline_text = line.strip().partition(" ")
                with contextlib.suppress(ValueError):
                    tracked[cid] = float(deadline_text)
    finally:
        client.close()


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
    sys.exit(watch(sys.argv[1]))
