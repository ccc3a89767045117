"""Dataset operations behind `sarbench datasets ...`: prepare, import, verify, show, open.

A generated dataset has two test splits: the *demo* test, made from a public test seed
(what the committed manifest lists, chip by chip), and the *private* test, made from the
maintainers' secret (:mod:`harness.datasets.secret`), of which the committed manifest
records the digest, chip count and group count only (its ``private_test`` block). The data
folder holds one of them; its manifest copy (``LOCAL_COPY``) describes what is on disk, and
:func:`verify` accepts it when its digest is the committed one (demo) or the committed
private digest (private).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from harness.datasets.layout import LOCAL_COPY, check_dataset_name
from harness.datasets.loader import SplitDir
from harness.datasets.manifest import Manifest
from harness.datasets.registry import (
    GENERATORS,
    check_known,
    generator,
    importer,
)
from harness.datasets.secret import (
    Secret,
    derive_test_seed,
    load_secret,
    require_secret,
    secret_path,
)
from harness.datasets.source import DatasetSource
from harness.datasets.store import replace_dir, verify_files, write_source
from harness.errors import (
    DatasetNotPreparedError,
    ManifestError,
    SarbenchError,
    UnknownNameError,
    VerificationError,
)
from harness.geo import GRID_TOLERANCE
from harness.settings import Settings

if TYPE_CHECKING:
    from harness.datasets.importers import Snap

TestChoice = Literal["demo", "private"]


@dataclass(frozen=True)
class Outcome:
    """What prepare or import did: ``frozen`` (manifest written: the first time, or on
    ``refreeze``), ``prepared`` (reproduced the committed manifest) or ``skipped`` (already
    there and verified). ``digest`` is that of the data now on disk, ``test_kind`` which
    test split it holds (``demo``, ``private`` or ``public``), ``notes`` what the user
    should know (printed by the CLI)."""

    name: str
    status: Literal["frozen", "prepared", "skipped"]
    digest: str
    path: Path
    counts: dict[str, int]
    test_kind: str = "public"
    notes: tuple[str, ...] = ()
    snapped: tuple[Snap, ...] = ()
    """Targets and masks written onto their input's exact grid (an import's)."""
    report: Path | None = None
    """The import report (``import-report.json`` beside the manifest), for an import."""


def committed_manifest(settings: Settings, name: str) -> Manifest | None:
    path = settings.manifest_path(name)
    return Manifest.load(path) if path.is_file() else None


def require_manifest(settings: Settings, name: str) -> Manifest:
    check_known(settings, name)
    m = committed_manifest(settings, name)
    if m is None:
        where = " nor ".join(str(d / name / LOCAL_COPY) for d in settings.manifest_dirs())
        raise ManifestError(
            f"dataset {name!r} has no manifest (neither {where}); "
            f"run `sarbench datasets prepare {name}` to freeze it"
        )
    return m


def prepare(
    settings: Settings,
    name: str,
    *,
    force: bool = False,
    progress: bool = True,
    test: TestChoice | None = None,
    refreeze: bool = False,
) -> Outcome:
    """Generate an embedded dataset under the data root and check it against its manifest.

    ``test`` chooses the test split: ``demo`` (the public demo test seed) or ``private``
    (the maintainers' secret); by default private when a secret is available, else demo.
    With a committed manifest the result must reproduce its digest (demo) or its
    ``private_test`` digest (private) exactly, else nothing is replaced and the error says
    what differs. Without one, or with ``refreeze``, the dataset is frozen: its manifest
    (listing the demo test, and the private test's digest when a secret is available) and
    its card are written to the manifests folder.
    """
    kind = generator(name)
    committed = None if refreeze else committed_manifest(settings, name)
    secret: Secret | None = None
    if test == "private":
        secret = require_secret(settings)
    elif test is None or committed is None:
        secret = load_secret(settings)
    chosen: TestChoice = test or ("private" if secret is not None else "demo")
    notes: list[str] = []
    if test is None and chosen == "private" and committed and committed.private_test is None:
        chosen = "demo"
        notes.append(
            "a test secret is available, but the committed manifest records no private test "
            "digest: prepared the demo test. A maintainer adds the private test with "
            f"`sarbench datasets prepare {name} --refreeze`"
        )

    def build(which: TestChoice, splits: tuple[str, ...] | None = None) -> DatasetSource:
        args: dict[str, Any] = {} if splits is None else {"splits": splits}
        if which == "private":
            assert secret is not None
            args.update(test="private", test_seed=derive_test_seed(secret, name))
        return kind.build(**args)

    if committed is None:
        return _freeze_generated(settings, name, build, chosen, secret, progress=progress)
    if chosen == "private":
        if committed.private_test is None:
            raise ManifestError(
                f"{name}: the committed manifest {settings.manifest_path(name)} records no "
                "private test digest, so a private test cannot be checked against it. A "
                f"maintainer with the test secret adds it: `sarbench --datasets-dir datasets "
                f"datasets prepare {name} --refreeze`, then commits datasets/{name}/. Or "
                "prepare the demo test: "
                f"`sarbench datasets prepare {name} --test demo`"
            )
        want = committed.private_test["digest"]
    else:
        want = committed.digest
    final = settings.dataset_dir(name)
    if not force:
        local = _local_copy(settings, name)
        if (
            local is not None
            and local.digest == want
            and final.is_dir()
            and not verify_files(local, final, progress=False)
        ):
            return Outcome(name, "skipped", want, final, local.count(), chosen, tuple(notes))
    staging = _staging(settings, name)
    try:
        made = write_source(build(chosen), staging, progress=progress)
        if made.digest != want:
            raise ManifestError(_mismatch(settings, committed, made, want, chosen, secret))
        made.save(staging / LOCAL_COPY)
        replace_dir(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Outcome(name, "prepared", made.digest, final, made.count(), chosen, tuple(notes))


def _staging(settings: Settings, name: str, tag: str = "staging") -> Path:
    settings.data_root.mkdir(parents=True, exist_ok=True)
    path = settings.data_root / f".{name}.{tag}-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    return path


def _freeze_generated(
    settings: Settings,
    name: str,
    build: Any,
    chosen: TestChoice,
    secret: Secret | None,
    *,
    progress: bool,
) -> Outcome:
    """Freeze a generated dataset: the committed manifest lists train, val (pretrain) and
    the demo test, plus the private test's digest when ``secret`` is given; the data
    folder gets the ``chosen`` test. The other test, where needed, is made alone (the test
    split only) in a side folder that is then removed."""
    from harness.datasets.card import write_card  # Pillow work, only when freezing

    before = committed_manifest(settings, name)
    final = settings.dataset_dir(name)
    staging = _staging(settings, name)
    side = _staging(settings, name, "side")
    notes: list[str] = []
    try:
        made = write_source(build(chosen), staging, progress=progress)
        other: TestChoice = "demo" if chosen == "private" else "private"
        if chosen == "private" or secret is not None:
            test_only = write_source(build(other, ("test",)), side, progress=progress)
            paired = with_test(made, test_only)
        else:
            paired = None
        demo, private = (made, paired) if chosen == "demo" else (paired, made)
        assert demo is not None
        committed = dataclasses.replace(
            demo, private_test=None if private is None else private_block(private)
        )
        write_card(settings, committed, data_dir=staging)
        committed.save(settings.dataset_meta_dir(name) / LOCAL_COPY)
        (committed if chosen == "demo" else made).save(staging / LOCAL_COPY)
        replace_dir(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(side, ignore_errors=True)
    if private is None:
        notes.append(
            "no test secret is available, so the committed manifest records no private test; "
            f"a maintainer with the secret adds it with `sarbench datasets prepare {name} "
            "--refreeze` (see docs/datasets.md)"
        )
    shipped, written = settings.package_datasets_dir / name, settings.dataset_meta_dir(name)
    if (shipped / LOCAL_COPY).is_file() and shipped.resolve() != written.resolve():
        notes.append(
            f"wrote the manifest and card to {written} (the work "
            f"folder), where they take precedence over {shipped}; to update the ones that ship "
            "with SARBench, run this from the repository with --datasets-dir datasets"
        )
    if before is not None:
        if before.digest != committed.digest:
            notes.append(f"the committed digest changed: {before.digest} -> {committed.digest}")
        old_private = (before.private_test or {}).get("digest")
        new_private = (committed.private_test or {}).get("digest")
        if old_private is None and new_private is not None:
            notes.append(f"recorded the private test digest {new_private}")
        elif old_private != new_private:
            notes.append(
                f"the private test digest changed: {old_private} -> {new_private}; runs "
                "recorded on the old one no longer compare with new ones"
            )
    digest = committed.digest if chosen == "demo" else made.digest
    return Outcome(name, "frozen", digest, final, made.count(), chosen, tuple(notes))


def _mismatch(
    settings: Settings,
    committed: Manifest,
    made: Manifest,
    want: str,
    chosen: TestChoice,
    secret: Secret | None,
) -> str:
    """Why a freshly generated dataset does not reproduce its committed digest."""
    name = committed.name
    where = settings.manifest_path(name)
    if chosen == "private":
        diffs = diff_manifests(without_test(committed), without_test(made))
        if not diffs:
            origin = secret.origin if secret is not None else "the test secret"
            return (
                f"{name}: the private test made with the test secret ({origin}) has digest "
                f"{made.digest}, but {where} records the private test digest {want}: this "
                "secret is not the one the manifest was frozen with (it was rotated, or it "
                "is another one). Nothing was replaced. If this secret is meant to be the "
                f"official one, a maintainer refreezes: `sarbench --datasets-dir datasets "
                f"datasets prepare {name} --refreeze`, and commits datasets/{name}/ (the "
                "official test and its "
                "digest change: runs recorded on the old one no longer compare). Otherwise "
                "restore the secret it was frozen with (a rotated one is kept beside it as "
                "test-secret.<UTC time>.old)"
            )
        head = (
            f"{name}: the data made now (with the private test) has digest {made.digest}, "
            f"but {where} records the private test digest {want}; nothing was replaced. "
            "Differences outside the test split (which is compared by its digest only):"
        )
    else:
        diffs = diff_manifests(committed, made)
        head = (
            f"{name}: the data made now has digest {made.digest}, but the committed "
            f"manifest {where} has {committed.digest}; nothing was replaced. Differences:"
        )
    shown = "\n".join(f"  - {d}" for d in diffs[:50])
    more = f"\n  ... and {len(diffs) - 50} more" if len(diffs) > 50 else ""
    return f"{head}\n{shown}{more}"


def without_test(m: Manifest) -> Manifest:
    """``m`` without its test split (to compare what a demo and a private preparation
    share)."""
    test = set(m.splits.get("test", []))
    return dataclasses.replace(
        m,
        splits={k: v for k, v in m.splits.items() if k != "test"},
        files={r: d for r, d in m.files.items() if not r.startswith("test/")},
        samples={k: v for k, v in m.samples.items() if k not in test},
        private_test=None,
    )


def with_test(base: Manifest, test: Manifest) -> Manifest:
    """``base`` with its test split (ids, files, samples, source) replaced by ``test``'s."""
    rest = without_test(base)
    ids = test.splits.get("test", [])
    splits = {k: (list(ids) if k == "test" else v) for k, v in base.splits.items()}
    splits.setdefault("test", list(ids))
    return dataclasses.replace(
        rest,
        splits=splits,
        files={**rest.files, **{r: d for r, d in test.files.items() if r.startswith("test/")}},
        samples={**rest.samples, **{k: test.samples[k] for k in ids if k in test.samples}},
        source=test.source,
    )


def private_block(private: Manifest) -> dict[str, Any]:
    """What the committed manifest records of the private test: nothing per chip."""
    ids = private.splits.get("test", [])
    return {
        "digest": private.digest,
        "n_chips": len(ids),
        "n_groups": private.n_groups("test") or len(ids),
    }


def _without_groups(m: Manifest) -> Manifest:
    samples = {k: {a: b for a, b in v.items() if a != "group"} for k, v in m.samples.items()}
    return dataclasses.replace(m, samples=samples)


def _without_roles(m: Manifest) -> Manifest:
    return dataclasses.replace(m, band_roles=None)


_FROZEN_BEFORE = {
    "independence groups": _without_groups,
    "band roles": _without_roles,
}


def _as_frozen_before(made: Manifest, committed: Manifest) -> tuple[Manifest, list[str]]:
    """``made`` without what ``committed`` was frozen before (independence groups, before
    schema /2; band roles), where leaving that out reproduces the committed digest, and a
    note saying so; else ``made`` unchanged and no note."""
    missing = []
    if made.has_groups() and not committed.has_groups():
        missing.append("independence groups")
    if made.band_roles is not None and committed.band_roles is None:
        missing.append("band roles")
    subsets = [[m] for m in missing] + ([missing] if len(missing) > 1 else [])
    for chosen in subsets:
        candidate = made
        for what in chosen:
            candidate = _FROZEN_BEFORE[what](candidate)
        if candidate.digest == committed.digest:
            names = " and ".join(chosen)
            return candidate, [
                f"the committed manifest of {made.name} names no {names} (it was frozen "
                "before they existed); the data was checked without them, so its digest "
                "stays. To record them (the digest changes), import again with --refreeze"
            ]
    return made, []


def import_dataset(
    settings: Settings,
    kind: str,
    source_dir: str | os.PathLike[str],
    *,
    name: str | None = None,
    task: str | None = None,
    progress: bool = True,
    refreeze: bool = False,
    parcels: str | os.PathLike[str] | None = None,
    about: dict[str, Any] | None = None,
    band_roles: tuple[str, ...] | None = None,
) -> Outcome:
    """Import real data with an importer; freezing works exactly as for :func:`prepare`.

    The source is always read again (never skipped), so importing another folder under a
    frozen name fails with the differences instead of passing silently (``refreeze``
    writes a new manifest instead). The manifest, the card and the import report go to the
    work folder (:meth:`Settings.dataset_meta_dir`). ``parcels`` (a vector file of the
    polygons to score), ``about`` (``classes``, ``licence``, ``citation``...) and
    ``band_roles`` are the folder importer's options.
    """
    src = Path(source_dir)
    if not src.is_dir():
        raise SarbenchError(f"{src}: source folder not found")
    options: dict[str, Any] = {}
    if parcels is not None:
        options["parcels"] = Path(parcels)
    if about and any(about.values()):
        options["about"] = about
    if band_roles:
        options["band_roles"] = tuple(band_roles)
    if options and kind != "folder":
        flags = ", ".join(
            {"parcels": "--parcels", "about": "--class/--licence/--citation"}.get(k, "--band-roles")
            for k in options
        )
        raise SarbenchError(
            f"{flags}: options of the folder importer; the {kind} importer states these itself"
        )
    source = importer(kind).build(source_dir=src, name=name, task=task, **options)
    if source.name in GENERATORS:
        raise SarbenchError(f"{source.name!r} is an embedded dataset; import under another --name")
    return materialise(
        settings, source, skip_if_verified=False, progress=progress, refreeze=refreeze
    )


def materialise(
    settings: Settings,
    source: DatasetSource,
    *,
    skip_if_verified: bool = True,
    progress: bool = True,
    refreeze: bool = False,
) -> Outcome:
    """Write ``source`` under the data root, then reproduce or freeze its manifest.

    Nothing under the data root or the manifests folder changes unless the whole dataset
    was written and agrees with the committed manifest (or is being frozen). A manifest
    frozen before independence groups existed (schema /1) is reproduced without them, so
    that its digest stays, and a note says so.
    """
    check_dataset_name(source.name)
    final = settings.dataset_dir(source.name)
    committed = None if refreeze else committed_manifest(settings, source.name)
    notes = list(getattr(source, "notes", ()))
    if (
        skip_if_verified
        and committed is not None
        and final.is_dir()
        and not verify_files(committed, final, progress=False)
    ):
        return Outcome(
            source.name, "skipped", committed.digest, final, committed.count(), committed.test_kind
        )
    staging = _staging(settings, source.name)
    try:
        manifest = write_source(source, staging, progress=progress)
        if committed is not None:
            if manifest.digest != committed.digest:
                manifest, dropped = _as_frozen_before(manifest, committed)
                notes += dropped
            if manifest.digest != committed.digest:
                diffs = diff_manifests(committed, manifest)
                shown = "\n".join(f"  - {d}" for d in diffs[:50])
                more = f"\n  ... and {len(diffs) - 50} more" if len(diffs) > 50 else ""
                raise ManifestError(
                    f"{source.name}: the data made now has digest {manifest.digest}, but the "
                    f"committed manifest {settings.manifest_path(source.name)} has "
                    f"{committed.digest}; nothing was replaced. Differences:\n{shown}{more}"
                )
            status: Literal["frozen", "prepared"] = "prepared"
        else:
            from harness.datasets.card import write_card  # Pillow work, only when freezing

            write_card(settings, manifest, data_dir=staging)
            manifest.save(settings.dataset_meta_dir(source.name) / LOCAL_COPY)
            status = "frozen"
        manifest.save(staging / LOCAL_COPY)
        replace_dir(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    snapped = tuple(getattr(source, "snapped", ()))
    report = None
    if manifest.source.get("kind") == "import":
        report = write_import_report(settings, manifest, status, snapped, notes)
    return Outcome(
        source.name,
        status,
        manifest.digest,
        final,
        manifest.count(),
        manifest.test_kind,
        tuple(notes),
        snapped,
        report,
    )


IMPORT_REPORT = "import-report.json"


def write_import_report(
    settings: Settings,
    manifest: Manifest,
    status: str,
    snapped: tuple[Snap, ...],
    notes: list[str],
) -> Path:
    """``<work folder>/datasets/<name>/import-report.json``: what the last import did: its
    status and digest, the counts, every target or mask written onto its input's exact grid
    (file, input, offset in pixels) and the notes. Rewritten by every import."""
    path = settings.dataset_meta_dir(manifest.name) / IMPORT_REPORT
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "dataset": manifest.name,
        "importer": manifest.source.get("importer"),
        "source_folder": manifest.source.get("source_folder"),
        "status": status,
        "digest": manifest.digest,
        "counts": manifest.count(),
        "grid_tolerance_pixels": GRID_TOLERANCE,
        "snapped": [s.to_dict() for s in snapped],
        "max_offset_pixels": max((s.offset for s in snapped), default=0.0),
        "notes": list(notes),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, path)
    return path


def diff_manifests(want: Manifest, got: Manifest) -> list[str]:
    """Readable differences between a committed manifest and a freshly made one."""
    out: list[str] = []
    for key in ("task", "bands"):
        if getattr(want, key) != getattr(got, key):
            out.append(f"{key}: committed {getattr(want, key)!r}, made {getattr(got, key)!r}")
    for split in sorted(set(want.splits) | set(got.splits)):
        a, b = set(want.splits.get(split, [])), set(got.splits.get(split, []))
        if a != b:
            out.append(f"split {split!r}: {len(a - b)} sample(s) missing, {len(b - a)} new")
    for rel in sorted(set(want.files) | set(got.files)):
        if rel not in got.files:
            out.append(f"{rel}: not produced")
        elif rel not in want.files:
            out.append(f"{rel}: produced but not in the manifest")
        elif want.files[rel] != got.files[rel]:
            out.append(f"{rel}: content differs")
    return out


def _local_copy(settings: Settings, name: str) -> Manifest | None:
    """The data folder's manifest copy, or None when it is missing or unreadable."""
    path = settings.dataset_dir(name) / LOCAL_COPY
    if not path.is_file():
        return None
    try:
        return Manifest.load(path)
    except ManifestError:
        return None


def accepted_digests(committed: Manifest) -> dict[str, str]:
    """The digests prepared data may have: the committed one (its own test: demo or
    public) and, for a generated dataset frozen with the secret, the private test's."""
    out = {committed.digest: committed.test_kind}
    if committed.private_test is not None:
        out[committed.private_test["digest"]] = "private"
    return out


def verify(settings: Settings, name: str, *, progress: bool = True) -> Manifest:
    """Check the data files of ``name`` against its committed manifest and return the
    manifest of the data on disk.

    The data folder's manifest copy says which data it holds: its digest must be the
    committed manifest's (then that is returned) or the committed private test digest
    (then the copy is returned: its ``digest`` is the private one and its ``test_kind``
    ``private``); every file must then match it. Raises :class:`VerificationError`
    listing every changed, missing or extra file.
    """
    committed = require_manifest(settings, name)
    folder = settings.dataset_dir(name)
    on_disk = committed
    problems: list[str] = []
    path = folder / LOCAL_COPY
    if path.is_file():
        try:
            local: Manifest | None = Manifest.load(path)
        except ManifestError as exc:
            local = None
            problems.append(f"{LOCAL_COPY}: unreadable ({exc}); re-run prepare")
        accepted = accepted_digests(committed)
        if local is not None and local.digest not in accepted:
            private = committed.private_test
            also = f" nor the committed private test's ({private['digest']})" if private else ""
            problems.append(
                f"{LOCAL_COPY}: describes data with digest {local.digest}, which is neither the "
                f"committed manifest's ({committed.digest}){also}; re-run "
                f"`sarbench datasets prepare {name}` (or import)"
            )
        elif local is not None and accepted[local.digest] == "private":
            if local.test_kind != "private":
                problems.append(
                    f"{LOCAL_COPY}: has the private digest but says its test is "
                    f"{local.test_kind!r}; re-run prepare"
                )
            on_disk = local
    problems += verify_files(on_disk, folder, progress=progress)
    if problems:
        raise VerificationError(name, problems)
    return on_disk


def is_prepared(settings: Settings, name: str) -> bool:
    """Cheap check: the data folder's manifest copy has the committed digest, or the
    committed private test digest."""
    committed = committed_manifest(settings, name)
    local = _local_copy(settings, name)
    if committed is None or local is None:
        return False
    return local.digest in accepted_digests(committed)


def open_split(settings: Settings, name: str, split: str) -> SplitDir:
    """A split of a prepared dataset, with errors that say how to fix what is missing."""
    manifest = require_manifest(settings, name)
    if split not in manifest.splits:
        raise UnknownNameError(f"split of {name}", split, manifest.splits)
    if not is_prepared(settings, name):
        raise DatasetNotPreparedError(
            f"dataset {name!r} is not prepared under {settings.data_root}; run "
            f"`sarbench datasets prepare {name}` (or `import` for real data)"
        )
    return SplitDir(settings.dataset_dir(name) / split)


def groups_of(settings: Settings, name: str, split: str) -> dict[str, str] | None:
    """The independence group of each chip of a prepared split (:meth:`Manifest.groups`),
    from the data folder's copy of the manifest (the one that describes the files scored),
    or None when the dataset names none."""
    local = settings.dataset_dir(name) / LOCAL_COPY
    manifest = Manifest.load(local) if local.is_file() else require_manifest(settings, name)
    return manifest.groups(split)


def describe(settings: Settings, name: str) -> dict[str, Any]:
    """Facts about a dataset for `sarbench datasets show` and `list`."""
    check_known(settings, name)
    m = committed_manifest(settings, name)
    kind = "synthetic" if name in GENERATORS else "imported"
    info: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "task": m.task if m else GENERATORS[name].task,
        "manifest": str(settings.manifest_path(name)) if m else None,
        "data_dir": str(settings.dataset_dir(name)),
        "prepared": is_prepared(settings, name),
    }
    if m is not None:
        info.update(
            digest=m.digest,
            bands=list(m.bands),
            splits=m.count(),
            groups={split: m.n_groups(split) for split in m.splits},
            files=len(m.files),
            test=m.test_kind,
            private_test=m.private_test,
            source=m.source,
        )
        local = _local_copy(settings, name) if info["prepared"] else None
        if local is not None:
            info["prepared_test"] = accepted_digests(m)[local.digest]
            info["prepared_digest"] = local.digest
    if name in GENERATORS:
        info["secret"] = str(secret_path(settings))
    return info
