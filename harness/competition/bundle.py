"""The submission bundle: one uncompressed tar file a competitor sends, nothing else.

Members, in this order, each a regular file at the top level:

| member | what |
|---|---|
| ``entry.toml`` | the entry file, as validated |
| ``validation.json`` | the validation record (``sarbench validate``'s findings, the image ID) |
| ``image.tar`` | ``docker save`` of the validated image, by its ID |
| ``manifest.json`` | SHA-256 and size of each member above, and of the archive before it |

``manifest.json`` is last: its ``whole`` digest covers every byte of the archive before its
own header (the other members' headers, contents and padding). Its own header must be the
canonical one (mode, owner, time) and everything after its content must be zeros, so one
byte changed anywhere is refused, naming what does not match. The **bundle digest** is the
SHA-256 of ``manifest.json``: ``sarbench submit`` prints it, to send beside the file.

Nothing is read whole into memory: the image streams from the engine into the bundle, and
checking hashes the file in chunks.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from harness import __version__
from harness.errors import SarbenchError, printable

SCHEMA = "sarbench.bundle/1"
ENTRY, VALIDATION, IMAGE, MANIFEST = "entry.toml", "validation.json", "image.tar", "manifest.json"
MEMBERS = (ENTRY, VALIDATION, IMAGE, MANIFEST)
SMALL_CAPS = {ENTRY: 1 << 20, VALIDATION: 16 << 20, MANIFEST: 1 << 20}
"""The most bytes each small member may have (the image's cap is the benchmark's)."""
CHUNK = 1 << 20
_MODE = 0o644


class BundleError(SarbenchError):
    """A bundle that cannot be accepted; lists every problem and names the file."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        lines = "\n".join(f"  - {printable(p)}" for p in problems)
        super().__init__(f"{path}: bundle refused ({len(problems)} problem(s)):\n{lines}")
        self.path, self.problems = path, problems


@dataclass(frozen=True)
class Bundle:
    """A bundle whose structure was checked (:func:`open_bundle`); its digests are checked
    by :func:`verify_digests`."""

    path: Path
    manifest: dict[str, Any]
    entry_text: str
    validation: dict[str, Any]
    members: dict[str, tarfile.TarInfo]

    @property
    def digest(self) -> str:
        """The bundle digest: ``sha256:`` of ``manifest.json``."""
        return str(self.manifest["_digest"])

    @property
    def image_id(self) -> str:
        return str(self.manifest["image_id"])

    @property
    def image_bytes(self) -> int:
        return int(self.members[IMAGE].size)


class _HashingWriter(io.RawIOBase):
    """A write-only file that hashes and counts what goes through it to ``out``."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out, self.sha, self.count = out, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.count

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.out.write(view)
        self.sha.update(view)
        self.count += len(view)
        return len(view)


def _info(name: str, size: int) -> tarfile.TarInfo:
    """The canonical header of a member: a regular file, mode 0644, owner 0, time 0."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, _MODE, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def save_image(client: Any, image_id: str, dest: Path) -> None:
    """``docker save`` of ``image_id`` streamed into ``dest`` (:func:`write_bundle` hashes it
    as it copies it into the bundle)."""
    with open(dest, "wb") as out:
        for chunk in client.images.get(image_id).save(chunk_size=CHUNK, named=False):
            out.write(chunk)


def write_bundle(
    out: Path,
    *,
    entry_text: str,
    validation: dict[str, Any],
    image_tar: Path,
    image_id: str,
    entry: str,
    team: str,
) -> str:
    """Write the bundle to ``out`` (atomically: a partial file never has its name); return
    the bundle digest. ``image_tar`` is a ``docker save`` of ``image_id``."""
    small = {
        ENTRY: entry_text.encode("utf-8"),
        VALIDATION: json.dumps(validation, indent=1, sort_keys=True).encode("utf-8"),
    }
    partial = out.with_name(f".{out.name}.partial")
    members: dict[str, dict[str, Any]] = {}
    with open(partial, "wb") as raw:
        sink = _HashingWriter(raw)
        with tarfile.open(fileobj=sink, mode="w", format=tarfile.GNU_FORMAT) as tar:  # type: ignore[call-overload]
            for name, data in small.items():
                tar.addfile(_info(name, len(data)), io.BytesIO(data))
                members[name] = {"sha256": _sha(data), "bytes": len(data)}
            size = image_tar.stat().st_size
            with open(image_tar, "rb") as image:
                sha = hashlib.sha256()
                tar.addfile(_info(IMAGE, size), _Tee(image, sha))
            members[IMAGE] = {"sha256": f"sha256:{sha.hexdigest()}", "bytes": size}
            body = {
                "schema": SCHEMA,
                "entry": entry,
                "team": team,
                "image_id": image_id,
                "members": members,
                "whole": {"sha256": f"sha256:{sink.sha.hexdigest()}", "bytes": sink.count},
                "harness_version": __version__,
                "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            manifest = _canonical({**body, "self": _self_digest(body)})
            tar.addfile(_info(MANIFEST, len(manifest)), io.BytesIO(manifest))
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(partial, out)
    return _sha(manifest)


class _Tee(io.RawIOBase):
    """Reads from ``source`` and hashes what it reads."""

    def __init__(self, source: IO[bytes], sha: Any) -> None:
        self.source, self.sha = source, sha

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.sha.update(data)
        return data


def _canonical(doc: dict[str, Any]) -> bytes:
    """The manifest's bytes: indented JSON with sorted keys; any other spelling is refused."""
    return json.dumps(doc, indent=1, sort_keys=True).encode("utf-8")


def _self_digest(body: dict[str, Any]) -> str:
    """The manifest's own digest (``self``): of its other fields, compact JSON."""
    return _sha(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8"))


def _sha(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


# ----------------------------------------------------------------------------- reading


def open_bundle(path: Path, image_cap: int | None = None) -> Bundle:
    """The bundle at ``path`` with its structure checked: exactly the four members, in
    order, each a regular file with a plain name; the small ones within their caps and
    readable; the manifest's sizes those of the archive; the image within ``image_cap``
    (by the manifest and by the archive). Raises :class:`BundleError` listing every
    problem. Digests are not checked here (:func:`verify_digests`)."""
    problems: list[str] = []
    try:
        tar = tarfile.open(path, mode="r:")  # noqa: SIM115 - closed by `with tar` below
    except (OSError, tarfile.TarError) as exc:
        raise BundleError(
            path,
            [f"not a bundle made by `sarbench submit`, or its first tar header is damaged: {exc}"],
        ) from None
    with tar:
        try:
            infos = tar.getmembers()
        except tarfile.TarError as exc:
            raise BundleError(path, [f"damaged tar structure: {exc}"]) from None
        problems += _damaged_after(path, infos)
        members = _structure(infos, problems)
        if problems:
            raise BundleError(path, problems)
        header = _header_problem(path, members[MANIFEST])
        if header:
            raise BundleError(path, [header])
        texts = {
            name: _small(tar, members[name], problems) for name in (ENTRY, VALIDATION, MANIFEST)
        }
    manifest = _manifest(texts[MANIFEST], members, problems)
    validation = _json(VALIDATION, texts[VALIDATION], problems)
    cap_problem = _image_cap(manifest, members[IMAGE].size, image_cap)
    problems += [cap_problem] if cap_problem else []
    if problems:
        raise BundleError(path, problems)
    entry_text = texts[ENTRY].decode("utf-8", errors="replace")
    manifest["_digest"] = _sha(texts[MANIFEST])
    return Bundle(path, manifest, entry_text, validation, members)


def check_image_cap(bundle: Bundle, cap: int) -> None:
    """Refuse an opened bundle whose image is over ``cap`` (by the manifest's size or the
    archive's), as :func:`open_bundle` with ``image_cap`` would."""
    problem = _image_cap(bundle.manifest, bundle.image_bytes, cap)
    if problem:
        raise BundleError(bundle.path, [problem])


def _damaged_after(path: Path, infos: list[tarfile.TarInfo]) -> list[str]:
    """Where the tar reader stopped early (a damaged header reads as the end of the
    archive), why; empty when what follows the last member is the zeros of a tar's end."""
    last = infos[-1] if infos else None
    end = 0 if last is None else last.offset_data + -(-last.size // tarfile.BLOCKSIZE) * 512
    with open(path, "rb") as f:
        f.seek(end)
        block = f.read(tarfile.BLOCKSIZE)
    if len(block) < tarfile.BLOCKSIZE:
        return [f"the file ends early, after {last.name if last else 'nothing'}: cut short"]
    if any(block):
        after = f"after {last.name}" if last else "at the start"
        return [f"the tar header {after} is damaged (its checksum does not match): changed"]
    return []


def _structure(infos: list[tarfile.TarInfo], problems: list[str]) -> dict[str, tarfile.TarInfo]:
    """The members by name, where they are exactly :data:`MEMBERS` in order, each a
    regular file with a plain name; every deviation is appended to ``problems``."""
    names = [i.name for i in infos]
    for info in infos:
        if info.name not in MEMBERS:
            why = "a path with '..'" if ".." in info.name.split("/") else "unknown member"
            problems.append(f"{info.name!r}: {why} (a bundle holds {', '.join(MEMBERS)} only)")
        elif not info.isreg():
            problems.append(f"{info.name}: not a regular file (links and folders are refused)")
    for name in MEMBERS:
        if names.count(name) != 1:
            problems.append(f"{name}: {'missing' if name not in names else 'appears twice'}")
    if not problems and names != list(MEMBERS):
        problems.append(f"members out of order: {', '.join(names)} (expected {', '.join(MEMBERS)})")
    return {i.name: i for i in infos}


def _header_problem(path: Path, info: tarfile.TarInfo) -> str | None:
    """Why the manifest's tar header is not, byte for byte, the one ``submit`` writes
    (the only header the ``whole`` digest does not cover), or None."""
    canonical = _info(info.name, info.size).tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
    with open(path, "rb") as f:
        f.seek(info.offset)
        actual = f.read(info.offset_data - info.offset)
    if actual != canonical:
        return f"{MANIFEST}: its tar header is not the one `sarbench submit` writes (changed)"
    return None


def _small(tar: tarfile.TarFile, info: tarfile.TarInfo, problems: list[str]) -> bytes:
    """The bytes of a small member, or b"" with a problem when it is over its cap."""
    cap = SMALL_CAPS[info.name]
    if info.size > cap:
        problems.append(f"{info.name}: {info.size:,} bytes, more than its cap of {cap:,}")
        return b""
    handle = tar.extractfile(info)
    assert handle is not None  # a regular file
    return handle.read()


def _json(name: str, data: bytes, problems: list[str]) -> dict[str, Any]:
    """``data`` as a JSON object, or {} with a problem."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        problems.append(f"{name}: not JSON: {exc}")
        return {}
    if not isinstance(doc, dict):
        problems.append(f"{name}: not a JSON object")
        return {}
    return doc


def _manifest(
    data: bytes, members: dict[str, tarfile.TarInfo], problems: list[str]
) -> dict[str, Any]:
    """The manifest, checked for its schema and for sizes that are the archive's."""
    doc = _json(MANIFEST, data, problems)
    if not doc:
        return doc
    body = {k: v for k, v in doc.items() if k != "self"}
    if doc.get("self") != _self_digest(body) or _canonical(doc) != data:
        problems.append(f"{MANIFEST}: changed (its own digest `self` or its spelling differs)")
    if doc.get("schema") != SCHEMA:
        problems.append(f"{MANIFEST}: schema {doc.get('schema')!r}, expected {SCHEMA!r}")
    listed = doc.get("members")
    if not isinstance(listed, dict) or set(listed) != set(MEMBERS[:-1]):
        problems.append(f"{MANIFEST}: `members` must list {', '.join(MEMBERS[:-1])}")
        return doc
    for name, info in listed.items():
        if not isinstance(info, dict) or not isinstance(info.get("sha256"), str):
            problems.append(f"{MANIFEST}: members.{name} needs a sha256")
        elif info.get("bytes") != members[name].size:
            problems.append(
                f"{name}: {members[name].size:,} bytes in the archive, the manifest says "
                f"{info.get('bytes')!r}"
            )
    whole = doc.get("whole")
    if not isinstance(whole, dict) or not isinstance(whole.get("sha256"), str):
        problems.append(f"{MANIFEST}: `whole` needs a sha256")
    image_id = doc.get("image_id")
    if not isinstance(image_id, str) or not image_id.startswith("sha256:"):
        problems.append(f"{MANIFEST}: `image_id` must be an image ID (sha256:...)")
    return doc


def _image_cap(manifest: dict[str, Any], size: int, cap: int | None) -> str | None:
    """Why the image is over ``cap`` (by the manifest's size or the archive's), or None."""
    if cap is None:
        return None
    from harness.numbers import size as human

    said = (manifest.get("members") or {}).get(IMAGE, {}).get("bytes")
    biggest = max(size, said if isinstance(said, int) else 0)
    if biggest <= cap:
        return None
    return (
        f"{IMAGE}: the image is {human(biggest)}, over this benchmark's cap of {human(cap)}; "
        "make it smaller (a slimmer base image, fewer wheels, weights trained in `train`)"
    )


def verify_digests(bundle: Bundle) -> list[str]:
    """Every digest that does not match, in words naming the member (empty: all match).
    One pass over the file in chunks: each member's content, the archive before the
    manifest, and the zeros after it."""
    problems: list[str] = []
    listed = bundle.manifest["members"]
    whole = hashlib.sha256()
    manifest_info = bundle.members[MANIFEST]
    with open(bundle.path, "rb") as f:
        position = 0
        for name in MEMBERS[:-1]:
            info = bundle.members[name]
            whole.update(_read_exactly(f, info.offset_data - position))  # header(s)
            sha = hashlib.sha256()
            for chunk in _chunks(f, info.size):
                whole.update(chunk)
                sha.update(chunk)
            position = info.offset_data + info.size
            if f"sha256:{sha.hexdigest()}" != listed[name]["sha256"]:
                problems.append(f"{name}: its SHA-256 does not match the manifest's (changed)")
        whole.update(_read_exactly(f, manifest_info.offset - position))  # padding
        f.seek(manifest_info.offset_data + manifest_info.size)
        if any(any(chunk) for chunk in _chunks(f, None)):
            problems.append(f"the bytes after {MANIFEST}: not the zeros a tar file ends with")
    if f"sha256:{whole.hexdigest()}" != bundle.manifest["whole"]["sha256"]:
        problems.append(
            f"the archive before {MANIFEST} (tar headers, contents, padding): its SHA-256 "
            "does not match the manifest's `whole`"
        )
    return problems


def _read_exactly(f: IO[bytes], n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise OSError(f"{getattr(f, 'name', 'bundle')}: ends early")
    return data


def _chunks(f: IO[bytes], n: int | None) -> Iterator[bytes]:
    """The next ``n`` bytes of ``f`` in chunks (``None``: to the end)."""
    left = n
    while left is None or left > 0:
        data = f.read(CHUNK if left is None else min(CHUNK, left))
        if not data:
            if left:
                raise OSError(f"{getattr(f, 'name', 'bundle')}: ends early")
            return
        if left is not None:
            left -= len(data)
        yield data


def image_stream(bundle: Bundle) -> Iterable[bytes]:
    """The image member's bytes in chunks (for ``docker load``)."""
    info = bundle.members[IMAGE]
    with open(bundle.path, "rb") as f:
        f.seek(info.offset_data)
        yield from _chunks(f, info.size)
