"""Error types of publishing. Each message names the file or store and what is wrong."""

from __future__ import annotations

from harness.errors import SarbenchError


class RecordError(SarbenchError):
    """A run folder or record.json that cannot be published as it is."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = path, problem


class TrackingError(SarbenchError):
    """The MLflow tracking store refused or failed an operation; names the store."""
