"""Building entry images offline: wheels downloaded on the host, then ``docker build`` with
the network off.

An entry's ``[image]`` either names a prebuilt image (``ref``) or a build context. For a
build, the wheels of ``requirements`` are downloaded on the host into ``<context>/wheels/``
(``pip download``, skipped when a stamp says the requirements have not changed), the
``BASE_IMAGE`` build argument is made available (the offline images below are built when
absent), and the image is built with :func:`harness.runtime.images.build_image`. Docker's
layer cache makes a rebuild with nothing changed take a second or two.

Offline images the harness knows how to make:

- ``sarbench-base:bookworm``: Debian minbase with python3 (:func:`build_base_image`);
- ``sarbench-torch:bookworm``: the base plus a venv (``/opt/venv``, first on ``PATH``) with
  the CPU build of PyTorch: the baselines' ``BASE_IMAGE`` on machines without a registry.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import docker

from harness.entries import Entry
from harness.runtime.errors import ImageBuildError
from harness.runtime.images import (
    BASE_IMAGE,
    Progress,
    _quiet,
    build_base_image,
    build_image,
    has_image,
    image_digest,
)

TORCH_IMAGE = "sarbench-torch:bookworm"
TORCH_CONTEXT = Path(__file__).parent / "torch_image"
WHEELS = "wheels"
_STAMP = ".requirements.sha256"


def parse_build_args(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``("KEY=VALUE", ...)`` from the command line as a mapping."""
    from harness.errors import SarbenchError

    args = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SarbenchError(f"--build-arg takes KEY=VALUE, got {item!r}")
        args[key] = value
    return args


def download_wheels(
    requirements: Path, dest: Path, *, progress: Progress = _quiet, force: bool = False
) -> bool:
    """``pip download`` the wheels of ``requirements`` into ``dest`` for this Python.

    Returns False (and downloads nothing) when ``dest`` already holds the wheels of these
    exact requirements. Binary wheels only: the offline build cannot compile anything.
    """
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = dest / _STAMP
    if not force and stamp.is_file() and stamp.read_text().strip() == digest:
        return False
    dest.mkdir(parents=True, exist_ok=True)
    progress(f"downloading wheels of {requirements} into {dest}")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--only-binary=:all:",
            "-r",
            str(requirements),
            "-d",
            str(dest),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ImageBuildError(
            f"pip download of the wheels in {requirements} failed (exit {done.returncode}):\n"
            f"{(done.stderr or done.stdout)[-3000:]}"
        )
    stamp.write_text(digest + "\n")
    return True


def build_torch_image(
    client: docker.DockerClient,
    name: str = TORCH_IMAGE,
    *,
    progress: Progress = _quiet,
    rebuild: bool = False,
) -> str:
    """``sarbench-torch:bookworm`` from the base image and the host's torch wheel."""
    if has_image(client, name) and not rebuild:
        return image_digest(client, name)
    ensure_offline_image(client, BASE_IMAGE, progress=progress)
    with tempfile.TemporaryDirectory(prefix="sarbench-torch-") as tmp:
        context = Path(tmp)
        shutil.copy(TORCH_CONTEXT / "Dockerfile", context / "Dockerfile")
        shutil.copy(TORCH_CONTEXT / "requirements.txt", context / "requirements.txt")
        download_wheels(context / "requirements.txt", context / WHEELS, progress=progress)
        progress(f"building {name} (network off)")
        return build_image(client, context, name, buildargs={"BASE_IMAGE": BASE_IMAGE})


def ensure_offline_image(
    client: docker.DockerClient, name: str, *, progress: Progress = _quiet
) -> str | None:
    """Build ``name`` when it is one of the offline images above and absent; its ID, or
    None when ``name`` is not one of them (it must then exist or be pullable elsewhere)."""
    if name == BASE_IMAGE:
        return build_base_image(client, name, progress=progress)
    if name == TORCH_IMAGE:
        return build_torch_image(client, name, progress=progress)
    return None


def ensure_entry_image(
    client: docker.DockerClient,
    entry: Entry,
    *,
    build_args: dict[str, str] | None = None,
    progress: Progress = _quiet,
) -> str:
    """The image ID to run ``entry`` with: the prebuilt ``ref``, or a fresh offline build."""
    spec = entry.image
    if not spec.buildable:
        return image_digest(client, spec.name)
    assert spec.context is not None and spec.tag is not None  # checked when the entry loaded
    args = {**spec.build_args, **(build_args or {})}
    if "BASE_IMAGE" in args:
        ensure_offline_image(client, args["BASE_IMAGE"], progress=progress)
    if spec.requirements:
        download_wheels(spec.context / spec.requirements, spec.context / WHEELS, progress=progress)
    else:
        (spec.context / WHEELS).mkdir(exist_ok=True)  # the Dockerfile may COPY it regardless
    progress(f"building {spec.tag} from {spec.context} (network off)")
    return build_image(
        client,
        spec.context,
        spec.tag,
        dockerfile=spec.dockerfile,
        buildargs=args,
        labels={"sarbench.entry": entry.name},
    )
