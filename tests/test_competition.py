"""The submission path without an engine: the bundle's checks (every changed byte is
refused, naming what does not match; unknown members, links and '..' paths; the image
cap), the runnable entry file, ``competition.toml``, the queue's database (atomic claims,
taking over a dead owner's row, quotas that an ``error`` does not use) on SQLite, and on
PostgreSQL when ``SARBENCH_TEST_POSTGRES`` names one (CI: required), and the result file.

The Docker path end to end is ``tests/test_competition_docker.py``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import socket
import tarfile
import threading
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.competition.bundle import (
    BundleError,
    open_bundle,
    verify_digests,
    write_bundle,
)
from harness.competition.config import (
    DEFAULTS,
    CompetitionConfigError,
    load_competition,
)
from harness.competition.entryfile import dumps, runnable_entry
from harness.competition.quotas import usage
from harness.competition.results import capped, result_doc
from harness.competition.store import (
    ITEMS,
    QueueStore,
    count_charged,
    insert_items,
    owner_id,
    today,
)
from harness.entries import EntryError
from harness.settings import REPO_ROOT, Settings
from tests.helpers import unavailable as needs_unavailable
from tests.runner_support import cli

IMAGE_ID = "sha256:" + "ab" * 32
PG_ENV = "SARBENCH_TEST_POSTGRES"


def _bundle(tmp_path: Path, image: bytes | None = None) -> Path:
    (tmp_path / "img.tar").write_bytes(image or random.Random(3).randbytes(150_000))
    out = tmp_path / "b.sarbench"
    write_bundle(
        out,
        entry_text='name = "comp-a"\nteam = "Team A"\n',
        validation={"passed": True, "entry": "comp-a"},
        image_tar=tmp_path / "img.tar",
        image_id=IMAGE_ID,
        entry="comp-a",
        team="Team A",
    )
    return out


def _refused(path: Path) -> list[str]:
    """Every problem found with the bundle at ``path`` (empty: accepted)."""
    try:
        return verify_digests(open_bundle(path, image_cap=10**9))
    except BundleError as exc:
        return exc.problems


# ----------------------------------------------------------------------------- the bundle


def test_a_bundle_reads_back_and_its_digest_is_the_manifests(tmp_path: Path) -> None:
    path = _bundle(tmp_path)
    bundle = open_bundle(path, image_cap=10**9)
    assert verify_digests(bundle) == []
    assert bundle.image_id == IMAGE_ID and bundle.image_bytes == 150_000
    with tarfile.open(path) as tar:
        names = tar.getnames()
        manifest = tar.extractfile("manifest.json").read()  # type: ignore[union-attr]
    assert names == ["entry.toml", "validation.json", "image.tar", "manifest.json"]
    assert bundle.digest == "sha256:" + hashlib.sha256(manifest).hexdigest()


def test_every_changed_byte_is_refused(tmp_path: Path) -> None:
    path = _bundle(tmp_path, random.Random(5).randbytes(20_000))
    data = path.read_bytes()
    manifest = open_bundle(path).members["manifest.json"]
    rng = random.Random(7)
    positions = [  # every byte of the manifest's header, a sample elsewhere
        *range(manifest.offset, manifest.offset_data),
        *rng.sample(range(manifest.offset_data, manifest.offset_data + manifest.size), 150),
        *rng.sample(range(len(data)), 300),
    ]
    bad = tmp_path / "bad.sarbench"
    unseen = []
    for pos in positions:
        changed = bytearray(data)
        changed[pos] = (changed[pos] + rng.randrange(1, 256)) % 256
        bad.write_bytes(changed)
        if not _refused(bad):
            unseen.append(pos)
    assert unseen == []


def test_what_does_not_match_is_named(tmp_path: Path) -> None:
    path = _bundle(tmp_path)
    members = open_bundle(path).members
    for name, message in (
        ("image.tar", "image.tar: its SHA-256 does not match the manifest's"),
        ("entry.toml", "entry.toml: its SHA-256 does not match the manifest's"),
    ):
        data = bytearray(path.read_bytes())
        data[members[name].offset_data + 3] ^= 0x20
        bad = tmp_path / f"bad-{name}"
        bad.write_bytes(data)
        problems = _refused(bad)
        assert problems[0] == message + " (changed)", problems
        assert any("`whole`" in p for p in problems)
    data = bytearray(path.read_bytes())
    data[members["manifest.json"].offset_data + 20] ^= 0x01
    bad = tmp_path / "bad-manifest"
    bad.write_bytes(data)
    assert any(p.startswith("manifest.json: changed") for p in _refused(bad))


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def test_unknown_members_links_and_dotdot_paths_are_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo("image.tar")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
    path = _tar(
        tmp_path / "odd.sarbench",
        [
            (tarfile.TarInfo("entry.toml"), b"x"),
            (tarfile.TarInfo("../evil.sh"), b"#!/bin/sh\n"),
            (link, b""),
            (tarfile.TarInfo("extra.txt"), b"x"),
        ],
    )
    with pytest.raises(BundleError) as err:
        open_bundle(path)
    text = str(err.value)
    assert str(path) in text
    assert "'../evil.sh': a path with '..'" in text and "'extra.txt': unknown member" in text
    assert "image.tar: not a regular file (links and folders are refused)" in text
    assert "validation.json: missing" in text and "manifest.json: missing" in text
    with pytest.raises(BundleError, match=r"first tar header is damaged|not a bundle"):
        (tmp_path / "x").write_bytes(b"hello")
        open_bundle(tmp_path / "x")


def test_the_image_cap_is_checked_from_the_manifest(tmp_path: Path) -> None:
    path = _bundle(tmp_path)
    with pytest.raises(BundleError, match=r"image.tar: the image is 146.5 KiB, over .* 100 KiB"):
        open_bundle(path, image_cap=100 * 1024)


# ----------------------------------------------------------------------------- entry file


def test_entry_files_write_back_exactly() -> None:
    for path in sorted((REPO_ROOT / "submissions").glob("*.toml")):
        raw = tomllib.loads(path.read_text())
        assert tomllib.loads(dumps(raw)) == raw, path


def test_the_runnable_entry_runs_the_bundles_image_and_names_the_bundle(tmp_path: Path) -> None:
    text = (REPO_ROOT / "submissions" / "template.toml").read_text()
    text = text.replace('name = "template"', 'name = "comp-a"')
    entry = runnable_entry(text, IMAGE_ID, tmp_path / "q", "b.sarbench:entry.toml")
    assert entry.name == "comp-a" and entry.image.ref == IMAGE_ID and not entry.image.buildable
    assert entry.local_command == ()
    bad = text.replace('tasks = ["flood", "ndvi"]', 'tasks = ["flod"]').replace(
        "baseline = false", "baseline = true"
    )
    with pytest.raises(EntryError) as err:
        runnable_entry(bad, IMAGE_ID, tmp_path / "q2", "b.sarbench:entry.toml")
    message = str(err.value)
    assert message.startswith("b.sarbench:entry.toml: invalid entry (")
    assert "unknown task 'flod'" in message and "reserved to the project's own" in message


# ----------------------------------------------------------------------------- competition.toml


def test_the_competition_file_and_its_defaults(settings: Settings, tmp_path: Path) -> None:
    assert load_competition(settings) is DEFAULTS
    path = settings.home / "competition.toml"
    path.parent.mkdir(parents=True)
    path.write_text(
        'teams = ["Team A"]\n[defaults]\nprofile = "quick"\nruns_per_day = 3\n'
        '[benchmarks.floods]\ndataset = "flood-synth"\nimage_cap = "1GiB"\n'
    )
    comp = load_competition(settings)
    bench = comp.benchmark("floods")
    assert bench.dataset == "flood-synth" and bench.limits.profile == "quick"
    assert bench.limits.runs_per_day == 3 and bench.limits.image_cap == 2**30
    assert comp.teams == ("Team A",)
    path.write_text(
        "max_attempts = 0\nwho = 1\n[defaults]\nruns_per_day = -1\n"
        '[benchmarks.x]\nimage_cap = "big"\nprofiles = "quick"\n'
    )
    with pytest.raises(CompetitionConfigError) as err:
        load_competition(settings)
    text = str(err.value)
    assert text.startswith(f"{path}: invalid competition file (5 problem(s))")
    for part in (
        "unknown key `who`",
        "`max_attempts`",
        "`runs_per_day`",
        "`image_cap`",
        "`profiles`",
    ):
        assert part in text
    with pytest.raises(CompetitionConfigError, match="file not found"):
        load_competition(settings, tmp_path / "nope.toml")


# ----------------------------------------------------------------------------- the queue's db


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[QueueStore]:
    """A fresh queue database: SQLite, and PostgreSQL where ``SARBENCH_TEST_POSTGRES``
    names a server (a role that may create databases)."""
    if request.param == "sqlite":
        made = QueueStore(f"sqlite:///{tmp_path / 'queue.db'}")
        yield made
        made.close()
        return
    admin = os.environ.get(PG_ENV)
    if not admin:
        needs_unavailable(
            f"no PostgreSQL for the queue's tests: set {PG_ENV}=postgresql://USER:PASSWORD@"
            "127.0.0.1:PORT/postgres (.ci/run starts one)",
            what="the queue's PostgreSQL tests",
        )
    import psycopg

    database = f"sarbench_queue_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {database}")
    url = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    made = QueueStore(f"{url}/{database}")
    try:
        yield made
    finally:
        made.close()
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def _add(store: QueueStore, submission: str, team: str = "Team A", bench: str = "b") -> int:
    row = {
        "submission": submission,
        "benchmark": bench,
        "team": team,
        "entry": "comp-a",
        "bundle_digest": "sha256:" + "0" * 64,
        "image_id": IMAGE_ID,
        "entry_file": "/nowhere/comp-a.toml",
        "added_at": "2026-01-01T00:00:00Z",
        "added_day": today(),
    }
    with store.serialised() as con:
        (item_id,) = insert_items(con, [row])
    return item_id


def test_a_row_is_claimed_once_however_many_ask_at_once(store: QueueStore) -> None:
    item = store.item(_add(store, "s1"))
    wins: list[bool] = []
    barrier = threading.Barrier(6)

    def claim(n: int) -> None:
        barrier.wait()
        wins.append(store.claim(item, f"{socket.gethostname()}:0:{n}", max_attempts=3))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 5 + [True]
    taken = store.item(item.id)
    assert taken.state == "running" and taken.attempts == 1


def test_a_dead_owners_row_is_taken_over_a_live_ones_is_not(store: QueueStore) -> None:
    item_id = _add(store, "s1")
    me = owner_id()
    assert store.claim(store.item(item_id), me, 3)
    assert not store.claim(store.item(item_id), "other", 3)  # this process lives
    dead = f"{socket.gethostname()}:{2**22 + 12345}:1"  # no such PID here
    other = _add(store, "s2")
    with store.engine.begin() as con:
        con.execute(ITEMS.update().where(ITEMS.c.id == item_id).values(owner=dead))
        # another host's owner: alive while it beats
        con.execute(
            ITEMS.update()
            .where(ITEMS.c.id == other)
            .values(state="running", owner="elsewhere:1:1", heartbeat=time.time())
        )
    assert store.claim(store.item(item_id), me, 3)
    assert store.item(item_id).attempts == 2
    assert not store.claim(store.item(other), me, 3)
    with store.engine.begin() as con:
        con.execute(ITEMS.update().where(ITEMS.c.id == other).values(heartbeat=0.0))
    assert store.claim(store.item(other), me, 3)
    # ending needs ownership: a process that lost the row changes nothing
    assert not store.finish(item_id, "not-me", "published")
    assert store.finish(item_id, me, "published", run_ids=["r1"])
    assert store.item(item_id).runs == ["r1"]


def test_quotas_count_what_is_queued_scored_or_failed_but_not_harness_errors(
    store: QueueStore,
) -> None:
    me = owner_id()
    ids = [_add(store, f"s{i}") for i in range(3)]
    _add(store, "other-team", team="Team B")
    for item_id, end in zip(ids, ("published", "failed", "error"), strict=True):
        assert store.claim(store.item(item_id), me, 3)
        assert store.finish(item_id, me, end)
    with store.engine.connect() as con:
        assert count_charged(con, "Team A", "b") == 2
        assert count_charged(con, "Team A", "b", today()) == 2
        assert count_charged(con, "Team A", "b", "1999-01-01") == 0
        bench = DEFAULTS.with_limits(runs_per_day=2, runs_total=9).benchmark("flood-synth")
        bench = type(bench)("b", bench.dataset, bench.limits)
        used = usage(con, "Team A", bench)
    assert used.full and "its daily quota of scored runs is used up" in used.refusal()
    assert "used 2 of 2 today, 2 of 9 in total (the daily count resets at " in used.refusal()
    retried = store.retry(ids[2])
    assert retried.state == "pending" and retried.attempts == 0


# ----------------------------------------------------------------------------- result file


def test_the_predict_log_is_capped_head_and_tail() -> None:
    text = "".join(f"line {i}\n" for i in range(2000))
    cut, was_cut = capped(text, 1024)
    assert was_cut and cut.startswith("line 0\n") and cut.endswith("line 1999\n")
    assert "bytes left out: the predict log is capped at 1,024 bytes" in cut
    assert len(cut.encode()) < 1024 + 120
    assert capped("short", 1024) == ("short", False)


def test_a_result_without_runs_says_why_and_whether_it_was_charged(store: QueueStore) -> None:
    item = store.item(_add(store, "s1"))
    bench = DEFAULTS.benchmark("flood-synth")
    doc = result_doc(item, bench, "error", reason="ConnectionError: engine gone")
    assert doc["state"] == "error" and doc["charged"] is False and doc["runs"] == []
    assert json.loads(json.dumps(doc)) == doc


# ----------------------------------------------------------------------------- refusals


def _entry_bundle(tmp_path: Path, team: str, validated: str | None) -> Path:
    """A bundle of the template's entry file as ``comp-a`` of ``team``, a stand-in image,
    and a validation that ran ``validated`` (None: nothing)."""
    text = (REPO_ROOT / "submissions" / "template.toml").read_text()
    text = text.replace('name = "template"', 'name = "comp-a"')
    text = text.replace('team = "SARBench maintainers"', f'team = "{team}"')
    (tmp_path / "img.tar").write_bytes(b"not really an image")
    ran = [] if validated is None else [{"status": "pass", "image_digest": validated}]
    out = tmp_path / f"{team.replace(' ', '-')}.sarbench"
    write_bundle(
        out,
        entry_text=text,
        validation={"passed": True, "entry": "comp-a", "datasets": ran},
        image_tar=tmp_path / "img.tar",
        image_id=IMAGE_ID,
        entry="comp-a",
        team=team,
    )
    return out


def test_queue_add_refuses_an_unregistered_team_and_an_image_not_validated(
    settings: Settings, tmp_path: Path
) -> None:
    settings.home.mkdir(parents=True)
    (settings.home / "competition.toml").write_text(
        'teams = ["Team A"]\n[benchmarks.flood-synth]\n'
    )
    bundle = _entry_bundle(tmp_path, "Team B", validated="sha256:" + "cd" * 32)
    res = cli(settings, "queue", "add", str(bundle))
    assert res.exit_code == 2, res.output
    assert f"{bundle}: bundle refused (2 problem(s))" in res.output
    assert "entry.toml: team 'Team B' is not registered for this competition" in res.output
    assert "validation.json: the validated image is not the image in the bundle" in res.output
    assert "the queue is empty" in cli(settings, "queue", "status").output


def test_queue_add_refuses_an_entry_name_another_team_holds(
    settings: Settings, tmp_path: Path
) -> None:
    store = QueueStore(f"sqlite:///{settings.home / 'queue' / 'queue.db'}")
    _add(store, "comp-a-000000000000", team="Team A", bench="flood-synth")
    store.close()
    bundle = _entry_bundle(tmp_path, "Team B", validated=IMAGE_ID)
    res = cli(settings, "queue", "add", str(bundle))
    assert res.exit_code == 2, res.output
    assert "entry name 'comp-a' belongs to team 'Team A'" in res.output


def test_queue_run_refuses_a_test_split_that_is_not_private(settings: Settings) -> None:
    from harness.datasets import ops
    from tests.helpers import TinySource

    ops.materialise(settings, TinySource(), progress=False)  # its test labels are public
    settings.home.mkdir(parents=True, exist_ok=True)
    (settings.home / "competition.toml").write_text('[benchmarks.tiny]\nprofile = "quick"\n')
    store = QueueStore(f"sqlite:///{settings.home / 'queue' / 'queue.db'}")
    item_id = _add(store, "comp-a-000000000000", bench="tiny")
    res = cli(settings, "queue", "run")
    assert res.exit_code == 2, res.output
    assert "benchmark tiny: the prepared test of tiny is its public test" in res.output
    assert "--allow-public-test" in res.output and "Nothing was run." in res.output
    item = store.item(item_id)
    assert item.state == "pending" and item.attempts == 0
    store.close()
