"""``sarbench queue add`` and ``queue run``: the maintainers' side of a submission.

``add`` checks a bundle (structure and caps, entry fields, team, quota, every digest,
then ``docker load`` and the loaded image's ID and size) and queues it on each benchmark
it applies to. ``run`` takes each pending submission (atomically: never two processes on
one), runs its default variant under the benchmark's official profile on its private
test, publishes the records to MLflow and writes the result file. A failure of the
submission's own making (any failed record, an entry that cannot run) is ``failed`` and
charged; anything else (the engine stopped answering, the store refused, a bug) is
``error``: not charged, tried again, and the run stops there, as the machine may be sick.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.competition.bundle import (
    Bundle,
    BundleError,
    check_image_cap,
    image_stream,
    open_bundle,
    verify_digests,
)
from harness.competition.config import Benchmark, Competition
from harness.competition.entryfile import runnable_entry
from harness.competition.quotas import usage
from harness.competition.results import result_doc, write_result
from harness.competition.store import (
    HEARTBEAT_S,
    Item,
    QueueStore,
    entry_owner,
    existing,
    insert_items,
    now_iso,
    owner_gone,
    owner_id,
    today,
)
from harness.entries import Entry, EntryError, load_entry
from harness.errors import SarbenchError
from harness.record import RunFolder, RunRecord
from harness.settings import Settings

Echo = Callable[[str], None]
LOAD_TIMEOUT_S = 3600.0
"""How long ``docker load`` of a bundle's image may take (an 8 GiB image on a slow disk)."""


def _quiet(_: str) -> None:
    """Says nothing."""


class QuotaError(SarbenchError):
    """A team has used its quota on a benchmark; says how much and when it resets."""


# ----------------------------------------------------------------------------- add


def add_bundle(
    settings: Settings,
    store: QueueStore,
    competition: Competition,
    path: Path,
    *,
    benchmarks: Sequence[str] = (),
    expect_digest: str | None = None,
    docker_host: str | None = None,
    echo: Echo = _quiet,
) -> list[Item]:
    """Check the bundle at ``path`` and queue it on ``benchmarks`` (default: every
    benchmark whose dataset it runs on); the new rows. Refusals raise, naming the file and
    every problem: :class:`BundleError`, :class:`QuotaError`, :class:`SarbenchError`."""
    bundle = open_bundle(path)
    submission = f"{bundle.manifest.get('entry', 'entry')}-{bundle.digest[7:19]}"
    folder = settings.home / "queue" / "submissions" / submission
    try:
        entry = runnable_entry(bundle.entry_text, bundle.image_id, folder, f"{path}:entry.toml")
    except EntryError as exc:
        raise BundleError(path, [f"entry.toml: {p}" for p in exc.problems]) from None
    chosen = _benchmarks(settings, competition, entry, benchmarks)
    problems = _entry_problems(bundle.manifest, bundle.validation, entry, competition)
    if problems:
        raise BundleError(path, problems)
    cap = min(b.limits.image_cap for b in chosen)
    check_image_cap(bundle, cap)  # the size, by the manifest and the archive
    with store.engine.connect() as con:
        _check_admissible(con, entry, submission, chosen)
    if expect_digest is not None and expect_digest != bundle.digest:
        raise BundleError(
            path, [f"bundle digest {bundle.digest}, not the {expect_digest} you were sent"]
        )
    echo(f"checking the digests of {path}")
    problems = verify_digests(bundle)
    if problems:
        raise BundleError(path, problems)
    echo(f"loading image {bundle.image_id[:19]} (docker load, offline)")
    _load_image(bundle, entry, cap, docker_host)
    (folder / "validation.json").write_text(json.dumps(bundle.validation, indent=1), "utf-8")
    rows = [
        {
            "submission": submission,
            "benchmark": b.name,
            "team": entry.team,
            "entry": entry.name,
            "bundle_digest": bundle.digest,
            "image_id": bundle.image_id,
            "entry_file": str(entry.path),
            "added_at": now_iso(),
            "added_day": today(),
        }
        for b in chosen
    ]
    with store.serialised() as con:  # checked again: another `queue add` may have run
        _check_admissible(con, entry, submission, chosen)
        ids = insert_items(con, rows)
    return [store.item(i) for i in ids]


def _benchmarks(
    settings: Settings, competition: Competition, entry: Entry, names: Sequence[str]
) -> list[Benchmark]:
    """The benchmarks asked for (each must fit the entry), or every one it fits."""
    from harness.runner.plan import dataset_facts

    facts = dataset_facts(settings)
    if names:
        chosen = [competition.benchmark(n) for n in names]
        misfits = [
            f"benchmark {b.name}: {why}"
            for b in chosen
            if (why := entry.why_not(facts(b.dataset), entry.default_variant)) is not None
        ]
        if misfits:
            raise SarbenchError(f"{entry.name} does not run there:\n  - " + "\n  - ".join(misfits))
        return chosen
    fits, why_nots = [], []
    for bench in competition.benchmarks.values():
        why = entry.why_not(facts(bench.dataset), entry.default_variant)
        if why is None:
            fits.append(bench)
        elif facts(bench.dataset).task in entry.tasks:
            why_nots.append(f"{bench.name}: {why}")
    if not fits:
        detail = "".join(f"\n  - {w}" for w in why_nots)
        raise SarbenchError(
            f"{entry.name} runs on none of the benchmarks ({', '.join(competition.benchmarks)})"
            f"{detail}"
        )
    return fits


def _entry_problems(
    manifest: dict[str, Any], validation: dict[str, Any], entry: Entry, competition: Competition
) -> list[str]:
    """What the manifest, the validation record and the competition say against the entry."""
    problems = []
    if manifest.get("entry") != entry.name or manifest.get("team") != entry.team:
        problems.append("manifest.json: its entry or team is not entry.toml's")
    if competition.teams is not None and entry.team not in competition.teams:
        where = competition.path or "competition.toml"
        problems.append(
            f"entry.toml: team {entry.team!r} is not registered for this competition "
            f"(`teams` in {where}); ask the maintainers to add it"
        )
    if validation.get("passed") is not True or validation.get("entry") != entry.name:
        problems.append("validation.json: not a passing validation of this entry")
    ran = {
        d.get("image_digest")
        for d in validation.get("datasets") or []
        if isinstance(d, dict) and d.get("status") == "pass"
    }
    if ran != {manifest.get("image_id")}:
        problems.append(
            "validation.json: the validated image is not the image in the bundle "
            f"(validated {', '.join(sorted(map(str, ran))) or 'none'})"
        )
    return problems


def _check_admissible(con: Any, entry: Entry, submission: str, chosen: list[Benchmark]) -> None:
    """Refuse a bundle queued before, an entry name another team holds, or a team over
    its quota on any benchmark asked for."""
    queued = [b.name for b in chosen if b.name in existing(con, submission)]
    if queued:
        raise SarbenchError(
            f"submission {submission} is queued already on {', '.join(queued)} "
            "(`sarbench queue status`)"
        )
    owner = entry_owner(con, entry.name)
    if owner is not None and owner != entry.team:
        raise SarbenchError(
            f"entry name {entry.name!r} belongs to team {owner!r}; team {entry.team!r} must "
            "choose another name (`name` in its entry file)"
        )
    full = [u for b in chosen if (u := usage(con, entry.team, b)).full]
    if full:
        lines = "\n  - ".join(u.refusal() for u in full)
        raise QuotaError(f"quota used; nothing was queued:\n  - {lines}")


def _load_image(bundle: Bundle, entry: Entry, cap: int, docker_host: str | None) -> None:
    """``docker load`` the bundle's image; refuse one whose ID is not the manifest's, that
    is bigger than ``cap`` once loaded, or that is labelled as another entry's."""
    import docker

    from harness.numbers import size
    from harness.runtime.builds import ENTRY_LABEL
    from harness.runtime.docker_backend import connect

    client = connect(docker_host, timeout=LOAD_TIMEOUT_S)
    try:
        client.images.load(image_stream(bundle))
        try:
            image = client.images.get(bundle.image_id)
        except docker.errors.ImageNotFound:
            raise BundleError(
                bundle.path, [f"image.tar: loading it gave no image {bundle.image_id}"]
            ) from None
        problems = []
        if image.id != bundle.image_id:
            problems.append(
                f"image.tar: loaded image {image.id}, the manifest says {bundle.image_id}"
            )
        if int(image.attrs.get("Size") or 0) > cap:
            problems.append(
                f"image.tar: the loaded image is {size(image.attrs['Size'])}, over the cap of "
                f"{size(cap)}"
            )
        owner = (image.labels or {}).get(ENTRY_LABEL)
        if owner is not None and owner != entry.name:
            problems.append(f"image.tar: the image is labelled as entry {owner!r}'s")
        if problems:
            raise BundleError(bundle.path, problems)
    finally:
        client.close()


# ----------------------------------------------------------------------------- run


@dataclass
class RunSummary:
    """What one ``queue run`` did: the rows it ended, by their end state."""

    ended: list[tuple[Item, str]]

    def count(self, state: str) -> int:
        return sum(1 for _, s in self.ended if s == state)


@dataclass(frozen=True)
class RunSetup:
    """How ``queue run`` runs: the engine, the store of record and what it may allow."""

    docker_host: str | None = None
    tracking_uri: str | None = None
    allow_public_test: bool = False
    limit: int | None = None


class _Heartbeat(threading.Thread):
    """Beats on a running row until stopped (another host can tell the owner lives)."""

    def __init__(self, store: QueueStore, item_id: int, me: str) -> None:
        super().__init__(name=f"sarbench-queue-beat-{item_id}", daemon=True)
        self.store, self.item_id, self.me = store, item_id, me
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(HEARTBEAT_S):
            self.store.beat(self.item_id, self.me)


def claimable(store: QueueStore, competition: Competition) -> list[Item]:
    """The rows a ``queue run`` would take now, in the order added."""
    now = time.time()
    out = []
    for item in store.items(states=("pending", "error", "running")):
        if item.state == "error" and item.attempts >= competition.max_attempts:
            continue
        if item.state == "running" and not owner_gone(item.owner, item.heartbeat, now):
            continue
        out.append(item)
    return out


def run_queue(
    settings: Settings,
    store: QueueStore,
    competition: Competition,
    setup: RunSetup,
    *,
    echo: Echo = _quiet,
) -> RunSummary:
    """Run what is claimable (:func:`claimable`), one after the other. Before any is
    taken, each benchmark's dataset is verified and must hold its private test (unless
    allowed), and the machine must meet its profile: otherwise nothing is taken."""
    from harness.publish.mlflow_store import Publisher, tracking_uri

    items = claimable(store, competition)[: setup.limit]
    for name in dict.fromkeys(i.benchmark for i in items):
        _preflight(settings, competition.benchmark(name), setup)
    summary = RunSummary([])
    if not items:
        return summary
    publisher = Publisher(settings, tracking_uri(settings, setup.tracking_uri))
    me = owner_id()
    for item in items:
        if not store.claim(item, me, competition.max_attempts):
            continue  # another `queue run` took it
        item = store.item(item.id)
        echo(f"{item.submission} on {item.benchmark}: attempt {item.attempts}")
        beat = _Heartbeat(store, item.id, me)
        beat.start()
        try:
            state = _run_item(settings, store, competition, item, me, publisher, setup, echo)
        finally:
            beat.stopping.set()
        summary.ended.append((item, state))
        if state == "error":
            break  # the machine may be sick: the rest waits for the next `queue run`
    return summary


def _preflight(settings: Settings, bench: Benchmark, setup: RunSetup) -> None:
    """Refuse to start a benchmark whose data is not verified or is not its private test
    (unless allowed), or whose profile this machine does not meet."""
    from harness.conditions.probe import conditions
    from harness.conditions.profiles import get_profile
    from harness.datasets import ops

    manifest = ops.verify(settings, bench.dataset, progress=False)
    if manifest.test_kind != "private" and not (
        setup.allow_public_test or bench.limits.allow_public_test
    ):
        raise SarbenchError(
            f"benchmark {bench.name}: the prepared test of {bench.dataset} is its "
            f"{manifest.test_kind} test, whose labels are not hidden; official runs are on the "
            f"private test. Prepare it (`sarbench datasets secret new`, then `sarbench "
            f"datasets prepare {bench.dataset} --test private`), or pass --allow-public-test "
            f"(or allow_public_test = true for this benchmark): its boards then say "
            f"'{manifest.test_kind} test'. Nothing was run."
        )
    conditions(get_profile(settings.profiles_dir, bench.limits.profile))


def _run_item(
    settings: Settings,
    store: QueueStore,
    competition: Competition,
    item: Item,
    me: str,
    publisher: Any,
    setup: RunSetup,
    echo: Echo,
) -> str:
    """Run, publish and report one claimed row; its end state."""
    from harness.runner.run import EntryMismatchError, WeightsRequiredError

    bench = competition.benchmark(item.benchmark)
    try:
        runs = _runs(settings, item, bench, setup, echo)
        for folder, _record in runs:
            publisher.publish(folder.path)
    except (EntryError, EntryMismatchError, WeightsRequiredError) as exc:
        return _end(settings, store, item, bench, me, "failed", str(exc), [])
    except Exception as exc:  # anything else is the harness's failure: not charged
        why = f"{type(exc).__name__}: {exc}"
        left = competition.max_attempts - item.attempts
        echo(f"error (the harness's, not charged; {left} attempt(s) left): {why}")
        return _end(settings, store, item, bench, me, "error", why, [])
    failed = [r for _, r in runs if not r.ok]
    state = "failed" if failed else "published"
    reason = "" if not failed else f"{failed[0].reason}: {failed[0].detail.splitlines()[0]}"
    return _end(settings, store, item, bench, me, state, reason, runs)


def _runs(
    settings: Settings, item: Item, bench: Benchmark, setup: RunSetup, echo: Echo
) -> list[tuple[RunFolder, RunRecord]]:
    """Every run of the item's default variant under the benchmark's profile (the runner
    skips a recorded run and restarts an unfinished one)."""
    from harness.conditions.profiles import get_profile
    from harness.runner.executor import Finished, Job, LocalExecutor, RunOptions
    from harness.runner.plan import dataset_facts, make_plan
    from harness.runner.run import EntryMismatchError

    entry = load_entry(Path(item.entry_file))
    profile = get_profile(settings.profiles_dir, bench.limits.profile)
    plan = make_plan(
        [entry],
        profile.name,
        profile.seeds,
        facts=dataset_facts(settings),
        variants=(entry.default_variant,),
        dataset=bench.dataset,
    )
    if not plan.runs:
        raise EntryMismatchError("; ".join(s.line() for s in plan.skipped))
    opts = RunOptions("docker", profile.name, False, setup.docker_host, None, ())
    job = Job(settings, plan, {entry.name: entry}, opts)
    out = []
    for done in LocalExecutor(echo=echo).run(job):
        assert isinstance(done, Finished)  # the local executor refuses nothing
        out.append((RunFolder(done.run_dir), done.record))
    return out


def _end(
    settings: Settings,
    store: QueueStore,
    item: Item,
    bench: Benchmark,
    me: str,
    state: str,
    reason: str,
    runs: list[tuple[RunFolder, RunRecord]],
) -> str:
    """Write the result file, then end the row in ``state``; the state."""
    doc = result_doc(item, bench, state, runs, reason=reason)
    path = write_result(settings.home, item, doc)
    store.finish(
        item.id,
        me,
        state,
        reason,
        run_ids=[r.run_id for _, r in runs],
        result_file=str(path),
    )
    return state
