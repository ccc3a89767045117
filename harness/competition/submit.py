"""``sarbench submit``: validate an entry, then write its bundle (:mod:`.bundle`).

The image in the bundle is the one validation ran: its ID comes from the validation's run
records, and ``docker save`` takes it by that ID. A validation that fails writes nothing.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.competition.bundle import save_image, write_bundle
from harness.entries import Entry, get_entry, load_entry
from harness.errors import SarbenchError
from harness.runner.executor import RunOptions, make_context
from harness.runner.validate import Validation, validate_all
from harness.settings import Settings

Echo = Callable[[str], None]


def _quiet(_: str) -> None:
    """Says nothing."""


class SubmitError(SarbenchError):
    """The entry cannot be submitted (it did not validate, or its image is not one)."""


@dataclass(frozen=True)
class Submitted:
    """What ``submit`` wrote: the bundle, its digest, its size and the validation."""

    path: Path
    digest: str
    bytes: int
    image_id: str
    validation: Validation


def entry_of(settings: Settings, target: str) -> Entry:
    """The entry ``target`` names: an entry file, or a name in the registry (a folder or
    an image needs an entry file first: ``sarbench new``)."""
    path = Path(target)
    if target.endswith(".toml") or path.is_file():
        return load_entry(path)
    if path.is_dir():
        raise SubmitError(
            f"{target}: a folder cannot be submitted as it is: give it an entry file "
            "(`sarbench new NAME` writes one; docs/competing.md)"
        )
    return get_entry(settings.submissions_dir, target)


def submit(
    settings: Settings,
    target: str,
    out: Path,
    *,
    profile: str = "quick",
    dataset: str | None = None,
    docker_host: str | None = None,
    echo: Echo = _quiet,
) -> Submitted:
    """Validate ``target`` (every dataset of its tasks known here, or ``dataset``) under
    ``profile`` on Docker, then write the bundle to ``out``. A failed validation raises
    :class:`SubmitError` with the validation's report, and nothing is written."""
    from harness.conditions.probe import conditions
    from harness.conditions.profiles import get_profile

    entry = entry_of(settings, target)
    if out.exists() and not out.is_file():
        raise SubmitError(f"{out}: exists and is not a file; choose another --out")
    opts = RunOptions("docker", profile, True, docker_host, None, ())
    cond = conditions(get_profile(settings.profiles_dir, profile), allow_mismatch=True)
    ctx = make_context(settings, opts, cond, echo=echo, progress=echo)
    folder = settings.home / "validate"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        runs = Path(tempfile.mkdtemp(prefix=f"submit-{entry.name}-", dir=folder))
        validation = validate_all(ctx, entry, runs_dir=runs, dataset=dataset)
        if not validation.passed:
            raise SubmitError(
                f"{entry.name} did not validate, so no bundle was written:\n\n"
                + validation.render(target)
            )
        image_id = _validated_image(validation, ctx.images.get(entry.name))
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".sarbench-submit-", dir=out.parent) as tmp:
            image_tar = Path(tmp) / "image.tar"
            echo(f"saving image {image_id[:19]} (docker save)")
            save_image(ctx.backend.client, image_id, image_tar)  # type: ignore[attr-defined]
            echo(f"writing {out}")
            digest = write_bundle(
                out,
                entry_text=entry.path.read_text(encoding="utf-8"),
                validation={
                    **validation.to_json(),
                    "image_id": image_id,
                    "profile": profile,
                },
                image_tar=image_tar,
                image_id=image_id,
                entry=entry.name,
                team=entry.team,
            )
    finally:
        ctx.backend.close()
    return Submitted(out, digest, out.stat().st_size, image_id, validation)


def _validated_image(validation: Validation, built: str | None) -> str:
    """The one image ID every validated run ran (and the context built)."""
    seen = {
        check.get("image_digest")
        for check in validation.to_json()["datasets"]
        if check.get("status") == "pass"
    }
    if len(seen) != 1 or None in seen or (built is not None and built not in seen):
        raise SubmitError(
            f"validation ran image(s) {', '.join(sorted(str(s) for s in seen))}, built "
            f"{built}: not one image; run `sarbench submit` again"
        )
    return str(seen.pop())
