"""Files a container wrote, read with bounds: regular files only, never through a link,
never more than a fixed number of bytes; and the check of which files are inert enough to
be served by the static site.

Used by the publisher (loss curves, artifacts) and by the leaderboard builder (what may be
copied into the site).
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

from harness.publish.content import (
    MAX_LOSS_BYTES,
    MAX_LOSS_FILES,
    MAX_POINTS,
    LossCurves,
    read_loss_csv,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
INERT_SUFFIXES = (".csv", ".json", ".png", ".txt", ".log")
"""The only artifact types the site serves: data and plain text a browser never runs."""
TEXT_SUFFIXES = (".csv", ".txt", ".log")
MAX_SERVED_BYTES = 32 * 2**20
"""A larger artifact is listed on its entry page, not copied into the site."""
MAX_ARTIFACT_FILES = 2000
"""At most this many files of one run folder are published (sorted by path)."""
_SAFE_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_SNIFF = 1024


def regular_files(root: Path) -> Iterator[Path]:
    """Every regular file under ``root``, sorted, without following any symbolic link
    (a linked file or folder is skipped, never read)."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.is_symlink():
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from regular_files(Path(entry.path))
        elif entry.is_file(follow_symlinks=False):
            yield Path(entry.path)


def read_head(path: Path, limit: int) -> tuple[bytes, int]:
    """Up to ``limit`` bytes of a regular file (never through a link) and its full size."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path}: not a regular file")
        return f.read(limit), st.st_size


def read_capped_text(path: Path, limit: int) -> tuple[str, int | None]:
    """The text of ``path`` (UTF-8, bad bytes replaced), at most ``limit`` bytes, cut at the
    last line end when cut; the second value is the full size when the text was cut."""
    data, size = read_head(path, limit + 1)
    if len(data) <= limit:
        return data.decode("utf-8", errors="replace"), None
    data = data[:limit]
    end = data.rfind(b"\n")
    data = data[: end + 1] if end >= 0 else b""
    return data.decode("utf-8", errors="replace"), size


def loss_curves(folder: Path, *, max_points: int = MAX_POINTS) -> LossCurves:
    """The loss curves of a run folder (or of a downloaded run): ``artifacts/loss*.csv``,
    at most ``MAX_LOSS_FILES`` of them, each read up to ``MAX_LOSS_BYTES`` (see
    :func:`harness.publish.content.read_loss_csv` for the rules)."""
    curves = LossCurves()
    art = folder / "artifacts"
    files = [
        p
        for p in (sorted(art.glob("loss*.csv")) if art.is_dir() else [])
        if not p.is_symlink() and p.is_file()
    ]
    if len(files) > MAX_LOSS_FILES:
        left = ", ".join(p.name for p in files[MAX_LOSS_FILES:][:5])
        curves.notes.append(
            f"{len(files) - MAX_LOSS_FILES} loss-curve file(s) not read (at most "
            f"{MAX_LOSS_FILES}): {left}"
        )
        files = files[:MAX_LOSS_FILES]
    for path in files:
        name = f"artifacts/{path.name}"
        try:
            text, size = read_capped_text(path, MAX_LOSS_BYTES)
        except OSError as exc:
            curves.notes.append(f"{name}: not read ({exc.strerror or exc})")
            continue
        read_loss_csv(name, text, curves, size=size, max_points=max_points)
    return curves


def _safe_path(rel: str) -> bool:
    parts = rel.split("/")
    return len(parts) <= 8 and all(_SAFE_PART.match(p) for p in parts)


def not_servable(path: Path, rel: str) -> str | None:
    """Why the file at ``path`` (``rel`` inside its run) may not be copied into the static
    site, or ``None`` when it may.

    Served: ``.csv``, ``.json``, ``.png``, ``.txt`` and ``.log`` files with plain names,
    at most ``MAX_SERVED_BYTES``, whose content is what the name says: a PNG starts with
    the PNG signature; JSON parses; text is UTF-8 without NUL bytes and does not start
    like markup (``<``), so that no browser sniffs it as HTML. Everything else (HTML, SVG,
    scripts, archives...) is withheld and only named on the entry page.
    """
    suffix = Path(rel).suffix.lower()
    if suffix not in INERT_SUFFIXES:
        return f"type {suffix or '(none)'} is not served (only {', '.join(INERT_SUFFIXES)})"
    if not _safe_path(rel):
        return "its name is not plain (letters, digits, _ . - only)"
    try:
        if path.is_symlink() or not path.is_file():
            return "not a regular file"
        size = path.stat().st_size
        if size > MAX_SERVED_BYTES:
            return f"{size} bytes; at most {MAX_SERVED_BYTES} are served"
        head, _ = read_head(path, MAX_SERVED_BYTES if suffix == ".json" else max(_SNIFF, 8))
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if suffix == ".png":
        return None if head.startswith(PNG_SIGNATURE) else "not a PNG (no PNG signature)"
    if b"\x00" in head:
        return "holds NUL bytes: not text"
    if suffix == ".json":
        try:
            json.loads(head.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return "not valid JSON"
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the sniffing limit
            return "not UTF-8 text"
        text = head[: exc.start].decode("utf-8")
    if text.lstrip("\ufeff \t\r\n\f").startswith("<"):
        return "starts like markup (<): a browser could take it for HTML"
    return None
