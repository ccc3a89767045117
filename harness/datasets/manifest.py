"""The frozen manifest of a dataset: split membership, per-file content digests, one digest.

``datasets/<name>/manifest.json`` is committed. Its ``digest`` covers the task, the band
names, the splits, every file's content digest and, where the dataset names them, the
chips' independence groups (not the dataset's name, nor the ``source`` block and the other
per-chip facts of ``samples``, which only describe), so two copies of the same content have
the same digest wherever and however they were made.

Schema ``sarbench.manifest/2`` adds the independence groups (``samples[id]["group"]``) and,
for a generated dataset, the ``private_test`` block: the digest, chip count and group count
of the dataset as prepared with the maintainers' test secret, and nothing per chip.
Manifests of schema ``/1`` still read, with their digests unchanged: groups enter the
digest only where a manifest has them.

``band_roles`` (optional, any schema): what each band is, in band order, in the
vocabulary of :mod:`harness.bands` (``["pre", "post"]``, ``["VV", "VH"]``). Like groups, it
enters the digest only where a manifest has it; without it the roles are read off the
band names where they are unambiguous (:func:`harness.bands.band_roles`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.bands import check_roles
from harness.datasets.layout import KINDS, SPLIT_NAME, SUFFIX, check_sample_id, rel_path
from harness.errors import ManifestError

SCHEMA = "sarbench.manifest/2"
READS = ("sarbench.manifest/1", SCHEMA)
TEST_KINDS = ("demo", "private", "public")
PRIVATE_KEYS = ("digest", "n_chips", "n_groups")


@dataclass
class Manifest:
    name: str
    task: str
    bands: tuple[str, ...]
    splits: dict[str, list[str]]
    files: dict[str, str]
    source: dict[str, Any] = field(default_factory=dict)
    samples: dict[str, dict[str, Any]] = field(default_factory=dict)
    private_test: dict[str, Any] | None = None
    band_roles: tuple[str, ...] | None = None
    """What each band is (``("pre", "post")``, ``("VV", "VH")``), where the dataset says;
    :func:`harness.bands.band_roles` falls back on the band names."""

    @property
    def digest(self) -> str:
        body: dict[str, Any] = {
            "task": self.task,
            "bands": list(self.bands),
            "splits": {k: sorted(v) for k, v in sorted(self.splits.items())},
            "files": dict(sorted(self.files.items())),
        }
        groups = {
            sid: self.samples[sid]["group"]
            for ids in self.splits.values()
            for sid in ids
            if "group" in self.samples.get(sid, {})
        }
        if groups:  # absent from /1 manifests, whose digests stay what they were
            body["groups"] = dict(sorted(groups.items()))
        if self.band_roles is not None:  # absent from older manifests: digests unchanged
            body["band_roles"] = list(self.band_roles)
        raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        return "sha256:" + hashlib.sha256(raw).hexdigest()

    @property
    def test_kind(self) -> str:
        """Which test split this manifest describes: ``demo`` (a generated dataset's test
        from its public demo test seed), ``private`` (from the maintainers' secret) or
        ``public`` (imported data whose test labels are published, e.g. Sen1Floods11)."""
        kind = self.source.get("test")
        return kind if kind in ("demo", "private") else "public"

    def n_groups(self, split: str) -> int | None:
        """How many independence groups ``split`` has (None: the dataset names none)."""
        groups = self.groups(split)
        return None if groups is None else len(set(groups.values()))

    def has_groups(self) -> bool:
        """Whether any chip names its independence group."""
        return any("group" in meta for meta in self.samples.values())

    @property
    def held_out(self) -> tuple[str, ...]:
        """The splits no run trains on: ``test`` and any other the source holds out (its
        ``source.about.held_out_splits``, e.g. Sen1Floods11's ``bolivia``)."""
        about = self.source.get("about") if isinstance(self.source, dict) else None
        named = about.get("held_out_splits") if isinstance(about, dict) else None
        extra = [s for s in named or () if isinstance(s, str) and s in self.splits]
        return tuple(dict.fromkeys(["test", *extra]))

    def groups(self, split: str) -> dict[str, str] | None:
        """Each chip of ``split`` -> its independence group (``samples[id]["group"]``: what
        makes chips correlated, a place or an event block), or None when the dataset names
        no group for some chip of the split (then every chip counts as its own group, and
        intervals are too narrow if chips are correlated)."""
        out: dict[str, str] = {}
        for sid in self.splits.get(split, []):
            group = self.samples.get(sid, {}).get("group")
            if not isinstance(group, str) or not group:
                return None
            out[sid] = group
        return out

    def split_of(self) -> dict[str, str]:
        """Sample id -> split."""
        return {sid: split for split, ids in self.splits.items() for sid in ids}

    def count(self) -> dict[str, int]:
        return {split: len(ids) for split, ids in self.splits.items()}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": SCHEMA,
            "name": self.name,
            "task": self.task,
            "bands": list(self.bands),
        }
        if self.band_roles is not None:
            out["band_roles"] = list(self.band_roles)
        out["digest"] = self.digest
        if self.private_test is not None:
            out["private_test"] = {k: self.private_test[k] for k in PRIVATE_KEYS}
        out.update(
            source=self.source,
            splits={k: sorted(v) for k, v in self.splits.items()},
            samples={k: self.samples[k] for k in sorted(self.samples)},
            files=dict(sorted(self.files.items())),
        )
        return out

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically (a temporary file, then a rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Manifest:
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise ManifestError(f"{path}: manifest not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ManifestError(f"{path}: not a readable JSON manifest ({exc})") from exc
        return cls.from_dict(raw, origin=str(path))

    @classmethod
    def from_dict(cls, raw: Any, origin: str = "manifest") -> Manifest:
        """Parse and check a manifest; every problem found is listed in one error."""
        problems: list[str] = []
        if not isinstance(raw, dict):
            raise ManifestError(f"{origin}: top level must be a JSON object")
        if raw.get("schema") not in READS:
            problems.append(
                f"schema must be one of {', '.join(map(repr, READS))}, found {raw.get('schema')!r}"
            )
        name, task = raw.get("name"), raw.get("task")
        for key, val in (("name", name), ("task", task)):
            if not isinstance(val, str) or not val:
                problems.append(f"{key!r} must be a non-empty string")
        bands = raw.get("bands")
        if not isinstance(bands, list) or not all(isinstance(b, str) for b in bands) or not bands:
            problems.append("'bands' must be a non-empty list of strings")
            bands = []
        splits = _check_splits(raw.get("splits"), problems)
        files = _check_files(raw.get("files"), splits, problems)
        source = raw.get("source", {})
        samples = raw.get("samples", {})
        if not isinstance(source, dict):
            problems.append("'source' must be an object")
            source = {}
        if not isinstance(samples, dict) or not all(isinstance(v, dict) for v in samples.values()):
            problems.append("'samples' must map sample ids to objects")
            samples = {}
        for sid, meta in samples.items():
            group = meta.get("group", "")
            if "group" in meta and (not isinstance(group, str) or not group):
                problems.append(f"sample {sid!r}: 'group' must be a non-empty string")
        private = _check_private(raw.get("private_test"), problems)
        roles = raw.get("band_roles")
        if roles is not None:
            problems += [f"'band_roles': {p}" for p in check_roles(roles, len(bands) or None)]
        if problems:
            raise ManifestError(f"{origin}: " + "; ".join(problems))
        m = cls(
            name=name,
            task=task,
            bands=tuple(bands),
            splits=splits,
            files=files,
            source=source,
            samples=samples,
            private_test=private,
            band_roles=tuple(roles) if roles is not None else None,
        )
        stated = raw.get("digest")
        if stated != m.digest:
            raise ManifestError(
                f"{origin}: stated digest {stated!r} does not match its content ({m.digest}); "
                "the manifest was edited by hand or is corrupt"
            )
        return m


def _check_private(raw: Any, problems: list[str]) -> dict[str, Any] | None:
    """The ``private_test`` block: exactly a digest, a chip count and a group count."""
    if raw is None:
        return None
    ok = (
        isinstance(raw, dict)
        and set(raw) == set(PRIVATE_KEYS)
        and isinstance(raw["digest"], str)
        and raw["digest"].startswith("sha256:")
        and len(raw["digest"]) == 71
        and all(
            isinstance(raw[k], int) and not isinstance(raw[k], bool) and raw[k] >= 0
            for k in ("n_chips", "n_groups")
        )
    )
    if not ok:
        problems.append(
            '\'private_test\' must be exactly {"digest": "sha256:...", "n_chips": N, '
            '"n_groups": G} (nothing per chip)'
        )
        return None
    return dict(raw)


def _check_splits(raw: Any, problems: list[str]) -> dict[str, list[str]]:
    if not isinstance(raw, dict) or not raw:
        problems.append("'splits' must be a non-empty object of split name -> list of ids")
        return {}
    splits: dict[str, list[str]] = {}
    seen: dict[str, str] = {}
    for split, ids in raw.items():
        if not isinstance(split, str) or not SPLIT_NAME.match(split):
            problems.append(f"bad split name {split!r}")
            continue
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            problems.append(f"split {split!r} must be a list of sample ids")
            continue
        for sid in ids:
            try:
                check_sample_id(sid)
            except ValueError as exc:
                problems.append(str(exc))
            if sid in seen:
                problems.append(f"sample {sid!r} is in both {seen[sid]!r} and {split!r}")
            seen[sid] = split
        splits[split] = list(ids)
    return splits


def _check_files(raw: Any, splits: dict[str, list[str]], problems: list[str]) -> dict[str, str]:
    if not isinstance(raw, dict):
        problems.append("'files' must be an object of relative path -> digest")
        return {}
    files: dict[str, str] = {}
    for rel, digest in raw.items():
        parts = rel.split("/") if isinstance(rel, str) else []
        ok = (
            len(parts) == 3
            and parts[0] in splits
            and parts[1] in KINDS
            and parts[2].endswith(SUFFIX)
            and parts[2][: -len(SUFFIX)] in splits[parts[0]]
        )
        if not ok:
            problems.append(
                f"file {rel!r} is not <split>/<inputs|targets|valid>/<id>.tif of a listed sample"
            )
            continue
        if not isinstance(digest, str) or not digest.startswith("sha256:") or len(digest) != 71:
            problems.append(f"file {rel!r} has a malformed digest")
            continue
        files[rel] = digest
    for split, ids in splits.items():
        for sid in ids:
            if rel_path(split, "inputs", sid) not in raw:
                problems.append(f"sample {sid!r} of split {split!r} has no inputs file")
    return files
