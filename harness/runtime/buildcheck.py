"""What an entry hands the harness to build its image is checked before anything runs.

Everything here reads competitor-controlled files (an entry's ``requirements`` file and its
``Dockerfile``) and refuses what could make the host run the entry's code, reach the
network, or read what the entry must not see. Each refusal names the file and the line.

Requirements (:func:`parse_requirements`): plain PEP 508 requirement specifiers only, one a
line, with comments and blank lines allowed. Every pip option line (``-r``, ``-e``,
``--index-url``, ``--find-links``, ``--no-binary``, ...), every URL (``name @ https://...``,
``git+...``) and every local path is refused: the harness passes the parsed specifiers to
``pip download --only-binary=:all:`` itself, so nothing in the file reaches pip as an option
and no source distribution is ever built on the host.

Dockerfiles (:func:`check_dockerfile`): ``FROM`` only an allowed base image (after build
arguments are substituted) or an earlier stage; ``COPY --from`` and ``RUN --mount=from=``
only an earlier stage; no ``ADD`` of a URL or a git repository; no ``RUN --network`` other
than ``none``; no ``ONBUILD``; no parser directive that picks a frontend (``# syntax=``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from harness.errors import SarbenchError

MAX_PROBLEMS = 50


class BuildInputError(SarbenchError):
    """An entry's build input (requirements file, Dockerfile, context) that is refused;
    lists every problem, naming the file and line."""

    def __init__(self, what: str, problems: list[str]) -> None:
        shown = problems[:MAX_PROBLEMS]
        more = len(problems) - len(shown)
        lines = "\n".join(f"  - {p}" for p in shown)
        if more:
            lines += f"\n  ... and {more} more"
        super().__init__(f"{what}: refused ({len(problems)} problem(s)):\n{lines}")
        self.problems = problems


# --------------------------------------------------------------------------- requirements

_URLISH = re.compile(r"^[a-z][a-z0-9+.-]*://|^git\+|^file:", re.IGNORECASE)


def parse_requirements(path: Path) -> list[str]:
    """The requirement specifiers of ``path``, each normalised by ``packaging``.

    Raises :class:`BuildInputError` listing every line that is not a plain specifier.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildInputError(str(path), [f"cannot read: {exc}"]) from None
    specs: list[str] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        where = f"line {number} ({line[:80]!r})"
        if line.endswith("\\"):
            problems.append(f"{where}: line continuations are not allowed; one requirement a line")
        elif line.startswith("-"):
            problems.append(
                f"{where}: pip options are not allowed in an entry's requirements (the harness "
                "chooses how wheels are downloaded); list plain requirements like `numpy>=2`"
            )
        elif _URLISH.search(line) or line.startswith((".", "/", "~")):
            problems.append(
                f"{where}: URLs and local paths are not allowed; name a package on the index"
            )
        else:
            try:
                req = Requirement(line)
            except InvalidRequirement as exc:
                problems.append(f"{where}: not a requirement specifier ({exc})")
                continue
            if req.url:
                problems.append(f"{where}: `name @ URL` requirements are not allowed")
                continue
            specs.append(str(req))
    if problems:
        raise BuildInputError(f"{path}", problems)
    return specs


# --------------------------------------------------------------------------- Dockerfiles


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    args: str


def _instructions(text: str) -> tuple[list[Instruction], list[tuple[int, str]]]:
    """Dockerfile instructions (continuations joined, comments dropped) and the parser
    directives found before the first instruction."""
    instructions: list[Instruction] = []
    directives: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    seen_instruction = False
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending:
            if stripped.startswith("#"):
                if not seen_instruction and re.match(r"#\s*[a-zA-Z_]+\s*=", stripped):
                    directives.append((number, stripped))
                continue
            if not stripped:
                continue
            start = number
        elif stripped.startswith("#"):
            continue  # comment lines inside a continued instruction
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        joined = " ".join(p.strip() for p in pending).strip()
        pending = []
        keyword, _, args = joined.partition(" ")
        instructions.append(Instruction(start, keyword.upper(), args.strip()))
        seen_instruction = True
    if pending:
        joined = " ".join(p.strip() for p in pending).strip()
        keyword, _, args = joined.partition(" ")
        instructions.append(Instruction(start, keyword.upper(), args.strip()))
    return instructions, directives


_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::[-+][^}]*)?\}|([A-Za-z_][A-Za-z0-9_]*))")


def _substitute(text: str, args: Mapping[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        whole = match.group(0)
        if name in args:
            return args[name]
        default = re.match(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}", whole)
        return default.group(1) if default else ""

    return _VAR.sub(value, text)


def _flags(args: str) -> tuple[dict[str, str], str]:
    """Leading ``--flag=value`` / ``--flag`` options of an instruction, and the rest."""
    flags: dict[str, str] = {}
    rest = args
    while rest.startswith("--"):
        token, _, rest = rest.partition(" ")
        name, _, value = token[2:].partition("=")
        flags[name.lower()] = value
        rest = rest.lstrip()
    return flags, rest


def _is_remote(source: str) -> bool:
    return bool(_URLISH.search(source)) or source.startswith("git@")


def check_dockerfile(
    path: Path,
    *,
    build_args: Mapping[str, str],
    allowed_bases: Iterable[str],
) -> list[str]:
    """The problems of the Dockerfile at ``path`` (empty when it may be built)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [f"{path}: cannot read: {exc}"]
    allowed = set(allowed_bases)
    instructions, directives = _instructions(text)
    problems = [
        f"{path}:{n}: parser directive {d!r} is not allowed (`syntax` picks a build frontend image; `escape` changes how lines join)"
        for n, d in directives
        if re.match(r"#\s*(syntax|escape)\s*=", d, re.IGNORECASE)
    ]
    global_args: dict[str, str] = {}
    stages: list[str] = []  # lower-case stage names; the index is the stage number
    stage_args: dict[str, str] = {}
    for ins in instructions:
        where = f"{path}:{ins.line}"
        if ins.keyword == "ARG":
            name, eq, default = ins.args.partition("=")
            name = name.strip()
            value = build_args.get(name, _substitute(default.strip().strip('"'), global_args))
            target = stage_args if stages else global_args
            if name in build_args or eq:
                target[name] = value
            continue
        if ins.keyword == "FROM":
            _flags_unused, rest = _flags(ins.args)  # --platform is harmless
            words = rest.split()
            if not words:
                problems.append(f"{where}: FROM without an image")
                continue
            image = _substitute(words[0], {**global_args})
            alias = words[2].lower() if len(words) >= 3 and words[1].upper() == "AS" else ""
            # an earlier stage of this Dockerfile, or an allowed base image
            if image.lower() not in stages and image not in allowed:
                problems.append(
                    f"{where}: FROM {image!r} is not an allowed base image "
                    f"(allowed: {', '.join(sorted(allowed))}; or an earlier stage of this "
                    "Dockerfile). Another entry's image is never a base"
                )
            stages.append(alias or f"#{len(stages)}")
            stage_args = {}
            continue
        scope = {**global_args, **stage_args}
        if ins.keyword in ("COPY", "ADD"):
            flags, rest = _flags(ins.args)
            if "from" in flags:
                source = _substitute(flags["from"], scope).lower()
                if not _earlier_stage(source, stages):
                    problems.append(
                        f"{where}: {ins.keyword} --from={flags['from']} names no earlier stage "
                        "of this Dockerfile; files of other images cannot be copied in"
                    )
            if ins.keyword == "ADD":
                sources = _sources(rest)
                remote = [s for s in sources if _is_remote(_substitute(s, scope))]
                if remote or "checksum" in flags:
                    problems.append(
                        f"{where}: ADD of a URL or repository ({', '.join(remote) or 'checksum'}) "
                        "is not allowed: builds have no network; put the file in the context"
                    )
        elif ins.keyword == "RUN":
            flags, _rest = _flags(ins.args)
            network = flags.get("network")
            if network is not None and network != "none":
                problems.append(f"{where}: RUN --network={network} is not allowed")
            mount = flags.get("mount", "")
            source = re.search(r"(?:^|,)from=([^,]+)", mount)
            if source and not _earlier_stage(_substitute(source.group(1), scope).lower(), stages):
                problems.append(
                    f"{where}: RUN --mount from={source.group(1)} names no earlier stage"
                )
        elif ins.keyword == "ONBUILD":
            problems.append(f"{where}: ONBUILD is not allowed")
    if not stages:
        problems.append(f"{path}: no FROM instruction")
    return problems


def _earlier_stage(name: str, stages: list[str]) -> bool:
    # the current stage is the last one; only stages before it may be named
    earlier = stages[:-1]
    if name.isdigit():
        return int(name) < len(earlier)
    return name in earlier


def _sources(rest: str) -> list[str]:
    rest = rest.strip()
    if rest.startswith("["):
        import json

        try:
            parts = json.loads(rest)
        except ValueError:
            return [rest]
        return [str(p) for p in parts[:-1]]
    parts = rest.split()
    return parts[:-1]


# --------------------------------------------------------------------------- contexts


def check_context(
    entry_file: Path,
    context: Path,
    dockerfile: Path,
    *,
    confined_to: Path,
    forbidden: Mapping[str, Path],
) -> list[str]:
    """Problems with a build context: it and its Dockerfile must resolve (symlinks followed)
    inside ``confined_to`` (taken as it is: a link there is not followed, so an entry's
    folder that is itself a link points outside); the context must neither contain nor lie
    inside any of the ``forbidden`` folders (the data root, the work folder)."""
    problems = []
    real_context = context.resolve()
    real_dockerfile = dockerfile.resolve()
    root = Path(os.path.abspath(confined_to))
    if not real_context.is_relative_to(root):
        problems.append(
            f"{entry_file}: `image.context` resolves to {real_context}, outside the entry's "
            f"folder {root}; keep the build context inside it"
        )
    if not real_dockerfile.is_relative_to(real_context):
        problems.append(
            f"{entry_file}: `image.dockerfile` resolves to {real_dockerfile}, outside the "
            f"build context {real_context}"
        )
    for what, folder in forbidden.items():
        real = folder.resolve()
        if real.is_relative_to(real_context) or real_context.is_relative_to(real):
            problems.append(
                f"{entry_file}: the build context {real_context} overlaps the {what} {real}; "
                "a build must never see it"
            )
    return problems
