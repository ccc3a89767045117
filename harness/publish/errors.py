"""Error types of publishing. Each message names the file or store and what is wrong."""

from __future__ import annotations

from collections.abc import Sequence

from harness.errors import SarbenchError


class RecordError(SarbenchError):
    """A run folder or record.json that cannot be published as it is: every problem found,
    in :attr:`problems`; nothing of it reached the store."""

    def __init__(self, path: object, problem: str | Sequence[str]) -> None:
        problems = [problem] if isinstance(problem, str) else list(problem)
        if len(problems) == 1:
            text = f"{path}: {problems[0]}"
        else:
            text = f"{path}: {len(problems)} problems:\n" + "\n".join(
                f"    - {p}" for p in problems
            )
        super().__init__(text)
        self.path, self.problems = path, problems
        self.problem = "; ".join(problems)


class TrackingError(SarbenchError):
    """The MLflow tracking store refused or failed an operation; names the store."""


class StoreBusyError(TrackingError):
    """The store stayed locked by another process for longer than publishing waits; the
    message names the store, the lock and what to do. Nothing half-written is left shown."""
