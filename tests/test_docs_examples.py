"""The docs' JSON and TOML examples, checked against what the code really writes and reads.

Every ```json and ```toml block of ``docs/*.md`` and ``README.md`` is one of the examples
below, each checked against its real counterpart, and a block that is none of them fails
(a new example must get a check here):

- ``run.json`` (docs/contract.md) and the run record (docs/records.md): against the
  ``config/train.json`` and ``record.json`` a real run writes (``sarbench run threshold``,
  local backend, on a tiny dataset whose bands are named as flood-synth's), and the example's
  dataset facts against the committed flood-synth manifest;
- the manifest (docs/datasets.md): against flood-synth's committed manifest and what
  :class:`~harness.datasets.manifest.Manifest` writes;
- the template entry, the threshold baseline and the ``quick`` profile (docs/contract.md):
  against ``submissions/template.toml``, ``submissions/threshold.toml`` and
  ``profiles/quick.toml``;
- ``competition.toml`` (docs/competing.md): read by the queue's own loader, its
  ``[defaults]`` the defaults the code holds (the doc says they are).

How an example is compared (:func:`shape_problems`): a table's keys must be the real
table's keys, except that a key ``"..."`` in the example stands for keys left out; a value
written ``"..."``, ``"…"``, ``…`` or ``"sha256:..."`` is a placeholder; any other value must
have the real value's type (JSON ``null`` matches anything: the real value may be set). A
key in angle brackets (``"<id>"``, ``"train/inputs/<id>.tif"``) stands for every key of
its table; in JSON a bare ``…`` is a placeholder value, or keys left out where a key would
be. An entry's options are checked against the entry the example names, not against the
run made here.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.bands import band_roles
from harness.conditions.profiles import get_profile
from harness.datasets import ops
from harness.datasets.manifest import PRIVATE_KEYS, Manifest
from harness.entries import get_entry
from harness.settings import REPO_ROOT
from harness.tasks import get_task
from tests.helpers import TinySource
from tests.runner_support import TEST_PROFILE, bench_settings, cli

DOCS = [*sorted((REPO_ROOT / "docs").glob("*.md")), REPO_ROOT / "README.md"]
FENCE = re.compile(r"^```(json|toml)[ \t]*\n(.*?)^```", re.M | re.S)
PLACEHOLDERS = {"...", "…", "sha256:...", "sha256:…"}
BARE = re.compile(r'("(?:[^"\\]|\\.)*")|…')
MORE_KEYS = re.compile(r",\s*…\s*}")


@dataclass(frozen=True)
class Example:
    """One fenced JSON or TOML block of a doc."""

    path: Path
    line: int
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO_ROOT)}:{self.line}"

    def load(self) -> Any:
        """The block parsed; in JSON a bare ``…`` where a key would be reads as the key
        ``"..."`` (keys left out), elsewhere as the placeholder ``"…"``."""
        if self.lang == "toml":
            return tomllib.loads(self.text)
        text = MORE_KEYS.sub(', "...": "..."}', self.text)
        return json.loads(BARE.sub(lambda m: m.group(1) or '"…"', text))


def examples() -> Iterator[Example]:
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for found in FENCE.finditer(text):
            line = text.count("\n", 0, found.start()) + 1
            yield Example(path, line, found.group(1), found.group(2))


def _kind(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return type(value).__name__
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def shape_problems(example: Any, real: Any, where: str = "") -> list[str]:
    """Where ``example`` does not have the shape of ``real`` (see the module docstring)."""
    if (isinstance(example, str) and example in PLACEHOLDERS) or example is None:
        return []
    if isinstance(example, dict):
        if not isinstance(real, dict):
            return [f"{where or 'top'}: a table in the example, {_kind(real)} in truth"]
        patterns = [k for k in example if k.startswith("<") or "/<" in k]
        if patterns:  # "<id>": every key of the table
            first = next(iter(real.values()), None)
            out = []
            for key in patterns:
                out += shape_problems(example[key], first, f"{where}.{key}".lstrip("."))
            return out
        shown = {k for k in example if k != "..."}
        problems = []
        if "..." not in example:
            missing = sorted(set(real) - shown)
            if missing:
                problems.append(f"{where or 'top'}: the example leaves out {missing}")
        extra = sorted(shown - set(real))
        if extra:
            problems.append(f"{where or 'top'}: the example has {extra}, which are not written")
        for key in sorted(shown & set(real)):
            problems += shape_problems(example[key], real[key], f"{where}.{key}".lstrip("."))
        return problems
    if isinstance(example, list):
        if not isinstance(real, list):
            return [f"{where}: a list in the example, {_kind(real)} in truth"]
        if example and real:
            return shape_problems(example[0], real[0], f"{where}[0]")
        return []
    if real is not None and _kind(example) != _kind(real):
        return [f"{where}: {example!r} is a {_kind(example)}, in truth a {_kind(real)}"]
    return []


def _find(predicate: Any) -> list[Example]:
    out = []
    for example in examples():
        try:
            if predicate(example.load()):
                out.append(example)
        except (ValueError, tomllib.TOMLDecodeError):
            continue
    return out


def is_run_config(doc: Any) -> bool:
    return isinstance(doc, dict) and "contract" in doc and "phase" in doc


def is_record(doc: Any) -> bool:
    return isinstance(doc, dict) and str(doc.get("schema", "")).startswith("sarbench.run/")


def is_manifest(doc: Any) -> bool:
    return isinstance(doc, dict) and str(doc.get("schema", "")).startswith("sarbench.manifest/")


def is_template(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("name") == "template"


def is_profile(doc: Any) -> bool:
    return isinstance(doc, dict) and "resources" in doc and "limits" in doc


def is_competition(doc: Any) -> bool:
    return isinstance(doc, dict) and "benchmarks" in doc


def is_threshold(example: Example) -> bool:
    return example.text.lstrip().startswith("# threshold.toml")


CHECKED = (is_run_config, is_record, is_manifest, is_template, is_profile, is_competition)


def test_every_json_and_toml_example_parses_and_has_a_check() -> None:
    unchecked, broken = [], []
    for example in examples():
        try:
            doc = example.load()
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            broken.append(f"{example.where}: {exc}")
            continue
        if not (is_threshold(example) or any(check(doc) for check in CHECKED)):
            unchecked.append(example.where)
    assert not broken, broken
    assert not unchecked, f"examples no test checks (add one here): {unchecked}"


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of a real run: ``sarbench run threshold`` (local backend, ``test``
    profile) on a tiny dataset whose bands are named as flood-synth's."""
    root = tmp_path_factory.mktemp("docs-run")
    profiles = root / "profiles"
    profiles.mkdir()
    (profiles / "test.toml").write_text(TEST_PROFILE)
    settings = bench_settings(root, REPO_ROOT / "submissions", profiles)
    ops.materialise(settings, TinySource(name="tiny"), progress=False)
    args = ("--dataset", "tiny", "--backend", "local", "--profile", "test", "--variant", "default")
    result = cli(settings, "run", "threshold", *args)
    assert result.exit_code == 0, result.output
    (folder,) = [p for p in settings.runs_dir.iterdir() if (p / "record.json").is_file()]
    return folder


def _flood_synth() -> dict[str, Any]:
    path = REPO_ROOT / "datasets" / "flood-synth" / "manifest.json"
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _entry_options(doc: dict[str, Any], profile: str) -> dict[str, Any]:
    """The resolved options of the entry and variant an example names, under ``profile``."""
    entry = get_entry(REPO_ROOT / "submissions", doc["entry"])
    return entry.resolve_options(doc["variant"], profile)


def test_the_run_json_example_is_what_a_run_writes(real_run: Path) -> None:
    (example,) = _find(is_run_config)
    doc = example.load()
    real = json.loads((real_run / "config" / "train.json").read_text())
    shown = {k: v for k, v in doc.items() if k != "options"}
    assert shape_problems(shown, {k: v for k, v in real.items() if k != "options"}) == []
    assert doc["options"] == _entry_options(doc, doc["profile"]), example.where
    profile = get_profile(REPO_ROOT / "profiles", doc["profile"])
    assert doc["time_budget_s"] == profile.limits("train").timeout_s
    assert doc["resources"] == {
        "cpus": profile.cpus,
        "memory_bytes": profile.memory_bytes,
        "gpu": profile.gpu_model is not None,
    }
    assert doc["phase"] == real["phase"] == "train" and doc["contract"] == real["contract"]
    # the example names flood-synth: its facts are flood-synth's and the flood task's
    manifest = _flood_synth()
    assert doc["dataset"]["name"] == manifest["name"] == "flood-synth"
    assert doc["dataset"]["bands"] == manifest["bands"] == real["dataset"]["bands"]
    roles = band_roles(Manifest.from_dict(manifest, "manifest.json"))
    assert doc["dataset"]["band_roles"] == list(roles or []) == real["dataset"]["band_roles"]
    assert doc["dataset"]["splits"] == real["dataset"]["splits"]
    task = get_task("flood")
    assert (
        doc["task"]
        == real["task"]
        == {
            "name": "flood",
            "input_bands": task.input_bands,
            "prediction": {"dtype": task.prediction_dtype, "range": list(task.prediction_range)},
        }
    )


def test_the_record_example_is_what_a_run_records(real_run: Path) -> None:
    (example,) = _find(is_record)
    doc = example.load()
    real = json.loads((real_run / "record.json").read_text())
    shown = {k: v for k, v in doc.items() if k != "options"}
    assert shape_problems(shown, {k: v for k, v in real.items() if k != "options"}) == []
    key = doc["key"]
    options = get_entry(REPO_ROOT / "submissions", key["entry"]).resolve_options(
        key["variant"], doc["profile"]["name"]
    )
    assert doc["options"] == options, example.where
    assert doc["schema"] == real["schema"]
    assert doc["key"]["split"] == real["key"]["split"] == "test"
    assert doc["task"] == {**real["task"], "name": "flood", "primary_metric": "iou"}


def test_the_manifest_example_is_what_is_frozen() -> None:
    (example,) = _find(is_manifest)
    doc = example.load()
    real = _flood_synth()
    written = Manifest.from_dict(real, "manifest.json").to_dict()
    optional = {"private_test": dict.fromkeys(PRIVATE_KEYS, 0)}
    for facts in doc["samples"].values():  # a chip's facts are the dataset's own: a few shown
        facts["..."] = "..."
    assert shape_problems(doc, {**written, **optional}) == [], example.where
    assert (doc["name"], doc["task"], doc["bands"]) == (real["name"], real["task"], real["bands"])
    assert set(doc["source"]) - {"..."} <= set(real["source"])
    assert set(doc["source"]["params"]) - {"..."} <= set(real["source"]["params"])


def _toml(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def _same_values(example: Any, real: Any, where: str = "") -> list[str]:
    """Where a value the example shows differs from the real file's."""
    if isinstance(example, dict) and isinstance(real, dict):
        out = []
        for key, value in example.items():
            if key not in real:
                out.append(f"{where}.{key}".lstrip(".") + ": not in the real file")
            else:
                out += _same_values(value, real[key], f"{where}.{key}".lstrip("."))
        return out
    return [] if example == real else [f"{where}: {example!r} here, {real!r} in the file"]


def test_the_template_example_is_the_template() -> None:
    (example,) = _find(is_template)
    real = _toml(REPO_ROOT / "submissions" / "template.toml")
    assert _same_values(example.load(), real) == [], example.where
    assert set(example.load()) == set(real), example.where


def test_the_threshold_example_is_the_threshold_entry() -> None:
    (example,) = [e for e in examples() if is_threshold(e)]
    real = _toml(REPO_ROOT / "submissions" / "threshold.toml")
    assert _same_values(example.load(), real) == [], example.where


def test_the_profile_example_is_the_quick_profile() -> None:
    (example,) = _find(is_profile)
    doc = example.load()
    real = _toml(REPO_ROOT / "profiles" / f"{doc['name']}.toml")
    assert _same_values(doc, real) == [], example.where


def test_shape_rules() -> None:
    assert shape_problems({"a": 1, "...": "..."}, {"a": 2, "b": 3}) == []
    assert shape_problems({"a": "x"}, {"a": 2}) == ["a: 'x' is a str, in truth a number"]
    assert shape_problems({"a": 1}, {"a": 1, "b": 2}) == ["top: the example leaves out ['b']"]
    assert shape_problems({"c": None}, {}) == ["top: the example has ['c'], which are not written"]
    assert shape_problems([{"x": "…"}], [{"x": 5}]) == []


def test_the_competition_example_reads_and_shows_the_defaults(tmp_path: Path) -> None:
    from harness.competition.config import Limits, load_competition
    from harness.settings import Settings

    (example,) = _find(is_competition)
    path = tmp_path / "competition.toml"
    path.write_text(example.text, encoding="utf-8")
    settings = Settings(home=tmp_path, data_root=tmp_path / "d", manifests_dir=tmp_path / "m")
    loaded = load_competition(settings, path)
    doc = example.load()
    defaults = Limits()
    for name, value in doc["defaults"].items():
        got = getattr(loaded.default_limits, name)
        assert got == getattr(defaults, name), f"{example.where}: {name} = {value!r}"
    assert set(loaded.benchmarks) == set(doc["benchmarks"])
