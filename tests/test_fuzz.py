"""Fuzzing, for a bounded time, of the parsers that read what others wrote: the manifest
parser, the entry-file parser, and the prediction validator (arbitrary bytes as a
prediction, arbitrary names beside it). Each must either accept or raise its own typed
error that names the file; never crash with anything else, never hang."""

from __future__ import annotations

import json
import os
import string
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.datasets.loader import SplitDir
from harness.datasets.manifest import Manifest
from harness.entries import EntryError, load_entry
from harness.errors import ManifestError
from harness.geo import Grid, write_raster
from harness.scoring.validate import PredictionError, validate_predictions
from harness.tasks import get_task

FUZZ = settings(
    max_examples=int(os.environ.get("SARBENCH_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Subnormal floats are left out: a library loaded earlier in the session (built with
# -ffast-math) can set the CPU to flush them to zero, and hypothesis then refuses to draw them.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_subnormal=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _valid_manifest() -> dict:
    h = "sha256:" + "1" * 64
    return Manifest(
        name="tiny",
        task="flood",
        bands=("a", "b"),
        splits={"train": ["t1"], "test": ["x1"]},
        files={f"{s}/{k}/{i}.tif": h for s, i in (("train", "t1"), ("test", "x1"))
               for k in ("inputs", "targets")},
    ).to_dict()  # fmt: skip


@FUZZ
@given(key=st.sampled_from(sorted(_valid_manifest())), value=json_values)
def test_manifest_parser_refuses_any_broken_field_cleanly(key: str, value: object) -> None:
    raw = _valid_manifest()
    raw[key] = value
    try:
        Manifest.from_dict(raw, origin="fuzz.json")
    except ManifestError as exc:
        assert "fuzz.json" in str(exc)


@FUZZ
@given(blob=st.binary(max_size=400))
def test_manifest_files_of_random_bytes_are_refused_naming_the_file(blob: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "manifest.json"
        path.write_bytes(blob)
        with pytest.raises(ManifestError, match=r"manifest\.json"):
            Manifest.load(path)


@FUZZ
@given(
    text=st.text(alphabet=string.printable, max_size=300)
    | st.sampled_from(['name = "x"\n[image]\nref = 1', "tasks = [[]]", "[variants]\na = 1"])
)
def test_entry_parser_refuses_garbage_naming_the_file(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.toml"
        path.write_text(text)
        with pytest.raises(EntryError) as info:
            load_entry(path)
        assert str(path) in str(info.value)


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> SplitDir:
    root = tmp_path_factory.mktemp("fuzz-split")
    grid = Grid.from_origin("EPSG:32630", 700000.0, 4370000.0, 10.0, 8, 8)
    for folder in ("inputs", "targets"):
        (root / folder).mkdir()
    write_raster(root / "inputs" / "c1.tif", np.zeros((2, 8, 8), np.float32), grid)
    write_raster(root / "targets" / "c1.tif", np.zeros((8, 8), np.uint8), grid)
    return SplitDir(root)


@FUZZ
@given(
    blob=st.binary(min_size=0, max_size=2000),
    prefix=st.sampled_from([b"", b"II*\x00", b"MM\x00*", b"II+\x00\x08\x00\x00\x00"]),
    extra=st.lists(
        st.text(alphabet=string.ascii_letters + string.digits + "._- ", min_size=1, max_size=12)
        | st.text(  # any character a file name can hold: escapes, newlines, bidi controls...
            alphabet=st.characters(exclude_characters="/\x00", exclude_categories=["Cs"]),
            min_size=1,
            max_size=40,
        ),
        max_size=3,
    ),
)
def test_validator_survives_any_bytes_and_names(
    split: SplitDir, blob: bytes, prefix: bytes, extra: list[str]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pred = Path(tmp)
        (pred / "c1.tif").write_bytes(prefix + blob)
        for name in extra:
            if name not in (".", "..", "c1.tif") and len(os.fsencode(name)) <= 255:
                (pred / name).write_bytes(b"x")
        with pytest.raises(PredictionError) as info:
            validate_predictions(pred, split, get_task("flood"))
        assert info.value.problems
        assert all(p.file for p in info.value.problems)
        # whatever the names, what is printed holds no control character
        assert all(line.isprintable() for line in str(info.value).splitlines())


def test_the_fuzzed_manifest_baseline_is_itself_valid() -> None:
    Manifest.from_dict(json.loads(json.dumps(_valid_manifest())), origin="base")
