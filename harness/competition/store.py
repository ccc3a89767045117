"""The queue's state: one row per submission and benchmark, in a real database.

SQLite by default (``sqlite:///<home>/queue/queue.db``), or any SQLAlchemy URL
(``--db``, ``$SARBENCH_QUEUE_DB``), e.g. the PostgreSQL that holds MLflow
(``postgresql+psycopg://user:password@host/sarbench_queue``). Written with SQLAlchemy Core.

A row's life::

    pending --claim--> running --> published   (scored; charged to the team's quota)
                          |   \\--> failed      (the submission's fault: charged)
                          \\-----> error       (the harness's or the machine's: not charged;
                                               tried again, up to max_attempts)

Every change of state is one conditional ``UPDATE`` (compare and set), so two ``queue
run`` processes never take the same row. A ``running`` row records its owner
(``host:pid:start time``) and a heartbeat; a later ``queue run`` takes it over when that
owner is gone (the same host: no such process; another host: no heartbeat for
:data:`STALE_S`), and runs it again: the runner skips a recorded run and restarts an
unfinished one, so each run has exactly one record.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from harness.errors import SarbenchError
from harness.settings import Settings

ENV_VAR = "SARBENCH_QUEUE_DB"
STATES = ("pending", "running", "published", "failed", "error")
CHARGED = ("pending", "running", "published", "failed")
"""States that hold a quota slot: taken at ``queue add``, given back by ``error``."""
HEARTBEAT_S = 30.0
STALE_S = 300.0
"""A running row on another host whose heartbeat is older than this is taken over
(our choice: ten heartbeats)."""

METADATA = sa.MetaData()
ITEMS = sa.Table(
    "sarbench_queue",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("submission", sa.String(200), nullable=False),
    sa.Column("benchmark", sa.String(200), nullable=False),
    sa.Column("team", sa.String(500), nullable=False),
    sa.Column("entry", sa.String(100), nullable=False),
    sa.Column("bundle_digest", sa.String(80), nullable=False),
    sa.Column("image_id", sa.String(80), nullable=False),
    sa.Column("entry_file", sa.Text, nullable=False),
    sa.Column("added_at", sa.String(32), nullable=False),
    sa.Column("added_day", sa.String(10), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("detail", sa.Text, nullable=False, default=""),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("owner", sa.String(300), nullable=True),
    sa.Column("heartbeat", sa.Float, nullable=True),
    sa.Column("started_at", sa.String(32), nullable=True),
    sa.Column("finished_at", sa.String(32), nullable=True),
    sa.Column("run_ids", sa.Text, nullable=False, default="[]"),
    sa.Column("result_file", sa.Text, nullable=True),
    sa.UniqueConstraint("submission", "benchmark", name="sarbench_queue_once"),
)
LOCKS = sa.Table(
    "sarbench_queue_lock",
    METADATA,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("counter", sa.Integer, nullable=False),
)


class QueueStoreError(SarbenchError):
    """The queue's database cannot be opened or used; says which and what to do."""


@dataclass(frozen=True)
class Item:
    """One row: a submission on one benchmark, and where it stands."""

    id: int
    submission: str
    benchmark: str
    team: str
    entry: str
    bundle_digest: str
    image_id: str
    entry_file: str
    added_at: str
    added_day: str
    state: str
    reason: str
    detail: str
    attempts: int
    owner: str | None
    heartbeat: float | None
    started_at: str | None
    finished_at: str | None
    run_ids: str
    result_file: str | None

    @property
    def runs(self) -> list[str]:
        return list(json.loads(self.run_ids or "[]"))


def default_url(settings: Settings) -> str:
    """``$SARBENCH_QUEUE_DB``, else ``sqlite:///<home>/queue/queue.db``."""
    return os.environ.get(ENV_VAR) or f"sqlite:///{settings.home / 'queue' / 'queue.db'}"


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def today() -> str:
    """Today's date in UTC (quotas count per UTC day)."""
    return datetime.now(UTC).strftime("%Y-%m-%d")


def owner_id() -> str:
    """``host:pid:start`` of this process (the start time tells a reused PID apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (``/proc``), or "" if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


def owner_gone(owner: str | None, heartbeat: float | None, now: float) -> bool:
    """Whether the process that claimed a row is gone: on this host, no process with its
    PID and start time; elsewhere, no heartbeat for :data:`STALE_S`."""
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    pid, _, start = rest.partition(":")
    if host == socket.gethostname() and pid.isdigit():
        return _start_time(int(pid)) != start or not start
    return heartbeat is None or now - heartbeat > STALE_S


class QueueStore:
    """The queue's rows in the database at ``url`` (tables made on first use)."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            if url.startswith("sqlite:///"):
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
                self.engine = sa.create_engine(url, connect_args={"timeout": 60})
            else:
                self.engine = sa.create_engine(url, pool_pre_ping=True)
            METADATA.create_all(self.engine)
            with self.engine.begin() as con:
                if con.execute(sa.select(LOCKS.c.name)).first() is None:
                    con.execute(sa.insert(LOCKS).values(name="queue", counter=0))
        except (sa.exc.SQLAlchemyError, ImportError) as exc:
            raise QueueStoreError(
                f"queue database {_safe(url)}: cannot open it ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0]}). Check the URL (--db, ${ENV_VAR}) and that the "
                "server answers"
            ) from exc

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def serialised(self) -> Iterator[sa.Connection]:
        """``with store.serialised() as con:`` a transaction that first updates the queue's
        one lock row and so holds it until it ends: writers that check and then insert
        (quotas) take turns, on SQLite and PostgreSQL alike."""
        with self.engine.begin() as con:
            con.execute(sa.update(LOCKS).values(counter=LOCKS.c.counter + 1))
            yield con

    def items(self, *, states: Sequence[str] = ()) -> list[Item]:
        """Every row (in the order added), or those in ``states``."""
        query = sa.select(ITEMS).order_by(ITEMS.c.id)
        if states:
            query = query.where(ITEMS.c.state.in_(states))
        with self.engine.connect() as con:
            return [Item(**row._mapping) for row in con.execute(query)]

    def item(self, item_id: int) -> Item:
        with self.engine.connect() as con:
            row = con.execute(sa.select(ITEMS).where(ITEMS.c.id == item_id)).first()
        if row is None:
            raise SarbenchError(f"no queue item {item_id} in {_safe(self.url)}")
        return Item(**row._mapping)

    def claim(self, item: Item, me: str, max_attempts: int) -> bool:
        """Take ``item`` for this process (``me``): a pending row, an ``error`` row with
        attempts left, or a ``running`` row whose owner is gone. True if taken here."""
        now = time.time()
        where = ITEMS.c.id == item.id
        if item.state == "running":
            if not owner_gone(item.owner, item.heartbeat, now):
                return False
            where &= (ITEMS.c.state == "running") & (ITEMS.c.owner == item.owner)
        else:
            where &= (ITEMS.c.state == item.state) & ITEMS.c.state.in_(("pending", "error"))
            where &= ITEMS.c.attempts < max_attempts
        update = (
            sa.update(ITEMS)
            .where(where)
            .values(
                state="running",
                owner=me,
                heartbeat=now,
                started_at=now_iso(),
                attempts=ITEMS.c.attempts + 1,
            )
        )
        with self.engine.begin() as con:
            return con.execute(update).rowcount == 1

    def beat(self, item_id: int, me: str) -> None:
        """The owner's heartbeat on a running row."""
        with self.engine.begin() as con:
            con.execute(
                sa.update(ITEMS)
                .where((ITEMS.c.id == item_id) & (ITEMS.c.owner == me))
                .values(heartbeat=time.time())
            )

    def finish(
        self,
        item_id: int,
        me: str,
        state: str,
        reason: str = "",
        detail: str = "",
        *,
        run_ids: Sequence[str] = (),
        result_file: str | None = None,
    ) -> bool:
        """End a running row this process owns in ``state``; False if it is not ours any
        more (taken over: then nothing is changed)."""
        if state not in ("published", "failed", "error"):
            raise ValueError(f"not an end state: {state}")
        update = (
            sa.update(ITEMS)
            .where((ITEMS.c.id == item_id) & (ITEMS.c.owner == me) & (ITEMS.c.state == "running"))
            .values(
                state=state,
                reason=reason,
                detail=detail,
                finished_at=now_iso(),
                run_ids=json.dumps(list(run_ids)),
                result_file=result_file,
                owner=None,
            )
        )
        with self.engine.begin() as con:
            return con.execute(update).rowcount == 1

    def retry(self, item_id: int) -> Item:
        """An ``error`` row back to ``pending`` with its attempts reset (the maintainer's
        ``queue retry``, after fixing the machine)."""
        with self.engine.begin() as con:
            done = con.execute(
                sa.update(ITEMS)
                .where((ITEMS.c.id == item_id) & (ITEMS.c.state == "error"))
                .values(state="pending", attempts=0)
            ).rowcount
        if done != 1:
            item = self.item(item_id)
            raise SarbenchError(
                f"queue item {item_id} is {item.state}, not error: nothing to retry"
            )
        return self.item(item_id)


def insert_items(con: sa.Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert new ``pending`` rows inside a serialised transaction; their IDs."""
    ids = []
    for row in rows:
        values = {
            "state": "pending",
            "reason": "",
            "detail": "",
            "attempts": 0,
            "run_ids": "[]",
            **row,
        }
        ids.append(int(con.execute(sa.insert(ITEMS).values(**values)).inserted_primary_key[0]))
    return ids


def count_charged(con: sa.Connection, team: str, benchmark: str, day: str | None = None) -> int:
    """How many quota slots ``team`` holds on ``benchmark`` (``day``: added that UTC day)."""
    query = (
        sa.select(sa.func.count())
        .select_from(ITEMS)
        .where(
            (ITEMS.c.team == team) & (ITEMS.c.benchmark == benchmark) & ITEMS.c.state.in_(CHARGED)
        )
    )
    if day is not None:
        query = query.where(ITEMS.c.added_day == day)
    return int(con.execute(query).scalar_one())


def existing(con: sa.Connection, submission: str) -> list[str]:
    """The benchmarks ``submission`` is queued on already."""
    query = sa.select(ITEMS.c.benchmark).where(ITEMS.c.submission == submission)
    return [r[0] for r in con.execute(query)]


def entry_owner(con: sa.Connection, entry: str) -> str | None:
    """The team that first queued an entry of this name (None: nobody yet)."""
    query = sa.select(ITEMS.c.team).where(ITEMS.c.entry == entry).order_by(ITEMS.c.id).limit(1)
    row = con.execute(query).first()
    return None if row is None else str(row[0])


def _safe(url: str) -> str:
    """The URL without its password."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(an unreadable URL)"
