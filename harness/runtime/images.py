"""Images without a registry: an offline base image, derived images, and their IDs.

Nothing is ever pulled. The base image is a Debian ``bookworm`` minbase root filesystem made
with ``debootstrap`` on this host (Debian's package mirror must be reachable; no registry
is needed) and imported with ``docker import``. Entry images build ``FROM`` it with the
build's network off, installing only wheels downloaded on the host beforehand
(``pip download -d wheels/ ...``, then ``pip install --no-index --find-links wheels/``).

The base image has ``python3``, ``python3-venv`` and ``python3-pip``. Debian marks its
system Python as externally managed (PEP 668): install wheels into a venv
(``python3 -m venv /opt/venv``), not into the system site-packages.

``.ci/run`` builds the same image with plain shell (it runs before the venv exists); keep
its name, suite, packages and ``--change`` lines equal to the constants below.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import docker
import docker.errors

from harness.runtime.errors import ImageBuildError, ImageNotFoundError

BASE_IMAGE = "sarbench-base:bookworm"
BASE_SUITE = "bookworm"
BASE_PACKAGES: tuple[str, ...] = ("python3", "python3-venv", "python3-pip")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# Dockerfile instructions applied at import (``docker import --change``).
IMAGE_CHANGES: tuple[str, ...] = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)
# Left out of the image: downloaded .deb files and package lists (about 40 MB).
_TRIM = ("var/cache/apt/archives", "var/lib/apt/lists")

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    """The default progress callback: says nothing."""


def image_digest(client: docker.DockerClient, ref: str) -> str:
    """The image ID (``sha256:...``, the digest of its config) of a local image."""
    try:
        return str(client.images.get(ref).id)
    except docker.errors.ImageNotFound as exc:
        hint = (
            "build it with `sarbench images base`"
            if ref == BASE_IMAGE
            else "build it first (nothing is pulled from a registry)"
        )
        raise ImageNotFoundError(f"image {ref!r} is not in the Docker engine: {hint}") from exc


def has_image(client: docker.DockerClient, ref: str) -> bool:
    """Whether the engine has an image by this name or ID."""
    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def build_base_image(
    client: docker.DockerClient,
    name: str = BASE_IMAGE,
    workdir: str | os.PathLike[str] | None = None,
    progress: Progress = _quiet,
    *,
    mirror: str = DEFAULT_MIRROR,
    rebuild: bool = False,
) -> str:
    """Make the base image ``name`` unless the engine has it; return its image ID.

    Runs ``debootstrap --variant=minbase`` into a temporary folder under ``workdir``
    (default: the system temp folder; it needs about 400 MB), packs it with ``tar`` and
    imports it. Needs root (debootstrap creates device nodes and chroots) and the
    ``debootstrap`` package. Idempotent: an existing image is kept unless ``rebuild``.
    """
    if not rebuild and has_image(client, name):
        image_id = image_digest(client, name)
        progress(f"{name} already present ({image_id[:19]})")
        return image_id
    debootstrap = _check_prerequisites()
    repository, tag = split_ref(name)
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="sarbench-base-", dir=workdir))
    try:
        rootfs = tmp / "rootfs"
        progress(f"debootstrap {BASE_SUITE} from {mirror} into {rootfs} (about a minute)")
        _run(
            [
                debootstrap,
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                BASE_SUITE,
                str(rootfs),
                mirror,
            ],
            what="debootstrap",
            log=tmp / "debootstrap.log",
        )
        for rel in _TRIM:
            _empty_folder(rootfs / rel)
        tarball = tmp / "rootfs.tar"
        progress(f"packing {tarball}")
        _run(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tarball), "."],
            what="tar",
            log=tmp / "tar.log",
        )
        progress(f"importing as {name}")
        try:
            client.api.import_image_from_file(
                str(tarball), repository=repository, tag=tag, changes=list(IMAGE_CHANGES)
            )
        except docker.errors.APIError as exc:
            raise ImageBuildError(f"docker import of {tarball} as {name} failed: {exc}") from exc
    finally:
        _remove_tree(tmp)
    image_id = image_digest(client, name)
    progress(f"{name} built in {time.monotonic() - started:.0f} s ({image_id[:19]})")
    return image_id


def build_image(
    client: docker.DockerClient,
    context: str | os.PathLike[str],
    tag: str | None,
    *,
    dockerfile: str = "Dockerfile",
    buildargs: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    on_step: Callable[[str], None] | None = None,
) -> str:
    """``docker build`` with the network off and no pull; return the new image ID
    (``tag`` may be None: the caller tags the image itself). ``on_step`` is told each
    step as the engine starts it (``Step 3/9 : RUN ...``).

    The ``FROM`` image must already be in the engine (see :func:`build_base_image`). The
    build cannot download anything: copy wheels into the context and install them with
    ``pip install --no-index --find-links``.
    """
    what = tag or "the image"
    log: list[str] = []
    image_id = None
    try:
        for chunk in client.api.build(
            path=str(context),
            tag=tag,
            dockerfile=dockerfile,
            buildargs=dict(buildargs or {}),
            labels=dict(labels or {}),
            network_mode="none",
            pull=False,
            rm=True,
            forcerm=True,
            decode=True,
        ):
            if "error" in chunk:
                tail = "\n".join(line for line in log if line)[-4000:]
                raise ImageBuildError(
                    f"building {what} from {context} failed: {chunk['error']}\n{tail}"
                )
            text = str(chunk.get("stream") or "").rstrip()
            log.append(text)
            if on_step is not None and text.startswith("Step "):
                on_step(text)
            found = (chunk.get("aux") or {}).get("ID")
            if found:
                image_id = str(found)
    except docker.errors.APIError as exc:
        raise ImageBuildError(f"building {what} from {context} failed: {exc}") from exc
    if image_id is None:
        raise ImageBuildError(f"building {what} from {context}: the engine named no image")
    return image_id


def split_ref(name: str) -> tuple[str, str]:
    """``repo[:tag]`` as (repository, tag); the tag defaults to ``latest``."""
    repository, sep, tag = name.rpartition(":")
    if not sep or "/" in tag:  # no tag, or the colon belongs to a registry port
        return name, "latest"
    return repository, tag


def _check_prerequisites() -> str:
    if os.geteuid() != 0:
        raise ImageBuildError(
            "building the base image needs root (debootstrap creates device files and "
            "chroots): run `sudo sarbench images base` once, or let `.ci/run` build it"
        )
    debootstrap = shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin:/sbin")
    if debootstrap is None:
        raise ImageBuildError(
            "debootstrap is not installed: install it with `apt-get install -y debootstrap` "
            "(Debian/Ubuntu), then run `sarbench images base` again"
        )
    if shutil.which("tar") is None:
        raise ImageBuildError("tar is not installed: install it with `apt-get install -y tar`")
    return debootstrap


def _run(argv: list[str], *, what: str, log: Path) -> None:
    with log.open("wb") as out:
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise ImageBuildError(
            f"{what} failed with exit code {done.returncode}; the last lines of its output:\n"
            f"{tail}\n(is Debian's mirror reachable? pass another with --mirror)"
        )


def _empty_folder(folder: Path) -> None:
    if not folder.is_dir():
        return
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _mounts_under(folder: Path) -> list[str]:
    """Mount points below ``folder`` (a failed debootstrap can leave /proc or /sys mounted)."""
    prefix = str(folder.resolve()) + "/"
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        points = [line.split()[1] for line in mounts if line.strip()]
    return [p for p in points if p.startswith(prefix)]


def _remove_tree(folder: Path) -> None:
    left = _mounts_under(folder)
    if left:
        raise ImageBuildError(
            f"not removing {folder}: still mounted below it: {', '.join(left)}; "
            f"unmount them (`umount {' '.join(left)}`), then remove the folder"
        )
    shutil.rmtree(folder, ignore_errors=False)
