"""``sarbench new``: a competitor's entry, ready to validate as it is.

It writes ``<dir>/<name>.toml`` with every field filled (and a comment on each) and
``<dir>/<name>/``, a copy of the template's code (``submissions/template/``: Dockerfile,
entry.py, requirements.txt, README.md). The template's downloaded wheels are copied too
when it has them (our choice: the first build then needs no download). Nothing that exists
is overwritten: a name already taken, by a file or a folder, is refused.
"""

from __future__ import annotations

import getpass
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from harness.entries import NAME, RESERVED_BASELINES, load_entry
from harness.errors import SarbenchError
from harness.settings import REPO_ROOT

TEMPLATE = REPO_ROOT / "submissions" / "template"
CODE_FILES = ("Dockerfile", "entry.py", "requirements.txt", "README.md")
WHEELS = "wheels"
ROLES = {"flood": ('["pre", "post"]', '["VV", "VH"]'), "ndvi": ('["VV", "VH"]',)}
"""The band layouts the template's code can use, per task (see its entry.py)."""


@dataclass(frozen=True)
class Scaffold:
    """What :func:`new_entry` wrote."""

    entry_file: Path
    folder: Path


def check_name(name: str, where: Path) -> None:
    """A :class:`SarbenchError` when ``name`` cannot be a new entry in ``where``."""
    if not NAME.match(name):
        raise SarbenchError(
            f"{name!r}: an entry's name is lower-case letters, digits and '-', starting with "
            f"a letter or digit, at most 63 characters (e.g. {_suggest(name)!r})"
        )
    if name in RESERVED_BASELINES or name == "template":
        raise SarbenchError(f"{name!r} is the name of one of SARBench's own entries; pick another")
    taken = [p for p in (where / f"{name}.toml", where / name) if p.exists()]
    if taken:
        raise SarbenchError(
            f"{', '.join(map(str, taken))}: exists already; nothing was written (pick another "
            "name, or remove it first)"
        )


def _suggest(name: str) -> str:
    import re

    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63] or "my-entry"


def entry_toml(name: str, tasks: tuple[str, ...], team: str, contact: str) -> str:
    """The entry file's text: every field, each with a comment."""
    layouts = list(dict.fromkeys(layout for task in tasks for layout in ROLES[task]))
    task_list = ", ".join(f'"{t}"' for t in tasks)
    return f'''# {name}: a SARBench entry written by `sarbench new` from the template. Change the code
# in {name}/ (entry.py) and the fields below; the format is docs/contract.md ("Registering
# an entry"). Then: `sarbench validate {name}` and `sarbench submit {name}` (docs/competing.md).
name = "{name}"
# who is answerable for the entry: shown on the leaderboard
team = {_quote(team)}
contact = {_quote(contact)}
# one line for the leaderboard's entry page
description = "{name}: the template's rule, to be replaced by a model"
baseline = false
tasks = [{task_list}]
# the band layouts the code can read (by role, not by dataset): it runs on every dataset of
# its tasks whose bands have one of these roles
requires_roles = [{", ".join(layouts)}]
phases = ["train", "predict"]

[image]
# built by the harness with the network off; wheels come from requirements.txt
context = "{name}"
dockerfile = "Dockerfile"
requirements = "requirements.txt"

[local]
# `sarbench run --backend local` (no isolation: for debugging only)
command = ["{{python}}", "entry.py"]
cwd = "{name}"

[variants.default]
# options of a variant reach the container in /config/run.json ("options")
'''


def _quote(text: str) -> str:
    """A TOML basic string of ``text``."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def default_team() -> str:
    """This machine's user name: a team name until the competitor sets one."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "my-team"


def new_entry(
    where: Path,
    name: str,
    tasks: tuple[str, ...] = tuple(ROLES),
    *,
    team: str | None = None,
    contact: str | None = None,
) -> Scaffold:
    """Write the entry ``name`` into ``where`` (its TOML and its code folder); the entry
    file is read back with the harness's own loader before this returns."""
    unknown = [t for t in tasks if t not in ROLES]
    if unknown or not tasks:
        raise SarbenchError(f"--task must be one of {', '.join(ROLES)} (got {', '.join(unknown)})")
    where.mkdir(parents=True, exist_ok=True)
    check_name(name, where)
    team = team or default_team()
    contact = contact or f"{default_team()}@{socket.gethostname()}"
    folder = where / name
    folder.mkdir()
    try:
        for file in CODE_FILES:
            shutil.copy2(TEMPLATE / file, folder / file)
        if (TEMPLATE / WHEELS).is_dir() and not (TEMPLATE / WHEELS).is_symlink():
            shutil.copytree(TEMPLATE / WHEELS, folder / WHEELS, symlinks=False)
        entry_file = where / f"{name}.toml"
        with open(entry_file, "x", encoding="utf-8") as f:
            f.write(entry_toml(name, tuple(dict.fromkeys(tasks)), team, contact))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    load_entry(entry_file)  # what the harness will read: an EntryError names any problem
    return Scaffold(entry_file, folder)
