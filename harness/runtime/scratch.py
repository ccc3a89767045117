"""Writable space for a container, limited by the kernel: one small filesystem per phase.

A container's writable mounts (``/model`` in train, ``/output`` in predict) are folders on a
filesystem of their own: an ext4 image file of fixed size and inode count, made for the run
(sparse, so it costs only what is written) and loop-mounted by the harness. Whatever the
container does (``fallocate``, paths longer than ``PATH_MAX``, a flood of empty files), it
hits ``ENOSPC`` at the limit; nothing has to walk its tree to find out, because the
filesystem's own counters (``statvfs``) say how much is used. Unmounting and deleting the
image removes everything, however deep or odd the tree inside.

Layout of a mounted scratch filesystem: ``data/`` (the folder the container writes) and
``config/`` (the phase's ``run.json``, mounted read-only at ``/config/run.json``). Inside
the container, ``/proc/self/mountinfo`` shows these neutral paths (``/data``,
``/config/run.json``) and a loop device, not the host's run folder.

Loop devices need root. Without root, or without ``mkfs.ext4``/``losetup``, the harness
falls back to polling the folders' size (:func:`tree_usage`, which uses ``du``: no Python
recursion, no path-length limit), and the run's record says which was used
(``output_limit_by``: ``kernel`` or ``polling``). With ``SARBENCH_REQUIRE_KERNEL_LIMITS=1``
(set by CI) the fallback is refused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.errors import SarbenchError

_OVERHEAD_BYTES = 4 * 1024 * 1024
_INODE_BYTES = 256
HEADROOM_BYTES = 16 * 1024 * 1024
"""The filesystem holds this much more than the cap: a writer that passes the cap is seen
over it (``output_limit``) before the kernel stops it, whatever its write size."""
HEADROOM_INODES = 64
_ACTIVE: dict[Path, Scratch] = {}


class ScratchError(SarbenchError):
    """A scratch filesystem could not be made, mounted or removed; says what to do."""


def kernel_limits_available() -> bool:
    """Whether this process can make loop-mounted scratch filesystems (root and the tools)."""
    return (
        os.geteuid() == 0
        and shutil.which("mkfs.ext4", path=_PATH) is not None
        and shutil.which("mount", path=_PATH) is not None
        and Path("/dev/loop-control").exists()
    )


def require_kernel_limits() -> bool:
    return os.environ.get("SARBENCH_REQUIRE_KERNEL_LIMITS") == "1"


_PATH = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"


@dataclass
class Scratch:
    """One mounted scratch filesystem (see the module docstring)."""

    image: Path
    mountpoint: Path
    cap_bytes: int
    cap_inodes: int
    base_bytes: int = 0
    base_inodes: int = 0

    @property
    def data(self) -> Path:
        return self.mountpoint / "data"

    @property
    def config(self) -> Path:
        return self.mountpoint / "config"

    @classmethod
    def create(cls, image: Path, mountpoint: Path, cap_bytes: int, cap_inodes: int) -> Scratch:
        """Make, mount and lay out a filesystem holding ``cap_bytes`` in ``cap_inodes`` files."""
        size = cap_bytes + HEADROOM_BYTES + cap_inodes * _INODE_BYTES + _OVERHEAD_BYTES
        # + the root, lost+found, data/, config/, the config file and the reserved inodes
        _make_ext4(
            image,
            mountpoint,
            size,
            cap_inodes + HEADROOM_INODES + 16,
            ["-E", "lazy_itable_init=1,nodiscard"],
            "loop,nosuid,nodev,noatime",
        )
        scratch = cls(image, mountpoint, cap_bytes, cap_inodes)
        try:
            shutil.rmtree(mountpoint / "lost+found", ignore_errors=True)
            scratch.data.mkdir()
            scratch.config.mkdir()
            scratch.base_bytes, scratch.base_inodes = scratch._raw_usage()
        except BaseException:
            scratch.close()
            raise
        _ACTIVE[scratch.data.resolve()] = scratch
        return scratch

    def _raw_usage(self) -> tuple[int, int]:
        st = os.statvfs(self.mountpoint)
        return (st.f_blocks - st.f_bfree) * st.f_frsize, st.f_files - st.f_ffree

    def usage(self) -> tuple[int, int]:
        """Bytes (allocated blocks, so reserved space counts) and files used since it was made."""
        used, files = self._raw_usage()
        return max(0, used - self.base_bytes), max(0, files - self.base_inodes)

    def close(self) -> None:
        """Unmount (lazily, if busy) and delete the image: everything inside goes with it."""
        _ACTIVE.pop(self.data.resolve(), None)
        _unmount_and_delete(self.mountpoint, self.image)


@dataclass
class Snapshot:
    """A read-only copy of a folder on a filesystem of its own (an ext4 image made with
    ``mkfs.ext4 -d``, loop-mounted read-only): what a container's read-only data mounts are
    staged on, so that ``/proc/self/mountinfo`` in the container shows ``/`` of a loop
    device, never the host's data path."""

    image: Path
    mountpoint: Path

    @classmethod
    def create(cls, source: Path, image: Path, mountpoint: Path) -> Snapshot:
        used, files = _du([str(source)])
        _make_ext4(
            image,
            mountpoint,
            used + files * 4096 + 16 * 1024 * 1024,
            files + 64,
            ["-d", str(source)],
            "loop,ro,nosuid,nodev,noexec",
            tidy=True,
        )
        return cls(image, mountpoint)

    def close(self) -> None:
        _unmount_and_delete(self.mountpoint, self.image)


def _make_ext4(
    image: Path,
    mountpoint: Path,
    size: int,
    inodes: int,
    options: list[str],
    mount_options: str,
    *,
    tidy: bool = False,
) -> None:
    """A sparse image of ``size`` bytes (rounded up to 4 KiB) with an ext4 filesystem of
    ``inodes`` files and no journal (``options`` added to ``mkfs.ext4``), mounted at
    ``mountpoint``; ``tidy`` removes ``lost+found`` first (for read-only mounts)."""
    image.parent.mkdir(parents=True, exist_ok=True)
    mountpoint.mkdir(parents=True, exist_ok=True)
    with open(image, "wb") as f:
        f.truncate(-(-size // 4096) * 4096)
    mkfs = ["mkfs.ext4", "-q", "-F", "-m", "0", "-N", str(inodes), "-O", "^has_journal"]
    _run([*mkfs, *options, str(image)], f"making the filesystem {image}")
    if tidy:
        _run(["debugfs", "-w", "-R", "rmdir /lost+found", str(image)], f"tidying {image}")
    _run(
        ["mount", "-o", mount_options, str(image), str(mountpoint)],
        f"mounting {image} at {mountpoint}",
    )


def _unmount_and_delete(mountpoint: Path, image: Path) -> None:
    """Unmount (lazily, if busy) and delete the image: everything inside goes with it."""
    if os.path.ismount(mountpoint):
        done = subprocess.run(
            ["umount", str(mountpoint)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            _run(["umount", "-l", str(mountpoint)], f"unmounting {mountpoint}")
    image.unlink(missing_ok=True)


def scratch_of(folder: Path) -> Scratch | None:
    """The scratch filesystem whose ``data/`` is ``folder``, if the harness made one."""
    return _ACTIVE.get(Path(folder).resolve())


def unmount_below(folder: Path) -> list[str]:
    """Unmount (lazily) every mount point below ``folder``: what a killed harness left."""
    prefix = str(folder.resolve()) + "/"
    try:
        with open("/proc/self/mounts", encoding="utf-8") as mounts:
            points = [line.split()[1] for line in mounts if line.strip()]
    except OSError:
        return []
    points = [p.encode().decode("unicode_escape") for p in points]
    left = sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True)
    for point in left:
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    return left


def remove_tree(folder: Path) -> None:
    """Remove ``folder`` whatever is inside (deep trees, names past ``PATH_MAX``, odd
    permissions): mounts below it are unmounted first, then ``rm -rf --one-file-system``,
    which walks without recursion limits."""
    if not folder.exists() and not folder.is_symlink():
        return
    unmount_below(folder)
    done = subprocess.run(
        ["rm", "-rf", "--one-file-system", "--", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 and folder.exists():
        raise ScratchError(f"could not remove {folder}: {done.stderr.strip()[-500:]}")


def tree_usage(folders: list[Path]) -> tuple[int, int]:
    """Bytes (allocated, so ``fallocate``d space counts; at least the apparent size) and
    entries below ``folders``: the scratch filesystem's counters where there is one, else
    ``du`` (no recursion limit in Python, no ``PATH_MAX`` limit). Never raises: a tree that
    cannot be measured counts as over any cap (returns a huge figure)."""
    total_bytes = total_files = 0
    polled = []
    for folder in folders:
        scratch = scratch_of(folder)
        if scratch is not None:
            used, files = scratch.usage()
            total_bytes += used
            total_files += files
        else:
            polled.append(str(folder))
    if polled:
        used, files = _du(polled)
        total_bytes += used
        total_files += files
    return total_bytes, total_files


_UNMEASURABLE = 1 << 62


def _du(folders: list[str]) -> tuple[int, int]:
    try:
        blocks = subprocess.run(
            ["du", "-s", "-c", "-B1", "--", *folders], capture_output=True, text=True, check=False
        )
        apparent = subprocess.run(
            ["du", "-s", "-c", "-B1", "--apparent-size", "--", *folders],
            capture_output=True,
            text=True,
            check=False,
        )
        inodes = subprocess.run(
            ["du", "-s", "-c", "--inodes", "--", *folders],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return _UNMEASURABLE, _UNMEASURABLE
    try:
        used = max(_total(blocks.stdout), _total(apparent.stdout))
        files = _total(inodes.stdout)
    except ValueError:
        return _UNMEASURABLE, _UNMEASURABLE
    return used, files


def _total(out: str) -> int:
    lines = [line for line in out.splitlines() if line.strip()]
    if not lines:
        raise ValueError("no output")
    return int(lines[-1].split()[0])


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(
        argv, capture_output=True, text=True, check=False, env={**os.environ, "PATH": _PATH}
    )
    if done.returncode != 0:
        raise ScratchError(
            f"{what} failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()[-800:]}"
            ". The harness needs root, loop devices and mkfs.ext4 (e2fsprogs) for its "
            "kernel-enforced output limits"
        )
