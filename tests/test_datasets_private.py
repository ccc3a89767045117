"""Private test splits: the maintainers' secret, freezing with and without it, preparing and
verifying the demo and the private test, what the committed manifest and the card hold, and
the manifest schema (groups, the private block, /1 manifests).

A tiny configuration of ndvi-synth is registered as the generator ``ndvi-tiny`` (seconds
to make), so that the whole path of `sarbench datasets prepare` runs as it does for the
embedded datasets.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat

import pytest

from harness.datasets import ops
from harness.datasets.layout import LOCAL_COPY
from harness.datasets.manifest import Manifest
from harness.datasets.ndvi_synth import NdviSynth
from harness.datasets.registry import GENERATORS, SourceKind
from harness.datasets.secret import (
    ENV_VAR,
    SecretError,
    derive_test_seed,
    load_secret,
    new_secret,
    secret_path,
)
from harness.errors import ManifestError, VerificationError
from harness.settings import Settings
from tests.helpers import TinySource, dataset_cli
from tests.test_ndvi_synth import TINY as NDVI_TINY

NAME = "ndvi-tiny"
TINY = {  # smaller than test_ndvi_synth's tiny generator where it can be
    **NDVI_TINY,
    "test_locations": 3,
    "pretrain_areas": 1,
    "target_dates": 3,
    "pretrain_dates": 2,
}


class TinyNdvi(NdviSynth):
    """ndvi-synth in miniature, under its own name."""

    name = NAME

    def __init__(self, **kw: object) -> None:
        super().__init__(seed=7, **TINY, **kw)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def no_secret_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


@pytest.fixture
def tiny(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    kind = SourceKind(NAME, "ndvi", "tiny ndvi-synth", f"{__name__}:TinyNdvi")
    monkeypatch.setitem(GENERATORS, NAME, kind)
    return settings


def _secret_value(settings: Settings) -> str:
    return secret_path(settings).read_text().strip()


def _everything_written(settings: Settings) -> str:
    """The text of every manifest, card and bookkeeping file written (not the rasters)."""
    out = []
    for root in (settings.manifests_dir, settings.data_root):
        for p in sorted(root.rglob("*")):
            if p.is_file() and p.suffix in (".json", ".md"):
                out.append(p.read_text())
    return "\n".join(out)


# ----------------------------------------------------------------------------- the secret


def test_secret_file_must_be_private_and_is_never_shown(settings: Settings) -> None:
    assert load_secret(settings) is None
    made = new_secret(settings)
    assert made.path == settings.home / "secrets" / "test-secret" and made.old is None
    assert stat.S_IMODE(made.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(made.path.parent.stat().st_mode) & 0o077 == 0
    value = _secret_value(settings)
    assert len(value) == 64 and int(value, 16) >= 0  # secrets.token_hex(32)
    found = load_secret(settings)
    assert found is not None and found.value == value and found.origin == str(made.path)
    assert value not in repr(found) and value not in str(found)

    os.chmod(made.path, 0o644)
    with pytest.raises(SecretError) as err:
        load_secret(settings)
    msg = str(err.value)
    assert str(made.path) in msg and f"chmod 600 {made.path}" in msg and "0644" in msg
    assert value not in msg

    os.chmod(made.path, 0o600)
    made.path.write_text("short\n")
    with pytest.raises(SecretError, match="shorter than 16"):
        load_secret(settings)
    made.path.unlink()
    target = settings.home / "elsewhere"
    target.write_text("z" * 40)
    os.chmod(target, 0o600)
    made.path.symlink_to(target)
    with pytest.raises(SecretError, match="must be a regular file"):
        load_secret(settings)


def test_the_environment_variable_comes_first(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    new_secret(settings)
    monkeypatch.setenv(ENV_VAR, "e" * 32)
    found = load_secret(settings)
    assert found is not None and found.value == "e" * 32 and found.origin == f"${ENV_VAR}"
    monkeypatch.setenv(ENV_VAR, "tiny")
    with pytest.raises(SecretError) as err:
        load_secret(settings)
    assert "tiny" not in str(err.value).replace(ENV_VAR, "")


def test_derived_seeds_differ_per_dataset_and_secret() -> None:
    a = derive_test_seed("s" * 64, "flood-synth")
    assert a == derive_test_seed("s" * 64, "flood-synth")
    assert 0 <= a < 2**64
    want = hashlib.sha256(("s" * 64 + "\0flood-synth\0test").encode()).digest()[:8]
    assert a == int.from_bytes(want, "big")
    assert a != derive_test_seed("s" * 64, "ndvi-synth")
    assert a != derive_test_seed("t" * 64, "flood-synth")


def test_cli_secret_new_refuses_to_overwrite_and_rotates(settings: Settings) -> None:
    res = dataset_cli(settings, "datasets", "secret", "status")
    assert res.exit_code == 0 and "no test secret" in res.output
    res = dataset_cli(settings, "datasets", "secret", "new")
    assert res.exit_code == 0, res.output
    path = secret_path(settings)
    first = _secret_value(settings)
    assert f"wrote a new test secret to {path}" in res.output and first not in res.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    res = dataset_cli(settings, "datasets", "secret", "new")
    assert res.exit_code == 2
    assert "already exists" in res.output and "--rotate" in res.output
    assert _secret_value(settings) == first

    res = dataset_cli(settings, "datasets", "secret", "new", "--rotate")
    assert res.exit_code == 0, res.output
    second = _secret_value(settings)
    assert second != first and first not in res.output and second not in res.output
    (old,) = path.parent.glob("test-secret.*.old")
    assert old.read_text().strip() == first and str(old) in res.output
    assert "private test" in res.output and "official board" in res.output
    assert "--refreeze" in res.output
    res = dataset_cli(settings, "datasets", "secret", "status")
    assert res.exit_code == 0 and "usable" in res.output and second not in res.output


# ----------------------------------------------------------------------------- freezing


def test_freeze_without_a_secret_lists_the_demo_test_and_says_how_to_add_the_private(
    tiny: Settings,
) -> None:
    out = ops.prepare(tiny, NAME, progress=False)
    assert out.status == "frozen" and out.test_kind == "demo"
    assert any("no test secret" in n and "--refreeze" in n for n in out.notes)
    committed = Manifest.load(tiny.manifest_path(NAME))
    assert committed.private_test is None and committed.test_kind == "demo"
    assert out.digest == committed.digest
    assert all(sid.startswith("demo_a") for sid in committed.splits["test"])
    assert committed.n_groups("test") == 3 and committed.count()["test"] == 12
    # asking for the private test without a secret says how to get one
    with pytest.raises(SecretError, match="sarbench datasets secret new"):
        ops.prepare(tiny, NAME, test="private", progress=False)


def test_freeze_with_a_secret_records_only_the_private_digest(tiny: Settings) -> None:
    new_secret(tiny)
    value = _secret_value(tiny)
    out = ops.prepare(tiny, NAME, progress=False)  # default: private, as a secret exists
    assert out.status == "frozen" and out.test_kind == "private" and out.notes == ()
    raw = json.loads(tiny.manifest_path(NAME).read_text())
    assert raw["schema"] == "sarbench.manifest/2"
    assert set(raw["private_test"]) == {"digest", "n_chips", "n_groups"}
    assert raw["private_test"]["n_chips"] == 12 and raw["private_test"]["n_groups"] == 3
    assert raw["private_test"]["digest"] == out.digest
    committed = Manifest.load(tiny.manifest_path(NAME))
    assert committed.test_kind == "demo" and committed.digest != out.digest
    # on disk: the private test, described by the local copy
    local = Manifest.load(out.path / LOCAL_COPY)
    assert local.digest == out.digest and local.test_kind == "private"
    private_ids = local.splits["test"]
    assert len(private_ids) == 12 and all(s.startswith("test_a") for s in private_ids)
    text = tiny.manifest_path(NAME).read_text()
    for sid in private_ids:
        assert sid not in text  # no private test chip anywhere in the committed file
    card = (tiny.manifests_dir / NAME / "README.md").read_text()
    for sid in private_ids + committed.splits["test"]:
        assert sid not in card
    # the secret and the seed derived from it are written nowhere
    seed = str(derive_test_seed(value, NAME))
    written = _everything_written(tiny)
    assert value not in written and seed not in written
    assert "test (private) | 12 | 3 | held out" in card and "test (demo) | 12 | 3 |" in card
    looks = sorted(p.stem for p in (tiny.manifests_dir / NAME / "quicklooks").glob("*.png"))
    assert looks and not [s for s in looks if "test" in s]


# ----------------------------------------------------------------------------- verifying


@pytest.fixture
def frozen(tiny: Settings) -> Settings:
    new_secret(tiny)
    ops.prepare(tiny, NAME, test="demo", progress=False)
    return tiny


def test_verify_accepts_the_demo_and_the_private_test(frozen: Settings) -> None:
    committed = ops.require_manifest(frozen, NAME)
    assert committed.private_test is not None
    demo = ops.verify(frozen, NAME, progress=False)
    assert demo.test_kind == "demo" and demo.digest == committed.digest
    assert ops.is_prepared(frozen, NAME)
    assert ops.groups_of(frozen, NAME, "test") == committed.groups("test")

    out = ops.prepare(frozen, NAME, test="private", progress=False)
    assert out.status == "prepared" and out.digest == committed.private_test["digest"]
    private = ops.verify(frozen, NAME, progress=False)
    assert private.test_kind == "private" and private.digest == out.digest
    assert ops.is_prepared(frozen, NAME)
    groups = ops.groups_of(frozen, NAME, "test")
    assert groups is not None and set(groups) == set(private.splits["test"])
    assert len(set(groups.values())) == 3 and all(g.startswith("test_a") for g in groups.values())
    split = ops.open_split(frozen, NAME, "test")
    assert split.ids == sorted(private.splits["test"])
    again = ops.prepare(frozen, NAME, progress=False)  # default: private, already there
    assert again.status == "skipped" and again.test_kind == "private"
    res = dataset_cli(frozen, "datasets", "verify", NAME)
    assert res.exit_code == 0 and "private test" in res.output
    res = dataset_cli(frozen, "datasets", "show", NAME, "--json")
    info = json.loads(res.output)
    assert info["prepared_test"] == "private" and info["groups"]["test"] == 3


def test_verify_refuses_a_tampered_private_test(frozen: Settings) -> None:
    ops.prepare(frozen, NAME, test="private", progress=False)
    folder = frozen.dataset_dir(NAME)
    local = Manifest.load(folder / LOCAL_COPY)
    rel = f"test/targets/{sorted(local.splits['test'])[1]}.tif"
    data = bytearray((folder / rel).read_bytes())
    data[len(data) // 2] ^= 0x08
    (folder / rel).write_bytes(bytes(data))
    with pytest.raises(VerificationError) as err:
        ops.verify(frozen, NAME, progress=False)
    assert [p.split(":")[0] for p in err.value.problems] == [rel]

    ops.prepare(frozen, NAME, test="private", force=True, progress=False)
    ops.verify(frozen, NAME, progress=False)
    # a hand-made local copy (another grouping, its digest recomputed) is not accepted
    m = Manifest.load(folder / LOCAL_COPY)
    for sid in m.splits["test"]:
        m.samples[sid]["group"] = "one"
    m.save(folder / LOCAL_COPY)
    with pytest.raises(VerificationError) as err:
        ops.verify(frozen, NAME, progress=False)
    assert any(
        p.startswith(f"{LOCAL_COPY}: describes data with digest") for p in err.value.problems
    )
    assert not ops.is_prepared(frozen, NAME)


def test_another_secret_cannot_pass_for_the_committed_private_test(frozen: Settings) -> None:
    old_value = _secret_value(frozen)
    ops.prepare(frozen, NAME, test="private", progress=False)
    before = (frozen.dataset_dir(NAME) / LOCAL_COPY).read_text()
    new_secret(frozen, rotate=True)
    value = _secret_value(frozen)
    with pytest.raises(ManifestError) as err:
        ops.prepare(frozen, NAME, test="private", force=True, progress=False)
    msg = str(err.value)
    assert "not the one the manifest was frozen with" in msg and "--refreeze" in msg
    assert str(secret_path(frozen)) in msg and "nothing was replaced" in msg.lower()
    assert value not in msg and old_value not in msg
    assert (frozen.dataset_dir(NAME) / LOCAL_COPY).read_text() == before
    # a maintainer refreezes with the new secret: the private digest changes, the demo not
    committed = ops.require_manifest(frozen, NAME)
    out = ops.prepare(frozen, NAME, refreeze=True, progress=False)
    assert out.status == "frozen"
    assert any("private test digest changed" in n for n in out.notes)
    now = ops.require_manifest(frozen, NAME)
    assert now.digest == committed.digest
    assert now.private_test is not None and committed.private_test is not None
    assert now.private_test["digest"] != committed.private_test["digest"]
    assert ops.verify(frozen, NAME, progress=False).digest == now.private_test["digest"]


def test_default_is_demo_where_no_private_digest_is_committed(tiny: Settings) -> None:
    ops.prepare(tiny, NAME, progress=False)  # frozen without a secret
    new_secret(tiny)
    out = ops.prepare(tiny, NAME, progress=False)
    assert out.test_kind == "demo" and out.status == "skipped"
    assert any("records no private test digest" in n for n in out.notes)
    with pytest.raises(ManifestError, match="records no private test digest"):
        ops.prepare(tiny, NAME, test="private", progress=False)


def test_cli_prepare_says_which_test(tiny: Settings) -> None:
    res = dataset_cli(tiny, "datasets", "prepare", NAME, "--test", "demo")
    assert res.exit_code == 0, res.output
    assert f"{NAME}: frozen" in res.output and "test: demo test" in res.output
    res = dataset_cli(tiny, "datasets", "prepare", NAME, "--test", "demo", "--force")
    assert f"{NAME}: prepared; reproduces the committed digest" in res.output
    res = dataset_cli(tiny, "datasets", "card", NAME)
    assert res.exit_code == 0, res.output


# ----------------------------------------------------------------------------- the manifest


def _old_digest(raw: dict) -> str:
    """The digest as schema /1 defined it: task, bands, splits and files only."""
    body = {
        "task": raw["task"],
        "bands": raw["bands"],
        "splits": {k: sorted(v) for k, v in sorted(raw["splits"].items())},
        "files": dict(sorted(raw["files"].items())),
    }
    return (
        "sha256:"
        + hashlib.sha256(
            json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
    )


def test_schema_1_reads_with_its_digest_and_groups_enter_the_digest(settings: Settings) -> None:
    out = ops.materialise(settings, TinySource(), progress=False)
    raw = json.loads(settings.manifest_path("tiny").read_text())
    assert raw["schema"] == "sarbench.manifest/2"
    v1 = {**raw, "schema": "sarbench.manifest/1"}
    m = Manifest.from_dict(v1)
    assert m.digest == out.digest == _old_digest(raw)  # no groups: the /1 digest
    assert m.groups("train") is None and m.test_kind == "public"
    grouped = dict(raw)
    grouped["samples"] = {k: {**v, "group": "g"} for k, v in raw["samples"].items()}
    with pytest.raises(ManifestError, match="does not match its content"):
        Manifest.from_dict(grouped)  # groups are content: the stated digest no longer fits
    m2 = Manifest(
        name=m.name,
        task=m.task,
        bands=m.bands,
        splits=m.splits,
        files=m.files,
        samples=grouped["samples"],
    )
    assert m2.digest != m.digest and m2.n_groups("train") == 1
    assert Manifest.from_dict(m2.to_dict()).digest == m2.digest


def test_malformed_groups_and_private_blocks_are_refused(settings: Settings) -> None:
    ops.materialise(settings, TinySource(), progress=False)
    raw = json.loads(settings.manifest_path("tiny").read_text())
    bad = {**raw, "samples": {**raw["samples"], "train_00": {"group": ""}}}
    with pytest.raises(ManifestError, match="'group' must be a non-empty string"):
        Manifest.from_dict(bad)
    extra = {"digest": "sha256:" + "0" * 64, "n_chips": 2, "n_groups": 2, "ids": ["x"]}
    with pytest.raises(ManifestError, match="nothing per chip"):
        Manifest.from_dict({**raw, "private_test": extra})
    ok = {"digest": "sha256:" + "0" * 64, "n_chips": 2, "n_groups": 2}
    m = Manifest.from_dict({**raw, "private_test": ok})
    assert m.private_test == ok and m.digest == raw["digest"]  # a reference, not content
    with pytest.raises(ManifestError, match="schema must be one of"):
        Manifest.from_dict({**raw, "schema": "sarbench.manifest/3"})
