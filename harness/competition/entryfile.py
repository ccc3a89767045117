"""A bundle's entry file, made runnable on the maintainers' side.

The competitor's ``entry.toml`` names a build (``[image] context = ...``) and a local
command, whose folders exist only on the competitor's machine. The queue runs the image
the bundle carries, by its ID, and never rebuilds it: the same file with ``[image]``
replaced by ``ref = "<image ID>"`` and ``[local]`` left out, written as
``<name>.toml`` and read by the loader ``sarbench validate`` uses
(:func:`harness.entries.load_entry`), so its fields are checked the same way.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from pathlib import Path
from typing import Any

from harness.entries import NAME, Entry, EntryError, load_entry

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def runnable_entry(entry_text: str, image_id: str, folder: Path, where: str) -> Entry:
    """The entry of ``entry_text`` running ``image_id``, written into ``folder`` and
    loaded; an :class:`EntryError` lists every problem, naming ``where`` (the bundle's
    member)."""
    try:
        raw = tomllib.loads(entry_text)
    except tomllib.TOMLDecodeError as exc:
        raise EntryError(Path(where), [f"not valid TOML: {exc}"]) from None
    name = raw.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise EntryError(Path(where), [f"`name` must be a valid entry name, got {name!r}"])
    raw = {k: v for k, v in raw.items() if k not in ("image", "local")}
    raw["image"] = {"ref": image_id}
    text = dumps(raw)
    if tomllib.loads(text) != raw:  # what cannot be written back exactly is not run
        raise EntryError(Path(where), ["a value that cannot be written back as TOML"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    try:
        return load_entry(path)
    except EntryError as exc:
        raise EntryError(Path(where), exc.problems) from None


def dumps(doc: dict[str, Any]) -> str:
    """``doc`` as TOML: scalars and arrays first, then each table under its header."""
    lines: list[str] = []
    _table(doc, (), lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _table(doc: dict[str, Any], path: tuple[str, ...], lines: list[str]) -> None:
    plain = {k: v for k, v in doc.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in doc.items() if isinstance(v, dict)}
    if path and (plain or not tables):
        lines.append(f"\n[{'.'.join(_key(p) for p in path)}]")
    for key, value in plain.items():
        lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in tables.items():
        _table(value, (*path, key), lines)


def _key(key: str) -> str:
    return key if _BARE.match(key) else json.dumps(key)


def _value(value: Any) -> str:
    """A TOML value: strings JSON-escaped (TOML's basic strings accept those escapes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")
