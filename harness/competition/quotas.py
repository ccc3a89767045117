"""Quotas: scored test runs per team per UTC day and in total, per benchmark.

A submission takes one slot on each benchmark it is queued on, at ``queue add``; it keeps
it when it is scored (``published``) or fails by its own doing (``failed``: a crash, a
timeout, out of memory, invalid predictions...), and gives it back when the harness or the
machine failed it (``error``). The day is the UTC day the submission was added.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from harness.competition.config import Benchmark
from harness.competition.store import count_charged, today


@dataclass(frozen=True)
class Usage:
    """What ``team`` has used of ``benchmark``'s quotas."""

    team: str
    benchmark: Benchmark
    today: int
    total: int

    @property
    def full(self) -> bool:
        limits = self.benchmark.limits
        return self.today >= limits.runs_per_day or self.total >= limits.runs_total

    def line(self) -> str:
        """``used 1 of 2 today, 3 of 20 in total (the daily count resets at ...)``."""
        limits = self.benchmark.limits
        return (
            f"used {self.today} of {limits.runs_per_day} today, {self.total} of "
            f"{limits.runs_total} in total (the daily count resets at {reset_time()})"
        )

    def refusal(self) -> str:
        """Why the team may not queue another submission on this benchmark, in words."""
        which = "total" if self.total >= self.benchmark.limits.runs_total else "daily"
        return (
            f"team {self.team!r} on benchmark {self.benchmark.name}: its {which} quota of "
            f"scored runs is used up: {self.line()}"
        )


def reset_time() -> str:
    """When the daily quotas start again: the next midnight, UTC."""
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
    return f"{tomorrow} 00:00 UTC"


def usage(con: sa.Connection, team: str, benchmark: Benchmark) -> Usage:
    """``team``'s use of ``benchmark`` now (slots held today and in total)."""
    return Usage(
        team,
        benchmark,
        today=count_charged(con, team, benchmark.name, today()),
        total=count_charged(con, team, benchmark.name),
    )
