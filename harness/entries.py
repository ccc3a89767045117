"""The entry registry: one ``submissions/<name>.toml`` per entry, baselines included.

An entry names its team and contact, the tasks it does and the band roles it needs, its
phases (``train`` + ``predict``, or ``predict`` alone), how its image is built (or which
prebuilt image it is), how the local backend runs it, and its options: ``[options]`` for
every variant, ``[profiles.<profile>]`` overrides under a conditions profile, and
``[variants.<name>]`` overrides per variant (ablations are variants). The resolved options
of a run are ``options | profiles[profile] | variants[variant]``, in that order.

An entry runs on every dataset of its tasks whose band roles (:mod:`harness.bands`) fit
what it needs: ``requires_roles`` at the top level (every variant) or in a
``[variants.<name>]`` table (that variant; not an option), either one layout
(``["pre", "post"]``) or a list of layouts (``[["pre", "post"], ["VV", "VH"]]``); absent
or ``[]``: any roles. ``requires_splits`` (the same places) names training splits a
variant needs besides train and val (pix2pix's ``pretrain``). ``datasets`` (deprecated)
still restricts an entry to the datasets it names. :meth:`Entry.why_not` says why an entry's variant does not run on a dataset.

Every problem of a file is listed at once, naming the file (:class:`EntryError`).
The format is documented in ``docs/contract.md``.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.bands import DatasetFacts, Layouts, check_roles, layout_text, roles_problem
from harness.errors import SarbenchError, UnknownNameError
from harness.settings import REPO_ROOT
from harness.tasks import TASKS

Phase = Literal["train", "predict"]
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_TOP_KEYS = {
    "name",
    "team",
    "contact",
    "description",
    "baseline",
    "tasks",
    "datasets",
    "requires_roles",
    "requires_splits",
    "phases",
    "default_variant",
    "image",
    "local",
    "options",
    "profiles",
    "variants",
    "ablation",
    "weights",
}
_WEIGHTS_KEYS = {"name", "file", "required_in"}
_IMAGE_KEYS = {"ref", "context", "dockerfile", "requirements", "build_args"}
RESERVED_BASELINES = ("threshold", "unet", "prithvi", "pix2pix")
"""The project's own baselines: only their files in the repository's ``submissions/`` may
carry these names or ``baseline = true``, and only with the repository's own image."""
IMAGE_REPOSITORY = "sarbench-entry"
"""Entry images are named ``sarbench-entry/<entry>:<12 hex of the image ID>`` by the harness."""
_PINNED = re.compile(r"^(sha256:[0-9a-f]{64}|[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64})$")
_LOCAL_KEYS = {"command", "cwd"}
_OPTION_TYPES = (str, int, float, bool)
OPTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
"""Option names: what run records, MLflow params and the site can all carry as they are."""
ROLES_KEY = "requires_roles"
"""The key, at the top level or in a variant's table, of the band layouts needed."""
SPLITS_KEY = "requires_splits"
"""The key, at the top level or in a variant's table, of the training splits needed beyond
train and val (pix2pix's pre-training needs ndvi-synth's ``pretrain``)."""


class EntryError(SarbenchError):
    """An entry file that is malformed; lists every problem and names the file."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: invalid entry ({len(problems)} problem(s)):\n{lines}")
        self.path, self.problems = path, problems


@dataclass(frozen=True)
class ImageSpec:
    """Either a prebuilt image (``ref``, pinned by digest) or a build (``context`` +
    ``dockerfile``, named by the harness: ``repository:<12 hex of the image ID>``).

    ``requirements``: a requirements file (relative to the context) of plain specifiers,
    whose wheels are downloaded on the host into ``<context>/wheels/`` before the offline
    build (:mod:`harness.runtime.buildcheck`).
    """

    ref: str | None = None
    context: Path | None = None
    dockerfile: str = "Dockerfile"
    repository: str | None = None
    requirements: str | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The image reference for people: ``ref``, or the repository of the build."""
        return self.ref or self.repository or ""

    @property
    def buildable(self) -> bool:
        return self.context is not None


@dataclass(frozen=True)
class WeightsSpec:
    """``[weights]``: the pretrained weights an entry trains from, mounted read-only at
    ``/weights`` in train. ``file`` is what the harness looks for in that folder;
    ``required_in`` names the profiles under which a run without it is refused (a run
    without weights elsewhere is recorded and shown as "random init")."""

    name: str
    file: str
    required_in: tuple[str, ...] = ()

    def missing(self, folder: Path | None) -> str | None:
        """Why ``folder`` (the one mounted at /weights, None: none) lacks the weights."""
        if folder is None:
            return "no weights folder"
        if not (folder / self.file).is_file():
            return f"{self.file} is not in {folder}"
        return None


@dataclass(frozen=True)
class Ablation:
    """An entry's ablation study: ``reference`` is the variant with every component on;
    each of ``components`` is a boolean option that the other variants switch off;
    ``labels`` names them for people (default: the option name)."""

    reference: str
    components: tuple[str, ...]
    labels: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "components": list(self.components),
            "labels": {c: self.labels.get(c, c) for c in self.components},
        }


@dataclass(frozen=True)
class Entry:
    """One registered entry (see the module docstring)."""

    name: str
    team: str
    contact: str
    description: str
    baseline: bool
    tasks: tuple[str, ...]
    datasets: tuple[str, ...]
    """Deprecated: where not empty, the only datasets the entry runs on."""
    phases: tuple[Phase, ...]
    image: ImageSpec
    local_command: tuple[str, ...]
    local_cwd: Path
    options: Mapping[str, Any]
    profile_options: Mapping[str, Mapping[str, Any]]
    variants: Mapping[str, Mapping[str, Any]]
    default_variant: str
    path: Path
    ablation: Ablation | None = None
    requires_roles: Layouts = ()
    """The band layouts every variant needs (top-level ``requires_roles``); () = any."""
    variant_roles: Mapping[str, Layouts] = field(default_factory=dict)
    """Per variant, the layouts it needs instead (its table's ``requires_roles``)."""
    requires_splits: tuple[str, ...] = ()
    """The splits every variant needs besides the task's own (``requires_splits``)."""
    variant_splits: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Per variant, the splits it needs instead (its table's ``requires_splits``)."""
    weights: WeightsSpec | None = None
    """The pretrained weights it trains from (``[weights]``), None: it declares none."""

    @property
    def trains(self) -> bool:
        return "train" in self.phases

    def variant_names(self) -> list[str]:
        return list(self.variants)

    def check_variant(self, variant: str) -> str:
        if variant not in self.variants:
            raise UnknownNameError(f"variant of entry {self.name!r}", variant, self.variants)
        return variant

    def resolve_options(self, variant: str, profile: str) -> dict[str, Any]:
        """``options | profiles[profile] | variants[variant]``."""
        self.check_variant(variant)
        return {
            **self.options,
            **self.profile_options.get(profile, {}),
            **self.variants[variant],
        }

    def roles_for(self, variant: str) -> Layouts:
        """The band layouts ``variant`` needs (its own, else the entry's); () = any."""
        self.check_variant(variant)
        return self.variant_roles.get(variant, self.requires_roles)

    def why_not(self, facts: DatasetFacts, variant: str | None = None) -> str | None:
        """Why the entry (``variant`` of it, where given) does not run on the dataset of
        ``facts``, in words; None when it does: a task of the entry, a dataset its
        (deprecated) ``datasets`` names if it names any, and band roles that fit."""
        if facts.task not in self.tasks:
            return f"{facts.name} is for task {facts.task}; the entry does {', '.join(self.tasks)}"
        if self.datasets and facts.name not in self.datasets:
            return (
                f"its entry file restricts it to dataset(s) {', '.join(self.datasets)} "
                f"(`datasets`, deprecated: remove it to run on every {facts.task} dataset "
                "whose band roles fit)"
            )
        if variant is None:
            return None
        self.check_variant(variant)
        needs = self.variant_splits.get(variant, self.requires_splits)
        missing = [s for s in needs if s not in facts.splits]
        if missing:
            return (
                f"needs a {' and a '.join(missing)} split; {facts.name} has "
                f"{', '.join(facts.splits) or 'none'}"
            )
        return roles_problem(self.roles_for(variant), facts)

    def default_dataset(self) -> str:
        """The first of ``datasets`` where the entry names any, else the embedded dataset
        of its first task that has one (flood-synth, ndvi-synth)."""
        if self.datasets:
            return self.datasets[0]
        from harness.datasets.registry import GENERATORS

        for task in self.tasks:
            for name, generator in GENERATORS.items():
                if generator.task == task:
                    return name
        raise SarbenchError(
            f"entry {self.name!r}: no embedded dataset for task(s) {', '.join(self.tasks)}; "
            "name one with --dataset"
        )

    def local_argv(self, phase: Phase) -> list[str]:
        """The local backend's command line: ``{python}`` is this interpreter."""
        return [part.replace("{python}", sys.executable) for part in self.local_command] + [phase]


def load_entry(path: str | Path) -> Entry:
    """Read and check one entry file; every problem is listed in one :class:`EntryError`."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EntryError(path, ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EntryError(path, [f"cannot read: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise EntryError(path, [f"not valid TOML: {exc}"]) from None
    problems: list[str] = []
    entry = _parse(path, raw, problems)
    if problems or entry is None:
        raise EntryError(path, problems)
    return entry


def _str(raw: Mapping[str, Any], key: str, problems: list[str], *, required: bool = True) -> str:
    value = raw.get(key)
    if value is None:
        if required:
            problems.append(f"`{key}` is required (a string)")
        return ""
    if not isinstance(value, str) or not value.strip():
        problems.append(f"`{key}` must be a non-empty string, got {value!r}")
        return ""
    return value


def _str_list(raw: Mapping[str, Any], key: str, problems: list[str]) -> tuple[str, ...]:
    value = raw.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        problems.append(f"`{key}` must be a non-empty list of strings, got {value!r}")
        return ()
    if len(set(value)) != len(value):
        problems.append(f"`{key}` lists a name twice: {value!r}")
    return tuple(value)


def _option_table(where: str, value: Any, problems: list[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"`{where}` must be a table of options, got {value!r}")
        return {}
    for key, item in value.items():
        if not OPTION_NAME.match(key):
            problems.append(
                f"option name `{where}.{key!r}` must be a letter or '_', then letters, digits, "
                "'_', '-' or '.' (64 at most)"
            )
        ok = isinstance(item, _OPTION_TYPES) or (
            isinstance(item, list) and all(isinstance(v, _OPTION_TYPES) for v in item)
        )
        if not ok:
            problems.append(
                f"option `{where}.{key}` must be a string, number, boolean or a list of "
                f"them, got {item!r}"
            )
    return dict(value)


def _parse(path: Path, raw: dict[str, Any], problems: list[str]) -> Entry | None:
    for key in sorted(set(raw) - _TOP_KEYS):
        problems.append(f"unknown key `{key}` (known: {', '.join(sorted(_TOP_KEYS))})")
    name = _str(raw, "name", problems)
    if name and not NAME.match(name):
        problems.append(f"`name` {name!r} must be lower-case letters, digits and '-'")
    if name and name != path.stem:
        problems.append(f"`name` {name!r} must equal the file name stem {path.stem!r}")
    team = _str(raw, "team", problems)
    contact = _str(raw, "contact", problems)
    description = _str(raw, "description", problems, required=False)
    baseline = raw.get("baseline", False)
    if not isinstance(baseline, bool):
        problems.append(f"`baseline` must be true or false, got {baseline!r}")
    tasks = _str_list(raw, "tasks", problems)
    for task in tasks:
        if task not in TASKS:
            problems.append(str(UnknownNameError("task", task, TASKS)))
    datasets = _str_list(raw, "datasets", problems) if "datasets" in raw else ()
    requires_roles = _layouts(ROLES_KEY, raw.get(ROLES_KEY), tasks, problems)
    requires_splits = _splits(SPLITS_KEY, raw.get(SPLITS_KEY), problems)
    phases = _str_list(raw, "phases", problems) if "phases" in raw else ("train", "predict")
    if phases and phases not in (("train", "predict"), ("predict",)):
        problems.append(f'`phases` must be ["train", "predict"] or ["predict"], got {list(phases)}')
    image = _image(path, name, raw.get("image"), problems)
    local_command, local_cwd = _local(path, raw.get("local"), problems)
    options = _option_table("options", raw.get("options"), problems)
    _not_an_option("options", options, problems)
    profiles_raw = raw.get("profiles", {})
    profile_options: dict[str, dict[str, Any]] = {}
    if not isinstance(profiles_raw, dict):
        problems.append(f"`profiles` must be a table of tables, got {profiles_raw!r}")
    else:
        for profile, table in profiles_raw.items():
            profile_options[profile] = _option_table(f"profiles.{profile}", table, problems)
            _not_an_option(f"profiles.{profile}", profile_options[profile], problems)
    variants_raw = raw.get("variants", {"default": {}})
    variants: dict[str, dict[str, Any]] = {}
    variant_roles: dict[str, Layouts] = {}
    variant_splits: dict[str, tuple[str, ...]] = {}
    if not isinstance(variants_raw, dict) or not variants_raw:
        problems.append("`variants` must be a table with at least one [variants.<name>]")
    else:
        for variant, table in variants_raw.items():
            if not NAME.match(variant):
                problems.append(f"variant name {variant!r} must be lower-case letters, digits, '-'")
            if isinstance(table, dict) and ROLES_KEY in table:
                table = dict(table)
                where = f"variants.{variant}.{ROLES_KEY}"
                variant_roles[variant] = _layouts(where, table.pop(ROLES_KEY), tasks, problems)
            if isinstance(table, dict) and SPLITS_KEY in table:
                table = dict(table)
                where = f"variants.{variant}.{SPLITS_KEY}"
                variant_splits[variant] = _splits(where, table.pop(SPLITS_KEY), problems)
            variants[variant] = _option_table(f"variants.{variant}", table, problems)
    default_variant = raw.get("default_variant")
    if default_variant is None:
        default_variant = "default" if "default" in variants else next(iter(variants), "")
    elif default_variant not in variants:
        problems.append(
            f"`default_variant` {default_variant!r} is not one of the variants "
            f"({', '.join(variants)})"
        )
    ablation = _ablation(raw.get("ablation"), options, variants, problems)
    weights = _weights(raw.get("weights"), phases, problems)
    if image is not None and name:
        _check_reserved(path, name, baseline is True, image, problems)
    if problems or image is None:
        return None
    return Entry(
        name=name,
        team=team,
        contact=contact,
        description=description,
        baseline=baseline,
        tasks=tasks,
        datasets=datasets,
        phases=phases,  # type: ignore[arg-type]
        image=image,
        local_command=local_command,
        local_cwd=local_cwd,
        options=options,
        profile_options=profile_options,
        variants=variants,
        default_variant=default_variant,
        path=path,
        ablation=ablation,
        requires_roles=requires_roles,
        variant_roles=variant_roles,
        requires_splits=requires_splits,
        variant_splits=variant_splits,
        weights=weights,
    )


def _weights(raw: Any, phases: tuple[str, ...], problems: list[str]) -> WeightsSpec | None:
    """``[weights]``: ``name`` (what they are, for people), ``file`` (looked for in the
    folder mounted at /weights), optional ``required_in`` (profiles)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append(f"`[weights]` must be a table, got {raw!r}")
        return None
    for key in sorted(set(raw) - _WEIGHTS_KEYS):
        problems.append(f"unknown key `weights.{key}` (known: {', '.join(sorted(_WEIGHTS_KEYS))})")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"`weights.name` must say what the weights are, got {name!r}")
        name = ""
    file = raw.get("file")
    if not isinstance(file, str) or not file or "/" in file or file in (".", ".."):
        problems.append(f"`weights.file` must be a file name (no folders), got {file!r}")
        file = ""
    required = raw.get("required_in", [])
    if not isinstance(required, list) or not all(isinstance(p, str) for p in required):
        problems.append(f"`weights.required_in` must be a list of profile names, got {required!r}")
        required = []
    if "train" not in phases:
        problems.append(
            "`[weights]` is mounted in train only: an entry without a train phase bakes its "
            "weights into its image"
        )
    return WeightsSpec(name=name, file=file, required_in=tuple(required))


def _not_an_option(where: str, table: dict[str, Any], problems: list[str]) -> None:
    if SPLITS_KEY in table:
        problems.append(
            f"`{where}.{SPLITS_KEY}`: the splits an entry needs are not an option; put "
            f"`{SPLITS_KEY}` at the top level (every variant) or in a [variants.<name>] table"
        )
    if ROLES_KEY in table:
        problems.append(
            f"`{where}.{ROLES_KEY}`: the band roles an entry needs are not an option; put "
            f"`{ROLES_KEY}` at the top level (every variant) or in a [variants.<name>] table"
        )


def _splits(where: str, raw: Any, problems: list[str]) -> tuple[str, ...]:
    """``requires_splits``: a list of split names; [] = none beyond the task's own."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(s, str) and s for s in raw):
        problems.append(f'`{where}` must be a list of split names (["pretrain"]), got {raw!r}')
        return ()
    return tuple(raw)


def _layouts(where: str, raw: Any, tasks: tuple[str, ...], problems: list[str]) -> Layouts:
    """``requires_roles``: one layout (a list of roles) or a list of layouts; [] = any.
    Every layout must be one that a dataset of one of the entry's tasks may have."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(
            f'`{where}` must be a list of band roles (["pre", "post"]) or a list of such lists, '
            f"got {raw!r}"
        )
        return ()
    layouts = [raw] if raw and all(isinstance(r, str) for r in raw) else raw
    out: list[tuple[str, ...]] = []
    possible = {layout for t in tasks if t in TASKS for layout in TASKS[t].band_layouts}
    for layout in layouts:
        found = check_roles(layout)
        if found:
            problems += [f"`{where}`: {p}" for p in found]
            continue
        if tuple(layout) not in possible:
            known = ", ".join(sorted(layout_text(p) for p in possible)) or "none declared"
            problems.append(
                f"`{where}`: {layout_text(layout)} is not a band layout of task(s) "
                f"{', '.join(tasks)} (theirs: {known})"
            )
            continue
        out.append(tuple(layout))
    if len(set(out)) != len(out):
        problems.append(f"`{where}` names a layout twice: {raw!r}")
    return tuple(out)


def _ablation(
    raw: Any,
    options: Mapping[str, Any],
    variants: Mapping[str, Mapping[str, Any]],
    problems: list[str],
) -> Ablation | None:
    """``[ablation]``: ``reference`` (a variant), ``components`` (boolean options, all on in
    ``reference``), optional ``labels``."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append(f"`[ablation]` must be a table, got {raw!r}")
        return None
    for key in sorted(set(raw) - {"reference", "components", "labels"}):
        problems.append(f"unknown key `ablation.{key}` (known: components, labels, reference)")
    reference, components, labels = (
        raw.get("reference"),
        raw.get("components"),
        raw.get("labels", {}),
    )
    if not isinstance(reference, str) or reference not in variants:
        problems.append(f"`ablation.reference` must name a variant, got {reference!r}")
        return None
    if (
        not isinstance(components, list)
        or not components
        or not all(isinstance(c, str) for c in components)
    ):
        problems.append(f"`ablation.components` must be a list of option names, got {components!r}")
        return None
    for c in components:
        value = {**options, **variants[reference]}.get(c)
        if value is not True:
            problems.append(
                f"ablation component `{c}` must be a boolean option that is true in the "
                f"reference variant {reference!r}, got {value!r}"
            )
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        problems.append(f"`ablation.labels` must be a table of strings, got {labels!r}")
        labels = {}
    return Ablation(reference, tuple(components), dict(labels))


def _project_file(path: Path, name: str) -> bool:
    """Whether ``path`` is the project's own ``submissions/<name>.toml`` (symlinks resolved)."""
    return path.resolve() == (REPO_ROOT / "submissions" / f"{name}.toml").resolve()


def _check_reserved(
    path: Path, name: str, baseline: bool, image: ImageSpec, problems: list[str]
) -> None:
    """Baseline names and the baseline flag belong to the project's own entries, built from
    the repository's own Dockerfile."""
    if not (baseline or name in RESERVED_BASELINES):
        return
    own_image = (
        image.context is not None
        and image.context.resolve() == REPO_ROOT.resolve()
        and image.dockerfile == "Dockerfile"
    )
    if name not in RESERVED_BASELINES or not _project_file(path, name) or not own_image:
        what = f"the name {name!r}" if name in RESERVED_BASELINES else "`baseline = true`"
        problems.append(
            f"{what} is reserved to the project's own baselines "
            f"({', '.join(RESERVED_BASELINES)}): their files in {REPO_ROOT / 'submissions'} "
            "built from the repository's Dockerfile. Choose another name and set "
            "`baseline = false`"
        )


def _image(path: Path, name: str, raw: Any, problems: list[str]) -> ImageSpec | None:
    if not isinstance(raw, dict):
        problems.append("`[image]` is required: `ref` (a pinned prebuilt image) or `context`")
        return None
    if "tag" in raw:
        problems.append(
            "`image.tag` is no longer accepted: the harness names every entry's image itself "
            f"({IMAGE_REPOSITORY}/<entry>:<digest>); remove the line"
        )
    for key in sorted(set(raw) - _IMAGE_KEYS - {"tag"}):
        problems.append(f"unknown key `image.{key}` (known: {', '.join(sorted(_IMAGE_KEYS))})")
    ref, context = raw.get("ref"), raw.get("context")
    if (ref is None) == (context is None):
        problems.append("`[image]` needs exactly one of `ref` (prebuilt) and `context` (build)")
        return None
    build_args = raw.get("build_args", {})
    if not isinstance(build_args, dict) or not all(isinstance(v, str) for v in build_args.values()):
        problems.append(f"`image.build_args` must be a table of strings, got {build_args!r}")
        build_args = {}
    if ref is not None:
        if not isinstance(ref, str) or not _PINNED.match(ref):
            problems.append(
                f"`image.ref` must be pinned by digest (`sha256:<64 hex>`, the image ID, or "
                f"`name@sha256:<64 hex>`), got {ref!r}; a tag can be moved to another image"
            )
        return ImageSpec(ref=ref)
    if not isinstance(context, str):
        problems.append(f"`image.context` must be a folder path, got {context!r}")
        return None
    folder = (path.parent / context).resolve()
    dockerfile = raw.get("dockerfile", "Dockerfile")
    if not isinstance(dockerfile, str) or not dockerfile:
        problems.append(f"`image.dockerfile` must be a file name, got {dockerfile!r}")
        dockerfile = "Dockerfile"
    if not folder.is_dir():
        problems.append(f"`image.context` {context!r}: no such folder ({folder})")
    else:
        from harness.runtime.buildcheck import check_context

        # the project's own baselines build from the repository root; every other entry
        # from its own folder, `<name>/` beside its file (never the registry as a whole)
        own = name in RESERVED_BASELINES and _project_file(path, name)
        confined = REPO_ROOT.resolve() if own else path.parent.resolve() / (name or path.stem)
        problems.extend(
            check_context(path, folder, folder / dockerfile, confined_to=confined, forbidden={})
        )
        if not (folder / dockerfile).is_file():
            problems.append(f"`image.dockerfile` {dockerfile!r}: not found in {folder}")
    requirements = raw.get("requirements")
    if requirements is not None:
        req = (folder / str(requirements)).resolve()
        if not req.is_file():
            problems.append(f"`image.requirements` {requirements!r}: not found in {folder}")
        elif not req.is_relative_to(folder):
            problems.append(f"`image.requirements` {requirements!r}: outside the context {folder}")
    return ImageSpec(
        context=folder,
        dockerfile=dockerfile,
        repository=f"{IMAGE_REPOSITORY}/{name}" if name else None,
        requirements=requirements,
        build_args=build_args,
    )


def _local(path: Path, raw: Any, problems: list[str]) -> tuple[tuple[str, ...], Path]:
    if raw is None:
        return (), path.parent
    if not isinstance(raw, dict):
        problems.append(f"`[local]` must be a table, got {raw!r}")
        return (), path.parent
    for key in sorted(set(raw) - _LOCAL_KEYS):
        problems.append(f"unknown key `local.{key}` (known: command, cwd)")
    command = raw.get("command")
    if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
        problems.append(f"`local.command` must be a non-empty list of strings, got {command!r}")
        command = []
    cwd = (path.parent / str(raw.get("cwd", "."))).resolve()
    if not cwd.is_dir():
        problems.append(f"`local.cwd` {raw.get('cwd')!r}: no such folder ({cwd})")
    return tuple(command), cwd


def entry_files(submissions_dir: Path) -> list[Path]:
    """Every ``*.toml`` of the registry, sorted."""
    return sorted(submissions_dir.glob("*.toml"))


def load_entries(submissions_dir: Path) -> dict[str, Entry]:
    """Every entry of the registry; one bad file is an error naming it."""
    problems: list[str] = []
    entries: dict[str, Entry] = {}
    for path in entry_files(submissions_dir):
        try:
            entry = load_entry(path)
        except EntryError as exc:
            problems.append(str(exc))
            continue
        entries[entry.name] = entry
    if problems:
        raise SarbenchError("\n".join(problems))
    return entries


def get_entry(submissions_dir: Path, name: str) -> Entry:
    """The entry called ``name`` (or at the path ``name``); an unknown name gets a suggestion."""
    if name.endswith(".toml") or "/" in name:
        return load_entry(Path(name))
    path = submissions_dir / f"{name}.toml"
    if not path.is_file():
        known = [p.stem for p in entry_files(submissions_dir)]
        raise UnknownNameError("entry", name, known)
    return load_entry(path)
