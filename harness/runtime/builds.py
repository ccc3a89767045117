"""Building entry images offline: wheels downloaded on the host, then ``docker build`` with
the network off.

An entry's ``[image]`` either names a prebuilt image pinned by digest (``ref``) or a build
context. A build is checked before anything runs (:mod:`harness.runtime.buildcheck`: the
requirements are plain specifiers, the Dockerfile builds only from allowed base images and
its own stages and fetches nothing, the context stays in the entry's folder and away from
the data and the work folder). Then the wheels of ``requirements`` are downloaded on the
host, as an unprivileged user, into ``<context>/wheels/`` (skipped when a stamp says the
requirements have not changed), the ``BASE_IMAGE`` build argument is made available (the
offline images below are built when absent), and the image is built with
:func:`harness.runtime.images.build_image` and named by the harness
(``sarbench-entry/<entry>:<12 hex of its ID>``, label ``sarbench.entry=<entry>``). Docker's
layer cache makes a rebuild with nothing changed take a second or two.

Offline images the harness knows how to make:

- ``sarbench-base:bookworm``: Debian minbase with python3 (:func:`build_base_image`);
- ``sarbench-torch:bookworm``: the base plus a venv (``/opt/venv``, first on ``PATH``) with
  the CPU build of PyTorch: the baselines' ``BASE_IMAGE`` on machines without a registry.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import docker

import sarbench_io
from harness.entries import Entry
from harness.runtime.buildcheck import (
    BuildInputError,
    check_context,
    check_dockerfile,
    parse_requirements,
)
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
from harness.settings import Settings

CONTAINER_PACKAGE = Path(sarbench_io.__file__).parent
""":mod:`sarbench_io`, which :func:`stage_container_package` copies into entries' contexts."""
TORCH_IMAGE = "sarbench-torch:bookworm"
TORCH_CONTEXT = Path(__file__).parent / "torch_image"
WHEELS = "wheels"
_STAMP = ".requirements.sha256"
_NOBODY = 65534
ENTRY_LABEL = "sarbench.entry"
DEFAULT_BASES = (BASE_IMAGE, TORCH_IMAGE, "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime")


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
    """Download the wheels of ``requirements`` into ``dest`` for this Python.

    The file is parsed first (:func:`harness.runtime.buildcheck.parse_requirements`): plain
    specifiers only, so no option, URL or path in it ever reaches pip. pip gets the
    specifiers as arguments with ``--only-binary=:all:`` (no source distribution is built,
    so no package code runs on the host) and, when the harness runs as root, runs as uid
    65534 with no capability but reading files (:func:`_unprivileged`), into a fresh
    folder that only it can write; the wheels are then moved into ``dest``.

    Returns False (and downloads nothing) when ``dest`` already holds the wheels of these
    exact requirements.
    """
    specs = parse_requirements(requirements)
    digest = hashlib.sha256("\n".join(specs).encode()).hexdigest()
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise ImageBuildError(f"{dest}: must be a folder (not a link or a file) for the wheels")
    stamp = dest / _STAMP
    fresh = not force and stamp.is_file() and not stamp.is_symlink()
    if fresh and stamp.read_text().strip() == digest:
        return False
    dest.mkdir(parents=True, exist_ok=True)
    if not specs:
        stamp.write_text(digest + "\n")
        return True
    progress(f"downloading wheels of {requirements} into {dest}")
    with tempfile.TemporaryDirectory(prefix="sarbench-wheels-") as tmp:
        folder = Path(tmp) / "wheels"
        folder.mkdir()
        prefix = _unprivileged(Path(tmp), folder)
        done = subprocess.run(
            [
                *prefix,
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-cache-dir",
                "--only-binary=:all:",
                "-d",
                str(folder),
                "--",
                *specs,
            ],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "HOME": tmp, "PIP_NO_INPUT": "1"},
            cwd=tmp,
        )
        if done.returncode != 0:
            raise ImageBuildError(
                f"pip download of the wheels in {requirements} failed (exit {done.returncode}):"
                f"\n{(done.stderr or done.stdout)[-3000:]}"
            )
        for wheel in sorted(folder.iterdir()):
            if wheel.is_symlink() or not wheel.is_file() or wheel.suffix != ".whl":
                raise ImageBuildError(f"pip download left {wheel.name!r}, not a wheel file")
            target = dest / wheel.name
            if target.is_symlink():
                target.unlink()
            shutil.copyfile(wheel, target, follow_symlinks=False)
    stamp.unlink(missing_ok=True)
    stamp.write_text(digest + "\n")
    return True


def _unprivileged(home: Path, folder: Path) -> list[str]:
    """The command prefix that drops root for pip: uid/gid 65534, no supplementary groups,
    and no capability but ``CAP_DAC_READ_SEARCH`` (to read this Python where it lives, e.g.
    under a private /root); it can write nothing of root's. Empty when not root."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise ImageBuildError(
            "the harness runs as root and needs `setpriv` (util-linux) to download wheels as "
            "an unprivileged user: install util-linux, or run sarbench as a normal user"
        )
    for path in (home, folder):
        os.chown(path, _NOBODY, _NOBODY)
    return [
        setpriv,
        f"--reuid={_NOBODY}",
        f"--regid={_NOBODY}",
        "--clear-groups",
        "--inh-caps=-all,+dac_read_search",
        "--ambient-caps=+dac_read_search",
        "--bounding-set=-all,+dac_read_search",
    ]


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
        return build_image(
            client,
            context,
            name,
            buildargs={"BASE_IMAGE": BASE_IMAGE},
            on_step=lambda step: progress(f"  {step}"),
        )


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


def allowed_bases() -> tuple[str, ...]:
    """Base images an entry's Dockerfile may build ``FROM``: the offline images, the CUDA
    PyTorch image the baselines' Dockerfile names, and any the maintainers list in
    ``$SARBENCH_BASE_IMAGES`` (comma-separated)."""
    extra = [i.strip() for i in os.environ.get("SARBENCH_BASE_IMAGES", "").split(",")]
    return (*DEFAULT_BASES, *(i for i in extra if i))


def check_build_inputs(
    entry: Entry, args: dict[str, str], settings: Settings | None = None
) -> None:
    """Refuse an entry's build before anything runs: a Dockerfile outside the allow-list
    rules, or a context overlapping the data root or the work folder."""
    spec = entry.image
    assert spec.context is not None
    forbidden = {}
    if settings is not None:
        forbidden = {"data root": settings.data_root, "work folder": settings.home}
    problems = check_context(
        entry.path,
        spec.context,
        spec.context / spec.dockerfile,
        confined_to=spec.context,
        forbidden=forbidden,
    )
    problems += check_dockerfile(
        spec.context / spec.dockerfile, build_args=args, allowed_bases=allowed_bases()
    )
    if problems:
        raise BuildInputError(f"entry {entry.name!r} ({entry.path})", problems)


def stage_container_package(context: Path) -> None:
    """Copy the :mod:`sarbench_io` package (its ``.py`` files, no ``__pycache__``) into
    ``<context>/sarbench_io/``, replacing what is there, so that an entry's Dockerfile can
    ``COPY sarbench_io/`` although its context cannot reach the repository. Called before
    every build (it is cheap). A ``<context>/sarbench_io`` that is a symbolic link is
    refused; a context that holds the package itself (the repository's root, the
    baselines' context) is left as it is.
    """
    dest = context / CONTAINER_PACKAGE.name
    if dest.is_symlink():
        raise ImageBuildError(f"{dest}: must be a folder, not a symbolic link")
    if dest.resolve() == CONTAINER_PACKAGE.resolve():
        return
    if dest.is_dir():
        shutil.rmtree(dest)
    elif dest.exists():
        dest.unlink()
    for source in sorted(CONTAINER_PACKAGE.rglob("*.py")):
        rel = source.relative_to(CONTAINER_PACKAGE)
        if "__pycache__" in rel.parts:
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest / rel)  # the source's times too: Docker's cache holds


def ensure_entry_image(
    client: docker.DockerClient,
    entry: Entry,
    *,
    build_args: dict[str, str] | None = None,
    progress: Progress = _quiet,
    settings: Settings | None = None,
) -> str:
    """The image ID to run ``entry`` with: its pinned ``ref``, or a fresh offline build.

    A build is checked first (:func:`check_build_inputs`), then tagged by the harness as
    ``sarbench-entry/<entry>:<12 hex of the image ID>`` and labelled ``sarbench.entry``;
    an image whose label names another entry is refused.
    """
    spec = entry.image
    if not spec.buildable:
        ref = spec.ref or ""
        image_id = resolve_pinned(client, ref)
        if "sha256:" in ref:  # an entry file's ref (`sarbench validate IMAGE` may use a tag)
            _check_owner(client, image_id, entry.name)
        return image_id
    assert spec.context is not None and spec.repository is not None
    args = {**spec.build_args, **(build_args or {})}
    check_build_inputs(entry, args, settings)
    # two harness processes building one context at once would trample each other's
    # wheels/ and sarbench_io/ copies: one at a time (the second then hits Docker's cache)
    with _build_lock(spec.context):
        return _build_entry(client, entry, args, progress)


def _build_lock(context: Path) -> contextlib.AbstractContextManager[None]:
    """An ``flock`` per build context, kept outside the context (the system temp folder)."""
    digest = hashlib.sha256(str(context.resolve()).encode()).hexdigest()[:16]
    locks = Path(tempfile.gettempdir()) / "sarbench-build-locks"
    locks.mkdir(exist_ok=True)
    return _flock(locks / f"{digest}.lock")


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _build_entry(
    client: docker.DockerClient, entry: Entry, args: dict[str, str], progress: Progress
) -> str:
    spec = entry.image
    assert spec.context is not None and spec.repository is not None
    if "BASE_IMAGE" in args:
        ensure_offline_image(client, args["BASE_IMAGE"], progress=progress)
    if spec.requirements:
        download_wheels(spec.context / spec.requirements, spec.context / WHEELS, progress=progress)
    else:
        wheels = spec.context / WHEELS
        if wheels.is_symlink():
            raise ImageBuildError(f"{wheels}: must be a folder, not a symbolic link")
        wheels.mkdir(exist_ok=True)  # the Dockerfile may COPY it regardless
    stage_container_package(spec.context)
    progress(f"building {spec.repository} from {spec.context} (network off)")
    image_id = build_image(
        client,
        spec.context,
        None,
        dockerfile=spec.dockerfile,
        buildargs=args,
        labels={ENTRY_LABEL: entry.name},
        on_step=lambda step: progress(f"  {step}"),
    )
    _check_owner(client, image_id, entry.name)
    client.images.get(image_id).tag(spec.repository, tag=image_id.removeprefix("sha256:")[:12])
    return image_id


def resolve_pinned(client: docker.DockerClient, ref: str) -> str:
    """The image ID of a pinned reference (an image ID or ``name@sha256:...``), checked.
    (An entry file's ``ref`` is always pinned; ``sarbench validate IMAGE`` may name a local
    image by tag, which is resolved to its ID here once.)"""
    image_id = image_digest(client, ref)
    if "@sha256:" not in ref and not ref.startswith("sha256:"):
        return image_id
    if ref.startswith("sha256:"):
        if image_id != ref:
            raise ImageBuildError(f"image {ref} resolved to {image_id}, not itself")
        return image_id
    repo_digests = client.images.get(image_id).attrs.get("RepoDigests") or []
    if ref not in repo_digests:
        raise ImageBuildError(
            f"image {ref!r} is not pinned in the engine (its repo digests: "
            f"{', '.join(repo_digests) or 'none'})"
        )
    return image_id


def _check_owner(client: docker.DockerClient, image_id: str, entry: str) -> None:
    labels = client.images.get(image_id).labels or {}
    owner = labels.get(ENTRY_LABEL)
    if owner is not None and owner != entry:
        raise ImageBuildError(
            f"image {image_id[:19]} belongs to entry {owner!r}, not {entry!r}: an entry never "
            "runs another entry's image"
        )
